"""The Ray head that `make run` and the Docker image start: token auth holds, everything on loopback.

This starts its own head (not the session's Serve instance): the point is to check the exact command
line of scripts/ray_head.sh. It gets its own temp dir and ports, and only its own processes are
stopped (never `ray stop`, which stops every Ray instance on the machine).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAD = ROOT / "scripts" / "ray_head.sh"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def head_env(state_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAY_AUTH", "RAY_ADDRESS", "SAPHENEIA_STATE_DIR"))
    }
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env["SAPHENEIA_STATE_DIR"] = str(state_dir)
    return env


def processes_of(temp_dir: str) -> list[psutil.Process]:
    """The head's processes: those started with our temp dir on their command line, and theirs."""
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        if any(temp_dir in arg for arg in proc.info["cmdline"] or []):
            found[proc.pid] = proc
            with contextlib.suppress(psutil.NoSuchProcess):
                found.update({child.pid: child for child in proc.children(recursive=True)})
    return list(found.values())


def stop(temp_dir: str) -> None:
    for _ in range(2):  # a second pass for anything a dying raylet started meanwhile
        procs = processes_of(temp_dir)
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@pytest.fixture
def head() -> Iterator[tuple[str, Path, str]]:
    """(dashboard URL, token file, temp dir) of a head started by scripts/ray_head.sh."""
    # A short path: Ray's unix sockets live under the temp dir and their names are length-limited.
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    state_dir = Path(temp_dir) / "state"
    dashboard_port = free_port()
    env = head_env(state_dir) | {
        "RAY_HEAD_PORT": str(free_port()),
        "RAY_DASHBOARD_PORT": str(dashboard_port),
    }
    # Every port that otherwise has a fixed default, so that another Ray instance never collides.
    ports = {
        "--ray-client-server-port": free_port(),
        "--dashboard-agent-listen-port": free_port(),
        "--dashboard-agent-grpc-port": free_port(),
        "--runtime-env-agent-port": free_port(),
        "--metrics-export-port": free_port(),
    }
    args = [f"--temp-dir={temp_dir}/ray", "--num-cpus=1"] + [f"{k}={v}" for k, v in ports.items()]
    try:
        subprocess.run(
            [str(HEAD), *args], env=env, check=True, timeout=60, capture_output=True, text=True
        )
        yield f"http://127.0.0.1:{dashboard_port}", state_dir / "ray_auth_token", temp_dir
    finally:
        stop(temp_dir)
        subprocess.run(["rm", "-rf", temp_dir], check=False)


@pytest.mark.timeout(90)
def test_jobs_api_refuses_a_job_without_the_token_and_listens_on_loopback_only(
    head: tuple[str, Path, str],
) -> None:
    url, token_file, temp_dir = head
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    assert len(token) >= 32
    job = {"entrypoint": "sleep 30"}
    with httpx.Client(base_url=url, timeout=20) as client:
        assert client.post("/api/jobs/", json=job).status_code == 401
        wrong = {"Authorization": "Bearer " + "0" * len(token)}
        assert client.post("/api/jobs/", json=job, headers=wrong).status_code == 403
        assert client.get("/api/jobs/").status_code == 401  # nor can it list jobs or read logs
        auth = {"Authorization": f"Bearer {token}"}
        accepted = client.post("/api/jobs/", json=job, headers=auth)
        assert accepted.status_code == 200, accepted.text
        job_id = accepted.json()["submission_id"]
        assert client.post(f"/api/jobs/{job_id}/stop", headers=auth).status_code == 200

    listening = set()
    for proc in processes_of(temp_dir):
        with contextlib.suppress(psutil.NoSuchProcess):
            listening |= {
                (conn.laddr.ip, conn.laddr.port)
                for conn in proc.net_connections("inet")
                if conn.status == psutil.CONN_LISTEN
            }
    assert listening and {ip for ip, _ in listening} <= LOOPBACK, listening


def test_the_head_refuses_to_start_without_token_auth(tmp_path: Path) -> None:
    env = head_env(tmp_path) | {"RAY_AUTH_MODE": "disabled"}
    result = subprocess.run([str(HEAD)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "only starts with token authentication" in result.stderr
    assert not (tmp_path / "ray_auth_token").exists()


def test_an_existing_token_is_kept_and_made_owner_only(tmp_path: Path) -> None:
    token_file = tmp_path / "ray_auth_token"
    token_file.write_text("a" * 64 + "\n")
    token_file.chmod(0o644)
    script = f". {ROOT / 'scripts' / 'ray_auth.sh'} && env"
    result = subprocess.run(
        ["bash", "-c", script], env=head_env(tmp_path), capture_output=True, text=True, check=True
    )
    assert "RAY_AUTH_MODE=token" in result.stdout
    assert f"RAY_AUTH_TOKEN_PATH={token_file}" in result.stdout
    assert token_file.read_text() == "a" * 64 + "\n"
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_run_and_the_image_start_ray_through_the_same_script() -> None:
    assert "scripts/ray_head.sh" in (ROOT / "scripts" / "run.sh").read_text()
    assert "scripts/ray_head.sh" in (ROOT / "scripts" / "docker_start.sh").read_text()
    assert "ray start --head" not in (ROOT / "scripts" / "run.sh").read_text()


def run_script_env(root: Path, env: dict[str, str]) -> dict[str, str]:
    """The environment ``serve run`` gets from scripts/run.sh in a copy of the project at ``root``
    (joining a cluster, ``RAY_ADDRESS``, so no head starts; ``sapheneia`` and ``serve`` are
    stand-ins)."""
    (root / "scripts").mkdir()
    (root / "scripts" / "run.sh").write_text((ROOT / "scripts" / "run.sh").read_text())
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "sapheneia").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "serve").write_text(f'#!/bin/sh\nenv > "{root}/serve.env"\n')
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if not k.startswith("SAPHENEIA_")}
    script_env = base | {"VENV": "venv", "RAY_ADDRESS": "127.0.0.1:1"} | env
    subprocess.run(["bash", str(root / "scripts" / "run.sh")], env=script_env, check=True)
    lines = (root / "serve.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def settings_model_dir(root: Path, env: dict[str, str]) -> str:
    """Where ``sapheneia pull``, run at ``root`` with ``env``, writes: the settings' model_dir."""
    code = "from sapheneia.settings import Settings; print(Settings().model_dir)"
    base = {k: v for k, v in os.environ.items() if not k.startswith("SAPHENEIA_")}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=base | env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("given", [{}, {"SAPHENEIA_MODEL_DIR": "/srv/weights"}])
def test_the_server_reads_weights_where_pull_writes_them_with_a_dot_env(
    tmp_path: Path, given: dict[str, str]
) -> None:
    # A relative path in .env: Ray workers run in other directories, so the script hands them the
    # absolute one; and the environment wins over .env, as it does for the settings pull reads.
    (tmp_path / ".env").write_text("SAPHENEIA_MODEL_DIR=weights\nSAPHENEIA_DATA_DIR=tables\n")
    served = run_script_env(tmp_path, given)
    assert served["SAPHENEIA_MODEL_DIR"] == settings_model_dir(tmp_path, given)
    assert served["SAPHENEIA_MODEL_DIR"] == given.get("SAPHENEIA_MODEL_DIR", f"{tmp_path}/weights")
    assert served["SAPHENEIA_DATA_DIR"] == f"{tmp_path}/tables"
