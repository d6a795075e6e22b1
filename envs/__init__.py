"""Environments: each gives prompts (or game states) and scores completions. No Ray, no TRL here."""
