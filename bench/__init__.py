"""Runnable benchmarks (not tests): `python -m bench.run_all [--quick]` writes bench/RESULTS.md."""
