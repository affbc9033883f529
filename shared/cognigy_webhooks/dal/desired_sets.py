"""The config bucket (S3), its only caller: desired sets, one object whose every put is a new version.

A reconcile execution names the version it works on (``desiredRef``: bucket, key, versionId), so what
it reconciles never changes under it, and a version is reconciled once (its execution's name is
derived from it, see :mod:`cognigy_webhooks.dal.executions`). The set is stored as compact JSON with
sorted keys, holding secret ARNs and references only (secrets are moved out first, by
:mod:`cognigy_webhooks.secrets`). Failures are :class:`~cognigy_webhooks.errors.StoreError` with the
AWS error code and AWS's message.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.errors import StoreError, aws_error_code

__all__ = ["DesiredSetStore"]


class DesiredSetStore:
    """Desired sets in the versioned config bucket (what a deploy reconciles)."""

    KEY = "desired/endpoints.json"

    def __init__(self, client: Any, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    @property
    def client(self) -> Any:
        """The S3 client (the run files of the same bucket are read with it)."""
        return self._s3

    def put(self, data: dict[str, Any], key: str = KEY) -> str:
        """Store a desired set as a new version; returns its version id (``null`` when unversioned)."""
        body = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
        try:
            resp = self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws("storing the desired set", exc) from exc
        return str(resp.get("VersionId") or "null")

    def get(self, key: str = KEY, version_id: str | None = None) -> tuple[dict[str, Any], str]:
        """A desired set (the latest version unless told) and its version id."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        try:
            resp = self._s3.get_object(**kwargs)
            data = json.loads(resp["Body"].read())
        except (ClientError, BotoCoreError) as exc:
            raise StoreError.from_aws(f"reading the desired set s3://{self.bucket}/{key}", exc) from exc
        except ValueError as exc:
            raise StoreError(f"the desired set s3://{self.bucket}/{key} is not JSON", code="NotJson") from exc
        return data, str(resp.get("VersionId") or "null")

    def latest_version(self, key: str = KEY) -> str | None:
        """The latest version's id, or None when no desired set was stored yet."""
        try:
            resp = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if aws_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StoreError.from_aws("looking up the desired set", exc) from exc
        except BotoCoreError as exc:
            raise StoreError.from_aws("looking up the desired set", exc) from exc
        return str(resp.get("VersionId") or "null")
