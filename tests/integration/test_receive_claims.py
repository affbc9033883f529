"""After a won claim, every exit publishes exactly once or gives the claim back: a failure injected at
every step after the claim, whatever it raises, never leaves a delivery acknowledged and unpublished.

The ledger and the bus are the real ones (DeliveriesTable and the bus from template.yaml on the local
stack), each wrapped to raise once at the chosen step; what was published is read from the bus."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cognigy_webhooks.dal.audit import AuditLog
from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.deliveries import STATE_CLAIMED, STATE_LOOPED, STATE_PUBLISHED, DeliveryLedger
from cognigy_webhooks.emf import CountsDocument
from cognigy_webhooks.errors import DeliveryStoreError
from cognigy_webhooks.receiving import Receiver
from tests.support.receiver import ReceiverWorld, json_body, receiver_stack


@pytest.fixture(scope="module")
def world() -> Iterator[ReceiverWorld]:
    yield from receiver_stack()


class Interrupted(BaseException):
    """Stands for what is not an Exception (KeyboardInterrupt, SystemExit, a runtime's timeout)."""


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class Faults:
    """Failures by step name: the first ``times`` calls of that step raise, later ones work."""

    def __init__(self, step: str | None = None, error: BaseException | None = None, times: int = 1) -> None:
        self.step = step
        self.error = error
        self.times = times

    def maybe_raise(self, step: str) -> None:
        if self.step == step and self.error is not None:
            error = self.error
            self.times -= 1
            if self.times <= 0:
                self.error = None
            raise error


class FaultyLedger(DeliveryLedger):
    def __init__(self, clients: LazyClients, table: str, faults: Faults) -> None:
        super().__init__(clients, table)
        self.faults = faults

    def count_conversation(self, endpoint: str, conversation: str, *, now: float, window: float) -> int:
        self.faults.maybe_raise("count_conversation")
        return super().count_conversation(endpoint, conversation, now=now, window=window)

    def finish(self, delivery_id: str, *, token: str, state: str, now: float) -> bool:
        self.faults.maybe_raise(f"finish:{state}")
        return super().finish(delivery_id, token=token, state=state, now=now)

    def release(self, delivery_id: str, *, token: str) -> None:
        self.faults.maybe_raise("release")
        super().release(delivery_id, token=token)


class FaultyBus(DeliveryBus):
    def __init__(self, clients: LazyClients, bus_name: str, faults: Faults, **kwargs: Any) -> None:
        super().__init__(clients, bus_name, **kwargs)
        self.faults = faults

    def publish_rendered(self, text: str) -> str:
        self.faults.maybe_raise("publish")
        event_id = super().publish_rendered(text)
        self.faults.maybe_raise("after-publish")  # the event is out, and then the call fails
        return event_id


class FaultyAudit(AuditLog):
    def __init__(self, clients: LazyClients, table: str, faults: Faults, **kwargs: Any) -> None:
        super().__init__(clients, table, **kwargs)
        self.faults = faults

    def put(self, **kwargs: Any) -> str:
        self.faults.maybe_raise("audit")
        return super().put(**kwargs)


class FaultyLog:
    """A logger whose calls may fail (a broken handler, a full disk)."""

    def __init__(self, inner: Any, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    def info(self, *args: Any, **kwargs: Any) -> None:
        self.faults.maybe_raise("log")
        self.inner.info(*args, **kwargs)

    def warning(self, *args: Any, **kwargs: Any) -> None:
        self.faults.maybe_raise("log-rejection")
        self.inner.warning(*args, **kwargs)

    def error(self, *args: Any, **kwargs: Any) -> None:
        self.faults.maybe_raise("log-failure")
        self.inner.error(*args, **kwargs)

    def debug(self, *args: Any, **kwargs: Any) -> None:
        self.inner.debug(*args, **kwargs)


class FaultyMetrics:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.added: list[str] = []

    def add_document(self, document: CountsDocument) -> None:
        self.faults.maybe_raise("metrics")
        self.added.extend(document.names)

    def flush_metrics(self) -> None:
        return None


class Sleeps:
    """The receiver's sleep: records the pauses, runs ``during`` at the first one (what the first
    delivery does meanwhile), never sleeps."""

    def __init__(self, during: Any = None) -> None:
        self.pauses: list[float] = []
        self.during = during

    def __call__(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if self.during is not None:
            during, self.during = self.during, None
            during()


def receiver_for(
    world: ReceiverWorld, faults: Faults, clock: Clock, *, sleep: Any = None, **settings: Any
) -> Receiver:
    """A receiver on the stack's real tables, secrets and bus, with the faults wired in."""
    base = world.receiver
    config = base.settings._replace(**settings)
    clients = LazyClients(world.stack.client)
    return Receiver(
        config,
        directory=base.directory,
        secrets=base.secrets,
        ledger=FaultyLedger(clients, config.deliveries_table, faults),
        bus=FaultyBus(clients, config.bus_name, faults, source=config.event_source),
        audit=FaultyAudit(clients, config.audit_table, faults, retention_days=config.audit_retention_days),
        log=FaultyLog(base.log, faults),
        metrics=FaultyMetrics(faults),
        clock=clock,
        sleep=sleep if sleep is not None else Sleeps(),
    )


@dataclass(frozen=True)
class Step:
    step: str
    error: BaseException
    published: bool  # whether the event is out when the failure strikes
    first: int | None  # the first answer; None: the BaseException propagates
    state: str | None  # the ledger item after the failure (None: gone, released)
    times: int = 1  # how many calls of the step fail


def raised(step: str, error: BaseException) -> list[Step]:
    return [Step(step, error, False, 503, None), Step(step, Interrupted(), False, None, None)]


STEPS = [
    *raised("count_conversation", RuntimeError("a bug")),
    Step("count_conversation", DeliveryStoreError("counting failed"), False, 503, None),
    *raised("publish", RuntimeError("not a store error")),
    Step("publish", DeliveryStoreError("publishing failed"), False, 503, None),
    Step("publish", UnicodeEncodeError("utf-8", "x", 0, 1, "late"), False, 503, None),
    # the event went out but the call failed (a lost response): released, so a retry publishes again
    # with the same deliveryId (consumers dedupe on it): at least once, never acknowledged and lost
    Step("after-publish", DeliveryStoreError("response lost"), True, 503, None),
    # marking is tried twice: one failure is absorbed...
    Step("finish:published", DeliveryStoreError("marking failed"), True, 202, STATE_PUBLISHED),
    Step("finish:published", RuntimeError("a bug"), True, 202, STATE_PUBLISHED),
    # ...two leave the claim in flight until its lease (the retry below comes after it)
    Step("finish:published", DeliveryStoreError("marking failed"), True, 202, STATE_CLAIMED, times=2),
    Step("finish:published", Interrupted(), True, None, STATE_CLAIMED),
    Step("log", RuntimeError("a broken handler"), True, 202, STATE_PUBLISHED),
    Step("log", Interrupted(), True, None, STATE_PUBLISHED),
    Step("metrics", RuntimeError("metrics down"), True, 202, STATE_PUBLISHED),
]


@pytest.mark.parametrize(
    "case", STEPS, ids=[f"{s.step}-{type(s.error).__name__}-{i}" for i, s in enumerate(STEPS)]
)
def test_a_failure_at_any_step_after_the_claim_never_acknowledges_an_unpublished_delivery(
    world: ReceiverWorld, case: Step
) -> None:
    # Given a genuine delivery and a receiver that fails once at this step
    reg = world.register("faulty")
    body = json_body()
    event = world.event(reg, body, reg.sign(body))
    faults = Faults(case.step, case.error, case.times)
    clock = Clock()
    receiver = receiver_for(world, faults, clock)

    # When it is delivered
    if case.first is None:
        with pytest.raises(Interrupted):
            receiver.handle_event(event)
    else:
        assert int(receiver.handle_event(event)["statusCode"]) == case.first
    assert faults.error is None, "the fault was not reached"

    # Then the claim is released unless the event is out
    items = world.deliveries_of(reg.name)
    assert [i["state"] for i in items] == ([case.state] if case.state else [])
    assert len(world.published_for(reg.name)) == (1 if case.published else 0)

    # and Cognigy's retry goes through: published now, or a duplicate of what was published. A claim
    # left in flight answers 503 within its lease, and is taken over after it
    if case.state == STATE_CLAIMED:
        within = receiver.handle_event(event)
        assert int(within["statusCode"]) == 503
        assert json.loads(within["body"])["message"].startswith("This delivery is still being handed on")
        clock.now += receiver.settings.claim_lease_seconds + 1
    retry = json.loads(receiver.handle_event(event)["body"])
    events = world.published_for(reg.name)
    if case.state == STATE_PUBLISHED:
        assert retry["status"] == "duplicate"
        assert len(events) == 1
    else:
        assert retry["status"] == "accepted"
        assert len(events) == (2 if case.published else 1)
    assert {e["detail"]["deliveryId"] for e in events} == {retry["deliveryId"]}
    [item] = world.deliveries_of(reg.name)
    assert item["state"] in (STATE_PUBLISHED, STATE_CLAIMED)
    # and every later retry is a duplicate
    again = json.loads(receiver.handle_event(event)["body"])
    assert again == {"deliveryId": retry["deliveryId"], "status": "duplicate"}
    assert len(world.published_for(reg.name)) == len(events)


@pytest.mark.parametrize(
    ("step", "error"),
    [
        ("finish:looped", DeliveryStoreError("marking failed")),
        ("finish:looped", RuntimeError("a bug")),
        ("finish:looped", Interrupted()),
        ("count_conversation", RuntimeError("a bug")),
    ],
)
def test_a_failure_while_stopping_a_loop_releases_the_claim_and_the_retry_is_stopped(
    world: ReceiverWorld, step: str, error: BaseException
) -> None:
    reg = world.register("faulty-loop")
    body = json_body()
    event = world.event(reg, body, reg.sign(body))
    faults = Faults(step, error)
    receiver = receiver_for(world, faults, Clock(), loop_max_per_window=0)  # every delivery loops
    if isinstance(error, Interrupted):
        with pytest.raises(Interrupted):
            receiver.handle_event(event)
    else:
        assert int(receiver.handle_event(event)["statusCode"]) == 503
    assert world.deliveries_of(reg.name) == []
    assert int(receiver.handle_event(event)["statusCode"]) == 508
    assert [i["state"] for i in world.deliveries_of(reg.name)] == [STATE_LOOPED]
    assert world.published_for(reg.name) == []


@pytest.mark.parametrize("step", ["audit", "log-rejection"])
def test_reporting_a_stopped_loop_cannot_change_its_answer(world: ReceiverWorld, step: str) -> None:
    reg = world.register("faulty-report")
    body = json_body()
    faults = Faults(step, RuntimeError("reporting down"))
    receiver = receiver_for(world, faults, Clock(), loop_max_per_window=0)
    assert int(receiver.handle_event(world.event(reg, body, reg.sign(body)))["statusCode"]) == 508
    assert faults.error is None
    assert [i["state"] for i in world.deliveries_of(reg.name)] == [STATE_LOOPED]


def test_a_claim_that_cannot_be_released_is_taken_over_after_its_lease(world: ReceiverWorld) -> None:
    # Given a failed publish whose release fails too (DynamoDB down at that moment)
    reg = world.register("faulty-release")
    body = json_body()
    event = world.event(reg, body, reg.sign(body))
    faults = Faults("publish", DeliveryStoreError("publishing failed"))
    clock = Clock()
    receiver = receiver_for(world, faults, clock)
    assert isinstance(receiver.ledger, FaultyLedger)
    receiver.ledger.faults = release_fails = Faults("release", DeliveryStoreError("release failed"))
    assert int(receiver.handle_event(event)["statusCode"]) == 503
    assert release_fails.error is None
    assert faults.error is None
    assert [i["state"] for i in world.deliveries_of(reg.name)] == [STATE_CLAIMED]
    # When Cognigy retries after the claim's lease
    clock.now += receiver.settings.claim_lease_seconds + 1
    retry = receiver.handle_event(event)
    # Then the retry takes the claim over and hands the delivery on, once
    assert int(retry["statusCode"]) == 202
    assert len(world.published_for(reg.name)) == 1
    assert [i["state"] for i in world.deliveries_of(reg.name)] == [STATE_PUBLISHED]


def test_a_failing_failure_report_still_answers_503(world: ReceiverWorld) -> None:
    reg = world.register("faulty-log")
    body = json_body()
    event = world.event(reg, body, reg.sign(body))
    faults = Faults("publish", DeliveryStoreError("publishing failed"))
    receiver = receiver_for(world, faults, Clock())
    assert isinstance(receiver.log, FaultyLog)
    receiver.log.faults = log_fails = Faults("log-failure", RuntimeError("log down"))
    response = receiver.handle_event(event)
    assert int(response["statusCode"]) == 503
    assert log_fails.error is None
    assert world.deliveries_of(reg.name) == []


# --- a duplicate of a delivery still in flight -------------------------------------------------------


class Dies(Faults):
    """The invocation dies after its claim: counting and releasing both raise."""

    def maybe_raise(self, step: str) -> None:
        if step in ("count_conversation", "release"):
            raise Interrupted()


def _claim_as_first(world: ReceiverWorld, receiver: Receiver, event: dict[str, Any], reg: Any) -> str:
    """Let a first invocation claim the delivery and stop there (it is in flight, or it died)."""
    first = receiver_for(world, Faults(), Clock())
    assert isinstance(first.ledger, FaultyLedger)
    first.ledger.faults = Dies()  # after its claim, and it cannot give the claim back either
    before = {i["deliveryId"] for i in world.deliveries_of(reg.name)}
    with pytest.raises(Interrupted):
        first.handle_event(event)
    [item] = [i for i in world.deliveries_of(reg.name) if i["deliveryId"] not in before]
    assert item["state"] == STATE_CLAIMED
    return str(item["deliveryId"])


def test_a_duplicate_of_a_delivery_in_flight_is_never_acknowledged_before_it_is_handed_on(
    world: ReceiverWorld,
) -> None:
    # Given a first delivery that claimed, then died before publishing (its invocation timed out)
    reg = world.register("in-flight")
    body = json_body(sessionId="s-in-flight")
    event = world.event(reg, body, reg.sign(body))
    clock = Clock()
    sleeps = Sleeps()
    receiver = receiver_for(world, Faults(), clock, sleep=sleeps)
    delivery_id = _claim_as_first(world, receiver, event, reg)

    # When Cognigy retries within the claim's lease
    within = receiver.handle_event(event)

    # Then it waited on a bounded schedule, and answers 503 (Cognigy comes back), not 200
    assert int(within["statusCode"]) == 503
    assert within["headers"]["Retry-After"]
    assert round(sum(sleeps.pauses), 6) == receiver.settings.inflight_wait_seconds
    assert world.published_for(reg.name) == []
    # and the retry after the lease takes the claim over and hands it on, once
    clock.now += receiver.settings.claim_lease_seconds + 1
    after = json.loads(receiver.handle_event(event)["body"])
    assert after == {"deliveryId": delivery_id, "status": "accepted"}
    assert len(world.published_for(reg.name)) == 1


def test_a_duplicate_waits_for_the_first_and_answers_as_it_ends(world: ReceiverWorld) -> None:
    reg = world.register("in-flight-ends")
    ledger = DeliveryLedger(LazyClients(world.stack.client), world.receiver.settings.deliveries_table)

    def scenario(finish_as: str | None) -> tuple[int, list[float]]:
        body = json_body(sessionId=f"s-{finish_as}-{time.monotonic_ns()}")
        event = world.event(reg, body, reg.sign(body))
        probe = receiver_for(world, Faults(), Clock())
        delivery_id = _claim_as_first(world, probe, event, reg)
        [item] = [i for i in world.deliveries_of(reg.name) if i["deliveryId"] == delivery_id]

        def first_ends() -> None:  # meanwhile, the first invocation ends (or gives its claim back)
            if finish_as is None:
                ledger.release(delivery_id, token=item["claimToken"])
            else:
                ledger.finish(delivery_id, token=item["claimToken"], state=finish_as, now=time.time())

        sleeps = Sleeps(during=first_ends)
        answer = receiver_for(world, Faults(), Clock(), sleep=sleeps).handle_event(event)
        return int(answer["statusCode"]), sleeps.pauses

    # the first published: the duplicate is a duplicate, after one short pause
    assert scenario(STATE_PUBLISHED) == (200, [0.02])
    # the first stopped it as a loop: so is this one
    assert scenario(STATE_LOOPED) == (508, [0.02])
    # the first gave its claim back (its hand-off failed): this one hands the delivery on
    published = len(world.published_for(reg.name))
    assert scenario(None) == (202, [0.02])
    assert len(world.published_for(reg.name)) == published + 1


def test_the_in_flight_wait_is_bounded_and_can_be_off() -> None:
    from cognigy_webhooks.receiving import inflight_waits

    assert inflight_waits(0) == ()
    assert inflight_waits(0.05) == (0.02, 0.03)
    waits = inflight_waits(2.0)
    assert round(sum(waits), 9) == 2.0
    assert max(waits) == 0.25
    assert len(waits) <= 12
