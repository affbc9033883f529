"""The local gateway checks SigV4 on the management API's AWS_IAM routes, as API Gateway does: the real
template.yaml on the local stack, real HTTP on 127.0.0.1, requests signed with botocore's SigV4 (service
execute-api) or with cogwh's own signing client, and every way a signature can be wrong answered 403 with
API Gateway's own body and x-amzn-ErrorType, before the function runs. The receive function's delivery
route stays open. The gateway's clock is injectable: a stale X-Amz-Date is made by moving the gateway's
clock, never by waiting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cogwh import ops
from cogwh.api_client import ApiCredentials, local_management_client, management_client
from cogwh.gateway import LocalGateway, ServedGateway, serve_gateway
from cogwh.localstack import LocalStack
from cogwh.servers import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
GOOD = Credentials("testing", "testing")  # the local stack's (cogwh/localstack/stack.py FAKE_CREDENTIALS)
MISMATCH = "The request signature we calculated does not match the signature you provided."


@dataclass
class Clock:
    """The gateway's clock: real UTC time moved by ``offset`` (a test sets it, the fixture resets it)."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Site:
    stack: LocalStack
    served: ServedGateway
    clock: Clock
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api(self) -> str:
        return self.served.api_url("ManagementApi")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    clock = Clock()
    parameters = {"CognigyApiKeySecretArn": "cognigy-webhooks/sigv4/api-key"}  # never read here
    with LocalStack(ROOT, parameters=parameters) as stack, serve_gateway(stack, clock=clock) as served:
        found = Site(stack, served, clock)
        gateway = served.gateway
        assert gateway is not None

        def recording(logical_id: str, event: dict[str, Any]) -> Any:
            found.events.append(event)
            return stack.invoke(logical_id, event)

        gateway._invoke = recording  # the real function still answers; the event is kept to read
        yield found


@pytest.fixture
def s(site: Site) -> Iterator[Site]:
    site.events.clear()
    site.clock.offset = timedelta(0)
    yield site
    site.clock.offset = timedelta(0)


