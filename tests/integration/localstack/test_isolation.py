"""Each function its own environment, and stream records delivered after the write, as on Lambda:
two functions may give one variable different values; a function's cold import, invocations and
threads see its own Environment over the process's, never another function's; a DynamoDB write
returns before its stream consumer runs, which runs on the mapping's own worker, in order, outside
the writer's event loop; ``drain_streams`` waits for it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cogwh.localstack import LocalStack, LocalStackError
from tests.integration.localstack.helpers import isolation_project, module_of, unique


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(isolation_project(tmp_path_factory.mktemp("isolation")), stack_name="lsiso") as local:
        yield local


@pytest.fixture
def consumer(stack: LocalStack) -> Iterator[Any]:
    module = module_of(stack, "Consumer")
    module.SEEN.clear()
    module.GATE.set()
    yield module
    module.GATE.set()
    stack.drain_streams()


def put(stack: LocalStack, pk: str) -> None:
    stack.client("dynamodb").put_item(TableName=stack.physical_id("Items"), Item={"pk": {"S": pk}})


# --- environment ---------------------------------------------------------------------------------


def test_two_functions_giving_one_variable_different_values_each_see_their_own(stack: LocalStack) -> None:
    first = stack.invoke("First", {})
    second = stack.invoke("Second", {})

    # at cold import (settings are read there), at invocation, through os.getenv and in a thread
    assert {k: first[k] for k in ("atImport", "setting", "getenv", "inThread")} == dict.fromkeys(
        ("atImport", "setting", "getenv", "inThread"), "value-first"
    )
    assert {k: second[k] for k in ("atImport", "setting", "getenv", "inThread")} == dict.fromkeys(
        ("atImport", "setting", "getenv", "inThread"), "value-second"
    )
    # the Globals' variables reach both, a function's own only itself, the process's every one
    assert first["everyone"] == second["everyone"] == "global-value"
    assert (first["onlyFirst"], second["onlyFirst"]) == ("yes", None)
    assert first["hasPath"]
    assert second["hasPath"]
    assert second["names"] == ["SETTING"]
    # and outside any function, the process environment has none of them
    for name in ("SETTING", "ONLY_FIRST", "EVERYONE", "ITEMS"):
        assert name not in os.environ


def test_concurrent_invocations_of_two_functions_never_see_each_other(stack: LocalStack) -> None:
    barrier = threading.Barrier(2)
    for logical_id in ("First", "Second"):
        module_of(stack, logical_id).BARRIER = barrier
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(stack.invoke, "First", {"together": True})
            second = pool.submit(stack.invoke, "Second", {"together": True})
            results = (first.result(timeout=60), second.result(timeout=60))
    finally:
        for logical_id in ("First", "Second"):
            module_of(stack, logical_id).BARRIER = None

    assert [r["setting"] for r in results] == ["value-first", "value-second"]
    assert [r["inThread"] for r in results] == ["value-first", "value-second"]


def test_a_function_s_writes_stay_in_its_own_environment(stack: LocalStack) -> None:
    value = unique("written")

    wrote = stack.invoke("First", {"write": value})
    later = stack.invoke("First", {})
    other = stack.invoke("Second", {})

    assert wrote["written"] == later["written"] == value  # kept, as in its own process
    assert other["written"] is None
    assert "WRITTEN" not in os.environ
    assert stack.environment("First")["WRITTEN"] == value
    assert "WRITTEN" not in stack.environment("Second")

    removed = stack.invoke("First", {"remove": "WRITTEN"})
    assert removed["written"] is None
    assert "WRITTEN" not in removed["names"]


def test_environment_and_as_function_show_a_function_s_view_without_its_values_in_a_repr(
    stack: LocalStack,
) -> None:
    assert stack.environment("Second") == {"EVERYONE": "global-value", "SETTING": "value-second"}
    with stack.as_function("Second"):
        assert os.environ["SETTING"] == "value-second"
        assert os.environ.copy()["SETTING"] == "value-second"
        assert (os.environ | {"X": "1"})["SETTING"] == "value-second"
        assert "value-second" not in repr(os.environ)
    assert "SETTING" not in os.environ
    with pytest.raises(LocalStackError, match="no function 'Nope'"):
        stack.environment("Nope")


# --- streams ---------------------------------------------------------------------------------------


def test_a_write_returns_before_its_stream_consumer_runs(stack: LocalStack, consumer: Any) -> None:
    # Given a consumer held at its gate
    consumer.GATE.clear()
    pk = unique("held")

    # When a record is written, the write returns while the consumer still waits
    put(stack, pk)
    assert consumer.SEEN == []
    with pytest.raises(LocalStackError, match="still undelivered"):
        stack.drain_streams(timeout=0.05)

    # Then, the gate open, drain_streams returns once the consumer has the record
    consumer.GATE.set()
    stack.drain_streams()
    assert [s["pk"] for s in consumer.SEEN] == [pk]
    assert consumer.SEEN[0]["thread"].startswith("cogwh-stream:")


def test_an_async_writer_s_record_is_delivered_outside_its_loop_and_its_environment(
    stack: LocalStack, consumer: Any
) -> None:
    pk = unique("async")

    stack.invoke("First", {"put": pk})  # put_item inside asyncio.run, inside First's environment
    stack.drain_streams()

    (seen,) = consumer.SEEN
    assert seen["pk"] == pk
    assert seen["inLoop"] is False  # no event loop of the writer's around the consumer
    assert (seen["setting"], seen["onlyFirst"]) == ("value-consumer", None)


def test_records_reach_the_consumer_in_the_order_they_were_written(stack: LocalStack, consumer: Any) -> None:
    keys = [unique(f"order-{n:02d}") for n in range(20)]

    for key in keys:
        put(stack, key)
    stack.drain_streams()

    assert [s["pk"] for s in consumer.SEEN] == keys
