"""Fixtures every tier shares. Tier-specific fixtures live in tests/support/ modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cogwh.certs import LocalCA


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def local_ca() -> Iterator[LocalCA]:
    ca = LocalCA()
    yield ca
    ca.close()
