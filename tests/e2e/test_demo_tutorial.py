"""`cogwh demo --cognigy-api tutorial`, run whole (see test_demo.py): every verdict as expected,
the watch scene included (a file of its own, so the demos run on different test workers)."""

from __future__ import annotations

import io

from cogwh.demo import CognigyChoice, run_demo
from tests.e2e.demo_checks import verdicts, watch_scene


def test_the_tutorial_demo_keeps_its_signed_deliveries() -> None:
    out = io.StringIO()
    assert run_demo(out, time_factor=0, verbose=True, choice=CognigyChoice(api="tutorial")) == 0
    text = out.getvalue()
    ok, total = verdicts(text)
    assert ok == total == 27
    watch_scene(text, "isActive")
