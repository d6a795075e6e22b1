"""The learner's policy model: a bf16 frozen base under a float32 LoRA adapter (``rl.learner_bf16``),
and outputs rebuilt on the ``model.dtype`` base."""

from __future__ import annotations

import pytest


def _cfg(tiny_base, **rl):
    from sparring.config import RunConfig

    return RunConfig.model_validate({"name": "t", "model": {"name": str(tiny_base)}, "env": {"name": "jokes"},
                                     "rl": {"allow_base_init": True, "lora": {"r": 4, "alpha": 8, "dropout": 0.1}, **rl}})


def test_bf16_learner_keeps_the_adapter_float32_and_the_outputs_in_model_dtype(tiny_base):
    import torch

    from sparring.rl.learner import load_policy_model
    from sparring.sft.lora import adapter_in_dtype
    from sparring.rl.prefix_share import shared_prefix_logps

    model32, _, base_dir = load_policy_model(_cfg(tiny_base, learner_bf16=False), None, seed=3)
    model16, _, _ = load_policy_model(_cfg(tiny_base, learner_bf16=True), None, seed=3)
    with torch.no_grad():  # the same non-zero adapter on both (a fresh LoRA on a bf16 base starts bf16-rounded)
        for (name, p16), (_, p32) in zip(model16.named_parameters(), model32.named_parameters()):
            if "lora_B" in name:
                p32.copy_(torch.randn(p32.shape, generator=torch.Generator().manual_seed(len(name))) * 0.1)
            if p32.requires_grad:
                p16.copy_(p32)
    frozen = {p.dtype for p in model16.parameters() if not p.requires_grad}
    trainable = {p.dtype for p in model16.parameters() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trainable == {torch.float32}

    ids = torch.randint(5, 1000, (4, 14), generator=torch.Generator().manual_seed(0))
    ids[:2, :8] = ids[0, :8]  # two prompts of two rows each
    ids[2:, :8] = ids[2, :8]
    mask = torch.ones_like(ids)
    model32.eval(), model16.eval()
    lp32, _ = shared_prefix_logps(model32, ids, mask, 6)
    lp16, _ = shared_prefix_logps(model16, ids, mask, 6)
    assert lp16.dtype == torch.float32 and float((lp16 - lp32).abs().max()) < 0.05  # bf16 rounding, not another policy
    lp16.sum().backward()  # no dtype error; gradients land on the float32 adapter
    grads = [p.grad for p in model16.parameters() if p.requires_grad]
    assert all(g is not None and g.dtype == torch.float32 for g in grads) and any(float(g.abs().max()) > 0 for g in grads)

    assert adapter_in_dtype(model32, "float32", base_dir) is model32
    rebuilt = adapter_in_dtype(model16, "float32", base_dir)
    model32.eval()  # LoRA dropout off: the rebuilt policy must be in eval mode too
    assert {p.dtype for p in rebuilt.parameters()} == {torch.float32}
    with torch.no_grad():
        assert torch.allclose(rebuilt(input_ids=ids).logits, model32(input_ids=ids).logits, atol=1e-5)  # the learner's adapter on the f32 base
    assert rebuilt.peft_config["default"].r == 4


@pytest.mark.parametrize("setting", [True, False, None])
def test_learner_bf16_setting_resolves(tiny_base, setting, monkeypatch):
    from sparring.rl import learner
    from sparring.sft import base_model

    monkeypatch.setattr(base_model, "cpu_has_bf16", lambda: True)
    assert learner.learner_uses_bf16(_cfg(tiny_base, learner_bf16=setting)) is (setting is not False)
    monkeypatch.setattr(base_model, "cpu_has_bf16", lambda: False)
    assert learner.learner_uses_bf16(_cfg(tiny_base, learner_bf16=setting)) is bool(setting)
