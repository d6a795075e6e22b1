"""The README.md model card of an export: Hugging Face front matter, training summary, eval table,
artifact sizes, size estimates and usage for transformers, llama.cpp, Ollama and WebLLM.

    sparring export runs/<run> --format hf --model-card
    write_model_card("runs/<run>/exports/step-N/hf", "README.md", run_dir="runs/<run>", artifacts=arts)

Everything it reads is optional and read defensively: the run's ``config.yaml`` (what was trained
and how), ``eval/summary.json`` or ``eval/<env>.json`` (the harness's ``{env, label, metrics}`` or
``{models: {label: ...}}`` shapes; before/after columns), the artifacts' verify records.
``size_estimate(config, quant)`` computes a format's size from a config alone (parameters x bits),
so the card can quote TinyLlama-class sizes without the files.
Exercised by ``pytest tests/exporters/test_model_card.py``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from sparring.exporters.mlc_weights import MLC_QUANTS, bundle_bytes, fused_shapes, model_shape

KNOWN_BASES = {  # alias / name fragment -> (Hub id, license)
    "smollm2-135m": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "smollm2-360m": ("HuggingFaceTB/SmolLM2-360M-Instruct", "apache-2.0"),
    "tinyllama": ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "apache-2.0"),
    "llama-3.2-1b": ("meta-llama/Llama-3.2-1B-Instruct", "llama3.2"),
    "qwen2.5-0.5b": ("Qwen/Qwen2.5-0.5B-Instruct", "apache-2.0"),
}
# bits per 2-D weight; 1-D tensors stay F32 in GGUF (llama.cpp's K-quants mix types: approximate)
GGUF_BITS = {"f32": 32, "f16": 16, "bf16": 16, "q8_0": 8.5, "q4_0": 4.5, "q4_1": 5.0, "q5_0": 5.5, "q5_1": 6.0, "q4_k_m": 4.9, "q5_k_m": 5.7, "q6_k": 6.6}
HF_BYTES = {"hf-f32": 4, "hf-f16": 2, "hf-bf16": 2}
CARD_QUANTS = ("hf-f32", "hf-f16", "q8_0", "q4_k_m", "q0f16", "q4f16_1")


# ---------------------------------------------------------------------------------------------
# sizes


def size_estimate(config: dict[str, Any], quant: str) -> int:
    """Bytes of ``quant`` for a Llama-family/Qwen2 ``config``: hf-f32/hf-f16/hf-bf16 safetensors,
    a GGUF type (``GGUF_BITS``; norms F32) or an MLC quantization (exact tensor-cache size)."""
    shape = model_shape(config)
    shapes = fused_shapes(shape)
    matrix = sum(s[0] * s[1] for s in shapes.values() if len(s) == 2)
    vector = sum(s[0] for s in shapes.values() if len(s) == 1)
    if quant in MLC_QUANTS:
        return bundle_bytes(shape, MLC_QUANTS[quant])
    if quant in HF_BYTES:
        return (matrix + vector) * HF_BYTES[quant]
    if quant in GGUF_BITS:
        return int(matrix * GGUF_BITS[quant] / 8 + vector * 4)
    raise ValueError(f"unknown quant {quant!r}; known: {', '.join([*HF_BYTES, *GGUF_BITS, *MLC_QUANTS])}")


def parameter_count(config: dict[str, Any]) -> int:
    return sum(math.prod(s) for s in fused_shapes(model_shape(config)).values())


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# ---------------------------------------------------------------------------------------------
# reading the run (all optional)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        import yaml

        data = yaml.safe_load(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError, ImportError):
        return {}
    except Exception:  # yaml.YAMLError
        return {}


def resolve_base(model_dir: Path, run_config: dict[str, Any], base_model: str | None) -> tuple[str | None, str]:
    """(Hub id of the base, license) from the explicit name, the run config or the model dir."""
    candidates = [base_model, (run_config.get("model") or {}).get("name")]
    source = _read_json(model_dir / "sparring-source.json") or {}
    if "smollm2" in str(source.get("converted_from", "")).lower():
        candidates.append("smollm2-135m")
    config = _read_json(model_dir / "config.json") or {}
    candidates += [config.get("_name_or_path"), config.get("_model_name_or_path")]
    for cand in filter(None, candidates):
        key = str(cand).lower()
        for fragment, (hub_id, license_id) in KNOWN_BASES.items():
            if fragment in key.replace("_", "-"):
                return hub_id, license_id
    first = next((str(c) for c in filter(None, candidates) if "/" in str(c) and not Path(str(c)).exists()), None)
    return first, "other"


def training_summary(run_config: dict[str, Any]) -> list[str]:
    """Bullet lines describing the stages that ran and their main settings."""
    if not run_config:
        return ["No run configuration was given: this card describes the exported weights only."]
    get = lambda section, key, default=None: (run_config.get(section) or {}).get(key, default)  # noqa: E731
    stages = run_config.get("stages") or []
    lines = [f"Run `{run_config.get('name', 'run')}` (seed {run_config.get('seed', '?')}), stages: {', '.join(stages) or 'n/a'}."]
    lines.append(f"Base model: `{get('model', 'name', '?')}`; env (task and referee): `{get('env', 'name', '?')}`.")
    if not stages or "sft" in stages:
        lora = get("sft", "lora", {}) or {}
        length = f"{get('sft', 'max_steps')} steps" if get("sft", "max_steps") else f"{get('sft', 'epochs', '?')} epoch(s)"
        lines.append(
            f"SFT: LoRA r={lora.get('r', '?')}, alpha={lora.get('alpha', '?')}, lr {get('sft', 'learning_rate', '?')}, {length}, "
            f"batch {get('sft', 'batch_size', '?')} x accumulation {get('sft', 'grad_accum', 1)}; data: {get('data', 'source', '?')}."
        )
    if not stages or "rl" in stages:
        algo = str(get("rl", "algo", "grpo")).upper()
        rollout = get("rl", "rollout", {}) or {}
        steps = f"{get('rl', 'rounds', '?')} rounds" if algo == "DPO" else f"{get('rl', 'steps', '?')} steps"
        lines.append(
            f"RL: {algo}, {steps}, {get('rl', 'num_generations', '?')} completions per prompt, lr {get('rl', 'learning_rate', '?')}, "
            f"beta {get('rl', 'beta', '?')}, reward `{get('rl', 'reward', 'total')}`; rollouts by {rollout.get('num_workers', '?')} Ray actor(s) on the `{rollout.get('engine', '?')}` engine."
        )
    return lines


def read_eval(run_dir: Path | None, eval_reports: Iterable[Path | dict[str, Any]] | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """env -> label -> metric -> value, from summary.json, comparison or single-model reports."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    reports: list[Any] = list(eval_reports or [])
    if run_dir is not None and (Path(run_dir) / "eval").is_dir():
        reports += sorted((Path(run_dir) / "eval").glob("*.json"))
    for item in reports:
        data = item if isinstance(item, dict) else _read_json(Path(item))
        if not isinstance(data, dict):
            continue
        env = str(data.get("env") or "eval")
        if isinstance(data.get("after"), dict) and isinstance(data.get("before"), dict):  # eval/summary.json
            for label in ("before", "after"):
                _merge(out, env, label, data[label])
        elif isinstance(data.get("models"), dict):  # a comparison report
            for label, result in data["models"].items():
                if isinstance(result, dict):
                    _merge(out, env, str(label), result.get("metrics"))
        elif isinstance(data.get("metrics"), dict):
            _merge(out, env, str(data.get("label") or "model"), data["metrics"])
    return out


