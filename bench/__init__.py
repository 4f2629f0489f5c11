"""Benchmarks of striate against PyTorch on identical data: `python -m bench` (see __main__)."""
