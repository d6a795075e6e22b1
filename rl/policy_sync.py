"""Weight sync from the learner to the rollout engines: what an update is, and how it is verified.

The learner builds one ``PolicyUpdate`` per policy version and the pool pushes it to every worker
through the object store (``RolloutPool.sync``)::

    update = make_policy_update(peft_model, tokenizer, version=3, engine="llamacpp", work_dir=tmp)
    ids, start = probe_token_ids(tokenizer)
    reports = pool.sync(3, update, learner_probe(peft_model, tokenizer, ids, start))

Kinds of update:

- ``lora`` (hf, vllm engines): ``payload = {"tensors": {name: float32 array}, "lora_config": LoraConfig}``
  — the PEFT adapter state (``get_peft_model_state_dict``), loaded with ``set_peft_model_state_dict``.
- ``gguf`` (llamacpp engine): ``payload = {"gguf": bytes, "role": "adapter" | "model"}`` — a LoRA
  adapter GGUF hot-swapped onto the loaded base GGUF, or (when the adapter cannot be written) a whole
  merged GGUF the worker writes atomically and reloads.
- ``full`` (hf): ``payload = {"tensors": full state dict}`` for a policy trained without LoRA.

``checksum`` is what the worker must report back after loading: :func:`tensors_checksum` of the
tensors (recomputed by the worker from the weights inside its model) or the sha256 of the GGUF
bytes (recomputed from the file the worker loaded).  Version and checksum prove the update arrived;
the logprob probe (``learner_probe`` vs the worker's ``Engine.probe`` on :func:`probe_token_ids`)
proves the engine computes with it.  When the policy is a LoRA adapter both sides also score the
probe with the adapter switched off: that measures the rollout engine's own numerics (a q8_0 GGUF
drifts ~0.065 nat/token from fp32 on SmolLM2-135M), which the check allows on top of the tolerance,
and compares what the adapter adds on each side — an adapter that never reached the engine shows
up as a missing delta (``compare_probes``, ``ProbeCheck``).

Exercised by ``pytest tests/rl/test_weight_sync.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sparring.errors import SparringError, UserInputError

UPDATE_KINDS = ("lora", "gguf", "full")
PROBE_MESSAGES = (
    {"role": "system", "content": "You are a witty assistant who answers with one short joke."},
    {"role": "user", "content": "Tell me a short joke about chess, then the best reply to 1. e4."},
)
PROBE_ANSWER = "Q: Why did the pawn go to school?\nA: To get promoted! The best reply to 1. e4 is c5, the Sicilian."
# LoraConfig fields that change nothing about the weights' meaning (ignored when comparing configs)
_LORA_CONFIG_NOISE = ("base_model_name_or_path", "revision", "inference_mode", "task_type", "peft_version")


class StalePolicyError(SparringError):
    """A rollout worker does not hold (or compute with) the learner's current policy."""

    def __init__(self, message: str, *, worker_id: str | None = None, version: int | None = None, gap: float | None = None):
        self.worker_id, self.version, self.gap = worker_id, version, gap
        super().__init__(message)


@dataclass
class PolicyUpdate:
    """One policy version on its way to the rollout engines."""

    version: int
    kind: str
    payload: dict[str, Any]
    checksum: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in UPDATE_KINDS:
            raise ValueError(f"PolicyUpdate.kind must be one of {UPDATE_KINDS}, got {self.kind!r}")

    @property
    def nbytes(self) -> int:
        if self.kind == "gguf":
            return len(self.payload["gguf"])
        return int(sum(a.nbytes for a in self.payload["tensors"].values()))


def tensors_checksum(tensors: Mapping[str, Any]) -> str:
    """sha256 over (name, shape, float32 bytes) of every tensor, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = to_numpy(tensors[name])
        digest.update(name.encode())
        digest.update(repr(tuple(array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def bytes_checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_numpy(tensor: Any) -> np.ndarray:
    """A contiguous float32 numpy copy of a torch tensor or array."""
    if hasattr(tensor, "detach"):
        import torch

        tensor = tensor.detach().to(device="cpu", dtype=torch.float32).numpy()
    return np.ascontiguousarray(tensor, dtype=np.float32)


def lora_config_key(config: Any) -> dict[str, Any]:
    """The parts of a LoraConfig that decide the adapter's shape and scaling."""
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    out = {}
    for k, v in d.items():
        if k in _LORA_CONFIG_NOISE:
            continue
        out[k] = sorted(v) if isinstance(v, (set, frozenset)) else (v.value if hasattr(v, "value") else v)
    return out


