"""``pytest --nbval notebooks/``: compare the committed outputs with a fresh run, timings masked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def pytest_configure(config: Any) -> None:
    option = config.option
    if getattr(option, "nbval", False) and getattr(option, "nbval_sanitize_with", "") is None:
        option.nbval_sanitize_with = str(SANITIZE)
