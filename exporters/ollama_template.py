"""Turn a model's HF chat template into an Ollama TEMPLATE, stop list and SYSTEM text, and render
Ollama's (Go) template subset in Python to prove the two agree.

Recognized chat formats: ChatML (SmolLM2, Qwen2), Llama-3 headers, and Zephyr (TinyLlama-Chat).
Their default system prompt (SmolLM2 injects one when the chat has none; Llama-3.2 prepends a
knowledge-date preamble) is read from the HF template's own rendering, so SYSTEM reproduces it.  An
unrecognized template is derived from its rendering of sentinel messages; a model with no chat
template gets a plain prompt template, with a note saying so.

Exercised by ``pytest tests/exporters/test_ollama.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

SENTINEL_SYSTEM = "\x00SYSTEM\x00"
SENTINEL_USER = "\x00USER\x00"
SENTINEL_ASSISTANT = "\x00ASSISTANT\x00"

KNOWN_FORMATS: dict[str, dict[str, Any]] = {
    "chatml": {
        "marker": "<|im_start|>",
        "template": (
            "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
            "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
            "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
        ),
        "system_block": r"<\|im_start\|>system\n(.*?)<\|im_end\|>",
        "stops": ["<|im_start|>", "<|im_end|>"],
    },
    "llama3": {
        "marker": "<|start_header_id|>",
        "template": (
            "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
            "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
            "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>"
        ),
        "system_block": r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>",
        "stops": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    },
    "zephyr": {
        "marker": "<|assistant|>",
        "template": (
            "{{ if .System }}<|system|>\n{{ .System }}</s>\n{{ end }}"
            "{{ if .Prompt }}<|user|>\n{{ .Prompt }}</s>\n{{ end }}"
            "<|assistant|>\n{{ .Response }}</s>\n"
        ),
        "system_block": r"<\|system\|>\n(.*?)</s>",
        "stops": ["</s>", "<|user|>", "<|system|>", "<|assistant|>"],
    },
}
PLAIN_TEMPLATE = "{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}{{ .Response }}"


@dataclass
class OllamaChat:
    """What the Modelfile needs from the chat template."""

    kind: str  # chatml | llama3 | zephyr | derived | plain
    template: str
    stops: list[str]
    system: str | None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# the Go template subset: {{ .Field }}, {{ if .Field }} ... {{ else }} ... {{ end }}, {{- / -}} trims

_ACTION = re.compile(r"{{(-?)\s*(.*?)\s*(-?)}}", re.S)


def render_go_template(template: str, values: dict[str, str]) -> str:
    """Render Ollama's legacy template subset with ``values`` (System, Prompt, Response)."""
    pieces: list[tuple[str, str]] = []  # ("text", s) or ("action", s)
    pos = 0
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if m.group(1):
            text = text.rstrip()
        pieces.append(("text", text))
        pieces.append(("action", m.group(2)))
        pos = m.end()
        if m.group(3):
            rest = template[pos:]
            pos += len(rest) - len(rest.lstrip())
    pieces.append(("text", template[pos:]))
    out, _ = _render(pieces, 0, values)
    return out


def _render(pieces: list[tuple[str, str]], i: int, values: dict[str, str]) -> tuple[str, int]:
    out: list[str] = []
    while i < len(pieces):
        kind, body = pieces[i]
        if kind == "text":
            out.append(body)
            i += 1
        elif body in ("end", "else"):
            return "".join(out), i
        elif body.startswith("if "):
            cond = bool(values.get(body[3:].strip().lstrip("."), ""))
            then, i = _render(pieces, i + 1, values)
            other = ""
            if pieces[i][1] == "else":
                other, i = _render(pieces, i + 1, values)
            out.append(then if cond else other)
            i += 1  # the {{ end }}
        elif body.startswith("."):
            out.append(values.get(body[1:], ""))
            i += 1
        else:
            raise ValueError(f"unsupported template action {{{{ {body} }}}}")
    return "".join(out), i


# ---------------------------------------------------------------------------------------------
# chat template -> Ollama


