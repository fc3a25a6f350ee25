"""Optional libraries: whether an adapter's modules are importable, and the fix when they are not."""

from __future__ import annotations

import importlib.util

from sapheneia.errors import ModelUnavailable


def check_requirements(
    model_id: str, requires: tuple[str, ...], extra: str | None, install: str | None
) -> None:
    """Raise ``ModelUnavailable`` naming the extra (or packages) and the install command when a
    module in ``requires`` cannot be imported; ``install`` replaces the default command."""
    missing = [module for module in requires if not importable(module)]
    if not missing:
        return
    needs = f"the {extra} extra" if extra else f"the package {', '.join(missing)}"
    default = f"pip install 'sapheneia[{extra}]'" if extra else f"pip install {' '.join(missing)}"
    raise ModelUnavailable(f"model '{model_id}' needs {needs}: {install or default}")


def importable(module: str) -> bool:
    """Without importing it (``find_spec``), so checking stays cheap."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or blocked in sys.modules
        return False
