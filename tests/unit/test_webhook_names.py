"""One webhook per name, the pure parts: which of a name's webhooks to keep, remove or leave, and the
plan's one listing of Cognigy (asked only when something of the plan is recorded; a failed listing
never stops the plan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cognigy_webhooks.cognigy import CognigyWebhook
from cognigy_webhooks.errors import CognigyUnavailable
from cognigy_webhooks.loopguard import loop_id_for
from cognigy_webhooks.reconcile import plan
from cognigy_webhooks.reconcile.names import cognigy_inventory, describe_left, sort_out


def hook(webhook_id: str, name: str = "orders-hook", *, ours: bool = True) -> CognigyWebhook:
    headers = (
        {"X-Cogwh-Origin": "cognigy-webhooks", "X-Cogwh-Loop-Id": loop_id_for(name), "X-Cogwh-Hop": "1"}
        if ours
        else {"X-Team": "other"}
    )
    return CognigyWebhook(id=webhook_id, name=name, url="https://h.example.test/x", headers=headers)


def test_the_recorded_webhook_is_kept_and_our_other_ones_are_orphans() -> None:
    held = [hook("a"), hook("b"), hook("c", ours=False), hook("d")]

    found = sort_out(held, "orders-hook", "b")

    assert found.keep is not None
    assert found.keep.id == "b"
    assert [w.id for w in found.orphans] == ["a", "d"]
    assert [w.id for w in found.foreign] == ["c"]


def test_without_a_record_the_oldest_of_ours_is_adopted_else_the_oldest_at_all() -> None:
    found = sort_out([hook("x", ours=False), hook("y"), hook("z")], "orders-hook", None)
    assert (found.keep.id if found.keep else None, [w.id for w in found.orphans]) == ("y", ["z"])
    assert [w.id for w in found.foreign] == ["x"]

    nothing_ours = sort_out([hook("p", ours=False), hook("q", ours=False)], "orders-hook", "gone")
    assert nothing_ours.keep is not None
    assert (nothing_ours.keep.id, nothing_ours.orphans, [w.id for w in nothing_ours.foreign]) == (
        "p",
        [],
        ["q"],
    )
    assert sort_out([], "orders-hook", "gone").keep is None


def test_marks_of_another_name_or_a_similar_name_do_not_count() -> None:
    borrowed = hook("m", name="orders-hook")
    borrowed = borrowed.model_copy(
        update={"headers": {**borrowed.headers, "X-Cogwh-Loop-Id": loop_id_for("x")}}
    )
    other_name = hook("n", name="orders-hook-2")

    found = sort_out([hook("k"), borrowed, other_name], "orders-hook", "k")

    assert found.orphans == []
    assert [w.id for w in found.foreign] == ["m"]  # same name, not our marks: left alone


def test_what_is_left_is_described_with_its_ids() -> None:
    assert describe_left("orders-hook", []) is None
    text = describe_left("orders-hook", [hook("f1", ours=False), hook("f2", ours=False)])
    assert text is not None
    assert "f1, f2" in text
    assert "orders-hook" in text


class Pages:
    """An ``iter_webhooks`` over fixed pages, counting the pages asked for."""

    def __init__(self, pages: list[list[CognigyWebhook]], fail: Exception | None = None) -> None:
        self.pages = pages
        self.fail = fail
        self.asked = 0

    async def iter_webhooks(self, name: str | None = None, *, page_size: int = 100) -> AsyncIterator[Any]:
        assert name is None  # one listing of everything, never one per name
        for page in self.pages:
            self.asked += 1
            for webhook in page:
                yield webhook
        if self.fail is not None:
            raise self.fail


def test_the_inventory_reads_every_page_once_and_keeps_the_names_asked_for() -> None:
    api = Pages([[hook("1"), hook("2", name="other-hook")], [hook("3"), hook("4", name="third-hook")]])

    held = asyncio.run(cognigy_inventory(api, ["orders-hook", "third-hook", "missing-hook"]))

    assert held == {"orders-hook": ["1", "3"], "third-hook": ["4"], "missing-hook": []}
    assert api.asked == 2


def _ep(name: str) -> dict[str, object]:
    return {"name": name, "url": f"https://{name}.example.com/hook"}


def test_the_plan_lists_cognigy_only_when_something_of_it_is_recorded() -> None:
    asked: list[list[str]] = []

    def inventory(names: list[str]) -> dict[str, list[str]]:
        asked.append(names)
        return {"known-hook": ["w1", "w2"]}

    first = plan(
        {"desired": {"endpoints": [_ep("known-hook")]}},
        recorded_names=list,
        load_desired=dict,
        inventory=inventory,
    )
    assert (asked, first.listing) == ([], "not needed")
    assert [(i.cognigy.listed, i.cognigy.ids) for i in first.items] == [(False, [])]

    again = plan(
        {"desired": {"endpoints": [_ep("known-hook"), _ep("fresh-hook")]}, "prune": True},
        recorded_names=lambda: ["known-hook", "pruned-hook"],
        load_desired=dict,
        inventory=inventory,
    )
    assert asked == [["known-hook", "fresh-hook", "pruned-hook"]]
    assert again.listing == "complete"
    assert [(i.action, i.endpoint["name"], i.cognigy.listed, i.cognigy.ids) for i in again.items] == [
        ("apply", "known-hook", True, ["w1", "w2"]),
        ("apply", "fresh-hook", True, []),
        ("delete", "pruned-hook", True, []),
    ]


@pytest.mark.parametrize("error", [CognigyUnavailable("down", maybe_applied=False), TimeoutError()])
def test_a_failed_listing_never_stops_the_plan(error: Exception) -> None:
    def inventory(names: list[str]) -> dict[str, list[str]]:
        raise error

    result = plan(
        {"desired": {"endpoints": [_ep("known-hook")]}},
        recorded_names=lambda: ["known-hook"],
        load_desired=dict,
        inventory=inventory,
    )

    assert [i.endpoint["name"] for i in result.items] == ["known-hook"]
    assert result.items[0].cognigy.listed is False
    assert result.listing.startswith(f"failed ({type(error).__name__})")
