"""What the user takes away: the forecast as CSV and the same request as curl and Python code.

The snippets never hold the user's key: they read it from ``$SAPHENEIA_API_KEY``.
"""

from __future__ import annotations

import json
import pprint
import re
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

KEY_PLACEHOLDER = "$SAPHENEIA_API_KEY"


def forecast_table(forecasts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All models' forecasts in one long table with a ``model`` column first (the model asked
    for); ``auto`` answers' own per-row ``model`` column becomes ``chosen_model``."""
    frames = []
    for model, frame in forecasts.items():
        if len(frame):
            frame = frame.rename(columns={"model": "chosen_model"})
            frames.append(frame.assign(model=model)[["model", *frame.columns]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def safe_stem(name: str) -> str:
    """A file-name stem made only of safe characters, for the downloaded file."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")
    return stem[:60] or "data"


def download_folder(keep_s: float = 3600) -> Path:
    """A fresh folder under the UI's temporary folder for one download. Gradio serves a copy,
    so downloads older than ``keep_s`` are removed here, each with its folder."""
    root = Path(tempfile.gettempdir()) / "sapheneia-ui"
    root.mkdir(exist_ok=True)
    for old in root.glob("*/*"):
        if time.time() - old.stat().st_mtime > keep_s:
            old.unlink(missing_ok=True)
            if not any(old.parent.iterdir()):
                old.parent.rmdir()
    return Path(tempfile.mkdtemp(dir=root))


def write_csv(
    table: pd.DataFrame, source_name: str, keep_s: float = 3600, suffix: str = "forecast"
) -> str:
    """The table as ``<source>-<suffix>.csv`` in a fresh download folder; returns its path."""
    path = download_folder(keep_s) / f"{safe_stem(source_name)}-{suffix}.csv"
    table.to_csv(path, index=False)
    return str(path)


def curl_snippet(base_url: str, request: dict[str, Any], file_name: str) -> str:
    """``curl`` for one forecast as a multipart upload of ``file_name``."""
    url = f"{base_url.rstrip('/')}/api/v2/forecast"
    return " \\\n  ".join(
        [
            f"curl -sS -X POST {shlex.quote(url)}",
            f'-H "Authorization: Bearer {KEY_PLACEHOLDER}"',
            f"-F {shlex.quote('file=@' + file_name)}",
            f"-F {shlex.quote('request=' + json.dumps(request))}",
        ]
    )


def python_snippet(
    base_url: str, request: dict[str, Any], file_name: str, models: list[str]
) -> str:
    """The same call with httpx, once per model."""
    url = f"{base_url.rstrip('/')}/api/v2/forecast"
    body = pprint.pformat({k: v for k, v in request.items() if k != "model"}, sort_dicts=False)
    return "\n".join(
        [
            "import json",
            "import os",
            "",
            "import httpx",
            "",
            f"request = {body}",
            "headers = {'Authorization': f\"Bearer {os.environ['SAPHENEIA_API_KEY']}\"}",
            f"for model in {models!r}:",
            f"    with open({file_name!r}, 'rb') as data:",
            "        response = httpx.post(",
            f"            {url!r},",
            "            headers=headers,",
            f"            files={{'file': ({file_name!r}, data)}},",
            "            data={'request': json.dumps({**request, 'model': model})},",
            "            timeout=300,",
            "        )",
            "    response.raise_for_status()",
            "    print(model, response.json()['forecast'][:3])",
        ]
    )
