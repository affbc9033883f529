"""cogwh.sigv4 on its own: requests as the gateway receives them, signed by botocore's SigV4 as a client
signs them, and every class of wrong signature, scope, date or canonicalisation refused with API
Gateway's answer. The clock is injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from cogwh.sigv4 import CallerIdentity, LocalCredentials, ReceivedRequest, SigV4Verifier, canonical_query

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
AMZ = NOW.strftime("%Y%m%dT%H%M%SZ")
IDENTITY = CallerIdentity("123456789012", "AIDAEXAMPLE", "arn:aws:iam::123456789012:user/dev", "AIDAEXAMPLE")
KEY = LocalCredentials(
    "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", IDENTITY, session_token="tok"
)
HOST = "127.0.0.1:8443"


def verifier(now: datetime = NOW) -> SigV4Verifier:
    return SigV4Verifier([KEY], region="eu-central-1", clock=lambda: now)


def sign(
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    secret: str = KEY.secret_access_key,
    token: str | None = None,
    region: str = "eu-central-1",
) -> list[tuple[str, str]]:
    """What a botocore client sends for ``target`` (path and query as they go on the wire)."""
    request = AWSRequest(
        method=method, url=f"http://{HOST}{target}", data=body, headers={"Host": HOST, **(headers or {})}
    )
    signer = SigV4Auth(Credentials(KEY.access_key_id, secret, token), "execute-api", region)
    # botocore takes the time from its own clock; pin it to NOW as the client's clock would be
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        signer.add_auth(request)
    return list(request.headers.items())


def received(method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> ReceivedRequest:
    parts = urlsplit(target)
    return ReceivedRequest(method, parts.path, parts.query, headers, body)


def check(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"", now: datetime = NOW
) -> tuple[bool, str | None, str]:
    verdict = verifier(now).verify(received(method, target, headers, body))
    return verdict.accepted, verdict.error_type, verdict.message or ""


def test_a_signed_request_is_accepted_with_its_key() -> None:
    headers = sign("POST", "/v1/plans?a=1&b=x%20y", b'{"x":1}', {"Content-Type": "application/json"})
    verdict = verifier().verify(received("POST", "/v1/plans?a=1&b=x%20y", headers, b'{"x":1}'))
    assert verdict.credentials == KEY
    assert "wJalr" not in repr(verdict)  # the secret stays out of reprs


def test_the_query_means_what_it_signs() -> None:
    headers = sign("GET", "/v1/x?q=a%20b")
    assert check("GET", "/v1/x?q=a+b", headers)[0]  # + is a space for the function too: same meaning
    assert not check("GET", "/v1/x?q=a%2Bb", headers)[0]  # a literal plus is another value
    assert canonical_query("b=2&a=1&a=") == "b=2&a=1&a="  # order kept: botocore sorts
    assert canonical_query("k=%7e~*") == "k=~~%2A"


def test_dot_segments_and_empty_segments_cannot_replay_a_signature_on_another_route() -> None:
    headers = sign("GET", "/v1/endpoints/a")
    assert check("GET", "/v1/endpoints/a", headers)[0]
    for replay in ("/v1/endpoints/b/../a", "/v1/endpoints/./a", "/v1//endpoints/a"):
        accepted, error_type, message = check("GET", replay, headers)
        assert (accepted, error_type) == (False, "InvalidSignatureException"), replay
        assert message.startswith("The request signature we calculated does not match")


def test_every_value_of_a_repeated_signed_header_is_covered() -> None:
    headers = sign("GET", "/v1/x", headers={"X-Amz-Meta": "one"})
    assert check("GET", "/v1/x", headers)[0]
    assert not check("GET", "/v1/x", [*headers, ("X-Amz-Meta", "two")])[0]
    unsigned_added = [*headers, ("X-Other", "anything")]  # not signed: may change, as on AWS
    assert check("GET", "/v1/x", unsigned_added)[0]


def test_the_body_hash_header_must_state_the_bodys_hash() -> None:
    headers = sign("POST", "/v1/x", b"abc", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    accepted, error_type, _ = check("POST", "/v1/x", headers, b"abc")
    assert (accepted, error_type) == (False, "InvalidSignatureException")


def test_the_session_token_must_be_the_known_one() -> None:
    assert check("GET", "/v1/x", sign("GET", "/v1/x", token="tok"))[0]
    accepted, error_type, message = check("GET", "/v1/x", sign("GET", "/v1/x", token="other"))
    assert (accepted, error_type, message) == (
        False,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_the_date_may_come_from_the_date_header() -> None:
    request = AWSRequest(
        method="GET",
        url=f"http://{HOST}/v1/x",
        headers={"Host": HOST, "Date": "Wed, 04 Mar 2026 05:06:07 GMT"},
    )
    signer = SigV4Auth(Credentials(KEY.access_key_id, KEY.secret_access_key), "execute-api", "eu-central-1")
    request.context["timestamp"] = AMZ
    canonical = signer.canonical_request(request)
    signature = signer.signature(signer.string_to_sign(request, canonical), request)
    scope = f"{KEY.access_key_id}/{AMZ[:8]}/eu-central-1/execute-api/aws4_request"
    auth = f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=date;host, Signature={signature}"
    assert check(
        "GET", "/v1/x", [("Host", HOST), ("Date", "Wed, 04 Mar 2026 05:06:07 GMT"), ("Authorization", auth)]
    )[0]


def test_the_skew_is_five_minutes_either_way() -> None:
    headers = sign("GET", "/v1/x")
    assert check("GET", "/v1/x", headers, now=NOW + timedelta(minutes=5))[0]
    accepted, _, message = check("GET", "/v1/x", headers, now=NOW + timedelta(minutes=5, seconds=1))
    assert not accepted
    assert (
        message
        == f"Signature expired: {AMZ} is now earlier than 20260304T050608Z (20260304T051108Z - 5 min.)"
    )
    accepted, _, message = check("GET", "/v1/x", headers, now=NOW - timedelta(minutes=5, seconds=1))
    assert (
        message == f"Signature not yet current: {AMZ} is still later than 20260304T050606Z"
        " (20260304T050106Z + 5 min.)"
    )


def _with_auth(headers: list[tuple[str, str]], auth: str) -> list[tuple[str, str]]:
    return [(k, auth if k.lower() == "authorization" else v) for k, v in headers]


@pytest.mark.parametrize(
    ("change", "error_type", "message"),
    [
        (
            lambda a: a.replace("/eu-central-1/", "/us-east-1/"),
            "InvalidSignatureException",
            "Credential should be scoped to a valid region, not 'us-east-1'. ",
        ),
        (
            lambda a: a.replace("/execute-api/", "/s3/"),
            "InvalidSignatureException",
            "Credential should be scoped to correct service: 'execute-api'. ",
        ),
        (
            lambda a: a.replace("/aws4_request", "/aws5_request"),
            "InvalidSignatureException",
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
        ),
        (
            lambda a: a.replace("/aws4_request", ""),
            "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements",
        ),
        (
            lambda a: a.replace(f"/{AMZ[:8]}/", "/20260303/"),
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD",
        ),
        (
            lambda a: a.replace("AKIDEXAMPLE", "AKIDOTHER"),
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ),
        (
            lambda a: a.replace("SignedHeaders=host;", "SignedHeaders="),
            "IncompleteSignatureException",
            "'Host' must be a 'SignedHeader'",
        ),
        (
            lambda a: a.split(", Signature=")[0],
            "IncompleteSignatureException",
            "Authorization header requires 'Signature' parameter.",
        ),
        (
            lambda a: a.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512"),
            "IncompleteSignatureException",
            "Authorization header requires 'Credential' parameter.",
        ),
        (
            lambda a: a + ", Signature=00",
            "IncompleteSignatureException",
            "The Authorization header repeats the 'Signature' parameter.",
        ),
        (
            lambda a: a[:-1] + ("0" if a[-1] != "0" else "1"),
            "InvalidSignatureException",
            "The request signature we calculated does not match",
        ),
        (
            lambda a: a.replace("Credential=", "Credential "),
            "IncompleteSignatureException",
            "A part of the Authorization header is not a valid key=value pair",
        ),
    ],
)
def test_each_wrong_authorization_is_refused_with_api_gateways_answer(
    change: object, error_type: str, message: str
) -> None:
    headers = sign("GET", "/v1/x")
    auth = next(v for k, v in headers if k.lower() == "authorization")
    assert callable(change)
    accepted, got_type, got = check("GET", "/v1/x", _with_auth(headers, change(auth)))
    assert (accepted, got_type) == (False, error_type)
    assert got.startswith(message), got
    assert KEY.secret_access_key not in got


def test_no_date_or_a_malformed_one_is_incomplete() -> None:
    headers = sign("GET", "/v1/x")
    without = [(k, v) for k, v in headers if k.lower() != "x-amz-date"]
    assert check("GET", "/v1/x", without)[2].endswith(
        "requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )
    bad = [(k, "2026-03-04T05:06:07Z" if k.lower() == "x-amz-date" else v) for k, v in headers]
    assert check("GET", "/v1/x", bad)[1] == "IncompleteSignatureException"
    twice = [*headers, ("Authorization", next(v for k, v in headers if k.lower() == "authorization"))]
    assert check("GET", "/v1/x", twice)[1] == "IncompleteSignatureException"


def test_unsigned_is_missing_authentication_token() -> None:
    assert check("GET", "/v1/x", [("Host", HOST)]) == (
        False,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


@settings(max_examples=300, deadline=None)
@given(
    authorization=st.text(max_size=300),
    path=st.text(max_size=60),
    query=st.text(max_size=60),
    date=st.text(max_size=30),
    body=st.binary(max_size=64),
)
def test_whatever_arrives_the_verifier_answers_and_never_accepts_a_forgery(
    authorization: str, path: str, query: str, date: str, body: bytes
) -> None:
    headers = [("Host", HOST), ("Authorization", authorization), ("X-Amz-Date", date)]
    verdict = verifier().verify(ReceivedRequest("POST", "/" + path, query, headers, body))
    assert not verdict.accepted
    assert verdict.error_type in {
        "IncompleteSignatureException",
        "InvalidSignatureException",
        "UnrecognizedClientException",
        "MissingAuthenticationTokenException",
    }
    assert KEY.secret_access_key not in (verdict.message or "")


@settings(max_examples=150, deadline=None)
@given(
    path=st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=8).filter(
            lambda segment: segment not in (".", "..")  # dot segments are refused on purpose
        ),
        max_size=4,
    ),
    params=st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=4),
    body=st.binary(max_size=64),
)
def test_a_botocore_signed_request_is_accepted_whatever_its_path_and_query(
    path: list[str], params: list[tuple[str, str]], body: bytes
) -> None:
    from urllib.parse import quote, urlencode

    raw_path = "/v1/" + "/".join(quote(segment, safe="") for segment in path)
    raw_query = urlencode(params)  # as a form encoder sends it: spaces as +
    target = raw_path + (f"?{canonical_query(raw_query)}" if raw_query else "")
    headers = sign("POST", target, body)
    accepted, error_type, message = check(
        "POST", raw_path + (f"?{raw_query}" if raw_query else ""), headers, body
    )
    assert accepted, (error_type, message)
