"""SigV4 checked as API Gateway checks it on an ``AWS_IAM`` route: the local gateway's verifier.

:meth:`SigV4Verifier.verify` takes a request as the gateway received it (method, the path still
percent-encoded, the raw query, every header, the body) and never raises: it returns a
:class:`Verdict`, either the :class:`LocalCredentials` that signed it or a rejection that the gateway
answers with 403, ``{"message": <message>}`` and ``x-amzn-ErrorType: <error_type>``. The checks, in
order, each with API Gateway's own answer:

1. no ``Authorization`` header: ``MissingAuthenticationTokenException``, ``Missing Authentication
   Token`` (what API Gateway answers an unsigned call to an IAM route; a presigned query string is
   not accepted locally and gets this answer too);
2. not ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`` with an ``X-Amz-Date``
   (or ``Date``) header: ``IncompleteSignatureException``, ``Authorization header requires
   'Credential' parameter. ...`` (API Gateway appends ``Authorization=<the header>``: left out here,
   a header value never goes back in a response);
3. the credential scope: its date must be the request's date (``Date in Credential scope does not
   match YYYYMMDD from ISO-8601 version of date from HTTP: ...``), its region the stack's
   (``Credential should be scoped to a valid region, not 'eu-west-1'. ``), its service
   ``execute-api`` (``Credential should be scoped to correct service: 'execute-api'. ``), its
   terminator ``aws4_request``: ``InvalidSignatureException``;
4. an access key (or an ``X-Amz-Security-Token``) the stack does not know:
   ``UnrecognizedClientException``, ``The security token included in the request is invalid.``;
5. ``host`` not among the signed headers: ``IncompleteSignatureException``;
6. ``X-Amz-Date`` more than ``max_skew`` (API Gateway: 5 minutes) from the injectable clock:
   ``InvalidSignatureException``, ``Signature expired: <date> is now earlier than <now - 5 min>
   (<now> - 5 min.)`` or ``Signature not yet current: <date> is still later than <now + 5 min>
   (<now> + 5 min.)``;
7. the signature, recomputed with botocore's own SigV4 code (service ``execute-api``, the stack's
   region, the matching secret) over the request as received and compared in constant time:
   ``InvalidSignatureException``, ``The request signature we calculated does not match the signature
   you provided. Check your AWS Secret Access Key and signing method. Consult the service
   documentation for details.`` followed by the String-to-Sign it should have been (API Gateway also
   shows the canonical request: left out here, it holds the signed header values).

What the signature covers: the method; the path as sent (botocore's canonical URI of it; a path with
``.``/``..`` segments or ``//`` is refused, so a signature for one route cannot be replayed on
another); the query, each name and value decoded as the function will see it and re-encoded the
canonical way (so ``a+b`` and ``a%20b`` sign alike, and mean alike); the headers named in
``SignedHeaders`` with every value received; and the SHA-256 of the body as received (an
``X-Amz-Content-SHA256`` header must state that same hash: ``UNSIGNED-PAYLOAD`` is refused).

Where API Gateway's answers were found (the search tool's issues corpus): the signature mismatch text
with its canonical string and String-to-Sign from execute-api (mhart/aws4#33, aws/aws-sdk-js#2372,
postmanlabs/postman-app-support#1663); ``Signature expired ... (... - 5 min.)`` with status 403 from
API Gateway (aws-amplify/aws-sdk-android#253); ``Signature not yet current ... (... + 5 min.)``
(NickWaterton/Roomba980-Python#118); ``Credential should be scoped to correct service:
'execute-api'. `` (aws/aws-sdk-js-v3#1831, r7kamura/aws-signer-v4#1); ``Credential should be scoped
to a valid region, not '...'. `` (joona/aws-es-curl#15); ``Authorization header requires
'Credential' parameter. ...`` from API Gateway (aws/chalice#828); ``The security token included in
the request is invalid.`` from execute-api (kndt84/aws-api-gateway-client#31). The date-scope text
is from AWS's SigV4 troubleshooting page (the pages corpus). ``Missing Authentication Token``: AWS's
knowledge-center page on it (the docs corpus).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials
from botocore.utils import normalize_url_path

__all__ = [
    "ALGORITHM",
    "API_GATEWAY_MAX_SKEW",
    "SERVICE",
    "CallerIdentity",
    "LocalCredentials",
    "ReceivedRequest",
    "SigV4Verifier",
    "Verdict",
    "canonical_query",
]

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
#: How far X-Amz-Date may be from the gateway's clock (API Gateway: 5 minutes either way).
API_GATEWAY_MAX_SKEW = timedelta(minutes=5)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_AMZ_DATE_RE = re.compile(r"\d{8}T\d{6}Z")
_SHOWN_RE = re.compile(r"[A-Za-z0-9._-]{0,64}")

MISSING_TOKEN = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class CallerIdentity:
    """Who a key belongs to, as API Gateway puts it in ``requestContext.identity``."""

    account_id: str
    caller: str  # the principal's id (an IAM user's AIDA..., a role session's AROA...:name)
    user_arn: str
    user: str | None = None  # API Gateway: the same id as caller for an IAM user


@dataclass(frozen=True)
class LocalCredentials:
    """A key pair the gateway accepts; ``session_token`` is the one token it accepts besides none."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    identity: CallerIdentity
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ReceivedRequest:
    """A request as received: ``raw_path`` still percent-encoded, ``raw_query`` without ``?``."""

    method: str
    raw_path: str
    raw_query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def values(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]


