"""Ray bootstrap: a local cluster by default, or join one started with ``ray start``.

    info = start_ray(cfg.ray)                            # local: num_cpus from config, dashboard on 127.0.0.1
    info = start_ray(cfg.ray, address="auto")            # the cluster `ray start` left on this machine
    info = start_ray(cfg.ray, address="10.0.0.5:6379")   # a remote head
    info.address, info.dashboard_url, info.nodes

A cluster address that does not answer is a ``UserInputError`` within ``ray.connect_timeout_s``
(at most 30 s): the GCS port is probed with a socket, then asked for an HTTP/2 (gRPC) handshake, so
a closed port, a dead host and an open port that is not Ray all fail fast.  Once a real head has
answered, ``ray.init`` runs under its own, longer deadline (``JOIN_TIMEOUT_S``) — never a hang.
Ray 2.60 protects the dashboard with a token (``~/.ray/auth_token``, written when a local cluster
starts); ``describe`` says where it is.  Ray's own logging is kept at WARNING; worker output still
reaches the driver (``log_to_driver``).

Exercised by ``pytest tests/rl/test_ray_cluster.py``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.errors import UserInputError

TOKEN_PATH = Path.home() / ".ray" / "auth_token"
MAX_CONNECT_S = 30.0
JOIN_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class RayInfo:
    """Where the driver is connected."""

    address: str
    dashboard_url: str | None
    nodes: int
    local: bool
    token_path: str | None = None

    def describe(self) -> str:
        where = "local Ray cluster" if self.local else f"Ray cluster at {self.address}"
        lines = [f"{where}: {self.nodes} node(s)"]
        if self.dashboard_url:
            token = f" (token in {self.token_path})" if self.token_path else ""
            lines.append(f"Ray dashboard: {self.dashboard_url}{token}")
        return "\n".join(lines)


def _quiet_env() -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")


def _init_kwargs(ray_cfg: Any) -> dict[str, Any]:
    return {"log_to_driver": True, "logging_level": logging.WARNING, "configure_logging": True}


def dashboard_url() -> str | None:
    """The dashboard of the connected cluster (read live: a joining driver may connect before the
    head's dashboard has registered itself)."""
    url = None
    try:
        from ray._private.worker import get_dashboard_url

        url = get_dashboard_url() or None
    except Exception:  # noqa: BLE001 - not connected, or an older Ray
        pass
    if not url:
        try:
            from ray._private.services import get_webui_url_from_internal_kv

            url = get_webui_url_from_internal_kv() or None
        except Exception:  # noqa: BLE001
            url = None
    if isinstance(url, bytes):
        url = url.decode()
    return url


def ray_info(local: bool) -> RayInfo:
    """Where this process is connected now (``local``: whether this process started the cluster)."""
    return _info(local)


def _info(local: bool) -> RayInfo:
    import ray

    gcs = ray.get_runtime_context().gcs_address
    url = dashboard_url()
    if url and not url.startswith("http"):
        url = f"http://{url}"
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    token = str(TOKEN_PATH) if TOKEN_PATH.is_file() else None
    return RayInfo(address=gcs, dashboard_url=url, nodes=nodes, local=local, token_path=token)


def _resolve(address: str) -> tuple[str, str, int]:
    """``auto`` or ``host:port`` -> ``(host:port, host, port)``; a bad one is a UserInputError."""
    from ray._private.services import canonicalize_bootstrap_address_or_die

    try:
        resolved = canonicalize_bootstrap_address_or_die(address)
    except (ConnectionError, ValueError) as exc:
        raise UserInputError(
            f"no Ray cluster found at {address!r}: {str(exc).splitlines()[0]}",
            where="--ray-address",
            fix="start one with `ray start --head`, pass its host:port, or omit --ray-address to start a local cluster",
        ) from None
    # probe what the user named (Ray rewrites 127.0.0.1 to this node's IP, which a server bound to
    # loopback does not answer on); "auto" has only Ray's answer
    host, _, port_text = (resolved if address.strip().lower() == "auto" else address.strip()).rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise UserInputError(f"Ray address {address!r} has no port", where="--ray-address", fix="use host:port, e.g. 127.0.0.1:6379, or auto") from None
    return resolved, host.strip("[]"), port


def probe_port(host: str, port: int, timeout_s: float) -> bool:
    """True when something accepts a TCP connection at host:port within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            with socket.create_connection((host, port), timeout=min(2.0, left)):
                return True
        except OSError:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


class _NoThreadSignalWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _use_token_if_present() -> None:
    """Joining a cluster: send the token when one is available (a `ray start` head enables token
    auth whenever ~/.ray/auth_token exists, but a driver joining it does not switch it on itself)."""
    if os.environ.get("RAY_AUTH_MODE") is None and (TOKEN_PATH.is_file() or os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_MODE"] = "token"
        try:
            from ray._raylet import Config

            Config.initialize("")
        except Exception:  # noqa: BLE001 - older Ray without token auth
            pass


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # + empty SETTINGS


def speaks_grpc(host: str, port: int, timeout_s: float) -> bool:
    """True when host:port answers an HTTP/2 preface with a SETTINGS frame (a gRPC server such as
    Ray's GCS) within ``timeout_s``; an open port that stays silent or speaks something else is not."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            conn.sendall(HTTP2_PREFACE)
            header = b""
            while len(header) < 9:
                chunk = conn.recv(9 - len(header))
                if not chunk:
                    return False
                header += chunk
            return header[3] == 0x04  # frame type SETTINGS
    except OSError:
        return False


def _init_with_deadline(kwargs: dict[str, Any], timeout_s: float, address: str) -> None:
    import ray

    outcome: dict[str, BaseException | None] = {}

    def target() -> None:
        try:
            ray.init(**kwargs)
            outcome["error"] = None
        except BaseException as exc:  # noqa: BLE001 - handed to the caller thread
            outcome["error"] = exc

    worker_logger = logging.getLogger("ray._private.worker")
    worker_logger.addFilter(_NoThreadSignalWarning())  # ray.init off the main thread says so; harmless here
    thread = threading.Thread(target=target, name="ray-init", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise UserInputError(
            f"the Ray head at {address} answered but joining it did not finish within {timeout_s:.0f} s",
            where="--ray-address",
            fix="check that the head runs the same Ray and Python versions and that this machine can reach its other ports (raylet, object store)",
        )
    error = outcome.get("error")
    if error is not None and ("AuthenticationError" in repr(error) or "InvalidAuthToken" in str(error) or "AuthenticationError" in repr(error.__cause__)):
        raise UserInputError(
            f"the Ray cluster at {address} rejected this process's authentication token",
            where="--ray-address",
            fix=f"copy the cluster's token to {TOKEN_PATH} (or set RAY_AUTH_TOKEN); `ray get-auth-token` prints it on the head",
        ) from error
    if error is not None:
        raise UserInputError(
            f"could not join the Ray cluster at {address}: {str(outcome['error']).splitlines()[0]}",
            where="--ray-address",
            fix="check the address and that the cluster runs the same Ray and Python versions",
        ) from outcome["error"]


def start_ray(ray_cfg: Any, *, address: str | None = None) -> RayInfo:
    """Connect this process to Ray (see module docstring); a no-op when already connected."""
    import ray

    _quiet_env()
    address = address or ray_cfg.address
    if ray.is_initialized():
        return _info(local=not address)
    if not address:
        kwargs = _init_kwargs(ray_cfg) | {
            "num_cpus": ray_cfg.num_cpus,
            "num_gpus": ray_cfg.num_gpus,
            "include_dashboard": bool(ray_cfg.dashboard),
            "dashboard_host": "127.0.0.1",
        }
        ray.init(**kwargs)
        return _info(local=True)
    timeout_s = min(float(ray_cfg.connect_timeout_s), MAX_CONNECT_S)
    started = time.monotonic()
    resolved, host, port = _resolve(address)
    if not probe_port(host, port, timeout_s):
        raise UserInputError(
            f"nothing answers at Ray address {address}" + (f" ({resolved})" if resolved != address else "") + f" (waited {timeout_s:.0f} s)",
            where="--ray-address",
            fix="start the head with `ray start --head --port=PORT` and pass host:PORT, or omit --ray-address for a local cluster",
        )
    left = max(2.0, timeout_s - (time.monotonic() - started))
    if not os.environ.get("RAY_USE_TLS") and not speaks_grpc(host, port, left):
        raise UserInputError(
            f"{address} accepts connections but is not a Ray head (no gRPC answer within {left:.0f} s)",
            where="--ray-address",
            fix="pass the head's GCS address (`ray start --head --port=PORT` prints it; 6379 by default), or omit --ray-address",
        )
    _use_token_if_present()
    # a Ray head answered: joining it may take a while on a loaded machine, so it gets its own deadline
    _init_with_deadline(_init_kwargs(ray_cfg) | {"address": resolved}, JOIN_TIMEOUT_S, resolved)
    return _info(local=False)


def stop_ray() -> None:
    """Disconnect (and stop the cluster when this process started it)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
