"""Authentication of a delivery over its raw bytes: the tutorial's signature header, Standard Webhooks,
and/or HTTP Basic auth, against the current and the previous secret (a rotation), with one forced
re-fetch of the secret on a mismatch (a rotation since it was cached). Comparisons are constant-time:
Basic auth compares SHA-256 digests of the given and the expected user name and password (so neither
their values nor their lengths show in the time; the expected digests are made once per endpoint and
secret versions), and every secret version is compared (the time does not tell which matched).

An accepted delivery gets its replay key, which never depends on the secret version that verified it:

- ``webhook-id`` for Standard Webhooks (which binds id and timestamp into its signature);
- ``body-sha256``, the body's SHA-256, for the schemes that authenticate the body alone (the
  tutorial's signature), and for HTTP Basic auth when the body carries no usable ``traceId``;
- ``trace-id`` for a Cognigy.AI Flow output authenticated by Basic auth alone (what a real webhook
  Endpoint sends: no signature, no header of ours) that carries a ``traceId``
  (:func:`~cognigy_webhooks.receiving.outputs.trace_id_of`): the key is the ``traceId`` *and* the
  body's SHA-256 (:func:`output_replay_key`, applied once the body is parsed).

Why both, for a real output. Cognigy POSTs once per Flow output, and its documentation does not say
whether the ``traceId`` differs per output or is the turn's (shared by the three outputs of three Say
nodes). Keyed on the ``traceId`` alone, the second and third outputs of a turn would be answered
``200 duplicate`` and never handed on: lost. With the body's digest beside it, two different outputs
of one turn are two deliveries, and a retry of one output is a duplicate. (The body holds the
``traceId``, so the pair tells deliveries apart exactly as the body's digest alone would; the
``traceId`` is in the key, and ``trace-id`` in the ledger, so that a key says which turn it belongs
to, and so that the key can become the ``traceId`` alone should it ever be known to be per output.)

Assumed, because the real behaviour cannot be verified here, and what each costs if wrong:

- a retry re-sends the same bytes. A re-serialised body (other key order or spacing) would be a
  second delivery: delivered twice (at least once), never lost;
- two outputs of one turn differ in their bytes. Two byte-identical outputs (the same Say text twice
  in one turn, one ``traceId``) are taken as one delivery and its retry: the second is ``200
  duplicate``;
- bodies keep their ``traceId``. A body an output transformer stripped of it falls back to
  ``body-sha256``: the same bytes again within the deliveries' retention (the same text in the same
  session, with nothing else to tell them apart) are a duplicate. Keep ``traceId`` in transformed
  bodies.

Standard library only (the receiver's cold start).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Callable
from typing import NamedTuple

from cognigy_webhooks.dal.endpoints import EndpointAuth
from cognigy_webhooks.dal.secretsmanager import SecretVersions
from cognigy_webhooks.receiving.http import DeliveryRequest
from cognigy_webhooks.signing import (
    STANDARD_ID_HEADER,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    Refusal,
    Verification,
    verify_cognigy_signature,
    verify_standard_webhook,
)

__all__ = [
    "BODY_KIND",
    "STANDARD_KIND",
    "TRACE_KIND",
    "Auth",
    "Authenticator",
    "basic_credentials",
    "output_replay_key",
]


_REFUSAL_REASONS = {
    Refusal.MISSING: "signature_missing",
    Refusal.MALFORMED: "signature_malformed",
    Refusal.BAD_ENCODING: "signature_malformed",
    Refusal.STALE: "timestamp_stale",
    Refusal.FUTURE: "timestamp_future",
    Refusal.MISMATCH: "signature_mismatch",
    Refusal.NO_SECRET: "secret_unusable",
}


#: A failure that a secret rotated since it was cached could explain (worth one forced re-fetch).
_REFRESH_REASONS = frozenset({"signature_mismatch", "credentials_mismatch", "secret_unusable"})


class Auth(NamedTuple):
    """The outcome: ``reason`` when refused; the replay key (and its kind) when accepted."""

    ok: bool
    reason: str
    replay_kind: str = ""
    replay_key: str | bytes = b""


_NO_AUTHENTICATION = Auth(False, "no_authentication")

#: The replay kinds (``replayKind`` in the deliveries table).
BODY_KIND = "body-sha256"
TRACE_KIND = "trace-id"
STANDARD_KIND = "webhook-id"


def _body_key(body: bytes) -> Auth:
    """The replay key of a scheme that authenticates the body alone (the tutorial's signature, Basic
    auth): its SHA-256, whichever secret version verified it and whatever unsigned timestamp came
    with it."""
    return Auth(True, "ok", BODY_KIND, hashlib.sha256(body).hexdigest())


def output_replay_key(auth: Auth, endpoint: EndpointAuth, trace_id: str | None) -> Auth:
    """The replay key of an accepted delivery once its body is parsed: for a JSON endpoint
    authenticated by Basic auth alone whose body carries ``trace_id`` (1-256 printable characters, as
    :func:`~cognigy_webhooks.receiving.outputs.trace_id_of` reads it), ``trace-id`` with the
    ``traceId`` and the body's SHA-256; ``auth`` unchanged otherwise (a signature's key stays the
    signature's, a body without a ``traceId`` keeps ``body-sha256``)."""
    if (
        trace_id is None
        or auth.replay_kind != BODY_KIND
        or not auth.ok
        or endpoint.payload_format != "JSON"
        or endpoint.has_signature
        or not endpoint.has_basic_auth
    ):
        return auth
    key = auth.replay_key
    body_digest = key if isinstance(key, str) else key.decode("ascii")
    return Auth(True, auth.reason, TRACE_KIND, f"{trace_id}\x00{body_digest}")


