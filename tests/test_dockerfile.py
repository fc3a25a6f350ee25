"""The Dockerfile's promises, read from the file itself (no Docker engine runs the tests)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    lines = [
        line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.startswith("#")
    ]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def only(name: str) -> str:
    found = [rest for word, rest in instructions() if word == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def test_the_command_is_exec_form_and_its_script_execs_serve() -> None:
    command = json.loads(only("CMD"))  # exec form: a JSON list, no shell in between
    assert command == ["/app/scripts/docker_start.sh"]
    assert not [word for word, _ in instructions() if word == "ENTRYPOINT"]
    script = (ROOT / "scripts" / "docker_start.sh").read_text()
    last = [line for line in script.splitlines() if line.strip() and not line.startswith("#")][-1]
    assert last.startswith("exec serve run ")


def test_serve_config_is_never_rewritten() -> None:
    script = (ROOT / "scripts" / "docker_start.sh").read_text()
    for text in (ROOT / "Dockerfile").read_text(), script:
        assert "sed -i" not in text
    assert "open(source)" in script and "mktemp" in script  # read, then a copy elsewhere


def test_healthcheck_asks_a_readiness_route_that_exists() -> None:
    check = only("HEALTHCHECK")
    assert "http://127.0.0.1:8000/health" in check
    routes = (ROOT / "deployments" / "routes_discovery.py").read_text()
    assert '@router.get("/health")' in routes


def test_dashboard_stays_on_loopback_and_is_not_published() -> None:
    exposed = only("EXPOSE").split()
    assert exposed == ["8000"]
    head = (ROOT / "scripts" / "ray_head.sh").read_text()
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head


def test_generated_key_and_ray_token_live_on_a_volume() -> None:
    volumes = json.loads(only("VOLUME"))
    state = re.search(r"SAPHENEIA_STATE_DIR=(\S+)", only("ENV"))
    assert state is not None and state.group(1) in volumes


def test_every_extra_the_config_and_readme_promise_is_installed() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    run = " ".join(rest for word, rest in instructions() if word == "RUN")
    installed = re.search(r"install '\.\[([^\]]+)\]'", run)
    assert installed is not None
    promised = {"covariates", "chronos", "prophet", "flowstate"}  # README's model table
    assert promised <= set(installed.group(1).split(",")) <= set(extras)
    assert "granite-tsfm" in run  # FlowState's library, installed --no-deps as the Makefile does
