"""Benchmarks: one module per figure an issue asks for, each runnable as ``python -m sparring.bench.<name>``."""
