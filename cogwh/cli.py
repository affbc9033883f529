"""The ``cogwh`` command line. Each subcommand lives in its own module under ``cogwh/commands/``
and exposes ``register(subparsers)``; this file only assembles them (imports stay lazy per command)
and holds the one place where what a command raises becomes an exit status and a message.

Exit statuses, the same for every command: 0 ok; 1 the work failed (an endpoint, an execution, a
probe); 2 bad input (argparse's usage errors included); 3 the environment (no stack, no AWS
credentials or region, AWS or a server unreachable, a local stack already running); 130 Ctrl-C.
:func:`main` maps what a command lets through: :class:`cogwh.ops.CliError` (its own status), AWS's
environment failures (:func:`cogwh.ops.environment_error`, 3), and, as a last resort, anything else
(1, one line and a hint to rerun with ``--debug``, which shows the traceback). No traceback reaches
a user otherwise.

A closed pipe (``cogwh status --json | head -c 10``) ends quietly with status 141, as ``git`` and
``gh`` do (they die of SIGPIPE; a shell reports 128 + 13): nothing on stderr, and the rest of the
output is dropped. The signal itself is not restored to its default, which would also kill the
servers of ``cogwh up`` on a client that hangs up.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

# subcommand name -> module under cogwh.commands providing register(subparsers) and run(args) -> int
COMMANDS: dict[str, str] = {
    "simulator": "simulator",
    "demo": "demo",
    "up": "up",
    "down": "down",
    "plan": "plan",
    "apply": "apply",
    "executions": "executions",
    "watch": "watch",
    "watch-now": "watch_now",
    "health": "health",
    "stop": "stop",
    "status": "status",
    "audit": "audit",
    "probe": "probe",
    "sign": "sign",
    "say": "say",
    "listen": "listen",
    "export": "export",
}

#: The status of a command whose output pipe was closed (128 + SIGPIPE, what a shell shows for git).
EXIT_BROKEN_PIPE = 141
EXIT_INTERRUPTED = 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cognigy-webhooks")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


class _Parser(argparse.ArgumentParser):
    """argparse's parser, except that a closed stdout is not ignored (argparse drops every OSError of
    --help and --version): :func:`main` ends such a run with 141 as it does any other."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if not message:
            return
        file = file or sys.stderr
        try:
            file.write(message)
            if file is sys.stdout:
                file.flush()
        except BrokenPipeError:
            if file is sys.stdout:
                raise
        except (AttributeError, OSError):
            pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cogwh",
        description="Register, probe and receive NICE Cognigy webhook endpoints on AWS "
        "(or on the local stack).",
        epilog="exit status: 0 ok, 1 the work failed, 2 bad input, 3 environment (no stack, "
        "no credentials, unreachable). `cogwh COMMAND --help` shows each command.",
    )
    parser.add_argument("--version", action="version", version=f"cogwh {_version()}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS.values():
        importlib.import_module(f"cogwh.commands.{module}").register(sub)
    for command in sub.choices.values():  # `cogwh status --debug` works as well as `cogwh --debug status`
        if "--debug" not in command._option_string_actions:
            command.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
    return parser


def _quiet_stdout() -> None:
    """After a closed pipe: send what is left (and the flush at exit) to /dev/null."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # --help and --version print here; usage errors exit 2
        code = _run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE


def _run(args: argparse.Namespace) -> int:
    from cogwh import ops

    name = f"cogwh {args.command}"
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise
    except ops.CliError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        mapped = ops.environment_error(exc, stack_name=getattr(args, "stack", None))
        if mapped is not None:
            print(f"{name}: {mapped}", file=sys.stderr)
            return mapped.exit_code
        if getattr(args, "debug", False):
            raise
        # The type only: an unexpected exception's message is not known to be free of secrets.
        print(
            f"{name}: unexpected error ({type(exc).__name__}); rerun with --debug for the traceback "
            "and report it",
            file=sys.stderr,
        )
        return ops.EXIT_FAILED
