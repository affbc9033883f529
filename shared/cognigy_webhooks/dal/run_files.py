"""The config bucket's per-run files (S3), their only caller: what a Distributed Map reads and writes.

A reconcile (or watch) execution keeps its fan-out out of its own state, so the state stays small
whatever the number of endpoints: the first step writes the items as one JSON array
(:meth:`RunFiles.put_items`, under ``<kind>/<execution name>/``) and hands the map an
:class:`ItemsRef`; the map's ``ItemReader`` reads them, its ``ResultWriter`` writes each child's
result under ``resultsPrefix`` (``manifest.json`` naming ``SUCCEEDED_n.json``/``FAILED_n.json``);
the last step reads them (:meth:`RunFiles.map_results`) and writes the whole summary beside them
(:meth:`RunFiles.put_json`). Everything written holds what execution state may hold: secret ARNs and
references, never a secret. Failures are :class:`~cognigy_webhooks.errors.StoreError` with the AWS
error code and AWS's message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.errors import StoreError

__all__ = ["ChildResult", "ItemsRef", "RunFiles"]


@dataclass(frozen=True)
class ItemsRef:
    """Where a run's items are, as the state machine reads them (``$.itemsRef``): the bucket, the
    items' key, the prefix the ResultWriter writes under, how many items, and how many children run
    at once (``concurrency``: the map's MaxConcurrencyPath). ``invalid_key``: the plan's refusals,
    when there were any."""

    bucket: str
    key: str
    results_prefix: str
    count: int
    concurrency: int
    invalid_key: str | None = None
    invalid_count: int = 0

    def as_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "bucket": self.bucket,
            "key": self.key,
            "resultsPrefix": self.results_prefix,
            "count": self.count,
            "concurrency": self.concurrency,
            "invalidCount": self.invalid_count,
        }
        if self.invalid_key is not None:
            state["invalidKey"] = self.invalid_key
        return state


@dataclass(frozen=True)
class ChildResult:
    """One child of a map run as the ResultWriter reports it: its status, its input, its output
    (a SUCCEEDED child's) or its error and cause."""

    status: str
    input: Any
    output: Any = None
    error: str | None = None
    cause: str | None = None


def run_name(execution_id: str | None) -> str:
    """The execution's name (an ARN's last part), the folder its files go in."""
    name = str(execution_id or "").rsplit(":", 1)[-1]
    return name or "unnamed"


class RunFiles:
    """A run's items, results and summary in the config bucket."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def put_json(self, key: str, doc: Any) -> dict[str, str]:
        """Write one JSON object; its reference (``{"bucket", "key"}``)."""
        body = json.dumps(doc, separators=(",", ":")).encode("utf-8")
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"writing s3://{self.bucket}/{key}", exc) from exc
        return {"bucket": self.bucket, "key": key}

    def get_json(self, key: str, bucket: str | None = None) -> Any:
        where = f"s3://{bucket or self.bucket}/{key}"
        try:
            body = self._s3.get_object(Bucket=bucket or self.bucket, Key=key)["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"reading {where}", exc) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise StoreError(f"{where} is not JSON", code="NotJson") from exc

    def put_items(
        self,
        kind: str,
        execution_id: str | None,
        items: list[Any],
        *,
        concurrency: int,
        invalid: list[Any] | None = None,
    ) -> ItemsRef:
        """Write a run's items (and the plan's refusals, when any) under ``<kind>/<execution name>/``."""
        folder = f"{kind}/{run_name(execution_id)}"
        self.put_json(f"{folder}/items.json", items)
        invalid_key = None
        if invalid:
            invalid_key = self.put_json(f"{folder}/invalid.json", invalid)["key"]
        return ItemsRef(
            bucket=self.bucket,
            key=f"{folder}/items.json",
            results_prefix=f"{folder}/results",
            count=len(items),
            concurrency=max(1, concurrency),
            invalid_key=invalid_key,
            invalid_count=len(invalid or []),
        )

    def map_results(self, details: dict[str, Any]) -> Iterator[ChildResult]:
        """Every child of a map run, from its ResultWriter's manifest (``ResultWriterDetails``:
        Bucket, Key), SUCCEEDED files first, in the order written."""
        bucket, key = str(details.get("Bucket") or self.bucket), str(details.get("Key") or "")
        if not key:
            raise StoreError("the map run wrote no results (no ResultWriterDetails.Key)", code="NoResults")
        manifest = self.get_json(key, bucket)
        files = manifest.get("ResultFiles") if isinstance(manifest, dict) else None
        if not isinstance(files, dict):
            raise StoreError(f"s3://{bucket}/{key} is no ResultWriter manifest", code="NotAManifest")
        for status in ("SUCCEEDED", "FAILED", "PENDING"):
            for listed in files.get(status) or []:
                for entry in self.get_json(str(listed["Key"]), bucket) or []:
                    yield ChildResult(
                        status=str(entry.get("Status") or status),
                        input=_parsed(entry.get("Input")),
                        output=_parsed(entry.get("Output")),
                        error=entry.get("Error"),
                        cause=entry.get("Cause"),
                    )


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return None
