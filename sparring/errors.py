"""Error types that decide the exit code: bad input exits 2, a failure during work exits 1.

Every message names the file, field or value at fault and the fix.  Exercised by
``pytest tests/sparring/test_errors.py`` and by every CLI command.
"""

from __future__ import annotations


class SparringError(Exception):
    """A failure during work (exit code 1)."""

    exit_code = 1


class UserInputError(SparringError):
    """Bad input from the user: a config, a path, a value (exit code 2).

    ``where`` names the file/field/value; ``fix`` says what to do instead.
    """

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None):
        self.where = where
        self.fix = fix
        parts = [f"{where}: {message}" if where else message]
        if fix:
            parts.append(f"fix: {fix}")
        super().__init__("\n".join(parts))


class NotBuiltYet(UserInputError):
    """A command whose capability is not available in this build."""
