"""Benchmarks: each path's cost as a ratio against the floors of its parts, measured in the
same run (../shared/reference/perf-floors.md). Never run by the test suite."""
