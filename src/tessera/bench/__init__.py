"""Benchmark of the daily run per stage against floors measured on the same machine and data."""
