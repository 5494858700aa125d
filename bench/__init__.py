"""Benchmarks of the service against the Core emulator: `python -m bench all` (or overhead, memory, throughput)."""
