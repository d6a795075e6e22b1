"""Load, override, validate and explain run configs.

    cfg = load_config("configs/jokes.yaml", overrides=["sft.epochs=1", "rl.rollout.engine=hf"])
    print(dump_config(cfg))             # the resolved YAML written into every run directory
    print(explain_config(cfg))          # every field with its description

Every problem is a ``UserInputError`` naming the file and the field, with the fix: a missing file,
YAML syntax, an unknown key (with the closest valid one), a wrong type, a bad override.
Exercised by ``pytest tests/sparring/test_config.py`` and ``sparring config validate configs/*.yaml``.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from sparring.config import RunConfig
from sparring.errors import UserInputError


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at ``path`` (for key suggestions)."""
    model: type[BaseModel] = RunConfig
    for part in path:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def _explain_validation(exc: ValidationError, source: str) -> UserInputError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    where = f"{source}: {'.'.join(str(p) for p in loc)}" if loc else source
    if err["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        valid = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        fix = f"did you mean {close[0]!r}? " if close else ""
        return UserInputError(f"unknown key {loc[-1]!r}", where=where, fix=f"{fix}valid keys here: {', '.join(valid)}")
    value = err.get("input")
    return UserInputError(
        f"{err['msg']} (got {value!r})",
        where=where,
        fix="see `sparring config show <config> --explain` for every field's type and meaning",
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], parsed YAML scalar/list)."""
    if "=" not in text:
        raise UserInputError(f"override {text!r} has no '='", where="--set", fix="write --set section.field=value, e.g. --set sft.epochs=1")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise UserInputError(f"override {text!r} names no field", where="--set", fix="write --set section.field=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise UserInputError("config file not found", where=str(p), fix="pass an existing YAML file, e.g. configs/demo.yaml")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{p}:{mark.line + 1}:{mark.column + 1}" if mark else str(p)
        raise UserInputError(f"YAML syntax error: {getattr(exc, 'problem', exc)}", where=at, fix="fix the YAML at that line (indentation, quoting, a missing ':')") from None
    except UnicodeDecodeError:
        raise UserInputError("config is not UTF-8 text", where=str(p), fix="save the file as UTF-8") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserInputError(f"top level must be a mapping, got {type(data).__name__}", where=str(p), fix="start the file with keys like `name:`, `model:`, `sft:`")
    return data


def validate_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        cfg = RunConfig(**data)
    except ValidationError as exc:
        raise _explain_validation(exc, source) from None
    from sparring.envs.base import parse_env_options  # the env registry validates env.options

    parse_env_options(cfg.env.name, cfg.env.options, where=f"{source}: env.options")
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides or [])
    return validate_config(data, str(path) if path is not None else "<defaults>")


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def explain_config(cfg: RunConfig) -> str:
    """Every field, its current value and its description, one per line, nested by section."""
    lines: list[str] = []

    def walk(model: BaseModel, prefix: str, depth: int) -> None:
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            pad = "  " * depth
            if isinstance(value, BaseModel):
                lines.append(f"{pad}{name}:  # {field.description}")
                walk(value, f"{prefix}{name}.", depth + 1)
            else:
                lines.append(f"{pad}{name}: {value!r}  # {field.description}")

    walk(cfg, "", 0)
    from sparring.envs.base import env_class

    opts_cls = env_class(cfg.env.name).Options
    lines.append(f"# env.options for {cfg.env.name!r}:")
    opts = opts_cls(**cfg.env.options)
    for name, field in opts_cls.model_fields.items():
        lines.append(f"#   {name}: {getattr(opts, name)!r}  # {field.description}")
    return "\n".join(lines)
