"""The Ollama exporter: verified GGUF file(s) + a Modelfile (+ optionally a LoRA adapter GGUF).

    sparring export runs/<run> --format ollama --quant q4_k_m [--system-prompt "..."] [--ollama-adapter]
    ollama create my-model -f runs/<run>/exports/step-N/ollama/Modelfile

``Modelfile`` points ``FROM ./model-<quant>.gguf`` at the first quant (``Modelfile.<quant>`` for the
others); TEMPLATE, stop parameters and SYSTEM come from the model's chat template
(:mod:`sparring.exporters.ollama_template`); SYSTEM is the ``--system-prompt`` or the run env's
system prompt; sampling parameters come from generation_config.json.  With ``--ollama-adapter`` an
adapter source is shipped as ``FROM ./base-<quant>.gguf`` + ``ADAPTER ./adapter.gguf``.
Verification parses the Modelfile back, checks that FROM/ADAPTER name verified GGUFs of the same
dir, and renders the TEMPLATE in Python for sample chats against the HF chat template.

Exercised by ``pytest tests/exporters/test_ollama.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError
from sparring.exporters.base import ExportOptions, atomic_export_dir
from sparring.exporters.gguf import GGUFExporter, build_ggufs, gguf_file_name
from sparring.exporters.ollama_template import OllamaChat, compare_with_hf, derive_chat
from sparring.registry import register_exporter
from sparring.types import Artifact

DEFAULT_SAMPLING = {"temperature": 0.7, "top_p": 0.9}
_SAMPLING_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "repetition_penalty": "repeat_penalty"}


def sampling_parameters(model_dir: Path) -> dict[str, Any]:
    params = dict(DEFAULT_SAMPLING)
    path = Path(model_dir) / "generation_config.json"
    if path.is_file():
        gen = json.loads(path.read_text())
        for hf_key, ollama_key in _SAMPLING_KEYS.items():
            if gen.get(hf_key) is not None and gen.get("do_sample", True):
                params[ollama_key] = gen[hf_key]
    config = json.loads((Path(model_dir) / "config.json").read_text())
    params["num_ctx"] = min(int(config.get("max_position_embeddings") or 2048), 4096)
    return params


def _triple_quoted(keyword: str, text: str) -> str:
    if '"""' in text:
        raise UserInputError(f'the {keyword} text contains """, which a Modelfile cannot quote', where=keyword, fix='remove the triple quotes from the text')
    return f'{keyword} """{text}"""'


def render_modelfile(gguf_name: str, chat: OllamaChat, parameters: dict[str, Any], *, adapter_name: str | None = None, title: str = "") -> str:
    lines = [f"# Ollama Modelfile{' for ' + title if title else ''}, written and verified by sparring (see verify.json)", f"FROM ./{gguf_name}"]
    if adapter_name:
        lines.append(f"ADAPTER ./{adapter_name}")
    lines.append(_triple_quoted("TEMPLATE", chat.template))
    if chat.system:
        lines.append(_triple_quoted("SYSTEM", chat.system))
    lines += [f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}" for stop in chat.stops]
    lines += [f"PARAMETER {key} {value}" for key, value in parameters.items()]
    return "\n".join(lines) + "\n"


_INSTRUCTION = re.compile(r"^(FROM|ADAPTER|TEMPLATE|SYSTEM|PARAMETER|LICENSE|MESSAGE)\s+(.*)$", re.I)


def parse_modelfile(text: str) -> dict[str, Any]:
    """Parse a Modelfile: ``{"from", "adapter", "template", "system", "parameters": [(k, v)]}``."""
    out: dict[str, Any] = {"from": None, "adapter": None, "template": None, "system": None, "parameters": []}
    pos = 0
    while pos < len(text):
        line_end = text.find("\n", pos)
        line_end = len(text) if line_end < 0 else line_end
        line = text[pos:line_end].strip()
        if not line or line.startswith("#"):
            pos = line_end + 1
            continue
        m = _INSTRUCTION.match(line)
        if not m:
            raise ValueError(f"unknown Modelfile line: {line[:60]!r}")
        keyword, value = m.group(1).upper(), m.group(2)
        if value.startswith('"""'):
            start = text.index('"""', pos) + 3
            end = text.index('"""', start)
            value = text[start:end]
            after = text.find("\n", end + 3)
            pos = len(text) if after < 0 else after + 1
        else:
            pos = line_end + 1
        if keyword == "PARAMETER":
            key, _, raw = value.partition(" ")
            raw = raw.strip()
            out["parameters"].append((key, json.loads(raw) if raw.startswith('"') else raw))
        else:
            out[keyword.lower()] = value
    return out


