"""Fixtures for the local stack's tests: one stack on the fixture template per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.localstack import LocalStack
from tests.integration.localstack.helpers import FIXTURES


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """The fixture template on the local stack, waits instant (time_factor 0)."""
    with LocalStack(FIXTURES, stack_name="lsfix") as local:
        yield local
