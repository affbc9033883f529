"""What every demo test reads from the demo's output: the verdict count and the watch scene."""

from __future__ import annotations

import re

WATCH_VERDICTS = (
    "watch: a healthy watch makes no Cognigy call",
    "watch: 3 failed watches -> Endpoint Unhealthy (audit + bus event)",
    "watch: failing for 24 h -> deactivated in Cognigy",
    "watch: back up -> recovered and reactivated",
    "watch: the next apply keeps it as it is (unchanged, no Cognigy write)",
)


def verdicts(text: str) -> tuple[int, int]:
    found = re.search(r"(\d+)/(\d+) as expected", text)
    assert found is not None, text[-2000:]
    return int(found.group(1)), int(found.group(2))


def watch_scene(text: str, flag: str) -> list[str]:
    """The scene's watch lines (one per watch, in order), after checking its verdicts are there."""
    for case in WATCH_VERDICTS:
        assert re.search(rf"^{re.escape(case)}\s.*\sok$", text, re.MULTILINE), case
    scene = text.split("== The watch:", 1)[1].split("== Verdicts", 1)[0]
    lines = [line for line in scene.splitlines() if line.startswith("  t+")]
    assert len(lines) == 8, scene
    # the story, as each watch's line tells it: the compressed clock, the target, Cognigy's flag
    assert [line.split()[0] for line in lines] == [
        "t+00:00",
        "t+00:15",
        "t+00:30",
        "t+00:45",
        "t+24:45",
        "t+25:00",
        "t+25:15",
        "t+25:30",
    ]
    assert "-> Endpoint Unhealthy: 3 consecutive failed watches" in lines[3]
    assert "-> Endpoint Deactivated: failing for" in lines[4]
    assert f"1 Cognigy call, {flag}: false" in lines[4]
    assert "-> Endpoint Recovered: 3 consecutive healthy watches; reactivated" in lines[7]
    assert f"1 Cognigy call, {flag}: true" in lines[7]
    return lines
