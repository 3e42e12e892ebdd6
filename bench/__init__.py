"""Benchmarks: a bulk data generator, the benchmark runner, and query-plan checks."""
