"""Jokes the joke-validator tests share: one good joke and a three-joke corpus (texts and a dict)."""

from __future__ import annotations

GOOD = "Q: Why did the cookie go to the doctor?\nA: Because it felt crummy!"
CORPUS = [
    "Q: Why don't scientists trust atoms?\nA: Because they make up everything.",
    "Q: Why did the scarecrow win an award?\nA: Because he was outstanding in his field.",
    {"question": "What do you call a fake noodle?", "answer": "An impasta."},
]
