"""WebLLM glue: prebuilt-library matching, model URLs, appConfig, the page and the local server."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest

from sparring.exporters import webllm
from sparring.exporters.mlc import write_mlc_bundle

SMOLLM2_135M = {"model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152, "max_position_embeddings": 8192}
TINYLLAMA = {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4, "intermediate_size": 5632, "vocab_size": 32000, "max_position_embeddings": 2048}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://huggingface.co/me/model", "https://huggingface.co/me/model/resolve/main/"),
        ("https://huggingface.co/me/model/", "https://huggingface.co/me/model/resolve/main/"),
        ("https://huggingface.co/me/model/resolve/v2/", "https://huggingface.co/me/model/resolve/v2/"),
        ("http://127.0.0.1:8000/model/resolve/main", "http://127.0.0.1:8000/model/resolve/main/"),
    ],
)
def test_model_url_follows_webllm_clean_model_url(url, expected):
    assert webllm.normalize_model_url(url) == expected


def test_prebuilt_library_of_the_base_is_reused():
    lib = webllm.find_prebuilt(SMOLLM2_135M, "q0f16")
    assert lib is not None and lib.base == "SmolLM2-135M-Instruct"
    assert lib.url == f"{webllm.MODEL_LIB_URL_PREFIX}v{webllm.WEBLLM_VERSION.replace('.', '_')}/SmolLM2-135M-Instruct-q0f16-ctx4k_cs1k-webgpu.wasm"
    assert webllm.find_prebuilt(TINYLLAMA, "q4f32_1").wasm.startswith("TinyLlama-1.1B-Chat-v1.0-q4f32_1-ctx2k")
    entry, note = webllm.app_config_entry(SMOLLM2_135M, "q0f16", "mine-q0f16-MLC", "https://huggingface.co/me/mine", 269_000_000)
    assert note is None and entry["model_lib"] == lib.url and entry["vram_required_MB"] == lib.vram_required_mb
    assert entry["model"] == "https://huggingface.co/me/mine/resolve/main/" and entry["required_features"] == ["shader-f16"]
    assert set(entry) >= {"model", "model_id", "model_lib", "overrides", "vram_required_MB", "low_resource_required"}
    assert entry["overrides"] == {"context_window_size": 4096}


def test_no_prebuilt_library_is_said_plainly():
    assert webllm.find_prebuilt(SMOLLM2_135M, "q4f16_1") is None  # WebLLM ships only q0 libs for 135M
    entry, note = webllm.app_config_entry(SMOLLM2_135M, "q4f16_1", "x", webllm.DEFAULT_LOCAL_URL, 76_000_000)
    assert entry["model_lib"] is None and "SmolLM2-135M-Instruct has no prebuilt q4f16_1 library" in note and "mlc_llm compile" in note
    other = dict(SMOLLM2_135M, hidden_size=64, num_hidden_layers=2)
    _, note = webllm.app_config_entry(other, "q0f16", "x", webllm.DEFAULT_LOCAL_URL, 1_000_000)
    assert "no published WebLLM base has this model's dimensions" in note


@pytest.fixture(scope="module")
def bundle(tiny_llama_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("webllm") / "q0f32"
    write_mlc_bundle(tiny_llama_dir, out, "q0f32", model_id="tiny-q0f32-MLC")
    return out


def test_app_config_and_page(bundle):
    app = json.loads((bundle / webllm.APP_CONFIG_FILE).read_text())
    entry = app["model_list"][0]
    assert entry["model_id"] == "tiny-q0f32-MLC" and entry["model"] == webllm.DEFAULT_LOCAL_URL and entry["model_lib"] is None
    assert "No prebuilt WebLLM model library fits" in app["_sparring"]["note"]
    html = (bundle / webllm.INDEX_HTML).read_text()
    assert f'import * as webllm from "{webllm.WEBLLM_CDN}"' in html and "@" + webllm.WEBLLM_VERSION in html
    embedded = html.split("const appConfig = ", 1)[1].split(";\nconst record", 1)[0]
    assert json.loads(embedded.replace("<\\/", "</")) == app
    assert "CreateMLCEngine(record.model_id" in html and webllm.LOCAL_MODEL_PATH in html


def test_local_server_serves_the_bundle_where_webllm_looks(bundle):
    server = webllm.make_server(bundle, port=0)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}/"
        model_url = webllm.normalize_model_url(f"{base}model")  # what WebLLM would fetch from
        with urllib.request.urlopen(model_url + "mlc-chat-config.json") as response:
            assert response.headers["Access-Control-Allow-Origin"] == "*"
            assert json.loads(response.read())["quantization"] == "q0f32"
        cache = json.loads(urllib.request.urlopen(model_url + "tensor-cache.json").read())
        shard = cache["records"][0]
        assert len(urllib.request.urlopen(model_url + shard["dataPath"]).read()) == shard["nbytes"]
        assert b"CreateMLCEngine" in urllib.request.urlopen(base).read()
    finally:
        server.shutdown()
        server.server_close()
