"""Benchmarks (`make bench`): scripts that write bench/out/*.json and render docs/benchmarks.md."""
