"""The integration tier's own fixtures (the simulator and the local CA come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.receiver import ReceiverWorld, receiver_stack


@pytest.fixture(scope="module")
def world() -> Iterator[ReceiverWorld]:
    """The real template on the local stack, with the receiver's helpers (one per test module)."""
    yield from receiver_stack()
