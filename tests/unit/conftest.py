"""Unit-test fixtures."""

from __future__ import annotations

import pytest
import structlog

from tests.support.parts import FakeClock


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """Start from structlog's defaults: a test running the CLI leaves it writing to a closed stdout."""
    structlog.reset_defaults()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
