"""The OpenAI wire format of `sparring serve`: request models, JSON errors, the body-size limit.

    req = parse_body(raw_bytes, ChatRequest)     # or a 400 APIError naming the field
    raise APIError(401, "missing or invalid API key", type="authentication_error")

Errors have OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; a request model
accepts OpenAI's fields and refuses, with a 400 naming the field, the ones this server does not
implement (tools, logprobs, n > 1...).  ``RequestSizeLimit`` answers 413 before the app reads a
body over the limit (a declared Content-Length or a chunked body).
Exercised by ``pytest tests/sparring/test_serve.py``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse

from sparring.serve_backends import GenerationResult


class APIError(Exception):
    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(error_body(self.message, self.type, self.param, self.code), status_code=self.status, headers=headers)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class SamplingRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1)

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        if len(stops) > 4:
            raise APIError(400, f"at most 4 stop sequences are allowed, got {len(stops)}", param="stop")
        return stops


class ChatRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(SamplingRequest):
    prompt: str | list[str]
    echo: bool = False


def refuse_unsupported(data: dict[str, Any]) -> None:
    """OpenAI features this server does not have: a 400 naming the field, not a silent ignore."""
    checks = {
        "tools": bool(data.get("tools")), "functions": bool(data.get("functions")),
        "logprobs": bool(data.get("logprobs")), "best_of": (data.get("best_of") or 1) != 1, "suffix": bool(data.get("suffix")),
    }
    for key, used in checks.items():
        if used:
            raise APIError(400, f"{key} is not supported by this server", param=key)


def parse_body(raw: bytes, model: type[BaseModel]) -> Any:
    """The request body as ``model``, or a 400 naming the problem and the field."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, got {type(data).__name__}")
    try:
        req = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        what = "missing required field" if first["type"] == "missing" else first["msg"]
        raise APIError(400, f"{param}: {what}" if param else what, param=param) from None
    if req.n != 1:
        raise APIError(400, "only n=1 is supported", param="n")
    refuse_unsupported(data)
    return req


class RequestSizeLimit:
    """ASGI middleware: a body over ``limit`` bytes gets 413 before the app reads it."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._reject(send)
        if length is not None:
            return await self.app(scope, receive, send)
        body, messages = 0, []  # chunked: read it all (up to the limit), then replay it
        while True:
            message = await receive()
            messages.append(message)
            body += len(message.get("body", b""))
            if body > self.limit:
                return await self._reject(send)
            if message["type"] != "http.request" or not message.get("more_body"):
                break

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)

    async def _reject(self, send: Any) -> None:
        body = json.dumps(error_body(f"the request body is larger than this server's limit of {self.limit} bytes (--max-request-bytes)", "invalid_request_error", code="request_too_large")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def usage(result: GenerationResult) -> dict[str, int]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens, "total_tokens": result.prompt_tokens + result.completion_tokens}


def sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False) if not isinstance(data, str) else data}\n\n".encode("utf-8")
