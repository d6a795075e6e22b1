"""The Claude joke generator with the REAL anthropic SDK against a local HTTP server speaking the
Messages API: a 429 with retry-after, a 500, a malformed reply, then good replies; every joke
through the validator; resume without repeating paid calls; missing key -> exit 2."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sparring.errors import SparringError, UserInputError
from sparring.sft.generators.claude import ClaudeSettings, generate_jokes_with_claude, parse_jokes, side_paths

# jokes the validator passes and the corpus does not hold (checked by test_the_test_jokes)
GOOD = [
    "Q: Why did the violin go to the gym?\nA: It wanted to get more string-th.",
    "Q: Why did the baker go to therapy?\nA: He kneaded to talk about his loaf life.",
    "Q: Why did the lamp feel so bright at school?\nA: It was the lightest in its class.",
    "Q: Why did the kettle get a medal?\nA: It kept its cool under pressure.",
    "Q: Why did the glacier get a promotion?\nA: It was ice-olating the competition.",
    "Q: Why did the spider buy a laptop?\nA: It wanted a better web-site.",
    "Q: Why did the octopus cross the reef?\nA: It was well-armed for the trip.",
]
CORPUS_COPY = "Q: Why did the scarecrow get promoted?\nA: He was outstanding in his field."
NO_FORMAT = "Sure! Here's a joke about cheese: it is very gouda."
NEAR_DUPLICATE = "Q: Why did the guitar go to the gym?\nA: It wanted to get more string-th."  # GOOD[0], subject swapped


def test_the_test_jokes():
    """The scripted replies mean what the tests assume (update them if the validator changes)."""
    from sparring.envs.jokes import load_reference_jokes
    from sparring.evaluators.joke_validator import validate_joke
    from sparring.evaluators.novelty import JokeIndex

    corpus = JokeIndex.from_pairs(load_reference_jokes("builtin"))
    for joke in GOOD + [NEAR_DUPLICATE]:
        assert validate_joke(joke, corpus=corpus).passed, joke
    assert validate_joke(CORPUS_COPY, corpus=corpus).failed_rules == ["novelty"]
    assert "format" in validate_joke(NO_FORMAT, corpus=corpus).failed_rules


class MessagesServer:
    """A scripted Messages API: each request takes the next step ("429", "500", "malformed",
    "401", or a list of joke texts answered one per requested topic)."""

    def __init__(self, script):
        self.script = list(script)
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                key = self.headers.get("x-api-key") or (self.headers.get("authorization") or "").removeprefix("Bearer ")
                server.requests.append({"path": self.path, "body": body, "key": key})
                step = server.script.pop(0) if server.script else "500"
                if step == "429":
                    self._send(429, {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}, {"retry-after": "0.25"})
                elif step == "500":
                    self._send(500, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
                elif step == "401":
                    self._send(401, {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}})
                elif step == "malformed":
                    raw = b'{"id": "msg_x", "type": "message", "content": [{"type": "te'
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                else:
                    topics = re.findall(r"^- (.+)$", body["messages"][0]["content"], re.MULTILINE)
                    text = "\n\n".join(f"Topic: {t}\n{j}" for t, j in zip(topics, step))
                    self._send(200, {
                        "id": f"msg_{len(server.requests)}", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": 100, "output_tokens": 40},
                    })

            def _send(self, code, obj, headers=None):
                raw = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def settings(url: str, count: int, **kw) -> ClaudeSettings:
    return ClaudeSettings(count=count, batch_size=4, few_shot=2, seed=7, base_url=url, backoff_base_s=0.01, **kw)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


def test_retries_validates_and_resumes_without_repeating_calls(tmp_path: Path, key):
    out = tmp_path / "jokes.jsonl"
    slept: list[float] = []
    script = ["429", "500", "malformed",
              [GOOD[0], NO_FORMAT, GOOD[1], CORPUS_COPY],
              [NEAR_DUPLICATE, GOOD[2], GOOD[3], GOOD[4]]]
    with MessagesServer(script) as server:
        summary = generate_jokes_with_claude(out, settings(server.url, 5, temperature=0.9), progress=False, sleep=slept.append)
        assert len(server.requests) == 5 and server.requests[0]["key"] == "test-key"
        assert server.requests[0]["body"]["temperature"] == 0.9 and server.requests[0]["body"]["system"]
        assert server.requests[0]["path"] == "/v1/messages"
        assert slept[0] == pytest.approx(0.25)  # retry-after respected
        assert len(slept) == 3
        assert (summary["calls"], summary["retries"], summary["batches"]) == (5, 3, 2)
        assert (summary["accepted"], summary["rejected"]) == (5, 3)
        assert summary["input_tokens"] == 200 and summary["output_tokens"] == 80
        accepted = rows(out)
        assert [r["messages"][-1]["content"] for r in accepted] == [GOOD[0], GOOD[1], GOOD[2], GOOD[3], GOOD[4]]
        first = accepted[0]
        assert first["messages"][0]["role"] == "system" and first["messages"][-2]["content"].startswith("Tell me a dad joke about ")
        assert first["meta"]["source"] == "anthropic" and first["meta"]["batch"] == 0
        rejects_path, progress_path = side_paths(out)
        reasons = {r["text"]: r["failed"] for r in rows(rejects_path)}
        assert "format" in reasons[NO_FORMAT] and "novelty" in reasons[CORPUS_COPY] and reasons[NEAR_DUPLICATE] == ["near_duplicate"]
        assert summary["rejects_by_rule"]["near_duplicate"] == 1

        # the same command again: nothing left to do, no call made
        again = generate_jokes_with_claude(out, settings(server.url, 5, temperature=0.9), progress=False, sleep=slept.append)
        assert len(server.requests) == 5 and again["accepted"] == 5 and again["calls"] == 5
        # asking for more continues at batch 2, and batch 2 asks for the same topics a fresh run would
        server.script = [[GOOD[5], GOOD[6]]]
        more = generate_jokes_with_claude(out, settings(server.url, 7), progress=False, sleep=slept.append)
        assert len(server.requests) == 6 and more["accepted"] == 7 and more["batches"] == 3
        assert [r["meta"]["batch"] for r in rows(out)][-2:] == [2, 2]
        assert len(rows(progress_path)) == 4  # settings header + 3 batches


def test_interrupted_run_resumes_at_the_failed_batch(tmp_path: Path, key):
    out = tmp_path / "jokes.jsonl"
    with MessagesServer([[GOOD[0], GOOD[1]], "500", "500"]) as server:
        with pytest.raises(SparringError, match="Rerun the same command"):
            generate_jokes_with_claude(out, settings(server.url, 4, max_retries=1), progress=False, sleep=lambda s: None)
        assert len(rows(out)) == 2
        with open(out, "a") as f:  # a crash mid-write leaves half a line
            f.write('{"messages": [{"role": "us')
        topics_of = lambda req: re.findall(r"^- (.+)$", req["body"]["messages"][0]["content"], re.M)  # noqa: E731
        failed_topics = topics_of(server.requests[1])
        server.script = [[GOOD[2], GOOD[3]]]
        summary = generate_jokes_with_claude(out, settings(server.url, 4), progress=False, sleep=lambda s: None)
        assert topics_of(server.requests[-1]) == failed_topics  # batch 1 again, batch 0 not repeated
        assert summary["accepted"] == 4 and len(rows(out)) == 4


def test_changed_settings_on_resume_are_refused(tmp_path: Path, key):
    out = tmp_path / "jokes.jsonl"
    with MessagesServer([[GOOD[0]]]) as server:
        generate_jokes_with_claude(out, settings(server.url, 1), progress=False)
        with pytest.raises(UserInputError, match="other settings"):
            generate_jokes_with_claude(out, ClaudeSettings(count=2, seed=8, base_url=server.url), progress=False)


def test_missing_api_key_is_exit_2(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from sparring.cli import app

    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(UserInputError) as err:
        generate_jokes_with_claude(tmp_path / "j.jsonl", ClaudeSettings(count=1), progress=False)
    assert err.value.exit_code == 2 and "ANTHROPIC_API_KEY" in str(err.value) and "--provider builtin" in str(err.value)
    result = CliRunner().invoke(app, ["data", "generate", "jokes", "--provider", "anthropic", "--out", str(tmp_path / "j.jsonl")])
    assert isinstance(result.exception, UserInputError) and result.exception.exit_code == 2


def test_rejected_key_is_exit_2(tmp_path: Path, key):
    with MessagesServer(["401"]) as server:
        with pytest.raises(UserInputError) as err:
            generate_jokes_with_claude(tmp_path / "j.jsonl", settings(server.url, 1), progress=False)
    assert err.value.exit_code == 2 and "401" in str(err.value)


def test_parse_jokes_with_and_without_topic_lines():
    text = "Topic: soup\nQ: Why?\nA: Because.\n\nQ: What?\nA: That.\nq. Who?\na. Me.\n\nTopic: jam\nSure! Here you go."
    assert parse_jokes(text, ["soup", "tea", "cake", "jam"]) == [
        ("soup", "Q: Why?\nA: Because."), ("tea", "Q: What?\nA: That."), ("cake", "Q: Who?\nA: Me."), ("jam", "Sure! Here you go."),
    ]
    assert parse_jokes("", ["x"]) == []
