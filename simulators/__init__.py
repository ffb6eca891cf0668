"""Simulated factory: scenario engine, Modbus servers, recordings with ground truth."""
