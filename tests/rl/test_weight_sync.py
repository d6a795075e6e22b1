"""Verified weight sync with the llamacpp engine (LoRA adapter GGUF hot-swapped in every actor):
each worker reports the new version and checksum and its probe agrees with the learner; a worker
left on the previous version is caught — by version and by the logprob probe — and stops the run."""

from __future__ import annotations

import pytest
import ray

from sparring.rl.policy_sync import Probe, ProbeCheck, compare_probes, learner_probe, make_policy_update, probe_gap
from sparring.rl.pool import RolloutPool, StalePolicyError

from .conftest import lora_policy, make_rl_config


@pytest.fixture(scope="module")
def pool(ray_cluster, tiny_base):
    with RolloutPool(make_rl_config(engine="llamacpp"), tiny_base) as p:
        yield p


@pytest.fixture(scope="module")
def versions(pool, tiny_base, tiny_tokenizer, tmp_path_factory):
    """Three policy versions: (update, learner probe) each."""
    work = tmp_path_factory.mktemp("policy")
    out = {}
    for version in (1, 2, 3):
        policy = lora_policy(tiny_base, seed=100 + version)
        out[version] = (make_policy_update(policy, tiny_tokenizer, version, "llamacpp", work),
                        learner_probe(policy, tiny_tokenizer, pool.probe_ids, pool.probe_start))
    return out


def test_every_worker_reports_the_new_version_checksum_and_a_matching_probe(pool, versions):
    tolerance = pool.cfg.rl.probe_tolerance
    for version in (1, 2):
        update, probe = versions[version]
        seen: list[int] = []

        def learner_side(probe=probe):  # a callable probe is computed while the workers load
            seen.extend(r.version for r in ray.get([w.report.remote() for w in pool.workers]))
            return probe

        reports = pool.sync(version, update, learner_side if version == 2 else probe)
        if version == 2:
            assert seen == [2, 2]  # both loads were already dispatched (queued ahead of report) when the learner probed
        assert len(reports) == 2 and {r.worker_id for r in reports} == {"rollout-0", "rollout-1"}
        for r in reports:
            assert r.version == version and r.checksum == update.checksum
            assert r.probe_gap is not None and r.probe_gap < tolerance
    # the probe tells consecutive versions apart: a stale worker would exceed the tolerance
    assert pool.last_sync_stats["probe_separation"] > tolerance
    assert pool.last_sync_stats["kind"] == "gguf" and pool.version == 2


def test_a_worker_left_on_the_previous_version_is_caught_by_version_and_probe(pool, versions):
    update, probe = versions[3]
    ref = ray.put(update)
    ray.get(pool.workers[1].load_policy.remote(3, ref))  # rollout-0 skips this load
    gaps = pool.probe_gaps(probe)
    tolerance = pool.cfg.rl.probe_tolerance
    assert gaps["rollout-1"] < tolerance < gaps["rollout-0"]  # the probe alone exposes the stale one
    with pytest.raises(StalePolicyError) as caught:
        pool.verify(3, update.checksum, probe)
    err = caught.value
    assert err.worker_id == "rollout-0" and err.version == 2 and err.gap == pytest.approx(gaps["rollout-0"])
    message = str(err)
    assert "rollout-0" in message and "reports policy version 2 (learner: 3)" in message and "probe logprob gap" in message
    assert "rollout-1" not in message


def test_sync_stops_when_the_engine_numerics_differ_beyond_tolerance(pool, versions):
    update, probe = versions[3]
    shifted = Probe([lp - 0.5 for lp in probe.policy], probe.base)  # a learner whose policy disagrees with every worker
    assert probe_gap(shifted.policy, probe.policy) == pytest.approx(0.5)
    with pytest.raises(StalePolicyError, match="probe logprob gap of the adapter's effect") as caught:
        pool.sync(3, update, shifted)
    assert caught.value.gap == pytest.approx(0.5, abs=0.01)  # 0.5 up to the engine's q8_0 numerics
    # versions and checksums were right: the probe is what stopped it
    assert all(r.version == 3 for r in ray.get([w.report.remote() for w in pool.workers]))


def test_probe_allows_the_engines_measured_numerics_but_not_a_missing_adapter_or_another_base():
    tolerance = 0.05
    learner = Probe(policy=[-1.0, -2.0, -3.0], base=[-1.5, -2.5, -2.0])
    # a q8_0-like engine: its base drifts 0.07 from the learner's, the adapter adds the same on top
    quantized = Probe(policy=[p + 0.07 for p in learner.policy], base=[b + 0.07 for b in learner.base])
    check = compare_probes(quantized, learner)
    assert check.gap == pytest.approx(0.07) and check.base_noise == pytest.approx(0.07) and check.delta_gap == pytest.approx(0.0)
    assert check.passes(tolerance)  # 0.07 > tolerance, but it is the engine's own numerics
    # the engine's errors on the policy and base probes need not cancel: +0.07 on one, -0.05 on the
    # other is a delta gap of 0.12, within tolerance + 2 x the 0.05 base noise
    uneven = Probe(policy=[p + 0.07 for p in learner.policy], base=[b - 0.05 for b in learner.base])
    check = compare_probes(uneven, learner)
    assert check.delta_gap == pytest.approx(0.12) and check.passes(tolerance)
    assert not compare_probes(uneven, learner).passes(0.01)  # 0.12 > 0.01 + 0.10
    # the adapter never took effect: the worker's policy is its base
    missing = Probe(policy=list(quantized.base), base=list(quantized.base))
    problem = compare_probes(missing, learner).problem(tolerance)
    assert problem and "of the adapter's effect 0.6667" in problem
    # another base model entirely
    other = Probe(policy=[p - 1.0 for p in learner.policy], base=[b - 1.0 for b in learner.base])
    assert "base model disagrees with the learner's by 1.0000" in compare_probes(other, learner).problem(tolerance)
    # without bases (no adapter on either side) the absolute gap decides
    assert ProbeCheck(gap=0.07).problem(tolerance) and ProbeCheck(gap=0.01).passes(tolerance)
