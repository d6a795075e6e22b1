"""Datasets (formats, built-in corpora, generators, validation, splits) and the LoRA SFT stage."""