def hf_render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    """The HF chat template's text, without a leading BOS the runtime adds itself."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer("x").input_ids[:1] == [tokenizer.bos_token_id]:
        text = text[len(bos):]
    return text


def _chat(system: str | None, *turns: str) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    for i, content in enumerate(turns):
        msgs.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return msgs


def _derive_generic(tokenizer: Any) -> OllamaChat | None:
    """Build a template from sentinel renderings; None when the structure cannot be split."""
    try:
        with_sys = hf_render(tokenizer, _chat(SENTINEL_SYSTEM, SENTINEL_USER), True)
        user_only = hf_render(tokenizer, _chat(None, SENTINEL_USER), True)
        full = hf_render(tokenizer, _chat(None, SENTINEL_USER, SENTINEL_ASSISTANT), False)
    except Exception:
        return None
    if user_only.count(SENTINEL_USER) != 1 or not user_only.endswith(user_only.split(SENTINEL_USER)[1]):
        return None
    user_pre, gen_prompt = user_only.split(SENTINEL_USER)
    if not full.startswith(user_pre + SENTINEL_USER) or SENTINEL_ASSISTANT not in full:
        return None
    turn_end = full.split(SENTINEL_ASSISTANT, 1)[1]
    template = f"{user_pre}{{{{ .Prompt }}}}{gen_prompt}{{{{ .Response }}}}{turn_end}"
    if SENTINEL_SYSTEM in with_sys and with_sys.endswith(user_pre + SENTINEL_USER + gen_prompt):
        sys_pre, sys_rest = with_sys.split(SENTINEL_SYSTEM)
        sys_end = sys_rest[: len(sys_rest) - len(user_pre + SENTINEL_USER + gen_prompt)]
        template = f"{{{{ if .System }}}}{sys_pre}{{{{ .System }}}}{sys_end}{{{{ end }}}}" + template
    stops = [s for s in (turn_end.strip(), tokenizer.eos_token) if s]
    return OllamaChat("derived", template, stops, None, ["chat template not recognized: TEMPLATE derived from its rendering of sample messages"])


def derive_chat(tokenizer: Any, system_prompt: str | None = None) -> OllamaChat:
    """The Ollama TEMPLATE, stops and SYSTEM for ``tokenizer``'s chat template."""
    source = getattr(tokenizer, "chat_template", None)
    eos = [tokenizer.eos_token] if tokenizer.eos_token else []
    if not source:
        return OllamaChat("plain", PLAIN_TEMPLATE, eos, system_prompt, ["the model has no chat template: plain prompt template (no roles)"])
    if not isinstance(source, str):
        source = str(source)
    for kind, spec in KNOWN_FORMATS.items():
        if spec["marker"] in source:
            rendered = hf_render(tokenizer, _chat(system_prompt, "hello"), True)
            found = re.search(spec["system_block"], rendered, re.S)
            system = found.group(1) if found else system_prompt
            stops = list(dict.fromkeys(spec["stops"] + eos))
            return OllamaChat(kind, spec["template"], stops, system or None)
    derived = _derive_generic(tokenizer)
    if derived is not None:
        derived.system = system_prompt
        return derived
    return OllamaChat("plain", PLAIN_TEMPLATE, eos, system_prompt, ["chat template not recognized and not derivable: plain prompt template (no roles)"])


def compare_with_hf(tokenizer: Any, template: str, system: str | None, system_prompt: str | None) -> dict[str, Any]:
    """Render sample chats with both templates: the prompt up to the reply, and a full turn."""
    user, reply = "Tell me a joke about llamas.", "Why did the llama cross the road? 🦙"
    values = {"System": system or "", "Prompt": user}
    marked = render_go_template(template, {**values, "Response": SENTINEL_ASSISTANT})
    go_prompt = marked.split(SENTINEL_ASSISTANT)[0]
    go_turn = render_go_template(template, {**values, "Response": reply})
    hf_prompt = hf_render(tokenizer, _chat(system_prompt, user), True)
    hf_turn = hf_render(tokenizer, _chat(system_prompt, user, reply), False)
    prompt_ok = go_prompt == hf_prompt
    turn_ok = go_turn.rstrip() == hf_turn.rstrip()
    return {
        "passed": prompt_ok and turn_ok,
        "generation_prompt_equal": prompt_ok,
        "full_turn_equal": turn_ok,
        **({} if prompt_ok else {"ollama_prompt": go_prompt, "hf_prompt": hf_prompt}),
        **({} if turn_ok else {"ollama_turn": go_turn, "hf_turn": hf_turn}),
    }