def _digest(value: str | bytes) -> bytes:
    """What Basic auth compares: a fixed-length digest, so the comparison's time tells nothing of a
    length either."""
    return hashlib.sha256(_as_bytes(value)).digest()


def basic_credentials(values: tuple[str, ...]) -> tuple[bytes, bytes] | str:
    if not values:
        return "authorization_missing"
    if len(values) > 1:
        return "authorization_duplicated"
    scheme, _, token = values[0].strip(" \t").partition(" ")
    if scheme.lower() != "basic" or not token or len(token) > 4096:
        return "authorization_malformed"
    try:
        decoded = binascii.a2b_base64(token.strip(" \t"), strict_mode=True)  # b64decode(validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return "authorization_malformed"
    user, colon, password = decoded.partition(b":")
    if not colon:
        return "authorization_malformed"
    return user, password


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


class _Expected(NamedTuple):
    """What Basic auth compares against for one endpoint: the digests of its user name and of every
    password version, made once per (user name, versions) rather than per delivery. No value, and
    no digest, in a repr."""

    username: str
    passwords: tuple[str | bytes, ...]
    user_digest: bytes
    password_digests: tuple[bytes, ...]

    def __repr__(self) -> str:
        return f"_Expected({len(self.passwords)} password versions)"


class Authenticator:
    """Checks deliveries against an endpoint's configured schemes. Thread-safe."""

    #: Endpoints whose expected Basic-auth digests are kept (their records are cached as many).
    MAX_EXPECTED = 1024

    def __init__(self, secrets: SecretVersions, *, tolerance_seconds: int) -> None:
        self.secrets = secrets
        self.tolerance_seconds = tolerance_seconds
        self._expected: dict[str, _Expected] = {}

    def __repr__(self) -> str:
        return f"Authenticator(tolerance_seconds={self.tolerance_seconds})"

    def _expected_for(self, endpoint: EndpointAuth, passwords: tuple[str | bytes, ...]) -> _Expected:
        username = endpoint.basic_username or ""
        held = self._expected.get(endpoint.name)
        if held is not None and held.username == username and held.passwords == passwords:
            return held
        expected = _Expected(username, passwords, _digest(username), tuple(_digest(p) for p in passwords))
        if held is not None or len(self._expected) < self.MAX_EXPECTED:
            self._expected[endpoint.name] = expected
        return expected

    def authenticate(self, endpoint: EndpointAuth, request: DeliveryRequest, now: float) -> Auth:
        """Every scheme the endpoint configures must pass; an endpoint with none accepts nothing."""
        signed = endpoint.has_signature
        result = _NO_AUTHENTICATION
        if signed:
            result = self._with_refresh(
                endpoint.signature_secret_arn, self._check_signature, endpoint, request, now
            )
            if not result.ok:
                return result
        if endpoint.has_basic_auth:
            basic = self._with_refresh(endpoint.basic_password_arn, self._check_basic, endpoint, request, now)
            if not basic.ok or not signed:
                return basic
        return result

    def _with_refresh(
        self,
        secret_arn: str | None,
        check: Callable[[EndpointAuth, DeliveryRequest, tuple[str | bytes, ...], float], Auth],
        endpoint: EndpointAuth,
        request: DeliveryRequest,
        now: float,
    ) -> Auth:
        """Check with the cached secret versions; on a mismatch, once, with freshly fetched ones (a
        rotation that happened since they were cached)."""
        assert secret_arn is not None
        secrets = self.secrets.get(secret_arn)
        result = check(endpoint, request, secrets, now)
        if not result.ok and result.reason in _REFRESH_REASONS:
            fresh = self.secrets.refresh(secret_arn)
            if fresh is not None and fresh != secrets:
                result = check(endpoint, request, fresh, now)
        return result

    def _check_signature(
        self, endpoint: EndpointAuth, request: DeliveryRequest, secrets: tuple[str | bytes, ...], now: float
    ) -> Auth:
        tolerance = self.tolerance_seconds
        verification: Verification
        if endpoint.scheme == "standard":
            pairs = request.pairs(STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER)
            verification = verify_standard_webhook(
                request.body, pairs, secrets, tolerance_seconds=tolerance, now=now
            )
            if verification.ok and verification.message_id is not None:
                return Auth(True, "ok", STANDARD_KIND, verification.message_id)
        else:
            values = request.values(endpoint.signature_header or "")
            if len(values) > 1:
                return Auth(False, "signature_duplicated")
            verification = verify_cognigy_signature(
                request.body, values[0] if values else None, secrets, tolerance_seconds=tolerance, now=now
            )
            if verification.ok:  # the signature covers the body alone: the body is the key
                return _body_key(request.body)
        return Auth(False, _REFUSAL_REASONS.get(verification.reason, "signature_invalid"))

    def _check_basic(
        self, endpoint: EndpointAuth, request: DeliveryRequest, passwords: tuple[str | bytes, ...], now: float
    ) -> Auth:
        credentials = basic_credentials(request.values("authorization"))
        if isinstance(credentials, str):
            return Auth(False, credentials)
        if not passwords:
            return Auth(False, "secret_unusable")
        expected = self._expected_for(endpoint, passwords)
        user_ok = hmac.compare_digest(hashlib.sha256(credentials[0]).digest(), expected.user_digest)
        password = hashlib.sha256(credentials[1]).digest()  # the credentials are bytes: _digest's
        password_ok = False
        for candidate in expected.password_digests:  # every version compared: the time tells nothing
            password_ok |= hmac.compare_digest(password, candidate)
        if not (user_ok and password_ok):
            return Auth(False, "credentials_mismatch")
        return Auth(True, "ok", BODY_KIND, hashlib.sha256(request.body).hexdigest())  # _body_key
