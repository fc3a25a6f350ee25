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
    """All models' forecasts in one long table with a ``model`` column first."""
    frames = [f.assign(model=m)[["model", *f.columns]] for m, f in forecasts.items() if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def safe_stem(name: str) -> str:
    """A file-name stem made only of safe characters, for the downloaded file."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("._")
    return stem[:60] or "data"


def write_csv(table: pd.DataFrame, source_name: str, keep_s: float = 3600) -> str:
    """The table as ``<source>-forecast.csv`` in a fresh folder under the UI's temporary folder;
    returns its path. Gradio serves a copy, so files older than ``keep_s`` are removed here."""
    root = Path(tempfile.gettempdir()) / "sapheneia-ui"
    root.mkdir(exist_ok=True)
    for old in root.glob("*/*.csv"):
        if time.time() - old.stat().st_mtime > keep_s:
            old.unlink(missing_ok=True)
            old.parent.rmdir()
    folder = Path(tempfile.mkdtemp(dir=root))
    path = folder / f"{safe_stem(source_name)}-forecast.csv"
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
