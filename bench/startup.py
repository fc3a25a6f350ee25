"""5. Start-up: a Ray head on 127.0.0.1 (non-default ports, stopped afterwards), then
``serve run`` of serve_config.yaml (its HTTP port moved to a free one); seconds until ``/health``
shows no model 'initializing'.

    python -m bench.startup
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import API_KEY, free_port, table, wait_for_health

ROOT = Path(__file__).resolve().parents[1]


def start_ray(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``ray start --head --block`` on free ports and its own temp dir; returns once the head is up.

    ``--block``: stopping this process stops only this cluster (``ray stop`` would stop everyone's).
    ``--temp-dir``: so that others' ``ray.init()`` never finds this cluster in /tmp/ray.
    """
    port = free_port()
    ray = str(Path(sys.executable).parent / "ray")
    command = [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}"]
    command += [
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={free_port()}",
        "--disable-usage-stats",
    ]
    command += [f"--ray-client-server-port={free_port()}", f"--metrics-export-port={free_port()}"]
    command += [
        f"--dashboard-agent-listen-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
    ]
    log, temp = workdir / "ray.log", workdir / "ray"
    command.append(f"--temp-dir={temp}")
    process = subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if b"will now block forever" in log.read_bytes():
            return process, f"127.0.0.1:{port}"
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"ray start did not come up: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the process, then kill whatever is left of its own process group."""
    if process.poll() is None:
        process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def measure(workdir: Path) -> list[object]:
    config = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    http_port = free_port()
    config["http_options"]["port"] = http_port
    workdir.mkdir()
    config_path = workdir / "serve_config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    models = {
        m["id"]
        for app in config["applications"]
        if app["name"] == "api"
        for m in app["args"]["models"]
    }
    env = {
        **os.environ,
        "SAPHENEIA_API_KEYS": API_KEY,
        "SAPHENEIA_DATA_DIR": str(workdir / "data"),
        "SAPHENEIA_STATE_DIR": str(workdir / "state"),
        "HF_HUB_OFFLINE": "1",
    }
    (workdir / "data").mkdir(exist_ok=True)
    started = time.monotonic()
    head, address = start_ray(env, workdir)
    ray_s = time.monotonic() - started
    if b"Token authentication is enabled" in (workdir / "ray.log").read_bytes():
        # ray start turns token auth on when ~/.ray/auth_token exists; its clients must opt in.
        env["RAY_AUTH_MODE"] = "token"
    serve_log = (workdir / "serve.log").open("wb")
    serve = subprocess.Popen(
        [str(Path(sys.executable).parent / "serve"), "run", str(config_path)],
        cwd=ROOT,
        env={**env, "RAY_ADDRESS": address},
        stdout=serve_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    serve_started = time.monotonic()
    try:
        statuses = wait_for_health(f"http://127.0.0.1:{http_port}", models, timeout_s=180)
        outcome = ", ".join(f"{m}: {s}" for m, s in sorted(statuses.items()))
    except TimeoutError as error:
        outcome = f"not ready after 180 s ({str(error)[:300]})"
    ready = time.monotonic()
    stop(serve, signal.SIGINT)
    stop(head)
    return [ray_s, ready - serve_started, ready - started, outcome]


def run(quick: bool) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for attempt in range(1 if quick else 2):
            rows.append([attempt + 1, *measure(Path(directory) / str(attempt))])
    return "\n".join(
        [
            "## 5. Start-up",
            "",
            "`ray start --head --node-ip-address=127.0.0.1` (free ports, dashboard on) then "
            "`serve run serve_config.yaml` with RAY_ADDRESS (HTTP port moved to a free one), until "
            "`/health` lists every model of the api app and none is 'initializing'. Offline, so "
            "TimesFM reports 'unavailable'. Ray detects the machine's CPUs.",
            "",
            table(
                ["attempt", "ray start s", "serve run -> ready s", "total s", "model statuses"],
                rows,
            ),
        ]
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv))
