"""`sparring serve` against a real uvicorn on a free port, through httpx, for both backends:
transformers on a tiny random Llama dir and llama.cpp on a q8_0 GGUF of it (written by the
exporters' GGUF writer).  Non-streaming and streaming for both endpoints, usage, the API key, the
request-size and max_tokens limits, an over-long prompt, malformed requests and a taken port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from sparring.serve_backends import TextAssembler

CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a dad joke about bread."}]}


@contextmanager
def running(app):
    """Serve ``app`` with uvicorn in a thread on a free port; yield the base URL."""
    import uvicorn

    from sparring.serve import bind_socket

    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sparring.exporters.gguf_writer import write_gguf

    out = tmp_path_factory.mktemp("gguf") / "model-q8_0.gguf"
    write_gguf(tiny_llama, out, "q8_0")
    return out


@pytest.fixture(scope="module", params=["hf", "gguf"])
def backend(request, tiny_llama: Path):
    from sparring.serve_backends import load_backend

    if request.param == "hf":
        return load_backend(str(tiny_llama), threads=1)
    return load_backend(str(request.getfixturevalue("tiny_gguf")), threads=1)


@pytest.fixture(scope="module")
def base_url(backend):
    from sparring.serve import create_app

    with running(create_app(backend, max_tokens_limit=64, max_request_bytes=16384, model_id="tiny")) as url:
        yield url


def events(response: httpx.Response) -> list:
    """The ``data:`` payloads of a server-sent-events body, JSON-decoded except ``[DONE]``."""
    out = []
    for block in response.text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            payload = block[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def test_health_and_models(base_url, backend):
    health = httpx.get(f"{base_url}/health").json()
    assert health["status"] == "ok" and health["backend"] == backend.kind and health["context_window"] == 1024
    models = httpx.get(f"{base_url}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]


def test_chat_completion_and_its_stream_agree(base_url):
    body = {**CHAT, "max_tokens": 8, "temperature": 0, "seed": 3}
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 200, r.text
    data = r.json()
    choice = data["choices"][0]
    assert data["object"] == "chat.completion" and choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    u = data["usage"]
    assert u["prompt_tokens"] > 10 and 1 <= u["completion_tokens"] <= 8 and u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]

    s = httpx.post(f"{base_url}/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}, timeout=60)
    assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
    chunks = events(s)
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["object"] == "chat.completion.chunk" and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1] if c["choices"])
    assert text == choice["message"]["content"]  # greedy: the stream is the same completion
    finals = [c for c in chunks[:-1] if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finals] == [choice["finish_reason"]]
    assert chunks[-2]["choices"] == [] and chunks[-2]["usage"] == u


def test_completion_and_its_stream_agree(base_url):
    body = {"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0}
    data = httpx.post(f"{base_url}/v1/completions", json=body, timeout=60).json()
    assert data["object"] == "text_completion" and data["usage"]["completion_tokens"] <= 6
    s = httpx.post(f"{base_url}/v1/completions", json={**body, "stream": True}, timeout=60)
    chunks = events(s)
    assert chunks[-1] == "[DONE]" and all(c["object"] == "text_completion" for c in chunks[:-1])
    assert "".join(c["choices"][0]["text"] for c in chunks[:-1]) == data["choices"][0]["text"]
    assert chunks[-2]["choices"][0]["finish_reason"] == data["choices"][0]["finish_reason"]


def test_sampling_is_seeded(base_url):
    body = {"prompt": "The", "max_tokens": 6, "temperature": 1.0, "top_p": 0.9}
    a = httpx.post(f"{base_url}/v1/completions", json={**body, "seed": 11}, timeout=60).json()["choices"][0]["text"]
    b = httpx.post(f"{base_url}/v1/completions", json={**body, "seed": 11}, timeout=60).json()["choices"][0]["text"]
    assert a == b


def test_concurrent_clients_queue_and_all_succeed(base_url):
    body = {"prompt": "Hello", "max_tokens": 4, "temperature": 0}
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: httpx.post(f"{base_url}/v1/completions", json=body, timeout=120).status_code, range(4)))
    assert codes == [200] * 4


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({**CHAT, "max_tokens": 65}, "max_tokens", "limit of 64"),
        ({**CHAT, "max_completion_tokens": 1000}, "max_completion_tokens", "limit of 64"),
        ({"messages": [{"role": "user", "content": "bread " * 1500}], "max_tokens": 4}, "messages", "context window of 1024"),
        ({"model": "tiny"}, "messages", "missing"),
        ({"messages": []}, "messages", "at least 1"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role", "system"),
        ({**CHAT, "temperature": "hot"}, "temperature", "number"),
        ({**CHAT, "n": 2}, "n", "n=1"),
        ({**CHAT, "tools": [{"type": "function"}]}, "tools", "not supported"),
    ],
)
def test_bad_chat_requests_get_400_json(base_url, body, param, needle):
    r = httpx.post(f"{base_url}/v1/chat/completions", json=body, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param and needle in err["message"] and err["type"] == "invalid_request_error"


def test_over_long_completion_prompt_names_the_window(base_url):
    r = httpx.post(f"{base_url}/v1/completions", json={"prompt": "bread " * 1500}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert "1024" in r.json()["error"]["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_malformed_bodies_get_400_json(base_url, raw):
    r = httpx.post(f"{base_url}/v1/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "error" in r.json() and r.json()["error"]["message"]


def test_unknown_route_and_method_are_json(base_url):
    assert httpx.get(f"{base_url}/v1/nope").json()["error"]["type"] == "not_found_error"
    r = httpx.get(f"{base_url}/v1/completions")
    assert r.status_code == 405 and "error" in r.json()


def test_request_size_limit_413(base_url):
    big = {"prompt": "x" * 20000}
    r = httpx.post(f"{base_url}/v1/completions", json=big)
    assert r.status_code == 413 and "16384 bytes" in r.json()["error"]["message"]

    def chunked():  # no content-length: the limit holds for a streamed body too
        for _ in range(20):
            yield b"x" * 1000

    r = httpx.post(f"{base_url}/v1/completions", content=chunked())
    assert r.status_code == 413


def test_api_key_enforced(tiny_llama):
    from sparring.serve import create_app
    from sparring.serve_backends import load_backend

    app = create_app(load_backend(str(tiny_llama), threads=1), api_key="s3cret", max_tokens_limit=8)
    body = {"prompt": "Hi", "max_tokens": 2}
    with running(app) as url:
        assert httpx.get(f"{url}/health").status_code == 200  # health stays open
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            r = httpx.post(f"{url}/v1/completions", json=body, headers=headers)
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
            assert r.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        ok = httpx.post(f"{url}/v1/completions", json=body, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["usage"]["completion_tokens"] <= 2


def test_port_in_use_exits_2_before_loading_the_model():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "sparring", "serve", "does-not-matter.gguf", "--port", str(port)], capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    finally:
        holder.close()
    assert proc.returncode == 2, proc.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in proc.stderr and "--port" in proc.stderr
    assert time.time() - t0 < 60


def test_text_assembler_holds_back_split_stop_strings_and_partial_characters():
    a = TextAssembler(["\nQ:"])
    pieces = [a.feed(t) for t in ("A: yes", "A: yes\n", "A: yes\nQ", "A: yes\nQ:", "A: yes\nQ: more")]
    assert "".join(pieces) == "A: yes" and a.stopped and a.text == "A: yes"
    b = TextAssembler([])
    assert b.feed("caf\ufffd") == "caf" and b.feed("café") == "é" and b.flush() == ""
    c = TextAssembler(["END"])
    assert c.feed("the E") == "the " and c.feed("the EN") == "" and c.flush() == "EN"


def test_gguf_requests_decode_together_and_each_gets_its_own_text(tiny_gguf):
    """Four requests admitted at once decode in one batch per step (the scheduler is held while they
    queue), and each gets exactly the text it gets alone: seeded sampling per request, per-sequence KV."""
    from sparring.serve_backends import GenerationRequest, load_backend

    backend = load_backend(str(tiny_gguf), threads=1, parallel=4)
    scheduler = backend.scheduler
    prompts = [backend.tokenize(text, chat=False) for text in ("Hello", "The cat", "Once upon a time", "Q: Why")]
    requests = [GenerationRequest(ids, max_tokens=12, temperature=0.9, top_p=0.95, seed=7 + i) for i, ids in enumerate(prompts)]
    alone = [list(scheduler.stream(r)) for r in requests]
    assert scheduler.peak_batch == 1  # one request at a time so far
    with scheduler.wake:  # the scheduler cannot admit until all four are queued
        streams = [scheduler.stream(r) for r in requests]
    together = [list(s) for s in streams]
    assert scheduler.peak_batch == 4
    assert together == alone
    assert all(len(t) > 0 for t in together) and len({tuple(t) for t in together}) > 1
    # a consumer that stops early frees its slot: the next request still gets all of its tokens
    early = scheduler.stream(GenerationRequest(prompts[0], max_tokens=40, temperature=0.0))
    next(early)
    early.close()
    assert list(scheduler.stream(requests[1])) == alone[1]
    scheduler.close()


def test_parallel_below_one_is_refused(tiny_gguf):
    from sparring.errors import UserInputError
    from sparring.serve_backends import load_backend

    with pytest.raises(UserInputError, match="--parallel 0"):
        load_backend(str(tiny_gguf), parallel=0)
