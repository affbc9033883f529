"""``cogwh export`` (issue 10, item 7) against the local stack as `cogwh up` serves it (the real template
on moto in server mode, found through its state file, speaking ``CognigyApi=endpoints``) and the
simulator's Endpoints over real TLS from the local CA; and :func:`cognigy_webhooks.export.export_project`
against the same simulator.

The round trip: endpoints made in Cognigy (the simulator's store, as someone's UI would), exported,
the passwordArn placeholders filled in, the file validated by ``parse_desired_set`` and applied with
``cogwh apply --local``: the existing endpoints are adopted (records name their ids), none created.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cognigy_webhooks.backoff import Backoff
from cognigy_webhooks.cognigy import CognigyEndpointsClient
from cognigy_webhooks.dal.secretsmanager import put_secret
from cognigy_webhooks.errors import CognigyAuthError, CognigyNotFound, InvalidSpec
from cognigy_webhooks.export import PASSWORD_ARN_PLACEHOLDER, URL_PLACEHOLDER, export_project
from cognigy_webhooks.models import parse_desired_set
from cogwh import cli, ops
from cogwh.cli import main
from cogwh.demo import API_KEY_SECRET_NAME, DEMO_PROJECT_ID, ROOT, LocalWorld, local_world
from cogwh.localstack import LocalStack
from cogwh.sim_endpoints import ENDPOINTS_PATH, EndpointStore, store_of
from cogwh.simulator import SimulatorConfig
from cogwh.targets import closed_port
from tests.integration.reconcile.harness import BURST, RATE_PER_MINUTE, Harness, in_flight, stack_parameters

OTHER_PROJECT = "65a1b2c3d4e5f60718293a4b"
FLOW = "3f2b7c1e-9a4d-4e8b-b6a1-0c2d3e4f5a6b"
LOCALE = "0b6f5c1e-8f7d-4c62-9a55-2f1d3f7e8a90"
PASSWORD = "export-basic-password-" + "p" * 20
NEW_PASSWORD = "export-filled-in-password-" + "n" * 20
USER = "0" * 24


@pytest.fixture(scope="module")
def local() -> Iterator[LocalWorld]:
    with local_world(rate_per_minute=RATE_PER_MINUTE, burst=BURST, cognigy_api="endpoints") as world:
        yield world


@pytest.fixture(scope="module")
def stack(local: LocalWorld) -> Iterator[LocalStack]:
    params = stack_parameters(local)
    with LocalStack(ROOT, stack_name="exportcli", parameters=params, time_factor=0.0, server=True) as running:
        running.client("secretsmanager").create_secret(Name=API_KEY_SECRET_NAME, SecretString=local.api_key)
        yield running
        in_flight(running).wait_idle()


@pytest.fixture
def h(stack: LocalStack, local: LocalWorld) -> Harness:
    harness = Harness(stack, local)
    harness.in_flight.wait_idle()
    config = local.simulator_state.config
    assert isinstance(config, SimulatorConfig)
    harness.sim.reset(dataclasses.replace(config, project_ids=(DEMO_PROJECT_ID, OTHER_PROJECT)))
    harness.wipe()
    return harness


@pytest.fixture
def cognigy(h: Harness) -> EndpointStore:
    return store_of(h.sim)


def write_state(
    path: Path, stack: LocalStack, *, outputs: dict[str, str] | None = None, **extra: Any
) -> Path:
    ops.write_state(
        path,
        stack_name=stack.stack_name,
        endpoint_url=stack.endpoint_url,
        region=stack.region,
        outputs=outputs if outputs is not None else dict(stack.outputs),
        extra=extra,
    )
    return path


@pytest.fixture
def state(
    h: Harness, stack: LocalStack, local: LocalWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The state file `cogwh up` writes, so `--local` finds this stack and the local CA."""
    path = write_state(tmp_path / "local.json", stack, caFile=str(local.ca.ca_file))
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(path))
    return path


