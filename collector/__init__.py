"""Protocol inputs (Modbus TCP/RTU, MQTT), the durable buffer and the sinks."""
