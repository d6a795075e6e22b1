"""Referees and measurement: validators, the Stockfish engine pool, metrics, the eval harness."""
