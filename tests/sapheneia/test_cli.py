"""The ``sapheneia`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pandas as pd
import pytest
from statsforecast.utils import AirPassengersDF

from sapheneia import cli
from sapheneia.config import ModelConfig
from sapheneia.models import checkpoints, create_adapter
from sapheneia.settings import get_settings
from sapheneia.testing.chronos import write_tiny_chronos_bolt

ROOT = Path(__file__).resolve().parents[2]


def sapheneia(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sapheneia.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_package_import_does_not_import_ray() -> None:
    code = (
        "import sapheneia, sapheneia.data, sapheneia.models, sys; assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_models_lists_the_configured_models() -> None:
    result = sapheneia("models")
    assert result.returncode == 0, result.stderr
    for model in ("seasonal-naive", "auto-ets", "timesfm-2.5", "chronos-2"):
        assert model in result.stdout
    assert "licence" in result.stdout


def test_forecast_prints_a_readable_table(tmp_path: Path) -> None:
    csv = tmp_path / "air.csv"
    AirPassengersDF.to_csv(csv, index=False)
    result = sapheneia("forecast", str(csv), "--model", "auto-ets", "--horizon", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["unique_id", "ds", "mean", "median", "q-0.1", "q-0.9"]
    assert len(lines) == 4 and "1961-01-31" in lines[1]


def test_forecast_writes_csv(tmp_path: Path) -> None:
    csv = tmp_path / "air.csv"
    AirPassengersDF.to_csv(csv, index=False)
    out = tmp_path / "forecast.csv"
    result = sapheneia("forecast", str(csv), "-m", "seasonal-naive", "-H", "12", "-o", str(out))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert len(table) == 12
    assert table["mean"].tolist() == AirPassengersDF["y"].tail(12).tolist()


def test_bad_input_is_a_readable_error(tmp_path: Path) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text("unique_id,ds,y\na,2024-01-01,1\na,2024-01-01,2\na,2024-01-02,3\n")
    result = sapheneia("forecast", str(csv))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "2024-01-01" in result.stderr
    assert "Traceback" not in result.stderr


def test_keys_generates_an_owner_only_key(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "SAPHENEIA_STATE_DIR": str(tmp_path / "state")}
    result = sapheneia("keys", env=env)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "state" / "api_key"
    assert str(key_file) in result.stdout
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() not in result.stdout  # the key itself is not printed


def test_pull_without_network_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "SAPHENEIA_MODEL_DIR": str(tmp_path)}
    result = sapheneia("pull", "timesfm-2.5", env=env)
    assert result.returncode == 2
    assert "cannot reach the Hugging Face hub" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_pull_writes_where_the_server_looks_when_no_model_dir_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.delenv("SAPHENEIA_MODEL_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    # Only the network is replaced: the "download" writes a tiny random-weight Chronos-Bolt.
    downloads: list[str] = []

    def snapshot_download(repo_id: str, local_dir: Path, revision: str | None = None) -> str:
        downloads.append(repo_id)
        write_tiny_chronos_bolt(Path(local_dir))
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(checkpoints, "hub_reachable", lambda: True)
    models_dir = str(ROOT / "configs" / "models")
    assert cli.main(["--models-dir", models_dir, "pull", "chronos-bolt-tiny"]) == 0
    assert downloads == ["amazon/chronos-bolt-tiny"]
    stored = tmp_path / "models" / "amazon--chronos-bolt-tiny"
    assert (stored / "config.json").is_file()

    # The server's lookup, offline, with the same (unset) environment, finds those weights.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (
        checkpoints.resolve_checkpoint(
            "chronos-bolt-tiny", "amazon/chronos-bolt-tiny", get_settings().model_dir
        )
        == stored
    )
    adapter = create_adapter(
        ModelConfig(
            id="chronos-bolt-tiny", adapter="chronos-bolt", checkpoint="amazon/chronos-bolt-tiny"
        )
    )
    adapter.load()
    assert adapter.loaded and adapter.capabilities.max_context == 64


def test_keys_stops_on_a_short_key_with_the_minimum(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "SAPHENEIA_STATE_DIR": str(tmp_path / "state"),
        "SAPHENEIA_ADMIN_KEYS": "too-short",
    }
    result = sapheneia("keys", env=env)
    assert result.returncode == 2
    assert "key 1 in SAPHENEIA_ADMIN_KEYS is 9 characters" in result.stderr
    assert "at least 16" in result.stderr and "Traceback" not in result.stderr
    assert "too-short" not in result.stderr
    assert not (tmp_path / "state").exists()


def test_a_pinned_revision_is_pulled_stored_and_loaded_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    """``revision:`` reaches the hub download, names its own folder in the weights store, and the
    server's lookup finds that folder (never the unpinned one)."""
    monkeypatch.setenv("SAPHENEIA_MODEL_DIR", str(tmp_path / "store"))
    asked: list[tuple[str, str | None]] = []

    def snapshot_download(repo_id: str, local_dir: Path, revision: str | None = None) -> str:
        asked.append((repo_id, revision))
        write_tiny_chronos_bolt(Path(local_dir))
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(checkpoints, "hub_reachable", lambda: True)
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "pinned.yaml").write_text(
        "id: pinned\nadapter: chronos-bolt\ncheckpoint: amazon/chronos-bolt-tiny\nrevision: v1.0\n"
    )
    assert cli.main(["--models-dir", str(configs), "pull", "pinned"]) == 0
    assert asked == [("amazon/chronos-bolt-tiny", "v1.0")]
    pinned = tmp_path / "store" / "amazon--chronos-bolt-tiny@v1.0"
    assert (pinned / "config.json").is_file()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = ModelConfig(
        id="pinned", adapter="chronos-bolt", checkpoint="amazon/chronos-bolt-tiny", revision="v1.0"
    )
    adapter = create_adapter(config)
    assert adapter.checkpoint_path() == pinned
    adapter.load()
    assert adapter.loaded


def test_forecast_auto_chooses_per_series_and_calibrates(tmp_path: Path) -> None:
    import numpy as np

    ds = pd.date_range("2015-01-01", periods=72, freq="MS")
    season = np.tile([5, 7, 9, 11, 8, 6, 4, 3, 2, 3, 4, 6.0], 6)
    frame = pd.concat(
        [
            pd.DataFrame({"unique_id": "season", "ds": ds, "y": season}),
            pd.DataFrame({"unique_id": "trend", "ds": ds, "y": 10 + 0.5 * np.arange(72)}),
        ]
    )
    csv, out = tmp_path / "two.csv", tmp_path / "out.csv"
    frame.to_csv(csv, index=False)
    args = ["forecast", str(csv), "-m", "auto", "-H", "6", "--metric", "MASE", "-o", str(out)]
    result = sapheneia(*args, "--candidates", "seasonal-naive,auto-ets", "--calibrate")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    chosen = table.groupby("unique_id")["model"].first().to_dict()
    assert chosen == {"season": "seasonal-naive", "trend": "auto-ets"}
    assert (table["q-0.1"] <= table["q-0.9"]).all()
    bad = sapheneia(*args, "--windows", "40")
    assert bad.returncode != 0 and "'windows' is 40" in bad.stderr
