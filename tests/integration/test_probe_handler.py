"""functions/probe/app.py: the state machine's probe task, called as Lambda would call it, against
real TLS servers on 127.0.0.1 (events/probe.json with its URLs pointed at them)."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models import EndpointProbeReport
from cognigy_webhooks.observability import logger
from cognigy_webhooks.settings import InvalidSettings
from cogwh.certs import LocalCA
from tests.support.tls_servers import LocalServer, answer, refused_port, server_context

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "functions" / "probe" / "app.py"
EVENT = json.loads((ROOT / "events" / "probe.json").read_text())


@dataclass
class FakeContext:
    function_name: str = "cognigy-webhooks-probe"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-central-1:123456789012:function:cognigy-webhooks-probe"
    aws_request_id: str = "7f1c1c0e-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def _load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, HANDLER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch, local_ca: LocalCA) -> ModuleType:
    """The handler module after a cold start with the local stack's settings."""
    monkeypatch.setenv("PROBE_ALLOW_PRIVATE_NETWORKS", "true")
    monkeypatch.setenv("PROBE_CA_BUNDLE", str(local_ca.ca_file))
    monkeypatch.setenv("PROBE_CERT_WARNING_DAYS", "21")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "CognigyWebhooksTest")
    return _load_handler("probe_app_under_test")


@pytest.fixture
def server(local_ca: LocalCA) -> Iterator[LocalServer]:
    with LocalServer(answer(200), server_context(local_ca.issue("localhost", "127.0.0.1"))) as served:
        yield served


def _event(url: str, fallbacks: list[str], **changes: Any) -> dict[str, Any]:
    endpoint = {**EVENT["endpoint"], "url": url, "fallbackUrls": fallbacks, **changes}
    return {"endpoint": endpoint}


def test_sample_event_probed_against_a_local_server(handler: ModuleType, server: LocalServer) -> None:
    with refused_port() as dead:
        event = _event(server.url("localhost", "/cognigy/orders"), [f"https://localhost:{dead}/"])
        output = handler.lambda_handler(event, FakeContext())

    assert output["passed"] is True  # the state machine's Choice reads $.probe.passed
    assert output["reason"] == "ok"
    assert output["name"] == EVENT["endpoint"]["name"]
    primary = output["primary"]
    assert primary["tlsVersion"] == "TLSv1.3"
    assert primary["statusCode"] == 200
    assert set(primary["timingsMs"]) == {"dns", "connect", "tls", "firstByte", "total"}
    assert output["fallbacks"][0]["reason"] == "connection_refused"
    assert output["warnings"]
    assert "connection_refused" in output["warnings"][0]
    json.dumps(output)  # JSON-serialisable as Lambda returns it
    # the register task parses exactly this shape
    assert EndpointProbeReport.model_validate(output).primary.tls_version == "TLSv1.3"


def test_failing_probe_is_a_result_not_an_error(handler: ModuleType) -> None:
    with refused_port() as dead:
        output = handler.lambda_handler(_event(f"https://localhost:{dead}/", []), FakeContext())
    assert output["passed"] is False
    assert output["reason"] == "connection_refused"


def test_blocked_address_is_a_result(handler: ModuleType) -> None:
    output = handler.lambda_handler(_event("https://169.254.169.254/latest/", []), FakeContext())
    assert (output["passed"], output["reason"]) == (False, "blocked_address")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (_event("http://hooks.example/", []), "url"),
        (_event("https://hooks.example/", ["https://0177.0.0.1/"]), "fallbackUrls.0"),
        ({"endpoint": {"url": "https://hooks.example/"}}, "name"),
        ({"spec": {}}, "endpoint"),
    ],
)
def test_invalid_spec_raises_invalid_spec(handler: ModuleType, event: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        handler.lambda_handler(event, FakeContext())
    assert type(caught.value).__name__ == "InvalidSpec"  # the ASL's Catch contract
    assert field in [e["field"] for e in caught.value.errors]


def test_secrets_in_the_spec_reach_neither_the_target_nor_output_nor_logs(
    handler: ModuleType, server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "whsec-" + "q" * 40
    event = _event(
        server.url(),
        [],
        headers={"Authorization": f"Bearer {secret}"},
        signatureHeader="X-Cognigy-Signature",
        signatureSecret=secret,
    )
    with caplog.at_level(logging.DEBUG):
        output = handler.lambda_handler(event, FakeContext())
    # every record as Powertools would write it (its JSON formatter), and every attribute it carries
    formatter = logger.registered_formatter
    lines = [formatter.format(record) for record in caplog.records]
    assert output["passed"] is True
    assert secret not in json.dumps(output)
    assert not [line for line in lines if secret in line]
    assert not [r for r in caplog.records if secret in repr(r.__dict__)]
    assert secret not in repr(server.requests)
    probed = [json.loads(line) for line in lines if '"probed"' in line]
    assert probed
    assert probed[0]["endpoint"] == EVENT["endpoint"]["name"]
    assert probed[0]["passed"] is True


def test_bad_settings_stop_the_cold_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROBE_ALLOW_PRIVATE_NETWORKS", "perhaps")
    monkeypatch.setenv("PROBE_CA_BUNDLE", str(tmp_path / "missing.pem"))
    monkeypatch.setenv("PROBE_CERT_WARNING_DAYS", "-3")
    with pytest.raises(InvalidSettings) as caught:
        _load_handler("probe_app_bad_settings")
    assert [e["variable"] for e in caught.value.errors] == [
        "PROBE_ALLOW_PRIVATE_NETWORKS",
        "PROBE_CA_BUNDLE",
        "PROBE_CERT_WARNING_DAYS",
    ]
    assert "perhaps" not in str(caught.value)


def test_default_settings_keep_loopback_out(monkeypatch: pytest.MonkeyPatch, server: LocalServer) -> None:
    for name in ("PROBE_ALLOW_PRIVATE_NETWORKS", "PROBE_CA_BUNDLE", "PROBE_CERT_WARNING_DAYS"):
        monkeypatch.delenv(name, raising=False)
    handler = _load_handler("probe_app_defaults")
    output = handler.lambda_handler(_event(server.url("127.0.0.1"), []), FakeContext())
    assert (output["passed"], output["reason"]) == (False, "blocked_address")
    assert server.connections == 0
