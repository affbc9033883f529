"""What bench/watch.py measures of the watch's Distributed Map that no execution history shows: the S3
requests a watch makes, its EXPRESS children (how many, how long, the states they entered) and each
Lambda invocation's step.

The local stack runs the map's children in-process and, as Step Functions does for EXPRESS children,
keeps no history of theirs; so they are counted from what they leave:

- :class:`AwsRequests`: every request an in-process boto3 client sends to moto (moto's
  ``BotocoreStubber``, where the handlers', the ASL interpreter's ItemReader/ResultWriter and the
  command's own clients all arrive), by service and operation: the S3 ones are the watch's GET, PUT
  and LIST requests;
- :func:`children_of_run`: the ResultWriter's entries of the watch's map run (``manifest.json`` and
  its ``SUCCEEDED_n.json``/``FAILED_n.json``): one per child, each with its ``StartDate`` and
  ``StopDate`` (:func:`child_seconds`);
- :func:`child_transitions`: the states the children entered, from the child ASL (statemachine/
  watch.asl.json's ItemProcessor): its two Task states are entered once per Lambda invocation they
  make (an attempt, a retry: as Step Functions counts a transition), its Pass state (JudgeFailed)
  once per child whose judgement it made (outcome ``failed`` with no ``child_failed`` reason).

:func:`step_label` names an invocation by function and, for the watch function, by step (``list``,
``judge``, ``summarize``): the judge's are the children's, the other two the parent's.
"""

from __future__ import annotations

import collections
import contextlib
import json
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any
from unittest import mock

__all__ = ["AwsRequests", "child_seconds", "child_transitions", "children_of_run", "step_label"]

#: The child's Task states and the function each one invokes (statemachine/watch.asl.json).
CHILD_TASKS = {"Probe": "ProbeFunction", "Judge": "WatchFunction.judge"}


class AwsRequests:
    """Requests sent to moto by in-process boto3 clients, ``"<service> <Operation>"`` -> count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count: collections.Counter[str] = collections.Counter()

    def reset(self) -> None:
        with self._lock:
            self.count.clear()

    def of(self, service: str) -> dict[str, int]:
        with self._lock:
            return {k: v for k, v in self.count.items() if k.startswith(f"{service} ")}

    @contextlib.contextmanager
    def installed(self) -> Iterator[AwsRequests]:
        from moto.core.botocore_stubber import BotocoreStubber

        call = BotocoreStubber.__call__

        def counted(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
            parts = event_name.split(".")
            if len(parts) >= 3 and parts[0] == "before-send":
                with self._lock:
                    self.count[f"{parts[1]} {parts[2]}"] += 1
            return call(stubber, event_name, request, **kwargs)

        with mock.patch.object(BotocoreStubber, "__call__", counted):
            yield self


def step_label(function: str, body: Any) -> str:
    """``WatchFunction.judge`` for the watch function's judge step, else the function's name."""
    if function != "WatchFunction":
        return function
    try:
        event = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return function
    step = event.get("step") if isinstance(event, dict) else None
    return f"{function}.{step}" if isinstance(step, str) else function


def children_of_run(s3: Any, output: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ResultWriter entry of the watch's map run (its parent's ``WatchEach`` exit: the
    execution's history holds the map's ``ResultWriterDetails``)."""
    details = output["ResultWriterDetails"]

    def read(key: str) -> Any:
        return json.loads(s3.get_object(Bucket=details["Bucket"], Key=key)["Body"].read())

    manifest = read(details["Key"])
    return [entry for files in manifest["ResultFiles"].values() for f in files for entry in read(f["Key"])]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def child_seconds(children: list[dict[str, Any]]) -> float:
    """The mean wall seconds of a child, StartDate to StopDate."""
    spans = [
        (_moment(c["StopDate"]) - _moment(c["StartDate"])).total_seconds()
        for c in children
        if c.get("StartDate") and c.get("StopDate")
    ]
    return sum(spans) / len(spans) if spans else 0.0


def child_transitions(children: list[dict[str, Any]], invocations: Mapping[str, int]) -> dict[str, int]:
    """The states the children entered (see the module docstring): each Task state once per
    invocation of its function, JudgeFailed once per judgement it made."""
    entered = {state: int(invocations.get(function, 0)) for state, function in CHILD_TASKS.items()}
    judge_failed = 0
    for child in children:
        try:
            output = json.loads(child.get("Output") or "null")
        except ValueError:
            output = None
        if isinstance(output, dict) and output.get("outcome") == "failed":
            judge_failed += not str(output.get("reason") or "").startswith("child_failed")
    entered["JudgeFailed"] = judge_failed
    return entered
