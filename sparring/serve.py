"""`sparring serve`: an OpenAI-compatible HTTP server (FastAPI + uvicorn) for one model.

    sparring serve runs/<run>/exports/latest/gguf/model-q8_0.gguf --port 8000   # llama.cpp
    sparring serve runs/<run> --api-key s3cret                                  # transformers
    curl -s localhost:8000/v1/chat/completions -H 'Authorization: Bearer s3cret' \\
         -d '{"messages": [{"role": "user", "content": "Tell me a dad joke about bread."}]}'

Routes: ``GET /health``, ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST
/v1/completions``, both with ``"stream": true`` (server-sent events ``data: {...}`` in OpenAI's
chunk shape, ending with ``data: [DONE]``; ``stream_options.include_usage`` adds a usage chunk).
Every response carries token usage.  Binds 127.0.0.1 unless told otherwise.  Bad requests get a
4xx JSON body ``{"error": {"message", "type", "param", "code"}}``, never a traceback: a body over
``--max-request-bytes`` (413), malformed JSON or a missing/invalid field (400, ``param`` names it),
``max_tokens`` over ``--max-tokens-limit`` (400 naming the limit), a prompt that does not fit the
context window (400 with the window), a missing or wrong ``--api-key`` (401).  On a GGUF, up to
``--parallel`` requests (default 4) decode together, one batched step for all of them
(``sparring/serve_batching.py``); on transformers they run one at a time (a lock).
Exercised by ``pytest tests/sparring/test_serve.py``.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sparring.errors import UserInputError
from sparring.serve_backends import Backend, GenerationRequest
from sparring.serve_openai import APIError, ChatRequest, CompletionRequest, RequestSizeLimit, SamplingRequest, error_body, parse_body, sse, usage

COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


# ------------------------------------------------------------------------------ the app


def create_app(backend: Backend, *, api_key: str | None = None, max_tokens_limit: int = 512, max_request_bytes: int = 65536, model_id: str | None = None) -> FastAPI:
    """The OpenAI-compatible app for one loaded backend."""
    model_id = model_id or backend.name
    created = int(time.time())
    app = FastAPI(title="sparring serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RequestSizeLimit, limit=max_request_bytes)

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(f"{request.method} {request.url.path}: {exc.detail}", kind), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {exc}", "server_error"), status_code=500)

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), api_key.encode()):
            raise APIError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'", type="authentication_error", code="invalid_api_key")

    def sampling(req: SamplingRequest, prompt_ids: list[int], requested: int | None, default: int, param: str) -> GenerationRequest:
        if requested is not None and requested > max_tokens_limit:
            raise APIError(400, f"{param}={requested} is over this server's limit of {max_tokens_limit} tokens (--max-tokens-limit)", param=param, code="max_tokens_exceeded")
        window = backend.context_window
        room = window - len(prompt_ids)
        if room <= 0 or (requested is not None and requested > room):
            asked = f" + {requested} completion tokens" if requested is not None else ""
            raise APIError(400, f"the prompt is {len(prompt_ids)} tokens{asked}, over the model's context window of {window} tokens", param="messages" if isinstance(req, ChatRequest) else "prompt", code="context_length_exceeded")
        max_tokens = requested if requested is not None else min(default, room)
        return GenerationRequest(prompt_ids, max_tokens, req.temperature, req.top_p, req.seed, req.stops())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_id, "backend": backend.kind, "context_window": backend.context_window, "busy": backend.busy}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        check_key(request)
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "sparring"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        check_key(request)
        req: ChatRequest = parse_body(await request.body(), ChatRequest)
        messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in req.messages]
        try:
            text = await run_in_threadpool(backend.render_chat, messages)
        except Exception as exc:  # e.g. a template that requires alternating user/assistant turns
            raise APIError(400, f"the model's chat template refused these messages: {type(exc).__name__}: {exc}", param="messages") from None
        ids = await run_in_threadpool(backend.tokenize, text, chat=True)
        requested = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        gen = sampling(req, ids, requested, max_tokens_limit, "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens")
        rid, now = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if req.stream:
            def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
                return {"id": rid, "object": "chat.completion.chunk", "created": now, "model": model_id, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

            return stream_response(backend, gen, first=chunk({"role": "assistant", "content": ""}, None), piece=lambda t: chunk({"content": t}, None), last=lambda r: chunk({}, r.finish_reason), usage_chunk=(lambda u: {"id": rid, "object": "chat.completion.chunk", "created": now, "model": model_id, "choices": [], "usage": u}) if req.stream_options and req.stream_options.include_usage else None)
        result = await run_in_threadpool(backend.generate, gen)
        return {
            "id": rid, "object": "chat.completion", "created": now, "model": model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text}, "logprobs": None, "finish_reason": result.finish_reason}],
            "usage": usage(result),
        }

    @app.post("/v1/completions")
    async def completions(request: Request):
        check_key(request)
        req: CompletionRequest = parse_body(await request.body(), CompletionRequest)
        if isinstance(req.prompt, list):
            if len(req.prompt) != 1:
                raise APIError(400, f"one prompt per request is supported, got {len(req.prompt)}", param="prompt")
            prompt = req.prompt[0]
        else:
            prompt = req.prompt
        if req.echo:
            raise APIError(400, "echo is not supported by this server", param="echo")
        ids = await run_in_threadpool(backend.tokenize, prompt, chat=False)
        if not ids:
            raise APIError(400, "the prompt is empty", param="prompt")
        gen = sampling(req, ids, req.max_tokens, COMPLETIONS_DEFAULT_MAX_TOKENS, "max_tokens")
        rid, now = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(text: str, finish: str | None) -> dict[str, Any]:
            return {"id": rid, "object": "text_completion", "created": now, "model": model_id, "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}]}

        if req.stream:
            return stream_response(backend, gen, first=None, piece=lambda t: chunk(t, None), last=lambda r: chunk("", r.finish_reason), usage_chunk=(lambda u: {"id": rid, "object": "text_completion", "created": now, "model": model_id, "choices": [], "usage": u}) if req.stream_options and req.stream_options.include_usage else None)
        result = await run_in_threadpool(backend.generate, gen)
        body = chunk(result.text, result.finish_reason)
        body["usage"] = usage(result)
        return body

    return app


def stream_response(backend: Backend, gen: GenerationRequest, *, first: dict | None, piece: Any, last: Any, usage_chunk: Any) -> StreamingResponse:
    """Server-sent events: generation runs in a worker thread and hands pieces to the event loop;
    a client that disconnects cancels the generation."""

    async def events():
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def post(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (server shutting down)
                cancel.set()

        def work() -> None:
            try:
                post(("done", backend.generate(gen, lambda text: post(("piece", text)), cancel)))
            except BaseException as exc:  # reported to the client as an error event
                post(("error", exc))

        loop.run_in_executor(None, work)
        try:
            if first is not None:
                yield sse(first)
            while True:
                kind, value = await queue.get()
                if kind == "piece":
                    yield sse(piece(value))
                elif kind == "done":
                    yield sse(last(value))
                    if usage_chunk is not None:
                        yield sse(usage_chunk(usage(value)))
                    break
                else:
                    yield sse(error_body(f"generation failed: {type(value).__name__}: {value}", "server_error"))
                    break
            yield sse("[DONE]")
        finally:
            cancel.set()  # the worker stops after its current token and releases the backend

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# ------------------------------------------------------------------------------ running it


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) socket, or exit 2 when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is fine, a listener is not
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise UserInputError(f"port {port} on {host} is already in use", where="--port", fix=f"stop the program listening there, or pass another port, e.g. --port {port + 1}") from None
        raise UserInputError(f"cannot bind {host}:{port}: {exc.strerror}", where="--host/--port", fix="use 127.0.0.1 (or 0.0.0.0 to listen on every interface) and a port from 1024 to 65535") from None
    sock.set_inheritable(True)
    return sock


def serve(model: str, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, max_tokens_limit: int = 512, max_request_bytes: int = 65536, threads: int | None = None, n_ctx: int | None = None, parallel: int = 4, log_level: str = "info") -> None:
    """Check the port, load the model, serve until Ctrl-C."""
    import uvicorn

    from sparring.serve_backends import load_backend

    if not 1 <= port <= 65535:
        raise UserInputError(f"port {port} is out of range", where="--port", fix="use a port from 1024 to 65535")
    if max_tokens_limit < 1 or max_request_bytes < 1:
        raise UserInputError("limits must be positive", where="--max-tokens-limit/--max-request-bytes", fix="pass positive numbers")
    sock = bind_socket(host, port)  # before the (slow) model load, so a taken port fails at once
    try:
        backend = load_backend(model, threads=threads, n_ctx=n_ctx, parallel=parallel)
        app = create_app(backend, api_key=api_key, max_tokens_limit=max_tokens_limit, max_request_bytes=max_request_bytes, model_id=model)
        shown = f"[{host}]" if ":" in host else host
        print(f"sparring serve: {model} ({backend.kind}, context {backend.context_window} tokens) at http://{shown}:{port}/v1" + (" (API key required)" if api_key else ""), flush=True)
        if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
            print(f"warning: listening on {host} without --api-key: anyone who can reach this machine can use the model", flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5)).run(sockets=[sock])
    finally:
        sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerProcess:
    """``sparring serve MODEL`` as a child process on a free port, stopped on exit (the benchmark
    and the Q/A recipe talk to the real server this way)::

        with ServerProcess("model-q8_0.gguf", api_key="k") as server:
            httpx.post(f"{server.url}/v1/completions", headers=server.headers, json={...})
    """

    def __init__(self, model: str | Path, *, api_key: str | None = None, threads: int | None = None, extra_args: list[str] | None = None, log_path: str | Path | None = None, startup_timeout_s: float = 600):
        self.model, self.api_key, self.startup_timeout_s = str(model), api_key, startup_timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.cmd = [sys.executable, "-m", "sparring", "serve", self.model, "--port", str(self.port), *(extra_args or [])]
        if threads:
            self.cmd += ["--threads", str(threads)]
        self.env = {**__import__("os").environ, **({"SPARRING_API_KEY": api_key} if api_key else {})}  # the key stays off the command line
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self.startup_seconds = 0.0

    def log_tail(self, chars: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path and self.log_path.is_file() else ""

    def __enter__(self) -> "ServerProcess":
        import httpx

        t0 = time.perf_counter()
        log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + self.startup_timeout_s
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sparring serve {self.model} exited with code {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self.startup_seconds = time.perf_counter() - t0
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.__exit__(None, None, None)
        raise RuntimeError(f"sparring serve {self.model} did not answer /health within {self.startup_timeout_s:.0f} s: {self.log_tail()}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
