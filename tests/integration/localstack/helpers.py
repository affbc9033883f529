"""Helpers for the local stack's tests: fixture paths, throwaway projects, history queries."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"

HANDLER = textwrap.dedent(
    """
    def lambda_handler(event, context):
        return {"ok": True}
    """
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_project(root: Path, template: str, files: dict[str, str] | None = None) -> Path:
    """A throwaway project: template.yaml plus the given files (handlers default to HANDLER)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "template.yaml").write_text(textwrap.dedent(template), encoding="utf-8")
    for relative, text in (files or {}).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def events_of(history: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in history if event["type"] == kind]


def output_of(described: dict[str, Any]) -> Any:
    return json.loads(described["output"])


ISOLATION_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Environment:
      Variables:
        EVERYONE: global-value
Resources:
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  First:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/env/
      Handler: app.lambda_handler
      Environment:
        Variables: {SETTING: value-first, ONLY_FIRST: "yes", ITEMS: !Ref Items}
  Second:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/env/
      Handler: app.lambda_handler
      Environment:
        Variables: {SETTING: value-second}
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/consumer/
      Handler: app.lambda_handler
      Environment:
        Variables: {SETTING: value-consumer}
      Events:
        Changes:
          Type: DynamoDB
          Properties: {Stream: !GetAtt Items.StreamArn, StartingPosition: TRIM_HORIZON}
"""

ISOLATION_HANDLER = """
import asyncio
import os
import threading

import boto3

AT_IMPORT = os.environ.get("SETTING")
BARRIER = None  # a test may set a threading.Barrier here, to hold two invocations in flight together


def lambda_handler(event, context):
    if event.get("write"):
        os.environ["WRITTEN"] = event["write"]
    if event.get("remove"):
        del os.environ[event["remove"]]
    if BARRIER is not None and event.get("together"):
        BARRIER.wait(timeout=30)
    in_thread = []
    thread = threading.Thread(target=lambda: in_thread.append(os.environ.get("SETTING")))
    thread.start()
    thread.join()
    if event.get("put"):
        async def put():  # an async writer: the record must not be delivered inside this loop
            boto3.client("dynamodb").put_item(TableName=os.environ["ITEMS"], Item={"pk": {"S": event["put"]}})
        asyncio.run(put())
    return {
        "atImport": AT_IMPORT,
        "setting": os.environ["SETTING"],
        "getenv": os.getenv("SETTING"),
        "everyone": os.environ.get("EVERYONE"),
        "onlyFirst": os.environ.get("ONLY_FIRST"),
        "written": os.environ.get("WRITTEN"),
        "inThread": in_thread[0],
        "hasPath": "PATH" in os.environ,
        "names": sorted(n for n in os.environ if n in ("SETTING", "ONLY_FIRST", "WRITTEN", "ITEMS")),
    }
"""

ISOLATION_CONSUMER = """
import asyncio
import os
import threading

GATE = threading.Event()
GATE.set()  # a test may clear it to hold the consumer
ARRIVED = threading.Event()  # set when a batch reaches the consumer
SEEN = []


def lambda_handler(event, context):
    ARRIVED.set()
    GATE.wait(timeout=5)
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    for record in event["Records"]:
        SEEN.append(
            {
                "pk": record["dynamodb"]["Keys"]["pk"]["S"],
                "thread": threading.current_thread().name,
                "inLoop": in_loop,
                "setting": os.environ.get("SETTING"),
                "onlyFirst": os.environ.get("ONLY_FIRST"),
            }
        )
    return {"batchItemFailures": []}
"""


def isolation_project(root: Path) -> Path:
    """Two functions giving SETTING different values (First also writes to a streamed table, from
    inside an event loop) and a stream consumer: see test_isolation.py."""
    files = {"functions/env/app.py": ISOLATION_HANDLER, "functions/consumer/app.py": ISOLATION_CONSUMER}
    return make_project(root, ISOLATION_TEMPLATE, files)


def module_of(stack: Any, logical_id: str) -> Any:
    """A function's handler module, as the local stack imported it."""
    return sys.modules[stack.functions[logical_id].module_name]