def verify_modelfile(path: Path, records: dict[str, dict[str, Any]], tokenizer: Any, chat: OllamaChat, system_prompt: str | None) -> dict[str, Any]:
    parsed = parse_modelfile(path.read_text(encoding="utf-8"))
    checks: dict[str, Any] = {}
    for key in ("from", "adapter"):
        target = parsed[key]
        if target is None:
            if key == "from":
                checks[key] = {"passed": False, "error": "no FROM line"}
            continue
        name = target.removeprefix("./")
        rec = records.get(name)
        checks[key] = {"passed": bool(rec and rec.get("passed") and (path.parent / name).is_file()), "file": name}
    checks["template_parsed"] = {"passed": parsed["template"] == chat.template and parsed["system"] == chat.system}
    stops = [v for k, v in parsed["parameters"] if k == "stop"]
    single = {s: len(tokenizer(s, add_special_tokens=False).input_ids) == 1 for s in stops}
    checks["stops"] = {"passed": stops == chat.stops, "stops": stops, "single_token": single}
    if getattr(tokenizer, "chat_template", None):
        checks["template_render"] = compare_with_hf(tokenizer, parsed["template"], parsed["system"], system_prompt)
    else:
        checks["template_render"] = {"passed": True, "note": "no HF chat template to compare with"}
    return {"format": "ollama", "kind": chat.kind, "notes": chat.notes, **checks, "passed": all(c["passed"] for c in checks.values())}


@register_exporter("ollama")
class OllamaExporter(GGUFExporter):
    """GGUF + Modelfile for ``ollama create`` (the GGUF exporter's types, defaults and estimate)."""

    format = "ollama"

    def export(self, model_dir: Path, out_dir: Path, options: ExportOptions) -> list[Artifact]:
        from sparring.exporters.gguf_adapter import verify_lora_gguf, write_lora_gguf
        from sparring.exporters.gguf_tokenizer import load_hf_tokenizer
        from sparring.exporters.gguf_verify import HFReference

        model_dir = Path(model_dir)
        quants = options.quants_or(self.default_quants)
        self.check(model_dir, ExportOptions(quants=quants))
        with_adapter = options.ollama_adapter
        if with_adapter and (options.adapter_dir is None or options.base_dir is None):
            raise UserInputError("--ollama-adapter needs a LoRA adapter as SOURCE", where="--ollama-adapter", fix="export an adapter dir (or a run whose model is an adapter), or drop --ollama-adapter")
        tokenizer = load_hf_tokenizer(model_dir)
        chat = derive_chat(tokenizer, options.system_prompt)
        parameters = sampling_parameters(model_dir)
        merged_ref = HFReference.build(model_dir)
        with atomic_export_dir(out_dir, format=self.format, failed_root=options.exports_root, failed_name=options.label) as stage:
            stage.info.update(source=options.source or str(model_dir), chat_format=chat.kind)
            if with_adapter:
                base_dir = Path(options.base_dir)
                stage.records.update(build_ggufs(base_dir, stage.path, quants, HFReference.build(base_dir), options, prefix="base"))
                adapter_report = write_lora_gguf(options.adapter_dir, base_dir, stage.path / "adapter.gguf", name=options.name)
                first = gguf_file_name(quants[0], "base")
                record = verify_lora_gguf(stage.path / first, stage.path / "adapter.gguf", merged_ref, quants[0])
                stage.records["adapter.gguf"] = {"format": "gguf-lora", "write": adapter_report, "verified_with": first, **record}
            else:
                stage.records.update(build_ggufs(model_dir, stage.path, quants, merged_ref, options))
            for i, quant in enumerate(quants):
                modelfile = stage.path / ("Modelfile" if i == 0 else f"Modelfile.{quant}")
                text = render_modelfile(
                    gguf_file_name(quant, "base" if with_adapter else "model"), chat, parameters,
                    adapter_name="adapter.gguf" if with_adapter else None, title=options.name or options.label or "",
                )
                modelfile.write_text(text, encoding="utf-8")
                stage.records[modelfile.name] = verify_modelfile(modelfile, stage.records, tokenizer, chat, options.system_prompt)
        return stage.artifacts
