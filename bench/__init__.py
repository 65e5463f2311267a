"""Benchmarks of a sync against their floors: `python -m bench` (or `make bench`)."""
