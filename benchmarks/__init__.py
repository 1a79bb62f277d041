"""Benchmarks of tap-continu against the simulator. Run them with `python -m benchmarks.run`."""
