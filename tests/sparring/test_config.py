"""Config loading, overrides, explanations and every bad input; every shipped config validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.config import RunConfig
from sparring.config_io import apply_overrides, dump_config, explain_config, load_config, validate_config
from sparring.errors import UserInputError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_configs_folder_is_not_empty():
    assert len(CONFIGS) >= 2, "configs/ must ship run configs"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_validates(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    # the resolved dump reloads to the same config
    assert validate_config(__import__("yaml").safe_load(dump_config(cfg))) == cfg


def test_every_field_has_a_description():
    from pydantic import BaseModel

    def walk(model: type[BaseModel], prefix: str):
        for name, field in model.model_fields.items():
            assert field.description, f"{prefix}{name} has no description"
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{prefix}{name}.")

    walk(RunConfig, "")


def test_overrides_are_type_checked(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("name: t\nsft:\n  epochs: 2\n")
    cfg = load_config(p, ["sft.epochs=1", "rl.rollout.engine=hf", "export.gguf_quants=[f16,q8_0]"])
    assert cfg.sft.epochs == 1 and cfg.rl.rollout.engine == "hf"
    assert cfg.export.gguf_quants == ["f16", "q8_0"]
    with pytest.raises(UserInputError, match=r"sft\.epochs"):
        load_config(p, ["sft.epochs=lots"])
    with pytest.raises(UserInputError, match="no '='"):
        load_config(p, ["sft.epochs"])


def test_unknown_key_names_it_and_suggests(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("sft:\n  epocs: 2\n")
    with pytest.raises(UserInputError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert "epocs" in msg and "'epochs'" in msg and str(p) in msg


def test_unknown_top_level_key_and_override_key(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("modle:\n  name: x\n")
    with pytest.raises(UserInputError, match="did you mean 'model'"):
        load_config(p)
    p.write_text("name: ok\n")
    with pytest.raises(UserInputError, match="learning_rate"):
        load_config(p, ["sft.learnig_rate=1e-4"])


def test_missing_file_and_yaml_syntax(tmp_path: Path):
    with pytest.raises(UserInputError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: a\nsft:\n  epochs: [1\n")
    with pytest.raises(UserInputError, match=r"bad\.yaml:\d+"):
        load_config(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(UserInputError, match="mapping"):
        load_config(lst)


def test_batch_must_be_multiple_of_group(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("rl:\n  batch_size: 6\n  num_generations: 4\n")
    with pytest.raises(UserInputError, match="multiple of num_generations"):
        load_config(p)


def test_env_options_are_validated_by_the_env(tmp_path: Path):
    p = tmp_path / "c.yaml"
    p.write_text("env:\n  name: jokes\n  options:\n    no_such_option: 1\n")
    with pytest.raises(UserInputError, match="no_such_option"):
        load_config(p)
    p.write_text("env:\n  name: jokez\n")
    with pytest.raises(UserInputError, match="did you mean 'jokes'"):
        load_config(p)


def test_explain_lists_descriptions():
    text = explain_config(RunConfig())
    assert "learning_rate" in text and "Peak learning rate" in text
    assert "env.options for 'jokes'" in text


def test_apply_overrides_creates_sections():
    data = apply_overrides({}, ["rl.rollout.num_workers=3"])
    assert data == {"rl": {"rollout": {"num_workers": 3}}}
