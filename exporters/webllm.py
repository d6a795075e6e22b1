"""WebLLM glue for an MLC export: the appConfig ``model_list`` entry, a chat page, a local server.

A fine-tune keeps its base model's architecture and dimensions, so it runs on the prebuilt WebLLM
model library (WebGPU wasm) of that base and quantization; ``PREBUILT_LIBS`` lists the ones
published for the bases sparring trains (matched on model_type and every dimension the compiled
kernels depend on).  When none matches, the entry says so plainly and how to compile one.

WebLLM appends ``resolve/main/`` to a model URL that does not already contain ``/resolve/<rev>/``
(its ``cleanModelUrl``); ``normalize_model_url`` applies the same rule so the URL written here is
the one WebLLM fetches from.  ``serve`` hosts a bundle locally under ``/model/resolve/main/``:

    python -m sparring.exporters.webllm DIR [--port 8000]   # then open http://127.0.0.1:8000/

Exercised by ``pytest tests/exporters/test_webllm.py``.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The WebLLM npm release the page imports; its prebuilt model libraries live under v0_2_80/.
WEBLLM_VERSION = "0.2.80"
WEBLLM_CDN = f"https://esm.run/@mlc-ai/web-llm@{WEBLLM_VERSION}"
MODEL_LIB_URL_PREFIX = "https://raw.githubusercontent.com/mlc-ai/binary-mlc-llm-libs/main/web-llm-models/"
APP_CONFIG_FILE = "webllm-app-config.json"
INDEX_HTML = "index.html"
LOCAL_MODEL_PATH = "model/resolve/main/"
DEFAULT_LOCAL_URL = f"http://127.0.0.1:8000/{LOCAL_MODEL_PATH}"


def model_lib_version() -> str:
    return "v" + WEBLLM_VERSION.replace(".", "_")


@dataclass(frozen=True)
class PrebuiltLib:
    """A published WebLLM model library and the base model it was compiled for."""

    base: str
    quant: str
    wasm: str
    vram_required_mb: float
    context_window: int
    shader_f16: bool

    @property
    def url(self) -> str:
        return f"{MODEL_LIB_URL_PREFIX}{model_lib_version()}/{self.wasm}"


# (model_type, hidden, layers, heads, kv_heads, intermediate, vocab) of each base.
BASE_DIMENSIONS = {
    "SmolLM2-135M-Instruct": ("llama", 576, 30, 9, 3, 1536, 49152),
    "SmolLM2-360M-Instruct": ("llama", 960, 32, 15, 5, 2560, 49152),
    "TinyLlama-1.1B-Chat-v1.0": ("llama", 2048, 22, 32, 4, 5632, 32000),
    "Llama-3.2-1B-Instruct": ("llama", 2048, 16, 32, 8, 8192, 128256),
    "Qwen2.5-0.5B-Instruct": ("qwen2", 896, 24, 14, 2, 4864, 151936),
}

PREBUILT_LIBS = (
    PrebuiltLib("SmolLM2-135M-Instruct", "q0f16", "SmolLM2-135M-Instruct-q0f16-ctx4k_cs1k-webgpu.wasm", 359.69, 4096, True),
    PrebuiltLib("SmolLM2-135M-Instruct", "q0f32", "SmolLM2-135M-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm", 719.38, 4096, False),
    PrebuiltLib("SmolLM2-360M-Instruct", "q0f16", "SmolLM2-360M-Instruct-q0f16-ctx4k_cs1k-webgpu.wasm", 871.99, 4096, True),
    PrebuiltLib("SmolLM2-360M-Instruct", "q0f32", "SmolLM2-360M-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm", 1743.99, 4096, False),
    PrebuiltLib("SmolLM2-360M-Instruct", "q4f16_1", "SmolLM2-360M-Instruct-q4f16_1-ctx4k_cs1k-webgpu.wasm", 376.06, 4096, True),
    PrebuiltLib("SmolLM2-360M-Instruct", "q4f32_1", "SmolLM2-360M-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm", 579.61, 4096, False),
    PrebuiltLib("TinyLlama-1.1B-Chat-v1.0", "q4f16_1", "TinyLlama-1.1B-Chat-v1.0-q4f16_1-ctx2k_cs1k-webgpu.wasm", 697.24, 2048, True),
    PrebuiltLib("TinyLlama-1.1B-Chat-v1.0", "q4f32_1", "TinyLlama-1.1B-Chat-v1.0-q4f32_1-ctx2k_cs1k-webgpu.wasm", 839.98, 2048, False),
    PrebuiltLib("Llama-3.2-1B-Instruct", "q4f16_1", "Llama-3.2-1B-Instruct-q4f16_1-ctx4k_cs1k-webgpu.wasm", 879.04, 4096, False),
    PrebuiltLib("Llama-3.2-1B-Instruct", "q4f32_1", "Llama-3.2-1B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm", 1128.82, 4096, False),
    PrebuiltLib("Llama-3.2-1B-Instruct", "q0f16", "Llama-3.2-1B-Instruct-q0f16-ctx4k_cs1k-webgpu.wasm", 2573.13, 4096, False),
    PrebuiltLib("Qwen2.5-0.5B-Instruct", "q4f16_1", "Qwen2-0.5B-Instruct-q4f16_1-ctx4k_cs1k-webgpu.wasm", 944.62, 4096, False),
    PrebuiltLib("Qwen2.5-0.5B-Instruct", "q4f32_1", "Qwen2-0.5B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm", 1060.2, 4096, False),
    PrebuiltLib("Qwen2.5-0.5B-Instruct", "q0f16", "Qwen2-0.5B-Instruct-q0f16-ctx4k_cs1k-webgpu.wasm", 1624.12, 4096, False),
)


def base_of(config: dict[str, Any]) -> str | None:
    """The published base whose dimensions this config has, if any."""
    dims = (
        config.get("model_type"),
        config.get("hidden_size"),
        config.get("num_hidden_layers"),
        config.get("num_attention_heads"),
        config.get("num_key_value_heads") or config.get("num_attention_heads"),
        config.get("intermediate_size"),
        config.get("vocab_size"),
    )
    return next((name for name, want in BASE_DIMENSIONS.items() if want == dims), None)


def find_prebuilt(config: dict[str, Any], quant: str) -> PrebuiltLib | None:
    base = base_of(config)
    return next((lib for lib in PREBUILT_LIBS if lib.base == base and lib.quant == quant), None)


def normalize_model_url(url: str) -> str:
    """What WebLLM will fetch from: a trailing slash, then ``resolve/main/`` unless present."""
    url = url if url.endswith("/") else url + "/"
    if not re.match(r".+/resolve/.+/", url):
        url += "resolve/main/"
    return url


def no_prebuilt_note(config: dict[str, Any], quant: str) -> str:
    base = base_of(config)
    have = ", ".join(sorted({f"{lib.base} {lib.quant}" for lib in PREBUILT_LIBS}))
    what = f"base {base} has no prebuilt {quant} library" if base else f"no published WebLLM base has this model's dimensions ({config.get('model_type')}, hidden {config.get('hidden_size')}, {config.get('num_hidden_layers')} layers)"
    return (
        f"No prebuilt WebLLM model library fits: {what}. The weights and mlc-chat-config.json are "
        f"complete; compile a library with mlc_llm (`mlc_llm compile mlc-chat-config.json --device webgpu -o model.wasm`) "
        f"and set model_lib to its URL. Prebuilt libraries exist for: {have}."
    )


def estimate_vram_mb(param_bytes: int, config: dict[str, Any], context: int, float_bytes: int) -> float:
    """Weights + a full KV cache (K and V for every layer at ``context`` tokens) + 10% runtime slack."""
    heads = config.get("num_attention_heads", 1)
    head_dim = config.get("head_dim") or config.get("hidden_size", 0) // max(heads, 1)
    kv = 2 * config.get("num_hidden_layers", 0) * context * (config.get("num_key_value_heads") or heads) * head_dim * float_bytes
    return round((param_bytes + kv) * 1.1 / 2**20, 2)


def app_config_entry(config: dict[str, Any], quant: str, model_id: str, model_url: str, param_bytes: int) -> tuple[dict[str, Any], str | None]:
    """The ``model_list`` entry and a note (None when a prebuilt library is reused)."""
    lib = find_prebuilt(config, quant)
    context = lib.context_window if lib else min(int(config.get("max_position_embeddings") or 4096), 4096)
    entry: dict[str, Any] = {
        "model": normalize_model_url(model_url),
        "model_id": model_id,
        "model_lib": lib.url if lib else None,
        "overrides": {"context_window_size": context},
        "vram_required_MB": lib.vram_required_mb if lib else estimate_vram_mb(param_bytes, config, context, 2 if "f16" in quant else 4),
        "low_resource_required": True if lib else param_bytes < 2**30,
    }
    if (lib and lib.shader_f16) or (not lib and "f16" in quant):
        entry["required_features"] = ["shader-f16"]
    return entry, None if lib else no_prebuilt_note(config, quant)


def write_app_config(out_dir: Path, entry: dict[str, Any], note: str | None) -> Path:
    payload: dict[str, Any] = {"model_list": [entry], "useIndexedDBCache": False}
    payload["_sparring"] = {
        "webllm_version": WEBLLM_VERSION,
        "prebuilt_model_lib": entry["model_lib"] is not None,
        "note": note or "model_lib is the prebuilt WebLLM library of the base model and quantization.",
        "hosting": "WebLLM fetches the files from `model` (it appends resolve/main/ to a URL without /resolve/<rev>/): push this folder to a Hugging Face repo and set model to https://huggingface.co/<user>/<repo>, or run `python -m sparring.exporters.webllm <this folder>`.",
    }
    path = out_dir / APP_CONFIG_FILE
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__ (WebLLM)</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
#log p { white-space: pre-wrap; } .user { color: #174ea6; } .note { color: #a50e0e; }
form { display: flex; gap: .5rem; } input { flex: 1; padding: .4rem; }
</style>
</head>
<body>
<h1>__TITLE__</h1>
<p id="status">Loading WebLLM __VERSION__ ...</p>
<div id="log"></div>
<form id="chat"><input id="message" autocomplete="off" placeholder="Say something" disabled><button id="send" disabled>Send</button></form>
<script type="module">
// The model files are fetched from appConfig.model_list[0].model; override it with ?model=URL
// (WebLLM appends resolve/main/ to a URL that has no /resolve/<rev>/ part).
import * as webllm from "__CDN__";
const appConfig = __APP_CONFIG__;
const record = appConfig.model_list[0];
const status = document.getElementById("status");
const log = document.getElementById("log");
const params = new URLSearchParams(location.search);
const servedHere = record.model === "__DEFAULT_LOCAL__" && location.protocol.startsWith("http");
record.model = params.get("model") || (servedHere ? new URL("__LOCAL_PATH__", location.href).href : record.model);
function say(cls, text) { const p = document.createElement("p"); p.className = cls; p.textContent = text; log.append(p); return p; }
if (!record.model_lib) {
  status.textContent = "This export has no prebuilt WebLLM model library.";
  say("note", appConfig._sparring.note);
} else if (!navigator.gpu) {
  status.textContent = "This browser has no WebGPU; WebLLM needs it.";
} else {
  const engine = await webllm.CreateMLCEngine(record.model_id, {
    appConfig: { model_list: appConfig.model_list },
    initProgressCallback: (report) => { status.textContent = report.text; },
  });
  status.textContent = "Ready: " + record.model_id;
  const messages = [];
  const input = document.getElementById("message");
  input.disabled = false; document.getElementById("send").disabled = false;
  document.getElementById("chat").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim(); if (!text) return;
    input.value = ""; say("user", text); messages.push({ role: "user", content: text });
    const out = say("assistant", "");
    const chunks = await engine.chat.completions.create({ messages, stream: true });
    for await (const chunk of chunks) out.textContent += chunk.choices[0]?.delta?.content || "";
    messages.push({ role: "assistant", content: out.textContent });
  });
}
</script>
</body>
</html>
"""


