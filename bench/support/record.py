"""Run one benchmark and keep its figures: ``make bench`` calls this for each script under bench/.

    .venv/bin/python bench/support/record.py bench/reconcile.py [ARGS...]

The benchmark runs with this interpreter, its output shown as it comes. When it exits 0 and its last
line is a JSON object (every benchmark's contract), that object is saved as
``bench/results/<name>.json`` with ``_recorded``: the command and the day (the capacity model,
docs/capacity/model.py, reads these files; ``make capacity`` then rewrites docs/CAPACITY.md). A
benchmark that fails saves nothing: the last good figures stay.

Exit codes: the benchmark's own when it fails; 1 when it exits 0 without a JSON object last; 2 for bad
arguments (no such script). Standard library only.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"


def main(argv: list[str]) -> int:
    if not argv or not argv[0].endswith(".py"):
        print("usage: record.py bench/NAME.py [ARGS...]", file=sys.stderr)
        return 2
    script = Path(argv[0])
    if not (ROOT / script).is_file() and not script.is_file():
        print(f"record: no benchmark {script}", file=sys.stderr)
        return 2
    last = ""
    with subprocess.Popen(
        [sys.executable, str(script), *argv[1:]], cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            if line.strip():
                last = line.strip()
    if proc.returncode != 0:
        print(f"record: {script} exited {proc.returncode}: nothing saved", file=sys.stderr)
        return proc.returncode
    try:
        figures = json.loads(last)
    except json.JSONDecodeError:
        figures = None
    if not isinstance(figures, dict):
        print(f"record: {script}'s last line is not a JSON object: nothing saved", file=sys.stderr)
        return 1
    command = " ".join(["bench/" + script.name, *argv[1:]])
    figures["_recorded"] = {"command": command, "on": dt.date.today().isoformat()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{script.stem}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"record: saved {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
