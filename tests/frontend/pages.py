"""What the browser tests do on the page: upload, read the chart's data and a table's cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SLOW = 180_000  # ms: a forecast on two shared cores, first call included
DRAWN = 90_000  # ms: Plotly drawing a chart in a browser that shares those cores


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def two_routes(path: Path, extra: dict[str, Any] | None = None) -> Path:
    """Monthly passengers for two routes, with names the UI must detect itself."""
    months = pd.date_range("2015-01-01", periods=48, freq="MS")
    seasonal = 100 + 20 * np.sin(np.arange(48) * 2 * np.pi / 12) + np.arange(48)
    frame = pd.concat(
        pd.DataFrame(
            {"month": months.strftime("%Y-%m-%d"), "route": route, "passengers": seasonal * k}
        )
        for route, k in (("north", 1.0), ("south", 2.0))
    )
    for name, values in (extra or {}).items():
        frame[name] = values
    frame.to_csv(path, index=False)
    return path


def upload(page: Any, path: Path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#data-message")).to_contain_text(f"Loaded {path.name}", timeout=30_000)


def traces(page: Any, elem_id: str) -> list[dict[str, Any]]:
    """Name, fill, x and y of every trace in a chart, as Plotly drew them (``gd._fullData``:
    numeric arrays arrive base64-encoded in ``gd.data`` and are decoded there)."""
    page.wait_for_function(
        f"() => document.querySelector('#{elem_id} .js-plotly-plot')?._fullData?.length > 0",
        timeout=DRAWN,
    )
    return list(
        page.evaluate(
            f"""() => [...document.querySelectorAll('#{elem_id} .js-plotly-plot')]
                .flatMap(gd => gd._fullData.map(t => ({{
                    name: t.name, fill: t.fill === 'none' ? null : t.fill,
                    x: Array.from(t.x || []), y: Array.from(t.y || []),
                    points: (t.x || []).length}})))"""
        )
    )


def table_rows(page: Any, elem_id: str) -> list[list[str]]:
    """The header and the rendered body rows of a Gradio Dataframe, as each cell's text.

    Gradio renders the body as a virtual list: only the rows in view are in the page."""
    return list(
        page.evaluate(
            f"""() => {{
                const grid = document.querySelector('#{elem_id} [role=grid]');
                const text = cells => [...cells].map(cell => cell.innerText.trim());
                return [text(grid.querySelectorAll('[role=columnheader]')),
                        ...[...grid.querySelectorAll('[role=row].virtual-row')]
                           .map(row => text(row.querySelectorAll('[role=gridcell]')))];
            }}"""
        )
    )


def table_length(page: Any, elem_id: str) -> int:
    """The rows of a Gradio Dataframe, rendered or not (its grid's aria-rowcount, less the header)."""
    count = page.locator(f"#{elem_id} [role=grid]").get_attribute("aria-rowcount")
    return int(count) - 1


def table_frame(page: Any, elem_id: str) -> pd.DataFrame:
    """A Gradio Dataframe as shown, its header as the columns."""
    header, *rows = table_rows(page, elem_id)
    return pd.DataFrame(rows, columns=header)


def pick_option(page: Any, elem_id: str, name: str) -> None:
    """Choose ``name`` in a Gradio dropdown (a multiselect adds it to the chosen ones)."""
    page.locator(f"#{elem_id} input").click()
    option = page.locator(f"#{elem_id}").get_by_role("option", name=name, exact=True)
    option.click()
    page.keyboard.press("Escape")
    expect(page.locator(f"#{elem_id}")).to_contain_text(name)
