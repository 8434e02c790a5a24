"""ml-connector benchmarks: `python -m bench --size small|full` (see README, "Benchmark")."""