def signed(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    credentials: Credentials = GOOD,
    region: str = "us-east-1",
    service: str = "execute-api",
    headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """The headers botocore's SigV4 adds for this request (Authorization, X-Amz-Date, maybe a token)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    SigV4Auth(credentials, service, region).add_auth(request)
    return dict(request.headers.items())


def send(method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request(method, url, content=body, headers=headers or {}, timeout=30)


def assert_refused(resp: httpx.Response, error_type: str, message: str, s: Site) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.headers["x-amzn-errortype"] == error_type
    assert resp.json()["message"].startswith(message), resp.json()
    assert s.events == []  # refused at the gateway: the function never ran
    assert "testing" not in resp.text.replace("testing/", "")  # no secret key in the answer


# --- accepted -----------------------------------------------------------------------------------


def test_signed_get_with_a_query_reaches_the_function_with_the_callers_identity(s: Site) -> None:
    url = f"{s.api}/endpoints?limit=2"
    resp = send("GET", url, headers=signed("GET", url))
    assert resp.status_code == 200, resp.text
    assert resp.json()["items"] == []
    (event,) = s.events
    identity = event["requestContext"]["identity"]
    sts = s.stack.client("sts").get_caller_identity()
    assert identity["accessKey"] == "testing"
    assert identity["accountId"] == sts["Account"] == "123456789012"
    assert identity["caller"] == identity["user"] == sts["UserId"]
    assert identity["userArn"] == sts["Arn"]
    assert identity["sourceIp"] == "127.0.0.1"
    assert event["queryStringParameters"] == {"limit": "2"}
    assert event["path"] == "/endpoints"
    assert event["requestContext"]["path"] == "/v1/endpoints"


def test_signed_get_without_a_query_and_the_path_without_the_stage(s: Site) -> None:
    url = f"{s.served.base_url}/endpoints"  # also served without the stage prefix, signed as sent
    resp = send("GET", url, headers=signed("GET", url))
    assert resp.status_code == 200, resp.text


def test_signed_post_with_a_json_body(s: Site) -> None:
    url = f"{s.api}/plans"
    body = json.dumps({"desiredSet": {"endpoints": []}}).encode()
    headers = {"Content-Type": "application/json"}
    resp = send("POST", url, body, {**headers, **signed("POST", url, body, headers=headers)})
    assert resp.status_code == 200, resp.text
    assert s.events[0]["requestContext"]["identity"]["accessKey"] == "testing"


def test_signed_post_without_a_body_and_a_delete(s: Site) -> None:
    for method, url in (("POST", f"{s.api}/endpoints/nobody/probe"), ("DELETE", f"{s.api}/endpoints/nobody")):
        resp = send(method, url, headers=signed(method, url))
        assert resp.status_code == 404, (method, resp.text)  # the function's answer: no such record
    assert len(s.events) == 2


def test_a_session_token_is_signed_and_checked(s: Site) -> None:
    url = f"{s.api}/endpoints"
    token = Credentials("testing", "testing", "testing")  # what the stack's in-process clients carry
    assert send("GET", url, headers=signed("GET", url, credentials=token)).status_code == 200
    s.events.clear()
    other = Credentials("testing", "testing", "not-the-stacks-token")
    resp = send("GET", url, headers=signed("GET", url, credentials=other))
    assert_refused(
        resp, "UnrecognizedClientException", "The security token included in the request is invalid.", s
    )


def test_the_cli_signing_client_with_the_state_files_fields(
    s: Site, tmp_path: Path, monkeypatch: Any
) -> None:
    fields = s.served.state_fields(s.stack.outputs)
    assert fields == {
        "managementApiUrl": f"{s.served.base_url}/v1",
        "credentials": {"accessKeyId": "testing", "secretAccessKey": "testing"},
    }
    state = tmp_path / "local.json"
    ops.write_state(
        state,
        stack_name=s.stack.stack_name,
        endpoint_url="http://127.0.0.1:1",
        region=s.stack.region,
        outputs=dict(s.stack.outputs),
        extra=fields,
    )
    assert state.stat().st_mode & 0o077 == 0  # it holds credentials: the owner's alone
    monkeypatch.setenv(ops.STATE_FILE_ENV, str(state))
    with local_management_client() as api:
        # a query httpx form-encodes (space as +) and characters SigV4 encodes its own way
        listed = api.get("/endpoints", params={"limit": "3", "note": "a b+c/d~e*f"})
        assert listed.status_code == 200, listed.text
        assert s.events[-1]["queryStringParameters"] == {"limit": "3", "note": "a b+c/d~e*f"}
        planned = api.post("/plans", json={"desiredSet": {"endpoints": []}})
        assert planned.status_code == 200, planned.text
        odd = api.get("/endpoints/a b.c_d-e")
        assert odd.status_code == 404, odd.text  # signed and accepted; the function has no such record
    assert s.events[-1]["pathParameters"] == {"name": "a b.c_d-e"}
    wrong = ApiCredentials("testing", "not-the-secret")
    with management_client(fields["managementApiUrl"], wrong, s.stack.region) as api:
        assert api.get("/endpoints").status_code == 403


# --- refused ------------------------------------------------------------------------------------


def test_an_unsigned_call_is_refused_as_api_gateway_does(s: Site) -> None:
    resp = send("GET", f"{s.api}/endpoints")
    assert resp.json() == {"message": "Missing Authentication Token"}
    assert_refused(resp, "MissingAuthenticationTokenException", "Missing Authentication Token", s)


def test_a_wrong_secret_is_refused(s: Site) -> None:
    url = f"{s.api}/endpoints"
    resp = send("GET", url, headers=signed("GET", url, credentials=Credentials("testing", "wrong")))
    assert_refused(resp, "InvalidSignatureException", MISMATCH, s)
    assert "The String-to-Sign should have been" in resp.json()["message"]


def test_an_unknown_access_key_is_refused(s: Site) -> None:
    url = f"{s.api}/endpoints"
    resp = send("GET", url, headers=signed("GET", url, credentials=Credentials("AKIDUNKNOWN", "testing")))
    assert_refused(
        resp, "UnrecognizedClientException", "The security token included in the request is invalid.", s
    )


def test_a_tampered_body_path_or_query_is_refused(s: Site) -> None:
    plans = f"{s.api}/plans"
    body = json.dumps({"desiredSet": {"endpoints": []}}).encode()
    headers = signed("POST", plans, body)
    tampered = body.replace(b"[]", b"[ ]")
    assert_refused(send("POST", plans, tampered, headers), "InvalidSignatureException", MISMATCH, s)
    stated = {**headers, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    assert_refused(send("POST", plans, tampered, stated), "InvalidSignatureException", MISMATCH, s)

    one = f"{s.api}/endpoints/one"
    headers = signed("GET", one)
    assert_refused(
        send("GET", f"{s.api}/endpoints/two", headers=headers), "InvalidSignatureException", MISMATCH, s
    )
    # the same route without the stage prefix is another path: the signature does not follow it
    assert_refused(
        send("GET", f"{s.served.base_url}/endpoints/one", headers=headers),
        "InvalidSignatureException",
        MISMATCH,
        s,
    )

    listed = f"{s.api}/endpoints?limit=1"
    headers = signed("GET", listed)
    for query in ("?limit=2", "", "?limit=1&cursor=x", "?limit=1&limit=1"):
        resp = send("GET", f"{s.api}/endpoints{query}", headers=headers)
        assert_refused(resp, "InvalidSignatureException", MISMATCH, s)
    resp = send("DELETE", one, headers=signed("GET", one))  # another method
    assert_refused(resp, "InvalidSignatureException", MISMATCH, s)


def test_a_signed_header_changed_is_refused(s: Site) -> None:
    url = f"{s.api}/plans"
    body = b'{"desiredSet": {"endpoints": []}}'
    headers = signed("POST", url, body, headers={"Content-Type": "application/json"})
    headers["Content-Type"] = "text/plain"
    assert_refused(send("POST", url, body, headers), "InvalidSignatureException", MISMATCH, s)


@pytest.mark.parametrize(
    ("region", "service", "message"),
    [
        ("eu-west-1", "execute-api", "Credential should be scoped to a valid region, not 'eu-west-1'. "),
        ("us-east-1", "lambda", "Credential should be scoped to correct service: 'execute-api'. "),
    ],
)
def test_a_wrong_credential_scope_is_refused(s: Site, region: str, service: str, message: str) -> None:
    url = f"{s.api}/endpoints"
    resp = send("GET", url, headers=signed("GET", url, region=region, service=service))
    assert resp.json() == {"message": message}
    assert_refused(resp, "InvalidSignatureException", message, s)


def test_a_scope_date_that_is_not_the_requests_date_is_refused(s: Site) -> None:
    url = f"{s.api}/endpoints"
    headers = signed("GET", url)
    real = headers["Authorization"].split("Credential=")[1].split("/")[1]
    other = (datetime.strptime(real, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
    headers["Authorization"] = headers["Authorization"].replace(f"/{real}/", f"/{other}/")
    resp = send("GET", url, headers=headers)
    assert_refused(resp, "InvalidSignatureException", "Date in Credential scope does not match YYYYMMDD", s)


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (timedelta(minutes=6), "Signature expired: "),  # the gateway's clock is 6 minutes ahead
        (timedelta(minutes=-6), "Signature not yet current: "),
    ],
)
def test_an_x_amz_date_more_than_five_minutes_off_is_refused(
    s: Site, offset: timedelta, message: str
) -> None:
    url = f"{s.api}/endpoints"
    headers = signed("GET", url)
    s.clock.offset = offset
    resp = send("GET", url, headers=headers)
    assert_refused(resp, "InvalidSignatureException", message, s)
    assert resp.json()["message"].endswith(" 5 min.)")
    s.clock.offset = offset / 6 * 4  # 4 minutes off: within API Gateway's 5
    assert send("GET", url, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["Bearer a.b.c", "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/execute-api/aws4_request"],
)
def test_an_incomplete_authorization_header_is_refused_without_echoing_it(
    s: Site, authorization: str
) -> None:
    resp = send("GET", f"{s.api}/endpoints", headers={"Authorization": authorization})
    assert_refused(resp, "IncompleteSignatureException", "Authorization header requires '", s)
    assert "a.b.c" not in resp.text


# --- open routes ----------------------------------------------------------------------------------


def test_openapi_and_docs_are_open(s: Site) -> None:
    assert send("GET", f"{s.api}/openapi.json").status_code == 200
    assert send("GET", f"{s.api}/docs").status_code == 200
    assert all(e["requestContext"]["identity"]["accessKey"] is None for e in s.events)


def test_the_delivery_route_stays_open(s: Site) -> None:
    resp = send(
        "POST", f"{s.served.base_url}/v1/deliveries/nobody", b"{}", {"Content-Type": "application/json"}
    )
    assert "x-amzn-errortype" not in resp.headers  # the receive function answered, not the gateway
    (event,) = s.events
    assert event["resource"] == "/deliveries/{name}"
    assert event["requestContext"]["identity"]["accessKey"] is None
    assert event["isBase64Encoded"] is True  # ReceiveApi's BinaryMediaTypes, as before


def test_an_unknown_route_answers_missing_authentication_token(s: Site) -> None:
    url = f"{s.api}/nothing-here"
    resp = send("GET", url, headers=signed("GET", url))
    assert_refused(resp, "MissingAuthenticationTokenException", "Missing Authentication Token", s)


# --- the gateway without a stack: a small template of our own ---------------------------------------


def test_a_template_dict_gateway_checks_its_own_iam_route() -> None:
    from cogwh.sigv4 import CallerIdentity, LocalCredentials

    template = {
        "Resources": {
            "Api": {"Type": "AWS::Serverless::Api", "Properties": {"StageName": "dev"}},
            "Fn": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Open": {
                            "Type": "Api",
                            "Properties": {"RestApiId": {"Ref": "Api"}, "Path": "/a", "Method": "get"},
                        },
                        "Iam": {
                            "Type": "Api",
                            "Properties": {
                                "RestApiId": {"Ref": "Api"},
                                "Path": "/b",
                                "Method": "get",
                                "Auth": {"Authorizer": "AWS_IAM"},
                            },
                        },
                    }
                },
            },
        }
    }
    identity = CallerIdentity(
        "111122223333", "AIDAEXAMPLE", "arn:aws:iam::111122223333:user/dev", "AIDAEXAMPLE"
    )
    keys = [LocalCredentials("AKIDEXAMPLE", "secret-example", identity)]
    seen: list[dict[str, Any]] = []

    def echo(_logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "body": "ok"}

    gateway = LocalGateway.from_template(template, echo, credentials=keys, region="eu-central-1")
    with serve_in_thread(gateway) as served:
        base = f"{served.base_url}/dev"
        assert send("GET", f"{base}/a").status_code == 200
        assert send("GET", f"{base}/b").status_code == 403
        creds = Credentials("AKIDEXAMPLE", "secret-example")
        ok = send(
            "GET", f"{base}/b", headers=signed("GET", f"{base}/b", credentials=creds, region="eu-central-1")
        )
        assert ok.status_code == 200, ok.text
    assert seen[-1]["requestContext"]["identity"]["userArn"] == "arn:aws:iam::111122223333:user/dev"
