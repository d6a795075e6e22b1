"""Data generators: Claude (anthropic SDK), Stockfish-labelled chess, synthetic Q/A, JSON timelines, distillation."""