def is_peft_model(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def lora_update(peft_model: Any, version: int) -> PolicyUpdate:
    """The adapter state of ``peft_model`` as a ``lora`` update."""
    from peft import get_peft_model_state_dict

    adapter = peft_model.active_adapter
    tensors = {k: to_numpy(v) for k, v in get_peft_model_state_dict(peft_model, adapter_name=adapter).items()}
    config = peft_model.peft_config[adapter]
    return PolicyUpdate(version, "lora", {"tensors": tensors, "lora_config": config}, tensors_checksum(tensors), {"adapter": adapter})


def full_update(model: Any, version: int) -> PolicyUpdate:
    tensors = {k: to_numpy(v) for k, v in model.state_dict().items()}
    return PolicyUpdate(version, "full", {"tensors": tensors}, tensors_checksum(tensors))


def gguf_update(path: str | os.PathLike[str], version: int, role: str) -> PolicyUpdate:
    data = Path(path).read_bytes()
    return PolicyUpdate(version, "gguf", {"gguf": data, "role": role}, bytes_checksum(data), {"file": Path(path).name})


def merged_model_dir(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    """Save the policy with its LoRA merged (the PEFT model itself is left untouched)."""
    import copy

    merged = copy.deepcopy(model).merge_and_unload() if is_peft_model(model) else model
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def make_policy_update(peft_model: Any, tokenizer: Any, version: int, engine: str, work_dir: str | os.PathLike[str], *, quant: str = "q8_0") -> PolicyUpdate:
    """Build the update the rollout ``engine`` loads for the learner's current policy.

    hf/vllm: the LoRA state (or the full state dict without LoRA).  llamacpp: a LoRA adapter GGUF
    when the base has one loaded (hot swap), else a merged GGUF of type ``quant``.
    """
    started = time.perf_counter()
    if engine in ("hf", "vllm"):
        update = lora_update(peft_model, version) if is_peft_model(peft_model) else full_update(peft_model, version)
    elif engine == "llamacpp":
        work = Path(work_dir)
        work.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"policy-v{version}-", dir=work))
        try:
            if is_peft_model(peft_model):
                from sparring.rl.engines.gguf_policy import write_adapter_gguf

                out = write_adapter_gguf(peft_model, scratch / "adapter.gguf")
                update = gguf_update(out, version, "adapter")
            else:
                from sparring.rl.engines.gguf_policy import write_model_gguf

                model_dir = merged_model_dir(peft_model, tokenizer, scratch / "merged")
                update = gguf_update(write_model_gguf(model_dir, scratch / f"policy.{quant}.gguf", quant), version, "model")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    else:
        raise UserInputError(f"unknown rollout engine {engine!r}", where="rl.rollout.engine", fix="use hf, llamacpp or vllm")
    update.meta["build_seconds"] = round(time.perf_counter() - started, 3)
    update.meta["nbytes"] = update.nbytes
    return update


# ---------------------------------------------------------------------------------------------
# the logprob probe


def probe_token_ids(tokenizer: Any) -> tuple[list[int], int]:
    """A fixed chat (prompt + answer) as token ids, and where the answer starts."""
    messages = list(PROBE_MESSAGES)
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": PROBE_ANSWER}], tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if ids[: len(prompt_ids)] != prompt_ids:  # a template that rewrites earlier turns: fall back to concatenation
        ids = prompt_ids + tokenizer(PROBE_ANSWER, add_special_tokens=False)["input_ids"]
    return list(ids), len(prompt_ids)


def teacher_forced_logprobs(model: Any, token_ids: Sequence[int], start: int) -> list[float]:
    """``log p(token_ids[i] | token_ids[:i])`` for ``i >= start`` under a transformers model (eval
    mode; the vocabulary projection only where a token is scored)."""
    import torch

    if not 1 <= start < len(token_ids):
        raise ValueError(f"probe start {start} must be in [1, {len(token_ids)})")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            ids = torch.tensor([list(token_ids)], device=device)
            logits = model(input_ids=ids, logits_to_keep=len(token_ids) - start + 1).logits[0, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, start:, None])[:, 0]
    finally:
        model.train(was_training)
    return [float(x) for x in logp.cpu()]


@dataclass
class Probe:
    """Logprobs on the probe tokens: of the policy, and of the base alone (LoRA switched off) when
    the model has a separable adapter.  The base lets the check cancel the engine's own numerics."""

    policy: list[float]
    base: list[float] | None = None


