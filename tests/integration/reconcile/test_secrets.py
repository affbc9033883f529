"""Secrets through a whole reconcile: a plain signatureSecret (and a Basic auth password) goes to
Secrets Manager before the execution starts; the Cognigy API key stays in Secrets Manager; neither
value appears in execution input, output or history, records, audit items, the config bucket, or
anything the handlers log - on the happy path, on rejections, retries and a refused key."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from cognigy_webhooks.observability import SERVICE, logger
from cogwh import ops
from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import Applied, Harness

# Credential headers no name pattern recognises: every header value is a secret unless declared public.
UNPATTERNED = ("X-Functions-Key", "Ocp-Apim-Subscription-Key", "X-Auth-Key", "Api_Key", "X-Client-Credential")


class _Capture(logging.Handler):
    """Every log record, as the handlers' JSON lines and as the record's raw attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            formatted = logger.registered_formatter.format(record)
        except Exception:  # a record of another library: the plain message
            formatted = record.getMessage()
        self.lines.append(formatted + "\n" + repr(vars(record)))


@pytest.fixture
def captured_logs() -> Iterator[_Capture]:
    """The functions' logger at DEBUG (stricter than the template's INFO) and everything else at INFO."""
    capture = _Capture()
    service = logging.getLogger(SERVICE)
    root = logging.getLogger()
    levels = (service.level, root.level)
    service.setLevel(logging.DEBUG)
    root.setLevel(logging.INFO)
    service.addHandler(capture)
    root.addHandler(capture)
    try:
        yield capture
    finally:
        service.removeHandler(capture)
        root.removeHandler(capture)
        service.setLevel(levels[0])
        root.setLevel(levels[1])


def _execution_text(h: Harness, applied: Applied) -> str:
    described = h.stack.client("stepfunctions").describe_execution(executionArn=applied.arn)
    return json.dumps(
        {
            "input": described.get("input"),
            "output": described.get("output"),
            "error": described.get("error"),
            "cause": described.get("cause"),
            "history": applied.history,
        },
        default=str,
    )


def _bucket_text(h: Harness) -> str:
    s3 = h.stack.client("s3")
    bucket = h.stack.outputs["ConfigBucketName"]
    bodies = []
    for version in s3.list_object_versions(Bucket=bucket).get("Versions", []):
        obj = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        bodies.append(obj["Body"].read().decode("utf-8"))
    assert bodies, "the config bucket holds the desired sets"
    return "\n".join(bodies)


def _forms(value: str) -> dict[str, str]:
    """Each form a secret may leak in (written here, independently of the library's own list)."""
    forms = {
        "as is": value,
        "URL-encoded": quote(value, safe=""),
        "base64": base64.b64encode(value.encode()).decode(),
    }
    if value.startswith("Basic "):
        pair = base64.b64decode(value[len("Basic ") :]).decode()
        forms.update({"Basic token": value[len("Basic ") :], "user:password": pair})
    return forms


def _leaks(places: dict[str, str], secrets_by_name: dict[str, str]) -> list[str]:
    return [
        f"the {value_name} appears {how} in the {place}"
        for value_name, value in secrets_by_name.items()
        for how, form in _forms(value).items()
        for place, text in places.items()
        if form in text
    ]


def test_the_hunt_catches_a_logged_basic_authorization_header(captured_logs: _Capture) -> None:
    # the resolved header Cognigy is told, logged by mistake: its password is nowhere in clear, only
    # inside the base64 of "user:password", and the hunt must still see it
    password = "pw-" + secrets.token_urlsafe(24)
    resolved = "Basic " + base64.b64encode(f"cognigy:{password}".encode()).decode()
    logger.info("calling cognigy", extra={"headers": {"Authorization": resolved}})

    found = _leaks({"handler logs": "\n".join(captured_logs.lines)}, {"Basic auth password": password})
    assert password not in "\n".join(captured_logs.lines)
    assert found == [], "the raw password alone is not what leaks here"
    found = _leaks({"handler logs": "\n".join(captured_logs.lines)}, {"Authorization header": resolved})
    assert "the Authorization header appears as is in the handler logs" in found
    assert "the Authorization header appears Basic token in the handler logs" in found