@dataclass(frozen=True)
class Verdict:
    """The outcome: ``credentials`` when accepted, else the 403's ``error_type`` and ``message``."""

    credentials: LocalCredentials | None = None
    error_type: str | None = None
    message: str | None = None

    @property
    def accepted(self) -> bool:
        return self.credentials is not None


def _reject(error_type: str, message: str) -> Verdict:
    return Verdict(error_type=error_type, message=message)


def _shown(value: str) -> str:
    """A client-sent token echoed in a message only when it is plainly a name, never anything else."""
    return value if _SHOWN_RE.fullmatch(value) else "..."


def canonical_query(raw_query: str) -> str:
    """The query re-encoded the SigV4 way (unsorted: botocore sorts), decoded as the gateway decodes
    it for the function (``+`` is a space), so the same bytes mean and sign the same."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}" for key, value in pairs)


class _AsReceived(SigV4Auth):
    """botocore's SigV4 over exactly the headers the client signed and the body's own hash."""

    def __init__(self, credentials: Credentials, region: str, signed: HTTPHeaders, body_hash: str) -> None:
        super().__init__(credentials, SERVICE, region)
        self._signed = signed
        self._body_hash = body_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        return self._signed

    def payload(self, request: AWSRequest) -> str:
        return self._body_hash


class SigV4Verifier:
    """Check SigV4 for ``region`` against ``credentials``; ``clock`` (UTC) and ``max_skew`` are
    injectable so tests can make a signature stale without waiting."""

    def __init__(
        self,
        credentials: Sequence[LocalCredentials],
        *,
        region: str,
        clock: Callable[[], datetime] | None = None,
        max_skew: timedelta = API_GATEWAY_MAX_SKEW,
    ) -> None:
        if not credentials:
            raise ValueError("the verifier needs at least one key pair")
        self._credentials = list(credentials)
        self.region = region
        self._clock = clock or (lambda: datetime.now(UTC))
        self.max_skew = max_skew

    @property
    def credentials(self) -> tuple[LocalCredentials, ...]:
        return tuple(self._credentials)

    def verify(self, request: ReceivedRequest) -> Verdict:
        """The verdict on one request; never raises (whatever it holds, a bad request is a 403)."""
        try:
            return self._verify(request)
        except Exception:  # anything odd enough to trip a parser is not a valid signature
            return _reject("InvalidSignatureException", MISMATCH)

    def _verify(self, request: ReceivedRequest) -> Verdict:
        authorization = request.values("authorization")
        if not authorization:
            return _reject("MissingAuthenticationTokenException", MISSING_TOKEN)
        if len(authorization) > 1:
            return _reject(
                "IncompleteSignatureException", "The request carries more than one Authorization header."
            )
        parsed = _parse_authorization(authorization[0])
        amz_date, date_problem = self._request_date(request)
        missing = [f"Authorization header requires '{name}' parameter." for name in parsed.missing]
        if date_problem == "missing":
            missing.append(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
            )
        if parsed.problem or missing:
            return _reject(
                "IncompleteSignatureException",
                " ".join([*([parsed.problem] if parsed.problem else []), *missing]),
            )
        if date_problem is not None or amz_date is None:
            return _reject(
                "IncompleteSignatureException",
                "X-Amz-Date must be in ISO-8601 basic format (YYYYMMDD'T'HHMMSS'Z').",
            )
        scope = parsed.params["Credential"].split("/")
        if len(scope) != 5:
            return _reject(
                "IncompleteSignatureException",
                "Credential must have exactly 5 slash-delimited elements, "
                "e.g. keyid/date/region/service/term.",
            )
        access_key, scope_date, region, service, terminator = scope
        if scope_date != amz_date[:8]:
            return _reject(
                "InvalidSignatureException",
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{_shown(scope_date)}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        if region != self.region:
            return _reject(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{_shown(region)}'. ",
            )
        if service != SERVICE:
            return _reject(
                "InvalidSignatureException", f"Credential should be scoped to correct service: '{SERVICE}'. "
            )
        if terminator != "aws4_request":
            return _reject(
                "InvalidSignatureException",
                "Credential should be scoped with a valid terminator: 'aws4_request', "
                f"not '{_shown(terminator)}'. ",
            )
        credentials = self._known(access_key, request.values("x-amz-security-token"))
        if credentials is None:
            return _reject("UnrecognizedClientException", INVALID_TOKEN)
        signed_names = [name.strip().lower() for name in parsed.params["SignedHeaders"].split(";")]
        if "host" not in signed_names:
            return _reject(
                "IncompleteSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."
            )
        stale = self._stale(amz_date)
        if stale is not None:
            return _reject("InvalidSignatureException", stale)
        body_hash = hashlib.sha256(request.body).hexdigest()
        stated = request.values("x-amz-content-sha256")
        paths_agree = normalize_url_path(request.raw_path) == request.raw_path
        expected, string_to_sign = self._signature(request, credentials, signed_names, amz_date, body_hash)
        given = parsed.params["Signature"].strip().lower()
        good = hmac.compare_digest(expected.encode(), given.encode("ascii", "replace"))
        if not good or not paths_agree or any(value.strip().lower() != body_hash for value in stated):
            return _reject(
                "InvalidSignatureException",
                f"{MISMATCH}\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n",
            )
        return Verdict(credentials=credentials)

    # -- the steps -----------------------------------------------------------------------------

    def _request_date(self, request: ReceivedRequest) -> tuple[str | None, str | None]:
        """The request's date as ``YYYYMMDDTHHMMSSZ`` (X-Amz-Date first, then Date), or a problem."""
        values = request.values("x-amz-date")
        if values:
            value = values[-1].strip() if len(values) == 1 else ""
            if not _AMZ_DATE_RE.fullmatch(value):
                return None, "format"
            try:
                datetime.strptime(value, _AMZ_DATE)
            except ValueError:
                return None, "format"
            return value, None
        dates = request.values("date")
        if not dates:
            return None, "missing"
        try:
            when = parsedate_to_datetime(dates[-1])
        except (TypeError, ValueError):
            return None, "format"
        if when.tzinfo is None:
            return None, "format"
        return when.astimezone(UTC).strftime(_AMZ_DATE), None

    def _known(self, access_key: str, tokens: list[str]) -> LocalCredentials | None:
        found = None
        for candidate in self._credentials:  # every candidate compared, in constant time each
            if hmac.compare_digest(candidate.access_key_id.encode(), access_key.encode("utf-8", "replace")):
                found = candidate
        if found is None or len(tokens) > 1:
            return None
        if tokens:
            expected = found.session_token
            if expected is None or not hmac.compare_digest(
                expected.encode(), tokens[0].encode("utf-8", "replace")
            ):
                return None
        return found

    def _stale(self, amz_date: str) -> str | None:
        when = datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
        now = self._clock().astimezone(UTC).replace(microsecond=0)
        minutes = f"{self.max_skew.total_seconds() / 60:g} min."
        stamp = now.strftime(_AMZ_DATE)
        if when < now - self.max_skew:
            earliest = (now - self.max_skew).strftime(_AMZ_DATE)
            return f"Signature expired: {amz_date} is now earlier than {earliest} ({stamp} - {minutes})"
        if when > now + self.max_skew:
            latest = (now + self.max_skew).strftime(_AMZ_DATE)
            return f"Signature not yet current: {amz_date} is still later than {latest} ({stamp} + {minutes})"
        return None

    def _signature(
        self,
        request: ReceivedRequest,
        credentials: LocalCredentials,
        signed_names: list[str],
        amz_date: str,
        body_hash: str,
    ) -> tuple[str, str]:
        signed = HTTPHeaders()
        for name in signed_names:
            for value in request.values(name):
                signed[name] = value  # HTTPHeaders keeps every value of a repeated header
        query = canonical_query(request.raw_query)
        url = f"http://local{request.raw_path or '/'}" + (f"?{query}" if query else "")
        aws_request = AWSRequest(method=request.method.upper(), url=url)
        aws_request.context["timestamp"] = amz_date
        signer = _AsReceived(
            Credentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
            self.region,
            signed,
            body_hash,
        )
        canonical = signer.canonical_request(aws_request)
        string_to_sign = signer.string_to_sign(aws_request, canonical)
        return signer.signature(string_to_sign, aws_request), string_to_sign


@dataclass(frozen=True)
class _Authorization:
    params: dict[str, str]
    missing: list[str]
    problem: str | None = None


def _parse_authorization(header: str) -> _Authorization:
    required = ("Credential", "Signature", "SignedHeaders")
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ALGORITHM:
        return _Authorization({}, list(required))
    params: dict[str, str] = {}
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        key, equals, value = part.partition("=")
        if not equals:
            return _Authorization(
                {},
                [],
                "A part of the Authorization header is not a valid key=value pair (missing equal-sign).",
            )
        if key in params:
            return _Authorization({}, [], f"The Authorization header repeats the '{_shown(key)}' parameter.")
        params[key] = value
    missing = [name for name in required if not params.get(name)]
    return _Authorization(params, missing)
