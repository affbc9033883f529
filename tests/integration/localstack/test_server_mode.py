"""Server mode: the same stack served over HTTP on 127.0.0.1 for other processes; the handlers still
run in this process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from urllib.parse import urlsplit

from cogwh.localstack import LocalStack
from tests.integration.localstack.helpers import FIXTURES, output_of, unique

CLIENT = textwrap.dedent(
    """
    import json, sys
    import boto3

    endpoint, table, machine, key = sys.argv[1:]
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint)
    dynamodb.put_item(TableName=table, Item={"pk": {"S": key}, "sk": {"S": "from-subprocess"}})
    sfn = boto3.client("stepfunctions", endpoint_url=endpoint)
    started = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"items": [{"key": key}]}))
    print(json.dumps({"executionArn": started["executionArn"]}))
    """
)


def test_a_client_in_another_process_drives_the_stack_over_http() -> None:
    with LocalStack(FIXTURES, stack_name="lsserver", server=True) as stack:
        endpoint = urlsplit(stack.endpoint_url)
        assert (endpoint.scheme, endpoint.hostname) == ("http", "127.0.0.1")
        assert stack.client("dynamodb").meta.endpoint_url == stack.endpoint_url
        key = unique("remote")

        # When another process writes a record and starts an execution through the endpoint
        env = {"PATH": os.environ.get("PATH", ""), **stack.base_env}
        completed = subprocess.run(
            [
                sys.executable,
                "-c",
                CLIENT,
                stack.endpoint_url,
                stack.physical_id("ItemsTable"),
                stack.physical_id("FlowStateMachine"),
                key,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        arn = json.loads(completed.stdout)["executionArn"]

        # Then the execution ran its task in this process, and the write is in the shared backend
        described = stack.wait_execution(arn)
        assert described["status"] == "SUCCEEDED"
        (item,) = output_of(described)["results"]
        assert item["result"]["pid"] == os.getpid()
        got = stack.client("dynamodb").get_item(
            TableName=stack.physical_id("ItemsTable"), Key={"pk": {"S": key}, "sk": {"S": "from-subprocess"}}
        )
        assert "Item" in got
        # and the stream consumer saw the subprocess's write too
        stack.drain_streams()
        scanned = stack.client("dynamodb").scan(TableName=stack.physical_id("StreamLogTable"))["Items"]
        assert [r["eventName"]["S"] for r in scanned if r["pk"]["S"] == key] == ["INSERT"]
