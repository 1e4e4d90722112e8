"""Benchmark scripts: each prints its numbers and writes them under benchmarks/results/."""
