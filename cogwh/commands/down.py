"""cogwh down: stop the running `cogwh up` of the state file (``.cogwh/local.json``, or
``$COGWH_STATE``).

Whether one runs is its lock (:class:`cogwh.ops.UpLock`), not the pid alone: a pid can be reused or
a zombie. When one runs, SIGTERM goes to the pid its state file records (what Ctrl-C does in its
terminal), and `down` waits until that `up` has dropped its lock: it removes its state file first,
so when `down` returns the stack is gone. A state file left by a killed `up` is removed and said.

Exit status: 0 stopped; 1 it did not stop within ``--timeout`` (the message says how to kill it);
3 none runs for this state file (or it is another user's process).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from typing import Any

from cogwh import ops

EXAMPLE = """\
examples:
  cogwh down
  COGWH_STATE=.cogwh/second.json cogwh down

exit status: 0 stopped, 1 it did not stop in time, 3 no `cogwh up` runs for this state file.
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 3600")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "down",
        help="stop the running `cogwh up`",
        description="Stop the `cogwh up` of the state file (.cogwh/local.json, or $COGWH_STATE): "
        "signal its pid and wait until it has stopped and removed the state file.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for it to stop (default 60)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = ops.state_file()
    state = ops.up_state(path)
    if not state.running:
        if state.doc is not None:
            path.unlink(missing_ok=True)
            which = f"pid {state.pid}" if state.pid is not None else "no pid recorded"
            raise ops.CliError(
                f"no `cogwh up` is running for {path} ({which} has ended, killed?): removed the state "
                "file it left behind",
                exit_code=ops.EXIT_ENVIRONMENT,
            )
        raise ops.CliError(f"no `cogwh up` is running (no {path})", exit_code=ops.EXIT_ENVIRONMENT)
    pid = state.pid if state.pid is not None else state.lock_pid
    if pid is None:
        raise ops.CliError(
            f"a `cogwh up` holds {ops.lock_file(path)} but names no pid: stop it with Ctrl-C in its terminal",
            exit_code=ops.EXIT_FAILED,
        )
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass  # it ended just now: the lock says so below
    except PermissionError:
        raise ops.CliError(
            f"the `cogwh up` of {path} (pid {pid}) is another user's process", exit_code=ops.EXIT_ENVIRONMENT
        ) from None
    deadline = time.monotonic() + args.timeout
    while ops.up_running(path):  # another process's end cannot be waited on: look again shortly
        if time.monotonic() > deadline:
            raise ops.CliError(
                f"the `cogwh up` of {path} (pid {pid}) did not stop within {args.timeout:g} s: "
                f"`kill -9 {pid}` ends it (its state file is then replaced by the next `cogwh up`)",
                exit_code=ops.EXIT_FAILED,
            )
        time.sleep(0.05)
    print(f"stopped the local stack of {path} (pid {pid})")
    return 0
