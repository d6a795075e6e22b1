"""The `sparring` command line: one Typer app, each area registers its own commands.

    sparring --help
    sparring config show configs/jokes.yaml --explain
    sparring doctor

Areas register through ``register(app)`` in their own module, so the owner of a capability edits
one file.  Bad input exits 2 with a message naming the file/field and the fix; a failure during
work exits 1.  Exercised by ``pytest tests/sparring/test_cli.py``.
"""

from __future__ import annotations

import importlib
import sys

import typer
from sparring.errors import SparringError

app = typer.Typer(
    name="sparring",
    help="Train small language models by self-play: LoRA SFT, GRPO/DPO on Ray against referees that cannot be fooled, verified GGUF/MLC exports.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines `register(app)`; the order is the order of --help.
COMMAND_MODULES = (
    "sparring.cli_core",        # config, models, doctor
    "sparring.sft.cli",         # data, sft
    "sparring.evaluators.cli",  # eval, validate-joke, score
    "sparring.rl.cli",          # rl
    "sparring.exporters.cli",   # export
    "sparring.cli_pipeline",    # run, report
    "sparring.cli_serve",       # serve, demo, bench
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

# Third-party warnings a sparring run triggers by design, silenced so that real ones stand out:
# PEFT looking up the base config on the Hub when a trainer checkpoints an adapter (sparring runs
# offline and never adapts the embeddings), and transformers' renames that TRL's own calls trip.
KNOWN_WARNINGS = (
    (UserWarning, r"Unable to fetch remote file"),
    (UserWarning, r"Could not find a config file in"),
    (FutureWarning, r"`(is_)?gradient_checkpointing` is deprecated"),
)


def quiet_known_warnings() -> None:
    import warnings

    for category, message in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn sparring errors into exit codes 2 (bad input) or 1."""
    quiet_known_warnings()
    try:
        app(args=argv, prog_name="sparring")
    except SparringError as exc:
        # plain text, never re-wrapped: the message names files and fixes that must stay greppable
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
