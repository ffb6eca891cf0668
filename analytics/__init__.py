"""Detectors over numpy arrays, the savings plan and the CO2 engine."""