BASE_NOISE_FACTOR = 10.0  # a worker whose base drifts more than 10 x tolerance runs another base model
NOISE_PROBES = 2.0  # the adapter's effect is measured from two probes, each carrying the engine's noise


@dataclass
class ProbeCheck:
    """A worker's probe against the learner's.

    ``gap``: mean |worker - learner| of the policy logprobs.  ``base_noise``: the same for the bases
    (the rollout engine's own numerics: a q8_0 GGUF drifts ~0.065 nat/token from fp32 on
    SmolLM2-135M, f16 ~0.002).  ``delta_gap``: mean |(worker policy - worker base) - (learner policy -
    learner base)|, the difference in what the adapter adds on each side.

    With both bases known the check is ``delta_gap <= tolerance + 2 x base_noise`` (the delta is a
    difference of two probes, each allowed the engine's measured numerics, not more: a chess SFT
    adapter on a q8_0 base measured delta 0.116 with base noise 0.065) and ``base_noise <= 10 x tolerance`` (beyond
    that the worker runs another base model); otherwise ``gap <= tolerance``.
    """

    gap: float
    delta_gap: float | None = None
    base_noise: float | None = None

    @property
    def decisive(self) -> float:
        return self.delta_gap if self.delta_gap is not None else self.gap

    def limit(self, tolerance: float) -> float:
        # the delta is a difference of two probes (policy, base), each off by the engine's numerics,
        # and the two errors need not cancel: up to twice the measured noise is the engine's own
        return tolerance + NOISE_PROBES * (self.base_noise or 0.0)

    def problem(self, tolerance: float) -> str | None:
        """Why the worker fails the probe, or None."""
        if self.base_noise is not None and self.base_noise > BASE_NOISE_FACTOR * tolerance:
            return f"its base model disagrees with the learner's by {self.base_noise:.4f} nat/token (> {BASE_NOISE_FACTOR:g} x tolerance {tolerance})"
        if self.decisive > self.limit(tolerance):
            what = "of the adapter's effect" if self.delta_gap is not None else "of the policy"
            noise = f" = tolerance {tolerance} + {NOISE_PROBES:g} x engine numerics {self.base_noise:.4f}" if self.base_noise is not None else ""
            return f"probe logprob gap {what} {self.decisive:.4f} > {self.limit(tolerance):.4f}{noise} (absolute gap {self.gap:.4f})"
        return None

    def passes(self, tolerance: float) -> bool:
        return self.problem(tolerance) is None


def as_probe(probe: Probe | Sequence[float]) -> Probe:
    return probe if isinstance(probe, Probe) else Probe([float(x) for x in probe])


def compare_probes(worker: Probe | Sequence[float], learner: Probe | Sequence[float]) -> ProbeCheck:
    w, l = as_probe(worker), as_probe(learner)
    check = ProbeCheck(gap=probe_gap(w.policy, l.policy))
    if w.base is not None and l.base is not None:
        check.base_noise = probe_gap(w.base, l.base)
        w_delta = np.asarray(w.policy) - np.asarray(w.base)
        l_delta = np.asarray(l.policy) - np.asarray(l.base)
        check.delta_gap = probe_gap(w_delta.tolist(), l_delta.tolist())
    return check


def learner_probe(model: Any, tokenizer: Any, probe_ids: Sequence[int], start: int, *, base_cache: dict | None = None) -> Probe:
    """The learner's probe (policy, and base with the adapters off), the reference every worker
    must match after a sync.  LoRA never changes the base weights, so a run passes ``base_cache``
    (a dict it keeps) and the base half is computed once, not at every sync."""
    del tokenizer  # the ids are already tokenized; kept in the signature for symmetry
    policy = teacher_forced_logprobs(model, probe_ids, start)
    base = None
    if is_peft_model(model):
        key = (tuple(probe_ids), start)
        base = base_cache.get(key) if base_cache is not None else None
        if base is None:
            with model.disable_adapter():
                base = teacher_forced_logprobs(model, probe_ids, start)
            if base_cache is not None:
                base_cache[key] = base
    return Probe(policy, base)


def probe_gap(worker: Sequence[float], learner: Sequence[float]) -> float:
    """Mean absolute logprob difference over the probe tokens."""
    if len(worker) != len(learner):
        raise ValueError(f"probe lengths differ: worker {len(worker)} vs learner {len(learner)}")
    return float(np.mean(np.abs(np.asarray(worker, dtype=np.float64) - np.asarray(learner, dtype=np.float64))))
