"""sparring: train small language models by self-play against referees that cannot be fooled.

The distribution maps the top-level folders into one namespace: ``sparring.sft`` is ``sft/``,
``sparring.envs`` is ``envs/``, ``sparring.evaluators``, ``sparring.rl`` and ``sparring.exporters``
likewise.  Run ``sparring --help`` for the command line.
"""

__version__ = "0.1.0"
