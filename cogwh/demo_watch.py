"""The demo's watch scene (issue 12 item 5): one target goes down, is deactivated in Cognigy, comes
back and is reactivated, with the watch run a few times on a compressed clock.

1. A :class:`~cogwh.targets.SwitchableTarget` of its own (HTTPS on one port of 127.0.0.1, its
   certificate from the demo's CA) is applied as the endpoint :data:`SCENE_NAME` (a small apply of
   its own: the demo's desired set and its verdicts stay as they are).
2. Watches are run through the real watch state machine (:func:`cognigy_webhooks.ops.start_watch`),
   each at a chosen time (``at``: the rules judge at it, no clock of ours is moved): one while the
   target is up (healthy: no Cognigy call, not even a read), three with it down (``Endpoint
   Unhealthy`` at the third), one a day later (``Endpoint Deactivated``: Cognigy holds the endpoint
   inactive), then three with it up again (``Endpoint Recovered``: active again). The rules are the
   template's defaults (3 failed watches, 24 h of failures, 3 healthy watches).
3. Each watch prints one line: the compressed clock, the target's state, the endpoint's transition
   with its reason (or its health and the probe's reason), and what Cognigy now holds, read back from
   Cognigy itself (a GET of the endpoint through the product's own client, after the watch, so it
   never counts as the watch's call).
4. The transitions are read where a consumer reads them: an EventBridge rule on the operations bus
   feeding an SQS queue (:class:`OperationsConsumer`), and the endpoint's audit log.
5. The same small set is applied again: the endpoint is found unchanged and nothing is written to
   Cognigy (the watch told Cognigy what the register step would: a re-apply undoes nothing).

The verdicts are :class:`cogwh.demo.Verdict` lines. Cognigy's requests are counted off the
simulator's request log when the demo runs against the simulator; against another Cognigy server
the watch's own count (``cognigyCalls``) and the apply's outcome stand in. Works for both dialects:
the endpoints dialect's ``active`` and the tutorial's ``isActive``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cogwh import ops
from cogwh.certs import CertFiles
from cogwh.demo import Verdict
from cogwh.targets import SwitchableTarget, server_context

if TYPE_CHECKING:
    from cognigy_webhooks.models.records import EndpointRecord
    from cogwh.localstack import LocalStack
    from cogwh.simulator import SimulatorState

#: The scene's endpoint (its own target; not in the example files).
SCENE_NAME = "inventory-outputs"
#: The watch's default rate (the template's WatchIntervalMinutes).
STEP = timedelta(minutes=15)
#: Later than the template's WatchDeactivateAfterHours (24) after the first failed watch.
A_DAY_LATER = timedelta(hours=24)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class OperationsConsumer:
    """What a consumer of the operations bus sees: an EventBridge rule (every event of the stack's
    source) feeding an SQS queue. The local stack delivers to the queue inside the put, so a watch
    that has ended has its events in the queue already."""

    def __init__(self, stack: LocalStack) -> None:
        self._sqs = stack.client("sqs")
        events = stack.client("events")
        bus = stack.outputs["OperationsBusName"]
        suffix = uuid.uuid4().hex[:8]
        self._queue = self._sqs.create_queue(QueueName=f"demo-operations-{suffix}")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rule = f"demo-operations-{suffix}"
        events.put_rule(
            Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["cognigy-webhooks"]})
        )
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    def drain(self, name: str) -> list[dict[str, Any]]:
        """Every event in the queue now (taken off it); those of endpoint ``name``."""
        found: list[dict[str, Any]] = []
        while True:
            messages = self._sqs.receive_message(QueueUrl=self._queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return found
            for message in messages:
                self._sqs.delete_message(QueueUrl=self._queue, ReceiptHandle=message["ReceiptHandle"])
                event = json.loads(message["Body"])
                if event.get("detail", {}).get("name") == name:
                    found.append(event)


@dataclass(frozen=True)
class CognigyReader:
    """Reads one endpoint back from Cognigy (either dialect) with the product's own client: whether
    Cognigy holds it active. The key never shows in a repr."""

    dialect: str
    base_url: str
    api_key: str = field(repr=False)
    prefix: str = ""
    verify: str = ""

    @classmethod
    def of(cls, stack: LocalStack, *, dialect: str, api_key: str, ca_file: Path | str) -> CognigyReader:
        prefix = stack.outputs.get("CognigyApiPrefix", "")
        return cls(
            dialect=dialect,
            base_url=stack.outputs["CognigyBaseUrl"],
            api_key=api_key,
            prefix="" if prefix == "/" else prefix,
            verify=str(ca_file),
        )

    @property
    def flag(self) -> str:
        """The dialect's name for it: ``active`` (Endpoints) or ``isActive`` (the tutorial's)."""
        return "active" if self.dialect == "endpoints" else "isActive"

    def active(self, webhook_id: str, project_id: str | None) -> bool | None:
        """Cognigy's ``active`` (``isActive``) for the endpoint; None when Cognigy does not say or
        cannot be read (the verdict then shows ``unknown``)."""
        from cognigy_webhooks.cognigy import CognigyClient, CognigyEndpointsClient
        from cognigy_webhooks.errors import CognigyError

        async def read() -> bool | None:
            if self.dialect == "endpoints":
                async with CognigyEndpointsClient(
                    self.api_key, self.base_url, prefix=self.prefix, verify=self.verify
                ) as client:
                    return (await client.scoped(project_id).get_webhook(webhook_id)).active
            async with CognigyClient(self.api_key, self.base_url, verify=self.verify) as tutorial:
                return (await tutorial.get_webhook(webhook_id)).is_active

        try:
            return asyncio.run(read())
        except CognigyError:
            return None


@dataclass
class Watched:
    """One watch of the scene: the summary's counts and the scene endpoint's part in it."""

    transitions: list[str]
    cognigy_calls: int
    requests: int | None  # Cognigy requests during the watch (simulator only)
    writes: int | None  # of which writes
    bus: list[str]
    audit: list[str]
    held: bool | None


class Scene:
    """The scene's moving parts (see the module docstring)."""

    def __init__(
        self,
        stack: LocalStack,
        target: SwitchableTarget,
        reader: CognigyReader,
        cognigy_block: dict[str, Any] | None,
        simulator: SimulatorState | None,
        out: TextIO,
    ) -> None:
        self.stack = stack
        self.target = target
        self.reader = reader
        self.block = cognigy_block
        self.simulator = simulator
        self.out = out
        self.consumer = OperationsConsumer(stack)
        self.access = ops.stack_access(stack)
        self.t0 = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        self.at = self.t0
        self.audit_seen = 0

    def _requests(self) -> list[dict[str, Any]] | None:
        return list(self.simulator.requests) if self.simulator is not None else None

    def _counted(self, work: Callable[[], Any]) -> tuple[Any, int | None, int | None]:
        """``work()``, and the Cognigy requests (and writes) it made, off the simulator's log."""
        before = self._requests()
        result = work()
        after = self._requests()
        if before is None or after is None:
            return result, None, None
        new = after[len(before) :]
        return result, len(new), sum(1 for r in new if r.get("method") in WRITE_METHODS)

    def record(self) -> EndpointRecord | None:
        return self.access.store.get_record(SCENE_NAME)

    def held(self, record: EndpointRecord | None = None) -> bool | None:
        """What Cognigy holds for the scene's endpoint (``record``: its record, read when not given)."""
        record = record or self.record()
        if record is None or not record.webhook_id:
            return None
        return self.reader.active(str(record.webhook_id), record.project_id)

    def held_text(self, held: bool | None) -> str:
        return f"{self.reader.flag}: {'unknown' if held is None else str(held).lower()}"

    def apply(self) -> tuple[str, int | None]:
        """Apply the scene's set; its outcome and the Cognigy writes it made."""
        desired: dict[str, Any] = {
            "endpoints": [{"name": SCENE_NAME, "url": self.target.url("/hooks/inventory"), "timeoutMs": 3000}]
        }
        if self.block is not None:
            desired["cognigy"] = self.block
        run, _requests, writes = self._counted(
            lambda: ops.apply(self.stack, desired, wait=self.stack.wait_execution)
        )
        results = (run.summary or {}).get("results", []) if run.status == "SUCCEEDED" else []
        outcome = next((str(r.get("outcome")) for r in results if r.get("name") == SCENE_NAME), None)
        return outcome or f"execution {run.status}", writes

    def watch(self, after: timedelta | None = None, *, everything: bool = False) -> Watched:
        """One watch at the scene's clock (``after`` the previous one), and its line: of every
        registered endpoint when ``everything``, else of the scene's only (quicker)."""
        from cognigy_webhooks import ops as library_ops

        if after is not None:
            self.at += after
        names = None if everything else [SCENE_NAME]

        def run() -> dict[str, Any]:
            started = library_ops.start_watch(self.access, at=self.at, names=names, source="demo")
            ended = self.stack.wait_execution(started.execution_arn)
            if ended["status"] != "SUCCEEDED":
                return {"error": f"the watch ended {ended['status']}: {ended.get('error')}"}
            # the whole summary (the output is bounded past a few hundred endpoints)
            view = library_ops.describe_watch(self.access, started.execution_arn)
            if view.summary is None:
                return {"error": "the watch ended without a summary"}
            summary: dict[str, Any] = view.summary.model_dump(mode="json", by_alias=True, exclude_none=True)
            return summary

        summary, requests, writes = self._counted(run)
        mine: dict[str, Any] = next(
            (r for r in summary.get("results", []) if r.get("name") == SCENE_NAME), {}
        )
        events = self.consumer.drain(SCENE_NAME)
        audit = [e for e in ops.audit(self.stack, SCENE_NAME, limit=100) if e.source == "watch"]
        fresh = sorted(audit, key=lambda e: e.timestamp)[self.audit_seen :]
        self.audit_seen += len(fresh)
        record = self.record()
        held = self.held(record)
        watched = Watched(
            transitions=list(mine.get("transitions", [])),
            cognigy_calls=int(mine.get("cognigyCalls", 0)),
            requests=requests,
            writes=writes,
            bus=[str(e.get("detail-type")) for e in events],
            audit=[e.action for e in fresh],
            held=held,
        )
        self._show(summary, mine, events, watched, record)
        return watched

    def _show(
        self,
        summary: dict[str, Any],
        mine: dict[str, Any],
        events: list[dict[str, Any]],
        w: Watched,
        record: EndpointRecord | None,
    ) -> None:
        """The watch's line: clock, target, Cognigy's calls and flag, the transition or the health."""
        elapsed = self.at - self.t0
        hours, minutes = divmod(int(elapsed.total_seconds()) // 60, 60)
        clock = f"t+{hours:02d}:{minutes:02d}"
        up = "up" if self.target.is_up else "down"
        if "error" in summary:
            what = str(summary["error"])
        elif events:
            what = "; ".join(
                f"-> {e.get('detail-type')}: {e.get('detail', {}).get('reason', '')}" for e in events
            )
        else:
            probe = record.last_probe if record is not None else None
            state = record.watch if record is not None else None
            why = "probe passed" if probe is None or probe.passed else probe.reason
            if state is not None and state.consecutive_failures:
                why += f", {state.consecutive_failures} failed in a row"
            elif state is not None and state.state != "healthy" and state.consecutive_successes:
                why += f", {state.consecutive_successes} healthy in a row"
            what = f"{mine.get('state', '?')} ({why})"
            if len(summary.get("results", [])) > 1:
                what += (
                    f"; {summary.get('healthy', 0)} of {summary.get('watched', 0)} endpoints watched healthy"
                )
        calls = w.requests if w.requests is not None else w.cognigy_calls
        cognigy = f"{calls} Cognigy call{'' if calls == 1 else 's'}, {self.held_text(w.held)}"
        width = len(f"0 Cognigy calls, {self.held_text(False)}")
        print(f"  {clock}  target {up:<4}  {cognigy:<{width}}  {what}", file=self.out)


def _marks(w: Watched, kind: str) -> str:
    """``kind (audit + bus)``, saying which of the two is missing."""
    action = kind.lower().replace(" ", "_")  # the audit event's action for the detail-type
    where = [place for place, seen in (("audit", action in w.audit), ("bus", kind in w.bus)) if seen]
    return f"{kind} ({' + '.join(where) or 'neither audit nor bus'})"


def _story(watches: list[Watched]) -> str:
    """The scene endpoint's transitions over some watches (``-`` for a watch with none), each with
    where it was seen."""
    return ", ".join(", ".join(_marks(w, t) for t in w.transitions) or "-" for w in watches)


def watch_scene(
    stack: LocalStack,
    *,
    leaf: CertFiles,
    reader: CognigyReader,
    cognigy_block: dict[str, Any] | None,
    simulator: SimulatorState | None,
    out: TextIO,
) -> list[Verdict]:
    """The scene (see the module docstring); its verdicts. ``leaf``: the target's certificate (from
    the CA the probe trusts); ``cognigy_block``: the desired set's ``cognigy`` block (the endpoints
    dialect's project), None for the tutorial's; ``simulator``: the simulator's state, to count
    Cognigy's requests off its log (None for another Cognigy server)."""
    target = SwitchableTarget(server_context(leaf))
    try:
        return _play(Scene(stack, target, reader, cognigy_block, simulator, out))
    finally:
        target.close()


def _play(scene: Scene) -> list[Verdict]:
    out, target = scene.out, scene.target
    print(
        f"\n== The watch: {SCENE_NAME} at {target.url('/hooks/inventory')} goes down and comes back "
        f"(watches every {STEP.seconds // 60} min, time compressed)",
        file=out,
    )
    outcome, _writes = scene.apply()
    print(f"  applied {SCENE_NAME}: {outcome}; Cognigy holds {scene.held_text(scene.held())}", file=out)
    if outcome != "created":
        return [Verdict(f"watch: {SCENE_NAME} applied", "created", outcome)]
    verdicts: list[Verdict] = []

    healthy = scene.watch(everything=True)
    calls = healthy.requests if healthy.requests is not None else healthy.cognigy_calls
    verdicts.append(Verdict("watch: a healthy watch makes no Cognigy call", "0 calls", f"{calls} calls"))

    target.down()
    failing = [scene.watch(STEP) for _ in range(3)]
    verdicts.append(
        Verdict(
            "watch: 3 failed watches -> Endpoint Unhealthy (audit + bus event)",
            "-, -, Endpoint Unhealthy (audit + bus)",
            _story(failing),
        )
    )

    day = scene.watch(A_DAY_LATER)
    verdicts.append(
        Verdict(
            "watch: failing for 24 h -> deactivated in Cognigy",
            f"Endpoint Deactivated (audit + bus), {scene.held_text(False)}",
            f"{_story([day])}, {scene.held_text(day.held)}",
        )
    )

    target.up()
    back = [scene.watch(STEP) for _ in range(3)]
    verdicts.append(
        Verdict(
            "watch: back up -> recovered and reactivated",
            f"-, -, Endpoint Recovered (audit + bus), {scene.held_text(True)}",
            f"{_story(back)}, {scene.held_text(back[-1].held)}",
        )
    )

    again, writes = scene.apply()
    print(f"  applied {SCENE_NAME} again: {again}; Cognigy holds {scene.held_text(scene.held())}", file=out)
    verdicts.append(
        Verdict(
            "watch: the next apply keeps it as it is (unchanged, no Cognigy write)",
            "unchanged, 0 writes" if writes is not None else "unchanged",
            f"{again}, {writes} writes" if writes is not None else again,
        )
    )
    return verdicts