def _merge(out: dict[str, Any], env: str, label: str, metrics: Any) -> None:
    if not isinstance(metrics, dict):
        return
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numbers:
        out.setdefault(env, {}).setdefault(label, {}).update(numbers)


def eval_table(evals: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    if not evals:
        return ["No evaluation report was found for this model (run `sparring eval` or the run's eval stage)."]
    lines: list[str] = []
    for env, by_label in evals.items():
        labels = sorted(by_label, key=lambda l: {"before": 0, "base": 0, "after": 1, "model": 1}.get(l, 2))
        metrics = sorted({m for values in by_label.values() for m in values})
        has_delta = {"before", "after"} <= set(labels)
        lines += [f"**{env}**", "", "| metric | " + " | ".join(labels) + (" | change |" if has_delta else " |"), "|---" * (len(labels) + 1 + has_delta) + "|"]
        for metric in metrics:
            cells = [_fmt(by_label[label].get(metric)) for label in labels]
            if has_delta and metric in by_label["before"] and metric in by_label["after"]:
                cells.append(f"{by_label['after'][metric] - by_label['before'][metric]:+.4g}")
            elif has_delta:
                cells.append("")
            lines.append(f"| {metric} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


# ---------------------------------------------------------------------------------------------
# artifacts and usage


def _artifact_rows(artifacts: Iterable[Any] | None) -> list[dict[str, Any]]:
    rows = []
    for a in artifacts or []:
        d = a.to_dict() if hasattr(a, "to_dict") else dict(a)
        verify = d.get("verify") or {}
        rows.append({"path": str(d.get("path", "")), "format": d.get("format", ""), "quant": verify.get("quant", ""), "size": int(d.get("size_bytes") or 0), "verified": bool(verify.get("passed", d.get("verified"))), "verify": verify})
    return rows


def usage_lines(name: str, repo: str, rows: list[dict[str, Any]], config: dict[str, Any]) -> list[str]:
    from sparring.exporters import webllm as web

    gguf = next((Path(r["path"]).name for r in rows if r["format"] == "gguf"), "model-q8_0.gguf")
    mlc = next((r for r in rows if r["format"] == "mlc"), None)
    record = (mlc or {}).get("verify", {}).get("webllm") or {}
    quant = (mlc or {}).get("quant") or "q0f16"
    prebuilt = web.find_prebuilt(config, quant) if config.get("model_type") else None
    model_lib = record.get("model_lib") or (prebuilt.url if prebuilt else "<URL of a WebLLM model library compiled for this architecture>")
    model_id = record.get("model_id") or f"{name}-{quant}-MLC"
    return [
        "### transformers", "", "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        f'tok = AutoTokenizer.from_pretrained("{repo}")',
        f'model = AutoModelForCausalLM.from_pretrained("{repo}")',
        'ids = tok.apply_chat_template([{"role": "user", "content": "Tell me a joke"}], add_generation_prompt=True, return_tensors="pt")',
        "print(tok.decode(model.generate(ids, max_new_tokens=64)[0][ids.shape[1]:], skip_special_tokens=True))",
        "```", "",
        "### llama.cpp", "", "```bash", f'llama-cli -m {gguf} -cnv -p "You are a helpful assistant."', "```", "",
        "### Ollama", "", "```bash", f"ollama create {name.lower()} -f Modelfile   # the Modelfile beside the GGUF", f"ollama run {name.lower()}", "```", "",
        "### WebLLM (in the browser, WebGPU)", "", "```javascript",
        f'import * as webllm from "{web.WEBLLM_CDN}";',
        "const appConfig = { model_list: [{",
        f'  model: "https://huggingface.co/{repo}-MLC",  // WebLLM appends resolve/main/',
        f'  model_id: "{model_id}",',
        f'  model_lib: "{model_lib}",',
        "}] };",
        f'const engine = await webllm.CreateMLCEngine("{model_id}", {{ appConfig }});',
        'const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: "Tell me a joke" }] });',
        "```", "",
        "The MLC export folder also holds `webllm-app-config.json` and an `index.html` that loads the bundle "
        "(`python -m sparring.exporters.webllm <folder>` serves it locally).",
    ]


def build_model_card(model_dir: Path, *, run_dir: Path | None = None, artifacts: Iterable[Any] | None = None, eval_reports: Iterable[Path | dict[str, Any]] | None = None, base_model: str | None = None, repo: str | None = None) -> str:
    model_dir = Path(model_dir)
    run_config = _read_yaml(Path(run_dir) / "config.yaml") if run_dir else {}
    base, license_id = resolve_base(model_dir, run_config, base_model)
    config = _read_json(model_dir / "config.json") or {}
    name = str(run_config.get("name") or model_dir.name)
    env = (run_config.get("env") or {}).get("name")
    algo = (run_config.get("rl") or {}).get("algo") if "rl" in (run_config.get("stages") or ["rl"]) and run_config else None
    rows = _artifact_rows(artifacts)
    formats = sorted({r["format"] for r in rows})
    tags = ["sparring", "trl", "peft", "lora"] + ([algo] if algo else []) + ([env] if env else []) + formats + (["webllm"] if "mlc" in formats else []) + (["llama.cpp"] if "gguf" in formats else [])
    datasets = [s for s in [str((run_config.get("data") or {}).get("source", ""))] if "/" in s and not s.endswith(".jsonl") and not Path(s).exists()]
    front = ["---"] + ([f"base_model: {base}"] if base else []) + [f"license: {license_id}", "library_name: transformers", "pipeline_tag: text-generation", "tags:"]
    front += [f"- {t}" for t in dict.fromkeys(tags)] + (["datasets:"] + [f"- {d}" for d in datasets] if datasets else []) + ["---", ""]
    origin = f"`{base}`" if base else "an unnamed base model"
    intro = f"Fine-tuned from {origin} with sparring (LoRA SFT, then reinforcement learning against a referee)." if run_config else f"Exported from {origin} with sparring."
    body = [f"# {name}", "", intro + " Every artifact listed below was loaded in its own runtime and checked before it was listed.", ""]
    body += ["## What was trained and how", ""] + [f"- {line}" for line in training_summary(run_config)] + [""]
    body += ["## Evaluation (before / after)", ""] + eval_table(read_eval(Path(run_dir) if run_dir else None, eval_reports)) + [""]
    body += ["## Files", ""]
    if rows:
        body += ["| file | format | quant | size | verified |", "|---|---|---|---|---|"]
        body += [f"| `{Path(r['path']).name}` | {r['format']} | {r['quant']} | {_human(r['size'])} | {'yes' if r['verified'] else 'NO'} |" for r in rows]
    else:
        body.append("Only the merged safetensors of this folder (no other export was listed).")
    body.append("")
    if config.get("model_type") in ("llama", "qwen2"):
        body += ["## Sizes by format (computed from config.json: parameters x bits)", "", f"{parameter_count(config) / 1e6:.1f} M parameters.", "", "| format | size |", "|---|---|"]
        body += [f"| {q} | {_human(size_estimate(config, q))} |" for q in CARD_QUANTS] + [""]
    body += ["## Usage", ""] + usage_lines(name, repo or f"<user>/{name}", rows, config) + [""]
    return "\n".join(front + body)


def write_model_card(model_dir: str | Path, out_path: str | Path, *, run_dir: str | Path | None = None, artifacts: Iterable[Any] | None = None, eval_reports: Iterable[Path | dict[str, Any]] | None = None, base_model: str | None = None, repo: str | None = None) -> Path:
    """Write README.md (atomically) and return its path."""
    text = build_model_card(Path(model_dir), run_dir=Path(run_dir) if run_dir else None, artifacts=artifacts, eval_reports=eval_reports, base_model=base_model, repo=repo)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, out)
    return out
