"""Iterative DPO through real Ray rollout actors: sample k per prompt on the actors, pair best/worst
by the actors' rewards, train a round with TRL's DPOTrainer, sync, repeat; checkpoint per round."""

from __future__ import annotations

from pathlib import Path


import pytest

from sparring.types import Prompt, Sample

pytestmark = pytest.mark.slow

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run_stage(config: str, overrides: list[str], init: str | None = None):
    from sparring.config_io import load_config
    from sparring.rl.stage import run_rl_in_new_run

    return run_rl_in_new_run(load_config(CONFIGS / config, overrides), init=init, argv=["test"])



def _sample(prompt_id: str, k: int, reward: float, text: str) -> Sample:
    return Sample(f"1-{prompt_id}-{k}", prompt_id, [1], text, [2], [-0.1], reward, {"length": reward}, reward > 0, 0, "w")


def test_preference_pairs_take_best_and_worst_above_the_margin():
    from sparring.rl.dpo import preference_pairs

    prompts = [Prompt(p, ({"role": "user", "content": p},)) for p in ("a", "b", "c")]
    samples = [
        _sample("a", 0, 0.2, "a-mid"), _sample("a", 1, 0.9, "a-best"), _sample("a", 2, 0.1, "a-worst"),
        _sample("b", 0, 0.50, "b1"), _sample("b", 1, 0.55, "b2"), _sample("b", 2, 0.52, "b3"),  # gap below margin
        _sample("c", 0, 1.0, "same"), _sample("c", 1, 0.0, "same"), _sample("c", 2, 0.0, "same"),  # identical texts
    ]
    pairs = preference_pairs(prompts, samples, 3, margin=0.1)
    assert [p["prompt_id"] for p in pairs] == ["a"]
    assert pairs[0]["chosen"] == [{"role": "assistant", "content": "a-best"}]
    assert pairs[0]["rejected"] == [{"role": "assistant", "content": "a-worst"}]
    assert pairs[0]["margin"] == pytest.approx(0.8)
    assert pairs[0]["prompt"] == [{"role": "user", "content": "a"}]


def test_round_prompts_rotate_through_the_training_set():
    from sparring.rl.dpo import round_prompts

    prompts = [Prompt(str(i), ({"role": "user", "content": str(i)},)) for i in range(5)]
    assert [p.id for p in round_prompts(prompts, 0, 3)] == ["0", "1", "2"]
    assert [p.id for p in round_prompts(prompts, 1, 3)] == ["3", "4", "0"]


def test_dpo_two_rounds_through_ray_actors(ray_cluster, tmp_path):
    from safetensors.torch import load_file

    from sparring.rl.checkpoint import latest_checkpoint

    run, result, rows = run_stage("tiny-jokes.yaml", [
        f"output_dir={tmp_path}", "rl.algo=dpo", "rl.rounds=2", "rl.dpo_prompts=6", "rl.num_generations=4", "rl.batch_size=8",
        "rl.reward=length", "rl.dpo_margin=0.5", "rl.rollout.max_new_tokens=4", "rl.learning_rate=0.01",
    ])
    assert result["algo"] == "dpo" and result["rounds"] == 2
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["rl/dpo_pairs"] >= 1 for r in rows), rows
    for r in rows:
        for key in ("rl/reward", "rl/reward/length", "rl/pass_rate", "rl/loss", "rl/dpo_margin", "rl/dpo_accuracy",
                    "time/generate_s", "time/reward_s", "time/learn_s", "time/sync_s"):
            assert key in r, key
    # round r samples the policy synced after round r-1 (version r-1), verified on every worker
    assert [r["rl/policy_version"] for r in rows] == [0.0, 1.0]
    assert all(r["time/sync_s"] > 0 for r in rows)
    ckpt, state = latest_checkpoint(run.path)
    assert state.algo == "dpo" and state.round == 2 and state.policy_version == 2
    final = load_file(run.path / "rl" / "final" / "adapter_model.safetensors")
    assert not any("ref" in k for k in final), "TRL's frozen reference copy must not leak into the output adapter"
    assert any(float(t.abs().max()) > 0 for k, t in final.items() if "lora_B" in k)  # it trained

    # --resume with one more round: continues at round 3 from the round-2 adapter, logs only round 3
    from sparring.rl.stage import run_rl
    from sparring.tracking import Tracker, read_metrics

    more = run.config().model_copy(update={"rl": run.config().rl.model_copy(update={"rounds": 3})})
    tracker = Tracker(run, more, job="rl")
    try:
        resumed = run_rl(more, run, tracker, resume=str(run.path))
    finally:
        tracker.finish()
    assert resumed["rounds"] == 3
    rows = [r for r in read_metrics(run.metrics_path) if "rl/dpo_pairs" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[-1]["rl/policy_version"] == 2.0  # round 3 sampled the restored round-2 policy
    assert latest_checkpoint(run.path)[1].round == 3