def test_no_secret_value_appears_anywhere(
    h: Harness,
    simulator_config: SimulatorConfig,
    captured_logs: _Capture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    signature_secret = "sig-" + secrets.token_urlsafe(32)
    rotated_secret = "sig-rotated-" + secrets.token_urlsafe(32)
    basic_password = "pw-" + secrets.token_urlsafe(24)
    header_token = "tok-" + secrets.token_urlsafe(24)
    unpatterned_value = "unpatterned-" + secrets.token_urlsafe(24)
    api_key = h.world.api_key

    def signed(name: str, secret: str, **fields: Any) -> dict[str, Any]:
        return h.endpoint(
            name,
            signatureHeader="X-Cognigy-Signature",
            signatureSecret=secret,
            basicAuth={"username": "cognigy", "password": basic_password},
            headers={
                "X-Api-Token": header_token,
                **dict.fromkeys(UNPATTERNED, unpatterned_value),
                "X-Team": "commerce",
                **fields.pop("headers", {}),
            },
            publicHeaders=["X-Team", *fields.pop("publicHeaders", [])],
            **fields,
        )

    runs: list[Applied] = []
    # 1. created, with a 5xx retried on the way, next to one Cognigy rejects (422)
    h.sim.set_faults({"script": ["pass", "5xx"]})
    runs.append(
        h.apply(
            [
                signed("signed-hook", signature_secret),
                signed(
                    "rejected-signed",
                    signature_secret,
                    headers={"X-Cognigy-Trace": "on"},
                    publicHeaders=["X-Cognigy-Trace"],
                ),
            ]
        )
    )
    assert runs[-1].result("signed-hook")["outcome"] == "created"
    assert runs[-1].result("rejected-signed")["reason"] == "cognigy_rejected"
    # Cognigy was told the resolved values: the credential header, and Basic auth as the
    # Authorization header it sends with each delivery
    (registered,) = h.sim.webhooks_named("signed-hook")
    expected_basic = "Basic " + base64.b64encode(f"cognigy:{basic_password}".encode()).decode()
    assert registered["headers"]["X-Api-Token"] == header_token
    assert registered["headers"]["Authorization"] == expected_basic
    assert {registered["headers"][name] for name in UNPATTERNED} == {unpatterned_value}
    assert registered["headers"]["X-Team"] == "commerce"
    # 2. the secret rotated behind the same ARN: Cognigy must be told the new one
    patches = h.sim.count(method="PATCH", status=200)
    runs.append(h.apply([signed("signed-hook", rotated_secret)]))
    assert runs[-1].result("signed-hook")["outcome"] == "updated"
    assert h.sim.count(method="PATCH", status=200) == patches + 1
    # 3. the key refused: the execution fails, its cause quoting what Cognigy said
    h.sim.reset(dataclasses.replace(simulator_config, api_keys=("ck_other_" + secrets.token_urlsafe(12),)))
    runs.append(h.apply([signed("signed-hook", signature_secret, timeoutMs=6000)]))
    assert runs[-1].run.status == "FAILED"

    # The secrets really flowed where they belong (so the search below is not vacuous):
    sm = h.stack.client("secretsmanager")
    record = h.record("signed-hook")
    assert record is not None
    arn = record.spec["signatureSecretArn"]
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == signature_secret
    password_arn = record.spec["basicAuth"]["passwordArn"]
    assert sm.get_secret_value(SecretId=password_arn)["SecretString"] == basic_password
    assert arn in _execution_text(h, runs[0])
    assert any('"message":"probed"' in line for line in captured_logs.lines)

    # Then no value appears in any place an operator or a log pipeline can read
    out, err = capfd.readouterr()
    places = {
        **{f"execution {i + 1}": _execution_text(h, applied) for i, applied in enumerate(runs)},
        "records": json.dumps(h.raw_items("EndpointsTableName")),
        "audit items": json.dumps(h.raw_items("AuditTableName")),
        "rate-limit items": json.dumps(h.raw_items("RateLimitTableName")),
        "config bucket": _bucket_text(h),
        # what `cogwh status --json` prints: the records through the CLI's own read
        "cogwh status --json": json.dumps(
            [r.model_dump(mode="json", by_alias=True) for r in ops.records(h.stack)]
        ),
        "handler logs": "\n".join(captured_logs.lines),
        "stdout/stderr": out + err,
    }
    assert "commerce" in places["records"]  # a public header is shown (the search is not blind)
    leaks = _leaks(
        places,
        {
            "signature secret": signature_secret,
            "rotated signature secret": rotated_secret,
            "Basic auth password": basic_password,
            "resolved Authorization header": expected_basic,
            "credential header value": header_token,
            "header value outside any name pattern": unpatterned_value,
            "Cognigy API key": api_key,
        },
    )
    assert leaks == []
