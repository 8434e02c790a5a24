"""The `mlconnector` command line, and the local stack it starts for runs, tests and benchmarks."""
