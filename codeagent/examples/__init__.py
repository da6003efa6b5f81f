"""Small deterministic data sets used by the example notebooks, the demo, the tests and the benchmarks."""
