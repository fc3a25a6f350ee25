"""The lifecycle ``ModelAdapter`` owns, the same for every adapter in the registry: a missing library
makes the model unavailable with the install command, and nothing is forecast before ``load``."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from sapheneia.config import ModelConfig
from sapheneia.errors import ModelUnavailable
from sapheneia.models import create_adapter
from sapheneia.models.registry import ADAPTERS, adapter_class
from sapheneia.testing.tasks import make_task

#: What each adapter's message tells the operator to run when its library is missing.
FIXES = {
    "statsforecast": "the package statsforecast: pip install statsforecast==2.1.1",
    "timesfm-2.0": "the package transformers: pip install 'transformers>=5,<6'",
    "timesfm-2.5": "the package timesfm: pip install timesfm==3.0.2",
    "timesfm-3.0": "the package timesfm3: pip install 'timesfm>=3.0.2' (it ships timesfm3)",
    "chronos-bolt": "the chronos extra: pip install 'sapheneia[chronos]'",
    "chronos-2": "the chronos extra: pip install 'sapheneia[chronos]'",
    "flowstate": "the flowstate extra: pip install --no-deps granite-tsfm==0.3.11",
    "prophet": "the prophet extra: pip install 'sapheneia[prophet]'",
}


def config(adapter: str) -> ModelConfig:
    # A statistical model's id names its method; the 3.0 weights need the licence acknowledged.
    model_id = "auto-ets" if adapter == "statsforecast" else "m"
    return ModelConfig(id=model_id, adapter=adapter, licence_acknowledged=True)


def test_every_adapter_is_covered() -> None:
    assert set(FIXES) == set(ADAPTERS)


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_a_missing_library_makes_the_model_unavailable_with_the_fix(
    adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = set(adapter_class(adapter).requires)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in missing else find_spec(name)
    )
    model = create_adapter(config(adapter))
    with pytest.raises(ModelUnavailable) as raised:
        model.load()
    assert raised.value.message.startswith(f"model '{model.name}' needs {FIXES[adapter]}")
    assert not model.loaded


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_nothing_is_forecast_before_load(adapter: str) -> None:
    model = create_adapter(config(adapter))
    (outcome,) = model.forecast([make_task("a", np.arange(48.0), 6)])
    assert isinstance(outcome, ModelUnavailable)
    assert outcome.message == f"model '{model.name}' is not loaded; initialise it first"
