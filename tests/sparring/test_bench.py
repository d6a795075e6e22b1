"""`sparring bench`: discovery of the benchmark modules, their entry convention, and a real
`sparring bench serve --quick` (a tiny GGUF exported through the exporters, served by the real
`sparring serve` process, 4 concurrent httpx clients) writing bench.json + bench.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sparring.bench.suite import discover, entry_of, first_json_object, run_suite
from sparring.errors import UserInputError


def test_discovery_lists_benchmark_modules_but_not_the_suite():
    found = discover()
    assert "serve" in found and "chess_reward" in found and "suite" not in found
    assert found["serve"].startswith("Benchmark: `sparring serve`")


def test_entry_convention_is_read_from_the_source():
    assert entry_of("serve") == {"kind": "run"}
    assert entry_of("chess_reward") == {"kind": "module", "quick_args": None}


def test_first_json_object_skips_log_lines_and_stops_before_the_table():
    text = 'loading...\n{"a": {"b": 1}, "c": [1, 2]}\n\n| x | y |\n|---|---|\n'
    assert first_json_object(text) == {"a": {"b": 1}, "c": [1, 2]}
    assert first_json_object("no json here {") is None


def test_unknown_names_are_refused_and_modules_without_a_quick_mode_are_skipped(tmp_path):
    with pytest.raises(UserInputError, match="unknown benchmark"):
        run_suite(["nope"], out_dir=tmp_path)
    suite = run_suite(["chess_reward"], quick=True, out_dir=tmp_path)
    (only,) = suite["benchmarks"]
    assert only["skipped"].startswith("no quick mode")
    assert "skipped: no quick mode" in (tmp_path / "bench.md").read_text()


def test_a_reused_sft_run_contributes_the_stage_time_its_manifest_recorded(tmp_path):
    from sparring.bench.rl_jokes import recorded_sft_seconds

    (tmp_path / "manifest.json").write_text(json.dumps({"stages": {"sft": {"status": "done", "seconds": 557.68}}}))
    assert recorded_sft_seconds(tmp_path) == 557.68
    (tmp_path / "manifest.json").write_text(json.dumps({"stages": {}}))
    assert recorded_sft_seconds(tmp_path) is None
    assert recorded_sft_seconds(tmp_path / "missing") is None


def test_bench_rl_rounds_report_the_mean_ratio_and_the_median_rounds_sides():
    from sparring.bench.rl import markdown, summarize_rounds

    def side(sps: float) -> dict:
        return {"samples_per_s": sps, "step_split_s": {"step_s": 16 / sps}, "completion_tokens_mean": 30, "reward_mean": 0.4,
                "startup_and_outputs_seconds": 9.0}

    rounds = [{"trl": side(1.0), "sparring": side(2.8)}, {"trl": side(1.0), "sparring": side(3.3)},
              {"trl": side(1.0), "sparring": side(3.1)}, {"trl": {"error": "exit 1"}, "sparring": side(3.0)}]
    r = summarize_rounds(rounds)
    assert [x["ratio"] for x in r["rounds"]] == [2.8, 3.3, 3.1, None]
    assert r["ratios"] == {"sparring_vs_trl_grpo": 3.07, "min": 2.8, "max": 3.3}
    assert r["targets"]["ratio_met"] and r["targets"]["rounds_met"] == 2 and r["targets"]["rounds"] == 4
    assert r["sparring"]["samples_per_s"] == 3.1  # the median of the measured rounds
    r.update(steps=4, batch_size=16, num_generations=4, max_new_tokens=48, beta=0.02, precision="bf16", recipe="configs/jokes.yaml",
             load_before=1.0, load_after=1.0)
    assert "mean of 4 rounds: 2.8x, 3.3x, 3.1x, failed (2 reach it" in markdown(r)


@pytest.mark.slow
def test_sparring_bench_serve_quick_writes_json_and_markdown(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "sparring", "bench", "serve", "--quick", "--out", str(out), "--timeout", "400"],
                          capture_output=True, text=True, timeout=450, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    suite = json.loads((out / "bench.json").read_text())
    hw = suite["machine"]["hardware"]
    assert hw["cpu_count"] >= 1 and "ram_gb" in hw and suite["machine"]["packages"]["llama_cpp_python"]
    (serve,) = suite["benchmarks"]
    assert serve["ok"] and serve["entry"] == "run(quick=True)" and serve["peak_rss_mb"] > 50
    r = serve["result"]
    assert r["concurrent"]["clients"] == 4 and r["concurrent"]["requests"] == 8
    assert r["concurrent"]["requests_per_s"] > 0 and r["concurrent"]["latency_p95_s"] >= r["concurrent"]["latency_p50_s"]
    assert set(r["ratios"]) == {"requests_per_s_batched_vs_parallel_1", "requests_per_s_4_clients_vs_1", "p50_latency_4_clients_vs_1", "served_vs_raw_llamacpp_tokens_per_s"}
    assert r["concurrent_parallel_1"]["clients"] == 4 and r["concurrent_parallel_1"]["requests_per_s"] > 0
    md = (out / "bench.md").read_text()
    assert "| serve | ok |" in md and "Ratios (measured in the same run)" in md and "CPU:" in md and "4 concurrent clients" in md
