"""The create claim in the EndpointsTable (template.yaml's own table, on the local stack): one
conditional write takes it, only its holder writes the item while it is live, the holder's commit
clears it, a release gives it back (keeping the maybe-applied mark when asked), an expired one is
taken over, and an item holding only a claim is never a record."""

from __future__ import annotations

import pytest

from cognigy_webhooks.dal.records import Store
from cognigy_webhooks.errors import EndpointClaimed, RecordConflict
from cognigy_webhooks.models.records import AuditEvent, EndpointRecord
from tests.integration.reconcile.harness import Harness


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(h: Harness, clock: Clock) -> Store:
    return Store(
        h.stack.client("dynamodb"),
        endpoints_table=h.store.endpoints_table,
        audit_table=h.store.audit_table,
        clock=clock,
    )


def audit(name: str) -> AuditEvent:
    return AuditEvent(name=name, action="register", outcome="created")


def test_a_claim_on_a_new_name_is_no_record_and_holds_others_off(store: Store) -> None:
    store.claim("new-name", token="mine", expected_version=None, lease_seconds=90)

    stored = store.read("new-name")
    assert (stored.record, stored.claimed, stored.create_maybe_applied) == (None, True, False)
    assert store.get_record("new-name") is None
    assert [r.name for r in store.list_records()] == []
    with pytest.raises(EndpointClaimed, match="another execution"):
        store.claim("new-name", token="theirs", expected_version=None, lease_seconds=90)
    # a writer without the claim is refused; the holder's commit goes through and clears it
    record = EndpointRecord(name="new-name", webhook_id="w1", status="registered", version=1)
    with pytest.raises(RecordConflict):
        store.commit(name="new-name", record=record, audit=audit("new-name"), expected_version=None)
    with pytest.raises(RecordConflict):
        store.commit(
            name="new-name", record=record, audit=audit("new-name"), expected_version=None, claim_token="x"
        )
    store.commit(
        name="new-name", record=record, audit=audit("new-name"), expected_version=None, claim_token="mine"
    )
    after = store.read("new-name")
    assert after.record is not None
    assert (after.record.webhook_id, after.claimed) == ("w1", False)
    assert [r.name for r in store.list_records()] == ["new-name"]


def test_a_claim_on_a_record_needs_the_version_read(store: Store) -> None:
    record = EndpointRecord(name="kept", status="failed", version=1)
    store.commit(name="kept", record=record, audit=audit("kept"), expected_version=None)

    with pytest.raises(RecordConflict):
        store.claim("kept", token="mine", expected_version=7, lease_seconds=90)
    store.claim("kept", token="mine", expected_version=1, lease_seconds=90)

    assert store.read("kept").claimed
    assert store.get_record("kept") == record  # the claim's attributes are not the record's
    assert store.release("kept", token="theirs", create_maybe_applied=False, drop_item=False) is False
    assert store.release("kept", token="mine", create_maybe_applied=False, drop_item=False) is True
    assert not store.read("kept").claimed
    assert store.get_record("kept") == record


def test_a_release_drops_a_bare_claim_or_keeps_the_maybe_applied_mark(store: Store, h: Harness) -> None:
    store.claim("dropped", token="a", expected_version=None, lease_seconds=90)
    store.claim("marked", token="b", expected_version=None, lease_seconds=90)

    assert store.release("dropped", token="a", create_maybe_applied=False, drop_item=True)
    assert store.release("marked", token="b", create_maybe_applied=True, drop_item=True)

    names = sorted(i["name"]["S"] for i in h.raw_items("EndpointsTableName"))
    assert names == ["marked"]
    marked = store.read("marked")
    assert (marked.record, marked.claimed, marked.create_maybe_applied) == (None, False, True)
    # the next writer (no claim needed now) replaces the mark with a record
    record = EndpointRecord(name="marked", status="failed", create_maybe_applied=True, version=1)
    store.commit(name="marked", record=record, audit=audit("marked"), expected_version=None)
    assert store.get_record("marked") == record


def test_an_expired_claim_is_taken_over_and_no_longer_holds_writers_off(store: Store, clock: Clock) -> None:
    store.claim("stale", token="dead", expected_version=None, lease_seconds=90)
    clock.now += 91

    assert not store.read("stale").claimed
    store.claim("stale", token="alive", expected_version=None, lease_seconds=90)
    assert store.release("stale", token="dead", create_maybe_applied=False, drop_item=True) is False
    clock.now += 91
    record = EndpointRecord(name="stale", status="failed", version=1)
    store.commit(name="stale", record=record, audit=audit("stale"), expected_version=None)
    assert store.get_record("stale") == record
