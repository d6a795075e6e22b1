"""The distribution maps every top-level folder into the `sparring` namespace."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    dirs = conf["package-dir"]
    for pkg, folder in dirs.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            name = ".".join([pkg, *rel.parts]) if rel.parts else pkg
            assert name in listed, f"{init.parent} is a package but {name} is not in pyproject packages"


def test_namespace_imports_resolve_to_the_folders():
    for name, folder in (("sparring.envs.base", "envs"), ("sparring.rl", "rl"), ("sparring.exporters", "exporters"), ("sparring.sft", "sft"), ("sparring.evaluators", "evaluators")):
        mod = importlib.import_module(name)
        assert Path(mod.__file__).resolve().is_relative_to(REPO / folder)


def test_every_module_starts_with_a_docstring():
    for folder in ("sparring", "sft", "envs", "evaluators", "rl", "exporters"):
        for py in (REPO / folder).rglob("*.py"):
            text = py.read_text().lstrip()
            assert text.startswith(('"""', "'''", 'r"""')), f"{py} has no module docstring"
