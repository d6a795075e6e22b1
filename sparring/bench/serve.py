"""Benchmark: `sparring serve` on the q8_0 GGUF of the embedded model — requests/s and p50/p95 latency.

Issue 7's figure: 32-token completions from 4 concurrent clients.  The GGUF is exported (and
verified) through ``sparring.exporters`` once and cached; the server is the real CLI (``python -m
sparring serve MODEL``, llama.cpp backend, its own process) and the clients are httpx threads.
In the same run, in interleaved rounds, it also measures the same clients against a second server
started with ``--parallel 1`` (one request at a time: what batching gains), one client alone, and
llama.cpp on the same file without HTTP (its own generation loop, in this process), so the ratios
say what batching, concurrency and the HTTP layer change.

    python -m sparring.bench.serve [--requests 32] [--clients 4] [--max-tokens 32] [--model smollm2-135m]
                                   [--quant q8_0] [--threads N] [--out FILE]
    sparring bench serve [--quick]          # --quick: a tiny random Llama, 8 requests of 8 tokens

Prints the JSON and a markdown table.  Timings on a shared machine are noisy: the JSON records the
load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PROMPTS = ("Once upon a time, in a small village by the sea,", "The best way to learn to cook is", "Here is a short story about a robot who", "In the year 2100, cities will")


def exported_gguf(model: str, quant: str) -> Path:
    """The verified ``model-<quant>.gguf`` of ``model``, exported once into the sparring cache."""
    from sparring.exporters.base import export_model, read_verify
    from sparring.models import cache_dir

    out = cache_dir().parent / "bench" / f"{model.replace('/', '_')}-gguf"
    path = out / "gguf" / f"model-{quant}.gguf"
    if path.is_file() and read_verify(out / "gguf").get("passed"):
        return path
    export_model(model, out, formats="gguf", quants=quant)
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Tally:
    """Latencies, tokens and wall time of one way of asking, summed over the rounds."""

    def __init__(self, clients: int):
        self.clients, self.latencies, self.tokens, self.wall = clients, [], 0, 0.0

    def run(self, ask, first: int, count: int) -> None:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(self.clients) as pool:
            done = list(pool.map(ask, range(first, first + count)))
        self.wall += time.perf_counter() - t0
        self.latencies += [d[0] for d in done]
        self.tokens += sum(d[1] for d in done)

    def summary(self) -> dict[str, Any]:
        n, lat = len(self.latencies), self.latencies
        return {
            "clients": self.clients, "requests": n, "seconds": round(self.wall, 3),
            "requests_per_s": round(n / self.wall, 3), "completion_tokens_per_s": round(self.tokens / self.wall, 1),
            "completion_tokens_mean": round(self.tokens / n, 2),
            "latency_p50_s": round(percentile(lat, 0.50), 3), "latency_p95_s": round(percentile(lat, 0.95), 3),
            "latency_mean_s": round(statistics.fmean(lat), 3),
        }


def http_asker(url: str, max_tokens: int):
    import httpx

    def ask(i: int) -> tuple[float, int]:
        body = {"prompt": PROMPTS[i % len(PROMPTS)], "max_tokens": max_tokens, "temperature": 0.8, "seed": i}
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/v1/completions", json=body, timeout=600)
        r.raise_for_status()
        return time.perf_counter() - t0, r.json()["usage"]["completion_tokens"]

    return ask


def raw_asker(gguf: Path, max_tokens: int, threads: int | None):
    """The same completions straight through the llama.cpp backend in this process: no HTTP."""
    from sparring.serve_backends import GenerationRequest, load_backend

    backend = load_backend(str(gguf), threads=threads)

    def ask(i: int) -> tuple[float, int]:
        ids = backend.tokenize(PROMPTS[i % len(PROMPTS)], chat=False)
        t0 = time.perf_counter()
        res = backend.generate(GenerationRequest(ids, max_tokens, temperature=0.8, seed=i))
        return time.perf_counter() - t0, res.completion_tokens

    return ask


def measure(model: str, quant: str, requests: int, clients: int, max_tokens: int, threads: int | None, rounds: int) -> dict[str, Any]:
    """Interleaved rounds (4 clients, then 1 client, then llama.cpp without HTTP), so a change in
    the machine's load during the run hits all three alike and the ratios stay fair."""
    from sparring.serve import ServerProcess

    t0 = time.perf_counter()
    gguf = exported_gguf(model, quant)
    export_s = time.perf_counter() - t0
    raw = raw_asker(gguf, max_tokens, threads)  # idle while the server works, and the reverse
    concurrent, serial, single, direct = Tally(clients), Tally(clients), Tally(1), Tally(1)
    per_round, single_per_round = max(1, requests // rounds), max(1, requests // (2 * rounds))
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(gguf, threads=threads, log_path=Path(tmp) / "serve.log") as server, \
            ServerProcess(gguf, threads=threads, extra_args=["--parallel", "1"], log_path=Path(tmp) / "serve-serial.log") as one_at_a_time:
        startup_s = server.startup_seconds
        http, http_serial = http_asker(server.url, max_tokens), http_asker(one_at_a_time.url, max_tokens)
        for ask in (http, http_serial):  # warm-up: page the weights in
            Tally(1).run(ask, 0, 2)
        Tally(1).run(raw, 0, 1)
        for r in range(rounds):
            concurrent.run(http, r * per_round, per_round)
            serial.run(http_serial, r * per_round, per_round)
            single.run(http, r * single_per_round, single_per_round)
            direct.run(raw, r * single_per_round, single_per_round)
    concurrent, serial, single, raw = concurrent.summary(), serial.summary(), single.summary(), direct.summary()
    return {
        "model": model, "quant": quant, "gguf": str(gguf), "gguf_mb": round(gguf.stat().st_size / 1e6, 1),
        "max_tokens": max_tokens, "rounds": rounds, "export_or_cache_s": round(export_s, 1), "server_startup_s": round(startup_s, 1),
        "concurrent": concurrent, "concurrent_parallel_1": serial, "single_client": single, "raw_llamacpp": raw,
        "ratios": {
            "requests_per_s_batched_vs_parallel_1": round(concurrent["requests_per_s"] / serial["requests_per_s"], 3),
            "requests_per_s_4_clients_vs_1": round(concurrent["requests_per_s"] / single["requests_per_s"], 3),
            "p50_latency_4_clients_vs_1": round(concurrent["latency_p50_s"] / single["latency_p50_s"], 3),
            "served_vs_raw_llamacpp_tokens_per_s": round(single["completion_tokens_per_s"] / raw["completion_tokens_per_s"], 3),
        },
    }


def markdown(r: dict[str, Any]) -> str:
    c, p1, s, raw = r["concurrent"], r["concurrent_parallel_1"], r["single_client"], r["raw_llamacpp"]
    return "\n".join([
        f"| {r['model']} {r['quant']} GGUF ({r['gguf_mb']} MB), {r['max_tokens']}-token completions | requests/s | p50 latency (s) | p95 latency (s) | completion tokens/s |",
        "|---|---|---|---|---|",
        f"| sparring serve, {c['clients']} concurrent clients, {c['requests']} requests | {c['requests_per_s']} | {c['latency_p50_s']} | {c['latency_p95_s']} | {c['completion_tokens_per_s']} |",
        f"| sparring serve --parallel 1 (one at a time), {p1['clients']} concurrent clients, {p1['requests']} requests | {p1['requests_per_s']} | {p1['latency_p50_s']} | {p1['latency_p95_s']} | {p1['completion_tokens_per_s']} |",
        f"| sparring serve, 1 client, {s['requests']} requests | {s['requests_per_s']} | {s['latency_p50_s']} | {s['latency_p95_s']} | {s['completion_tokens_per_s']} |",
        f"| llama.cpp without HTTP, {raw['requests']} requests | {raw['requests_per_s']} | {raw['latency_p50_s']} | {raw['latency_p95_s']} | {raw['completion_tokens_per_s']} |",
    ]) + "\n"


def run(quick: bool = False, *, model: str | None = None, quant: str = "q8_0", requests: int | None = None, clients: int = 4, max_tokens: int | None = None, threads: int | None = None) -> dict[str, Any]:
    load_before = [round(x, 2) for x in os.getloadavg()]
    result = measure(model or ("tiny-random-llama" if quick else "smollm2-135m"), quant, requests or (8 if quick else 32), clients, max_tokens or (8 if quick else 32), threads, rounds=2 if quick else 4)
    c = result["concurrent"]
    result.update({
        "benchmark": "serve", "quick": quick, "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "summary": {"requests_per_s": c["requests_per_s"], "p50_s": c["latency_p50_s"], "p95_s": c["latency_p95_s"], "clients": c["clients"], "max_tokens": result["max_tokens"]},
    })
    result["markdown"] = markdown(result)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m", help="model to export and serve (default: the embedded SmolLM2-135M)")
    ap.add_argument("--quant", default="q8_0")
    ap.add_argument("--requests", type=int, default=32)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads of the server (default: all cores)")
    ap.add_argument("--quick", action="store_true", help="tiny random Llama, 8 requests of 8 tokens")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    a = ap.parse_args(argv)
    if a.quick:
        result = run(True, threads=a.threads)
    else:
        result = run(False, model=a.model, quant=a.quant, requests=a.requests, clients=a.clients, max_tokens=a.max_tokens, threads=a.threads)
    text = json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n", encoding="utf-8")
    print()
    print(result["markdown"])
    return result


if __name__ == "__main__":
    main()