def seed(
    cognigy: EndpointStore,
    name: str,
    url: str,
    *,
    project: str = DEMO_PROJECT_ID,
    channel: str = "webhook",
    user: str | None = None,
    password: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An endpoint made in Cognigy outside the product (its UI, its CLI)."""
    settings: dict[str, Any] = {"webhookUrl": url}
    if user is not None:
        settings["basicAuthUser"] = user
    if password is not None:
        settings["basicAuthPassword"] = password
    body = {"projectId": project, "name": name, "channel": channel, "settings": settings, **fields}
    return cognigy.create(body, USER)


def export_cli(*args: str) -> int:
    return main(["export", *args])


def assert_clean(texts: list[str], *secrets: str) -> None:
    joined = "\n".join(texts)
    assert "Traceback" not in joined
    for secret in secrets:
        assert secret not in joined


def tokens(cognigy: EndpointStore) -> list[str]:
    return [e["URLToken"] for e in cognigy.endpoints.values()]


def api_calls(h: Harness, method: str) -> int:
    return sum(1 for r in h.sim.requests if r["method"] == method and r["path"].startswith(ENDPOINTS_PATH))


# --- what is exported -----------------------------------------------------------------------------------


def test_export_writes_every_webhook_endpoint_of_the_project_as_apply_takes_it(
    h: Harness, cognigy: EndpointStore, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a project holding two webhook Endpoints, a REST endpoint, and another project's webhook
    orders = seed(
        cognigy,
        "orders-hook",
        h.url("orders-hook"),
        user="cognigy",
        password=PASSWORD,
        flowId=FLOW,
        localeId=LOCALE,
    )
    plain = seed(cognigy, "plain-hook", h.url("plain-hook"), active=False, flowId="")
    seed(cognigy, "chat-rest", "https://rest.example.test/x", channel="rest")
    seed(cognigy, "not-this-project", h.url("x"), project=OTHER_PROJECT)
    out_file = tmp_path / "endpoints.yaml"

    # When
    code = export_cli("--project", DEMO_PROJECT_ID, "--local", "--output", str(out_file))

    # Then
    out, err = capsys.readouterr()
    assert code == 0, err
    text = out_file.read_text(encoding="utf-8")
    assert yaml.safe_load(text) == {
        "cognigy": {"projectId": DEMO_PROJECT_ID},
        "endpoints": [
            {
                "name": "orders-hook",
                "url": h.url("orders-hook"),
                "isActive": True,
                "basicAuth": {"username": "cognigy", "passwordArn": PASSWORD_ARN_PLACEHOLDER},
                "cognigy": {"flowId": FLOW, "localeId": LOCALE},
            },
            {"name": "plain-hook", "url": h.url("plain-hook"), "isActive": False},
        ],
    }
    assert f"# Cognigy endpoint {orders['_id']}" in text
    assert f"# Cognigy endpoint {plain['_id']}" in text
    assert "  # FIX " not in text
    assert out == ""
    assert f"exported 2 webhook endpoints of project {DEMO_PROJECT_ID} to {out_file}" in err
    assert 'fill in 1 "<fill in: ...>" value(s)' in err
    # only reads: one listing page and one read per webhook endpoint
    assert api_calls(h, "GET") == 3
    assert h.cognigy_writes() == 0
    # no secret anywhere: the Basic auth password, the URLTokens, the API key
    assert_clean([text, out, err], PASSWORD, h.world.api_key, *tokens(cognigy))


def test_stdout_and_json(
    h: Harness, cognigy: EndpointStore, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cognigy, "orders-hook", h.url("orders-hook"), user="cognigy", password=PASSWORD)

    assert export_cli("--project", DEMO_PROJECT_ID, "--local") == 0
    as_yaml, err = capsys.readouterr()
    assert export_cli("--project", DEMO_PROJECT_ID, "--local", "--json") == 0
    as_json, _ = capsys.readouterr()

    assert yaml.safe_load(as_yaml) == json.loads(as_json)
    assert "to stdout" in err
    assert_clean([as_yaml, as_json, err], PASSWORD, *tokens(cognigy))


def test_what_apply_would_refuse_is_still_exported_with_what_to_fix(
    h: Harness, cognigy: EndpointStore, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given endpoints Cognigy accepts but a desired set does not
    http = seed(cognigy, "plain-http", "http://hooks.example.test/plain")
    first = seed(cognigy, "twice", h.url("twice"))
    second = seed(cognigy, "twice", h.url("twice") + "/2")
    seed(cognigy, "Bad Name!", h.url("bad"))
    seed(cognigy, "creds-in-url", "https://bob:url-password-" + "u" * 12 + "@hooks.example.test/x")
    out_file = tmp_path / "endpoints.yaml"

    code = export_cli("--project", DEMO_PROJECT_ID, "--local", "-o", str(out_file))

    out, err = capsys.readouterr()
    assert code == 0, err
    text = out_file.read_text(encoding="utf-8")
    names = [e["name"] for e in yaml.safe_load(text)["endpoints"]]
    assert names == ["plain-http", "twice", "twice", "Bad Name!", "creds-in-url"]
    assert "# FIX url: must use the https scheme" in text
    assert text.count("# FIX name: 2 endpoints of this project hold this name") == 2
    assert f"also {second['_id']}" in text
    assert f"also {first['_id']}" in text
    assert "# FIX name: must start with a letter or digit" in text
    assert "# FIX url: carried user-info in Cognigy" in text
    assert "url-password" not in text
    assert f"to fix: plain-http ({http['_id']}): url: must use the https scheme" in err
    assert_clean([text, out, err], "url-password")
    # the file says what is wrong, and apply says so too until it is fixed
    with pytest.raises(InvalidSpec, match="url: must use the https scheme"):
        parse_desired_set(yaml.safe_load(text))


def test_an_endpoint_without_a_url_gets_a_placeholder(
    h: Harness, cognigy: EndpointStore, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = seed(cognigy, "no-url-yet", h.url("no-url-yet"))
    cognigy.update(made["_id"], {"settings": {}}, USER)  # settings replaced whole: no webhookUrl

    assert export_cli("--project", DEMO_PROJECT_ID, "--local") == 0

    out, err = capsys.readouterr()
    (spec,) = yaml.safe_load(out)["endpoints"]
    assert spec["url"] == URL_PLACEHOLDER
    assert "# FIX url: Cognigy holds no settings.webhookUrl" in out
    assert "fill in 1" in err


# --- the round trip -------------------------------------------------------------------------------------


def test_an_exported_file_filled_in_validates_and_applying_it_adopts_without_creating(
    h: Harness,
    cognigy: EndpointStore,
    stack: LocalStack,
    state: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given endpoints someone made in Cognigy, and others of another project
    made = {
        "orders-hook": seed(
            cognigy, "orders-hook", h.url("orders-hook"), user="cognigy", password=PASSWORD, flowId=FLOW
        ),
        "billing-hook": seed(
            cognigy, "billing-hook", h.url("billing-hook"), user="billing", password=PASSWORD
        ),
    }
    seed(cognigy, "orders-hook", h.url("elsewhere"), project=OTHER_PROJECT)
    before = {e["_id"] for e in cognigy.endpoints.values()}
    out_file = tmp_path / "endpoints.yaml"
    assert export_cli("--project", DEMO_PROJECT_ID, "--local", "--output", str(out_file)) == 0

    # When the placeholders are filled in with a secret holding the (new) Basic auth password
    arn = put_secret(stack.client("secretsmanager"), "exported/basic-auth", NEW_PASSWORD)
    filled = out_file.read_text(encoding="utf-8").replace(PASSWORD_ARN_PLACEHOLDER, arn)
    out_file.write_text(filled, encoding="utf-8")

    # Then the file is a valid desired set, for the project it came from
    desired = parse_desired_set(yaml.safe_load(filled))
    assert [e.name for e in desired.endpoints] == ["orders-hook", "billing-hook"]
    assert all(e.cognigy is not None and e.cognigy.project_id == DEMO_PROJECT_ID for e in desired.endpoints)

    # and applying it adopts what Cognigy holds, creating nothing
    posts_before = api_calls(h, "POST")
    capsys.readouterr()
    code = main(["apply", str(out_file), "--local"])
    h.in_flight.wait_idle()
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert api_calls(h, "POST") == posts_before
    assert {e["_id"] for e in cognigy.endpoints.values()} == before
    for name, endpoint in made.items():
        record = h.record(name)
        assert record is not None
        assert record.webhook_id == endpoint["_id"]
        assert record.project_id == DEMO_PROJECT_ID
        assert record.status == "registered"
        # what the file said is what Cognigy holds now: the URL kept, the password filled in
        (now,) = [e for e in cognigy.named(name) if e["_id"] == endpoint["_id"]]
        assert now["settings"]["webhookUrl"] == endpoint["settings"]["webhookUrl"]
        assert cognigy.password_digest(endpoint["_id"]) == hashlib.sha256(NEW_PASSWORD.encode()).hexdigest()
    assert cognigy.named("orders-hook")[0]["flowId"] == FLOW

    # and exporting again gives the same file (before its placeholders were filled in)
    again = tmp_path / "again.yaml"
    assert export_cli("--project", DEMO_PROJECT_ID, "--local", "--output", str(again)) == 0
    assert yaml.safe_load(again.read_text(encoding="utf-8")) == yaml.safe_load(
        filled.replace(arn, PASSWORD_ARN_PLACEHOLDER)
    )
    assert_clean([filled, out, err], PASSWORD, NEW_PASSWORD, *tokens(cognigy))


def test_a_stack_speaking_the_tutorial_api_still_exports_with_a_note(
    h: Harness,
    cognigy: EndpointStore,
    stack: LocalStack,
    local: LocalWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(cognigy, "orders-hook", h.url("orders-hook"))
    outputs = {**stack.outputs, "CognigyApi": "tutorial"}  # what `cogwh up` without --cognigy-api gives
    path = write_state(tmp_path / "s.json", stack, outputs=outputs, caFile=str(local.ca.ca_file))
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(path))

    code = export_cli("--project", DEMO_PROJECT_ID, "--local")

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "speaks the tutorial API (CognigyApi=tutorial)" in err
    assert yaml.safe_load(out)["endpoints"][0]["name"] == "orders-hook"


# --- exit codes -----------------------------------------------------------------------------------------


def test_an_unknown_project_exits_2_naming_it(
    h: Harness, state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = "ffffffffffffffffffffffff"
    code = export_cli("--project", unknown, "--local")
    out, err = capsys.readouterr()
    assert code == 2
    assert f"Cognigy has no project '{unknown}'" in err
    assert "check --project" in err
    assert out == ""
    assert_clean([out, err], h.world.api_key)


@pytest.mark.parametrize("project", ["", "a/b", "../x", "x" * 65, "id with space"])
def test_a_bad_project_id_exits_2_before_any_call(
    h: Harness, state: Path, capsys: pytest.CaptureFixture[str], project: str
) -> None:
    code = export_cli("--project", project, "--local")
    _, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("cogwh export: --project: must be a Cognigy project id")
    assert h.sim.requests == []


def test_an_existing_output_file_is_replaced_only_with_force(
    h: Harness, cognigy: EndpointStore, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(cognigy, "orders-hook", h.url("orders-hook"))
    out_file = tmp_path / "endpoints.yaml"
    out_file.write_text("mine\n", encoding="utf-8")

    assert export_cli("--project", DEMO_PROJECT_ID, "--local", "-o", str(out_file)) == 2
    assert "exists: pass --force" in capsys.readouterr().err
    assert out_file.read_text(encoding="utf-8") == "mine\n"
    assert h.sim.requests == []

    assert export_cli("--project", DEMO_PROJECT_ID, "--local", "-o", str(out_file), "--force") == 0
    assert yaml.safe_load(out_file.read_text(encoding="utf-8"))["endpoints"][0]["name"] == "orders-hook"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_no_local_stack_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(tmp_path / "absent.json"))
    code = export_cli("--project", DEMO_PROJECT_ID, "--local")
    _, err = capsys.readouterr()
    assert code == 3
    assert "no local stack is running" in err
    assert "cogwh up" in err


def test_a_stack_without_the_cognigy_outputs_exits_3(
    stack: LocalStack,
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs = {k: v for k, v in stack.outputs.items() if k not in ("CognigyBaseUrl", "CognigyApiPrefix")}
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(write_state(tmp_path / "old.json", stack, outputs=outputs)))
    code = export_cli("--project", DEMO_PROJECT_ID, "--local")
    _, err = capsys.readouterr()
    assert code == 3
    assert "has no CognigyBaseUrl, CognigyApiPrefix output" in err


def test_an_unreadable_api_key_secret_exits_3(
    stack: LocalStack,
    state: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs = {**stack.outputs, "CognigyApiKeySecretArn": "no-such-secret"}
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(write_state(tmp_path / "s.json", stack, outputs=outputs)))
    code = export_cli("--project", DEMO_PROJECT_ID, "--local")
    _, err = capsys.readouterr()
    assert code == 3
    assert "cannot read the Cognigy API key" in err
    assert "no-such-secret" in err


def test_cognigy_unreachable_exits_3(
    h: Harness,
    stack: LocalStack,
    local: LocalWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs = {**stack.outputs, "CognigyBaseUrl": f"https://localhost:{closed_port()}"}
    path = write_state(tmp_path / "s.json", stack, outputs=outputs, caFile=str(local.ca.ca_file))
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(path))
    code = export_cli("--project", DEMO_PROJECT_ID, "--local")
    _, err = capsys.readouterr()
    assert code == 3
    assert "cannot reach Cognigy" in err
    assert_clean([err], h.world.api_key)


def test_the_local_ca_comes_from_the_state_file_or_ca_bundle(
    h: Harness,
    cognigy: EndpointStore,
    stack: LocalStack,
    local: LocalWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(cognigy, "orders-hook", h.url("orders-hook"))
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(write_state(tmp_path / "no-ca.json", stack)))

    # without the CA the simulator's certificate is not trusted: nothing is read
    assert export_cli("--project", DEMO_PROJECT_ID, "--local") == 3
    assert "--ca-bundle" in capsys.readouterr().err
    # --ca-bundle gives it
    assert export_cli("--project", DEMO_PROJECT_ID, "--local", "--ca-bundle", str(local.ca.ca_file)) == 0
    assert "orders-hook" in capsys.readouterr().out


def test_the_local_ca_is_trusted_only_for_the_simulator(
    h: Harness,
    cognigy: EndpointStore,
    stack: LocalStack,
    local: LocalWorld,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed(cognigy, "orders-hook", h.url("orders-hook"))
    ca = str(local.ca.ca_file)

    # the state of `cogwh up` with its simulator as the stack's Cognigy: the local CA is used
    same = write_state(tmp_path / "sim.json", stack, simulatorUrl=local.simulator_url, caFile=ca)
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(same))
    assert export_cli("--project", DEMO_PROJECT_ID, "--local") == 0
    capsys.readouterr()

    # `cogwh up --cognigy-url` elsewhere: the local CA is not trusted for that server
    elsewhere = write_state(tmp_path / "other.json", stack, simulatorUrl="https://localhost:1", caFile=ca)
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(elsewhere))
    assert export_cli("--project", DEMO_PROJECT_ID, "--local") == 3
    assert "--ca-bundle" in capsys.readouterr().err


def test_a_ca_bundle_that_is_not_pem_exits_2(
    h: Harness, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    code = export_cli("--project", DEMO_PROJECT_ID, "--local", "--ca-bundle", str(junk))
    _, err = capsys.readouterr()
    assert code == 2
    assert "holds no usable PEM certificate" in err
    assert_clean([err])


@pytest.mark.parametrize(("fault", "wording"), [("403", "Cognigy refused"), ("401", "Cognigy refused")])
def test_cognigy_refusing_exits_1(
    h: Harness, state: Path, capsys: pytest.CaptureFixture[str], fault: str, wording: str
) -> None:
    h.sim.set_faults({"script": [fault]})
    code = export_cli("--project", DEMO_PROJECT_ID, "--local")
    out, err = capsys.readouterr()
    assert code == 1
    assert wording in err
    assert out == ""
    assert_clean([err], h.world.api_key)


def test_a_wrong_api_key_exits_1(
    h: Harness,
    stack: LocalStack,
    tmp_path: Path,
    local: LocalWorld,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arn = put_secret(stack.client("secretsmanager"), "exported/wrong-key", "wrong-key-" + "w" * 20)
    outputs = {**stack.outputs, "CognigyApiKeySecretArn": arn}
    path = write_state(tmp_path / "s.json", stack, outputs=outputs, caFile=str(local.ca.ca_file))
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(path))
    code = export_cli("--project", DEMO_PROJECT_ID, "--local")
    _, err = capsys.readouterr()
    assert code == 1
    assert "Cognigy refused" in err
    assert_clean([err], "wrong-key-" + "w" * 20)


@pytest.mark.parametrize("rate", ["0", "-5", "abc", "nan"])
def test_a_bad_pace_is_a_usage_error(rate: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        export_cli("--project", DEMO_PROJECT_ID, "--local", "--requests-per-minute", rate)
    assert exited.value.code == 2
    assert "requests per minute above 0" in capsys.readouterr().err


def test_the_reads_are_paced_by_the_command(stack: LocalStack, local: LocalWorld) -> None:
    from cogwh.commands.export import BURST as EXPORT_BURST
    from cogwh.commands.export import _client

    args = cli.build_parser().parse_args(
        ["export", "--project", DEMO_PROJECT_ID, "--local", "--requests-per-minute", "30"]
    )
    api = _client(args, dict(stack.outputs), local.api_key)
    try:
        assert repr(api.limiter) == f"TokenBucket(rate_per_minute=30, burst={EXPORT_BURST})"
        assert local.api_key not in repr(api)
    finally:
        asyncio.run(api.aclose())


# --- the library against the simulator -----------------------------------------------------------------


def client(local: LocalWorld, api_key: str | None = None) -> CognigyEndpointsClient:
    return CognigyEndpointsClient(api_key or local.api_key, local.simulator_url, verify=local.ca.ca_file)


def recording_backoff(waits: list[float]) -> Backoff:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return Backoff(max_attempts=4, base_delay=0.5, max_delay=30.0, sleep=sleep, rng=random.Random(3))


@pytest.mark.anyio
async def test_every_page_is_listed_and_every_endpoint_read(
    h: Harness, cognigy: EndpointStore, local: LocalWorld
) -> None:
    for i in range(230):
        seed(cognigy, f"hook-{i:03d}", h.url(f"hook-{i:03d}"))
    seen: list[tuple[int, int]] = []

    async with client(local) as api:
        export = await export_project(api, DEMO_PROJECT_ID, on_read=lambda d, t: seen.append((d, t)))

    assert [e.name for e in export.endpoints] == [f"hook-{i:03d}" for i in range(230)]
    listings = [r for r in h.sim.requests if r["method"] == "GET" and r["path"] == ENDPOINTS_PATH]
    assert [r["query"]["skip"] for r in listings] == ["0", "100", "200"]
    assert all(r["query"]["channel"] == "webhook" for r in listings)
    assert api_calls(h, "GET") == 3 + 230
    assert seen[-1] == (230, 230)


@pytest.mark.anyio
async def test_a_throttled_or_failing_read_is_read_again(
    h: Harness, cognigy: EndpointStore, local: LocalWorld
) -> None:
    seed(cognigy, "orders-hook", h.url("orders-hook"))
    h.sim.set_faults({"script": ["429", "pass", "503"], "retry_after_s": 2})
    waits: list[float] = []

    async with client(local) as api:
        export = await export_project(api, DEMO_PROJECT_ID, backoff=recording_backoff(waits))

    assert [e.name for e in export.endpoints] == ["orders-hook"]
    assert waits[0] == 2.0  # the 429's Retry-After
    assert len(waits) == 2
    assert h.cognigy_writes() == 0


@pytest.mark.anyio
async def test_an_endpoint_deleted_while_exporting_is_left_out(
    h: Harness, cognigy: EndpointStore, local: LocalWorld
) -> None:
    gone = seed(cognigy, "gone-hook", h.url("gone-hook"))
    seed(cognigy, "kept-hook", h.url("kept-hook"))
    h.sim.set_faults({"script": ["pass", "404"]})  # the listing, then the first read finds nothing

    async with client(local) as api:
        export = await export_project(api, DEMO_PROJECT_ID)

    assert [e.name for e in export.endpoints] == ["kept-hook"]
    assert export.vanished == (gone["_id"],)
    assert "deleted while exporting" in export.to_yaml()


@pytest.mark.anyio
async def test_the_library_raises_the_typed_errors(h: Harness, local: LocalWorld) -> None:
    async with client(local) as api:
        with pytest.raises(CognigyNotFound, match="no project 'ffffffffffffffffffffffff'"):
            await export_project(api, "ffffffffffffffffffffffff")
    async with client(local, "not-the-key-" + "k" * 20) as api:
        with pytest.raises(CognigyAuthError):
            await export_project(api, DEMO_PROJECT_ID)
