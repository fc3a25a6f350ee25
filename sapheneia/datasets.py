"""Real sample series that ship inside installed packages (no download), in long format.

Used by the web UI's sample picker, the tests and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from sapheneia.errors import InvalidInput


@dataclass(frozen=True)
class Sample:
    description: str
    load: Callable[[], pd.DataFrame]
    covariates: dict[str, str]


def _air_passengers() -> pd.DataFrame:
    from statsforecast.utils import AirPassengersDF

    frame = AirPassengersDF.copy()
    return frame.assign(unique_id="air_passengers")[["unique_id", "ds", "y"]]


def _co2() -> pd.DataFrame:
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    # A few weeks are missing in the record: interpolate so the series is regular.
    weekly = weekly.interpolate(limit_direction="both")
    return pd.DataFrame({"unique_id": "mauna_loa_co2", "ds": weekly.index, "y": weekly.to_numpy()})


def _sunspots() -> pd.DataFrame:
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    years = pd.to_datetime(data["YEAR"].astype(int).astype(str), format="%Y")
    return pd.DataFrame({"unique_id": "sunspots", "ds": years, "y": data["SUNACTIVITY"].to_numpy()})


def _us_macro() -> pd.DataFrame:
    from statsmodels.datasets import macrodata

    data = macrodata.load_pandas().data
    quarters = pd.PeriodIndex.from_fields(  # type: ignore[attr-defined]
        year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    return pd.DataFrame(
        {
            "unique_id": "us_real_gdp",
            "ds": quarters,
            "y": data["realgdp"].to_numpy(),
            "realcons": data["realcons"].to_numpy(),
            "unemp": data["unemp"].to_numpy(),
        }
    )


SAMPLES: dict[str, Sample] = {
    "air_passengers": Sample(
        "Monthly airline passengers 1949-1960 (statsforecast)", _air_passengers, {}
    ),
    "co2": Sample("Weekly CO2 at Mauna Loa 1958-2001 (statsmodels)", _co2, {}),
    "sunspots": Sample("Yearly sunspot activity 1700-2008 (statsmodels)", _sunspots, {}),
    "us_macro": Sample(
        "Quarterly US real GDP 1959-2009 with consumption and unemployment as covariates (statsmodels)",
        _us_macro,
        {"realcons": "dynamic_numerical", "unemp": "dynamic_numerical"},
    ),
}


def load_sample(name: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The sample's long-format frame (``unique_id, ds, y[, covariates]``) and covariate roles."""
    sample = SAMPLES.get(name)
    if sample is None:
        raise InvalidInput(f"unknown sample '{name}'; available: {', '.join(SAMPLES)}")
    return sample.load(), dict(sample.covariates)
