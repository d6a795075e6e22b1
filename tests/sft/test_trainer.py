"""The SFT stage for real: TRL SFTTrainer + PEFT on tiny random Llama and GPT-2 models, a few steps
each; the assistant-only label mask; resume from a mid-run checkpoint; refused configurations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.config_io import load_config
from sparring.errors import UserInputError
from sparring.rundir import RunDir
from sparring.tracking import Tracker, read_metrics

SYSTEM = "You tell dad jokes."


def write_data(path: Path, n: int = 24) -> Path:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Tell me a dad joke about thing {i}."},
                {"role": "assistant", "content": f"Q: Why did thing {i} nap?\nA: It was {i} tired."},
            ]}) + "\n")
    return path


def make_run(tmp_path: Path, arch: str = "llama", *extra: str):
    data = write_data(tmp_path / "data.jsonl")
    cfg = load_config(None, [
        f"model.name=tiny-random-{arch}", f"data.source={data}", f"output_dir={tmp_path / 'runs'}",
        "model.max_seq_len=96", "sft.batch_size=4", "sft.max_steps=2", "data.val_fraction=0.2",
        "sft.lora.r=4", "sft.lora.alpha=8", "tracking.log_every=1", *extra,
    ])
    run = RunDir.create(cfg, ["test"])
    return cfg, run


def test_prompt_tokens_get_label_minus_100(tmp_path: Path):
    from sparring.sft.trainer import build_trainer

    cfg, run = make_run(tmp_path)
    with Tracker(run, cfg) as tracker:
        setup = build_trainer(cfg, run, tracker)
    tok = setup.tokenizer
    row = setup.trainer.train_dataset[0]
    ids, labels = row["input_ids"], row["labels"]
    assert len(ids) == len(labels)
    trained = [i for i, lab in enumerate(labels) if lab != -100]
    assert trained and trained == list(range(trained[0], len(ids)))  # one contiguous tail
    prompt_text = tok.decode(ids[: trained[0]])
    answer_text = tok.decode([ids[i] for i in trained])
    assert prompt_text.endswith("<|im_start|>assistant\n") and SYSTEM in prompt_text and "Tell me a dad joke" in prompt_text
    assert answer_text.startswith("Q: Why did thing") and "<|im_end|>" in answer_text  # it learns to stop
    assert all(labels[i] == ids[i] for i in trained)
    # split files written for the run, so a resume trains on the same rows
    data_dir = run.path / "sft" / "data"
    assert sum(1 for _ in open(data_dir / "train.jsonl")) + sum(1 for _ in open(data_dir / "val.jsonl")) == 24


@pytest.mark.slow
@pytest.mark.parametrize("arch, packing, bf16", [("llama", True, True), ("gpt2", False, False)])
def test_sft_run_writes_a_verified_adapter_and_merged_model(tmp_path: Path, arch: str, packing: bool, bf16: bool):
    from safetensors import safe_open

    from sparring.generation import load_generator
    from sparring.models import resolve_model
    from sparring.sft.trainer import run_sft
    from sparring.types import Prompt

    cfg, run = make_run(tmp_path, arch, "sft.eval_every=1", "sft.save_every=1", f"sft.packing={str(packing).lower()}", f"sft.bf16={str(bf16).lower()}")
    with Tracker(run, cfg) as tracker:
        result = run_sft(cfg, run, tracker)
    assert result["steps"] == 2 and result["train_rows"] == 19 and result["val_rows"] == 5
    assert result["eval_loss"] is not None and result["tokens_per_s"] > 0
    adapter, merged = Path(result["adapter"]), Path(result["merged"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == f"tiny-random-{arch}"
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "chat_template.jinja"):
        assert (merged / name).is_file(), name
    assert not list((run.path / "sft").glob(".*tmp*"))  # nothing half-written left behind
    arts = {a["format"]: a for a in run.manifest.artifacts}
    assert arts["hf-lora-adapter"]["verified"] and arts["hf-merged"]["verified"]
    assert arts["hf-merged"]["verify"]["max_abs_logit_diff"] <= 1e-3  # a bf16 training base: the outputs were rebuilt on float32
    with safe_open(str(merged / "model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}
    assert resolve_model(adapter).kind == "adapter"
    names = {k for row in read_metrics(run.metrics_path) for k in row}
    assert {"sft/loss", "sft/eval_loss", "sft/lr", "sft/tokens_per_s"} <= names
    gen = load_generator(merged, batch_size=1)
    out = gen.generate([Prompt("p", ({"role": "user", "content": "Tell me a dad joke about soup."},))], max_new_tokens=5, temperature=0)
    assert out[0].completion_tokens > 0


class StopAfter(Tracker):
    """A tracker that interrupts training once it sees step ``n`` (a crash after a checkpoint)."""

    def __init__(self, run, cfg, n):
        super().__init__(run, cfg)
        self.n = n

    def log(self, metrics, step):
        super().log(metrics, step)
        if step >= self.n and "sft/loss" in metrics:
            raise KeyboardInterrupt


@pytest.mark.slow
@pytest.mark.parametrize("bf16", [True, False])
def test_bf16_on_cpu_holds_the_frozen_base_in_bf16_under_a_float32_adapter(tmp_path: Path, bf16: bool):
    import torch

    from sparring.sft.trainer import build_trainer

    cfg, run = make_run(tmp_path, "llama", f"sft.bf16={str(bf16).lower()}")
    with Tracker(run, cfg) as tracker:
        trainer = build_trainer(cfg, run, tracker).trainer
    frozen = {p.dtype for p in trainer.model.parameters() if not p.requires_grad}
    trained = {p.dtype for p in trainer.model.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16 if bf16 else torch.float32} and trained == {torch.float32}
    assert trainer.args.bf16 is False  # no autocast on CPU: nothing is float32 that bf16 matmuls would need cast
    trainer.current_gradient_accumulation_steps = 1  # what train() sets before its first step
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    loss = trainer.training_step(trainer.model, batch)
    assert torch.isfinite(loss) and all(p.grad is not None and p.grad.dtype == torch.float32 for p in trainer.model.parameters() if p.requires_grad)


def test_resume_continues_from_the_mid_run_checkpoint(tmp_path: Path):
    from sparring.sft.trainer import run_sft

    cfg, run = make_run(tmp_path, "llama", "sft.max_steps=4", "sft.eval_every=2", "sft.save_every=2")
    tracker = StopAfter(run, cfg, 3)
    with pytest.raises(KeyboardInterrupt):
        run_sft(cfg, run, tracker)
    tracker.finish()
    ckpts = sorted(p.name for p in (run.path / "sft" / "checkpoints").glob("checkpoint-*"))
    assert ckpts == ["checkpoint-2"] and not (run.path / "sft" / "adapter").exists()
    with Tracker(run, cfg) as tracker:
        result = run_sft(cfg, run, tracker, resume=True)
    assert result["resumed_from"].endswith("checkpoint-2") and result["steps"] == 4
    steps_after = [r["step"] for r in read_metrics(run.metrics_path) if "sft/loss" in r]
    assert steps_after[-2:] == [3, 4]
    state = json.loads((Path(result["best_checkpoint"]) / "trainer_state.json").read_text())
    assert state["global_step"] in (2, 4)


def test_resume_without_a_checkpoint_is_an_error(tmp_path: Path):
    from sparring.sft.trainer import find_checkpoint

    _, run = make_run(tmp_path)
    with pytest.raises(UserInputError) as err:
        find_checkpoint(run, True)
    assert err.value.where == "--resume" and "no checkpoint" in str(err.value)
    assert find_checkpoint(run, "auto") is None and find_checkpoint(run, False) is None


def test_qlora_on_cpu_is_refused_with_the_lora_fix(tmp_path: Path):
    import torch

    from sparring.sft.base_model import check_qlora

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg, _ = make_run(tmp_path, "llama", "sft.qlora=true")
    with pytest.raises(UserInputError) as err:
        check_qlora(cfg)
    assert err.value.exit_code == 2 and "sft.qlora: false" in str(err.value)


def test_checkpoint_schedule_must_follow_evaluation(tmp_path: Path):
    from sparring.sft.trainer import schedule_args

    cfg, _ = make_run(tmp_path, "llama", "sft.eval_every=3", "sft.save_every=4")
    with pytest.raises(UserInputError) as err:
        schedule_args(cfg, has_val=True)
    assert "sft.save_every=3" in str(err.value)
    cfg, _ = make_run(tmp_path, "llama", "sft.early_stopping_patience=2")
    with pytest.raises(UserInputError):
        schedule_args(cfg, has_val=False)
    args = schedule_args(cfg.model_copy(update={}), has_val=True)
    assert args["load_best_model_at_end"] and args["metric_for_best_model"] == "eval_loss"


def test_a_fixed_few_shot_exchange_is_trained_once():
    from sparring.sft.formats import ChatExample
    from sparring.sft.trainer import to_trl_dataset

    shot = ({"role": "user", "content": "Tell me a dad joke about cookies."}, {"role": "assistant", "content": "Q: Why?\nA: Crumbs."})
    examples = [ChatExample(messages=(*shot, {"role": "user", "content": f"About {t}?"}, {"role": "assistant", "content": f"Q: {t}?\nA: {t}!"})) for t in ("tea", "jam", "soup")]
    rows = to_trl_dataset(examples).to_list()
    completions = [r["completion"][0]["content"] for r in rows]
    assert completions.count("Q: Why?\nA: Crumbs.") == 1 and len(rows) == 4
    assert rows[1]["prompt"][:2] == list(shot)
