"""Ray bootstrap: an address that does not answer is a user error within the deadline (never a
hang); a cluster of a head and a second node started with ``ray start`` on this machine gets the two
rollout actors placed on both nodes (SPREAD), and its dashboard is on 127.0.0.1 behind the token.

Only processes this module starts are stopped (by process group), never a global ``ray stop``:
other Ray clusters may be running on the machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import make_rl_config

RAY = str(Path(sys.executable).with_name("ray"))
BAD_ADDRESS_SCRIPT = """
import sys, time
from sparring.config import RayConfig
from sparring.errors import UserInputError
from sparring.raycluster import start_ray
started = time.monotonic()
try:
    start_ray(RayConfig(connect_timeout_s=float(sys.argv[2])), address=sys.argv[1])
except UserInputError as exc:
    print(f"USER ERROR after {time.monotonic() - started:.1f}s: {exc}")
    sys.exit(2)
print("connected?!")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SilentServer:
    """Accepts TCP connections and never answers (a port that is open but is not Ray)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def run_bad_address(address: str, timeout_s: float) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", BAD_ADDRESS_SCRIPT, address, str(timeout_s)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, RAY_ADDRESS=""))
    return proc, time.monotonic() - started


def test_an_address_that_does_not_answer_fails_with_a_user_error_not_a_hang():
    silent = SilentServer()
    try:
        closed = f"127.0.0.1:{free_port()}"
        results = {}
        threads = [threading.Thread(target=lambda a=a: results.__setitem__(a, run_bad_address(a, 5.0))) for a in (closed, f"127.0.0.1:{silent.port}")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        silent.close()
    proc, seconds = results[closed]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing answers at Ray address" in proc.stdout and "fix:" in proc.stdout
    assert seconds < 30
    proc, seconds = results[f"127.0.0.1:{silent.port}"]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "accepts connections but is not a Ray head" in proc.stdout and "--ray-address" in proc.stdout
    assert seconds < 30


def _start_node(args: list[str], log: Path) -> subprocess.Popen:
    ports = [f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
             f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}"]
    return subprocess.Popen([RAY, "start", *args, "--num-cpus=1", "--disable-usage-stats", "--node-ip-address=127.0.0.1", "--block", *ports],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, RAY_AUTH_MODE="token", RAY_ADDRESS=""))


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM `ray start --block` (it stops its node), then kill its process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.fixture(scope="module")
def two_node_cluster(tmp_path_factory):
    import ray

    from sparring.raycluster import TOKEN_PATH, probe_port

    if ray.is_initialized():
        ray.shutdown()
    if not TOKEN_PATH.is_file():  # a fresh machine: the token a local ray.init would have written
        subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True)
    head_dir, node_dir = tmp_path_factory.mktemp("ray-head"), tmp_path_factory.mktemp("ray-node")
    port, dashboard_port = free_port(), free_port()
    procs = [_start_node(["--head", f"--port={port}", f"--temp-dir={head_dir}", "--include-dashboard=true",
                          "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}"], head_dir / "out.log")]
    try:
        assert probe_port("127.0.0.1", port, 120), (head_dir / "out.log").read_text()
        procs.append(_start_node([f"--address=127.0.0.1:{port}", f"--temp-dir={node_dir}"], node_dir / "out.log"))
        yield {"address": f"127.0.0.1:{port}", "dashboard_port": dashboard_port, "logs": [head_dir / "out.log", node_dir / "out.log"]}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        for proc in reversed(procs):
            _stop(proc)


@pytest.mark.slow
def test_rollout_actors_are_placed_on_both_nodes_of_a_two_node_cluster(two_node_cluster, tiny_base):
    import ray

    from sparring.config import RayConfig
    from sparring.envs.base import make_env
    from sparring.raycluster import TOKEN_PATH, ray_info, speaks_grpc, start_ray
    from sparring.rl.engines.base import SamplingParams
    from sparring.rl.pool import RolloutPool

    host, _, port = two_node_cluster["address"].partition(":")
    assert speaks_grpc(host, int(port), 10)  # what tells a Ray head from any open port
    info = start_ray(RayConfig(connect_timeout_s=30), address=two_node_cluster["address"])
    assert not info.local
    deadline = time.monotonic() + 180
    while sum(1 for n in ray.nodes() if n["Alive"]) < 2:
        assert time.monotonic() < deadline, "\n".join(p.read_text()[-2000:] for p in two_node_cluster["logs"])
        time.sleep(1)
    info = ray_info(local=False)
    assert info.nodes == 2 and info.dashboard_url == f"http://127.0.0.1:{two_node_cluster['dashboard_port']}"
    assert f"Ray dashboard: {info.dashboard_url} (token in {TOKEN_PATH})" in info.describe()
    url = f"{info.dashboard_url}/api/cluster_status"
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(url, timeout=30)
    assert denied.value.code in (401, 403)
    token = TOKEN_PATH.read_text().strip()
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}), timeout=30) as ok:
        assert ok.status == 200

    cfg = make_rl_config(engine="hf")
    with RolloutPool(cfg, tiny_base, num_workers=2) as pool:
        nodes = {w["node_id"] for w in pool.worker_info}
        assert len(nodes) == 2 and nodes <= {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        prompts = list(make_env("jokes").prompts("train", seed=0))[:4]
        samples = pool.generate(prompts, 2, SamplingParams(max_new_tokens=4, seed=1), step=0)
        assert len(samples) == 8 and {s.worker_id for s in samples} == {"rollout-0", "rollout-1"}
