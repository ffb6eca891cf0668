"""Simulated factory: scenario engine, Modbus servers, recordings with ground truth.

- `scenario.load_scenario(path)`: the scenario file (docs/simulators.md)
- `factories.factory_scenario(...)`: ready-made small/large factories for tests
- `recording.generate_recording(scenario, start, days, step_s, seed)`: (ReadingBatch, infos, truth)
- `modbus_server.serve_modbus(cfg, ...)` / `ModbusSimulator(cfg, port=0)`: the meters on Modbus TCP (or RTU)
"""
