"""Fixtures for the watch through the local stack: the real template and both ASL files on moto, the
endpoints dialect against the simulator, targets that can go down and come back on the same port,
the operations bus captured (a rule to an SQS queue), and watches run at chosen times (``at``: time
compressed, with no clock of the test's own moved), each one's whole summary read as ``GET
/watches/{id}`` reads it, and every object the watches wrote to the config bucket."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cognigy_webhooks import ops as library_ops
from cogwh import ops
from cogwh.demo import DEMO_PROJECT_ID, LocalWorld
from cogwh.localstack import LocalStack
from cogwh.sim_endpoints import EndpointStore, store_of
from cogwh.simulator import SimulatorConfig
from cogwh.targets import SwitchableTarget, server_context
from tests.integration.reconcile.harness import (
    Harness,
    clean_harness,
    roomy_world,
    serve_stack,
    simulator_config_of,
)

BLOCK = {"projectId": DEMO_PROJECT_ID}
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="package")
def world() -> Iterator[LocalWorld]:
    yield from roomy_world("endpoints")


@pytest.fixture(scope="package")
def simulator_config(world: LocalWorld) -> SimulatorConfig:
    return simulator_config_of(world)


@pytest.fixture(scope="module")
def stack(world: LocalWorld) -> Iterator[LocalStack]:
    yield from serve_stack(world)


@pytest.fixture
def h(stack: LocalStack, world: LocalWorld, simulator_config: SimulatorConfig) -> Harness:
    return clean_harness(stack, world, simulator_config)


@pytest.fixture
def cognigy(h: Harness) -> EndpointStore:
    return store_of(h.sim)


@dataclass
class Watches:
    """Runs watches at chosen times and reads what they published."""

    h: Harness
    queue_url: str
    at: datetime = T0
    runs: list[dict[str, Any]] = field(default_factory=list)
    arns: list[str] = field(default_factory=list)
    _events: list[dict[str, Any]] = field(default_factory=list)

    def run(
        self, *, after: timedelta = timedelta(minutes=15), names: list[str] | None = None
    ) -> dict[str, Any]:
        """One watch, ``after`` the previous one (the rules' clock; the first is at T0)."""
        if self.runs:
            self.at += after
        access = ops.stack_access(self.h.stack)
        started = library_ops.start_watch(access, at=self.at, names=names, source="test")
        ended = self.h.stack.wait_execution(started.execution_arn)
        self.h.in_flight.wait_idle()
        assert ended["status"] == "SUCCEEDED", ended
        view = library_ops.describe_watch(access, started.execution_arn)  # the whole summary
        assert view.summary is not None
        summary: dict[str, Any] = view.summary.model_dump(mode="json", by_alias=True, exclude_none=True)
        self.runs.append(summary)
        self.arns.append(started.execution_arn)
        return summary

    def objects(self) -> dict[str, Any]:
        """Every object the watches wrote to the config bucket (targets, result files, summaries),
        by key, as JSON."""
        s3 = self.h.stack.client("s3")
        bucket = self.h.stack.outputs["ConfigBucketName"]
        keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="watch/")
            for item in page.get("Contents", [])
        ]
        return {key: json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()) for key in keys}

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every operational event so far (oldest first), or those of one endpoint."""
        sqs = self.h.stack.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                self._events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return [e for e in self._events if name is None or e["detail"]["name"] == name]

    def kinds(self, name: str) -> list[str]:
        return [e["detail-type"] for e in self.events(name)]


@pytest.fixture
def watches(h: Harness) -> Watches:
    stack = h.stack
    sqs = stack.client("sqs")
    events = stack.client("events")
    queue_url = sqs.create_queue(QueueName=f"ops-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = stack.outputs["OperationsBusName"]
    rule = f"ops-all-{uuid.uuid4().hex[:8]}"
    events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["cognigy-webhooks"]}))
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "capture", "Arn": queue_arn}])
    yield_value = Watches(h, queue_url)
    return yield_value


@pytest.fixture
def target(world: LocalWorld) -> Iterator[SwitchableTarget]:
    """A target that can go down, come back or answer 410, on one port (trusted by the world's CA)."""
    leaf = world.ca.issue("localhost", "127.0.0.1")
    switchable = SwitchableTarget(server_context(leaf))
    yield switchable
    switchable.close()


@pytest.fixture
def fallback(world: LocalWorld) -> Iterator[SwitchableTarget]:
    leaf = world.ca.issue("localhost", "127.0.0.1")
    switchable = SwitchableTarget(server_context(leaf))
    yield switchable
    switchable.close()