def write_index_html(out_dir: Path, app_config_path: Path, title: str) -> Path:
    app_config = json.loads(app_config_path.read_text())
    html = (
        PAGE.replace("__TITLE__", _escape_html(title))
        .replace("__VERSION__", WEBLLM_VERSION)
        .replace("__CDN__", WEBLLM_CDN)
        .replace("__LOCAL_PATH__", LOCAL_MODEL_PATH)
        .replace("__DEFAULT_LOCAL__", DEFAULT_LOCAL_URL)
        .replace("__APP_CONFIG__", json.dumps(app_config, indent=2).replace("</", "<\\/"))
    )
    path = out_dir / INDEX_HTML
    path.write_text(html)
    return path


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class BundleHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a bundle at / and again under /model/resolve/main/ (the path WebLLM asks for)."""

    def translate_path(self, path: str) -> str:
        prefix = "/" + LOCAL_MODEL_PATH
        if path.startswith(prefix):
            path = "/" + path[len(prefix) :]
        return super().translate_path(path)

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def make_server(bundle_dir: Path, port: int = 8000, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    handler = functools.partial(BundleHandler, directory=str(bundle_dir))
    return http.server.ThreadingHTTPServer((host, port), handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve an MLC export for WebLLM at http://HOST:PORT/")
    parser.add_argument("bundle_dir", type=Path)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = make_server(args.bundle_dir, args.port, args.host)
    print(f"serving {args.bundle_dir} at http://{args.host}:{args.port}/ (model files under /{LOCAL_MODEL_PATH})")
    server.serve_forever()


if __name__ == "__main__":
    main()
