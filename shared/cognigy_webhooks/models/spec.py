"""The endpoint spec as a user declares it: name, URL and fallbacks, method, headers (every value a secret
unless declared public), payload format, retry policy, timeout, signature and Basic auth; and the
desired set of them.

Rules live in reusable constrained types; no I/O happens here. Secrets are ``SecretStr``: they never
show in ``repr``/``str``, and ``hide_input_in_errors`` keeps them out of validation errors too.
The only place a secret is revealed is :meth:`WebhookEndpoint.to_api_payload`, which Cognigy needs.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import types
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from cognigy_webhooks.errors import InvalidSpec
from cognigy_webhooks.models.base import _Model
from cognigy_webhooks.secrets import public_header_names, redact_headers
from cognigy_webhooks.urls import MAX_URL_LENGTH, url_problem

# --- reusable constrained types ------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*[A-Za-z0-9._-]$")
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
FORBIDDEN_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
MIN_SECRET_BYTES = 32


def _check_name(value: str) -> str:
    if not _NAME_RE.fullmatch(value):
        raise ValueError(
            "must start with a letter or digit and hold only letters, digits, spaces, '.', '_' and '-'"
        )
    return value


def _check_https_url(value: str) -> str:
    problem = url_problem(value, max_length=MAX_URL_LENGTH)
    if problem is not None:
        raise ValueError(problem)
    return value


def _url_identity(value: str) -> str:
    """Where a URL points, for spotting repeats: scheme and host are case-insensitive, 443 is implied."""
    parts = urlsplit(value)
    return f"{parts.scheme.lower()}://{parts.hostname}:{parts.port or 443}{parts.path or '/'}?{parts.query}"


EndpointName = Annotated[
    str, Field(min_length=3, max_length=100, description="Unique endpoint name"), AfterValidator(_check_name)
]
HttpsUrl = Annotated[
    str, Field(description="An https URL without user-info or fragment"), AfterValidator(_check_https_url)
]
Milliseconds = Annotated[int, Field(ge=1000, le=30000)]


def _check_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value().encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
    return value


Secret = Annotated[SecretStr, AfterValidator(_check_secret)]
#: A Secrets Manager secret's ARN or name (what Secrets Manager allows in either): a placeholder left
#: unfilled, such as ``<fill in: ...>`` from ``cogwh export``, is refused here, not when it is resolved.
_SECRET_ID_RE = re.compile(r"[A-Za-z0-9/_+=.@:-]{1,2048}")


def _check_secret_id(value: str) -> str:
    if not _SECRET_ID_RE.fullmatch(value):
        raise ValueError("must be a Secrets Manager secret ARN or name (a placeholder left to fill in?)")
    return value


SecretId = Annotated[
    str, Field(description="a Secrets Manager secret ARN or name"), AfterValidator(_check_secret_id)
]


class HttpMethod(enum.StrEnum):
    POST = "POST"
    PUT = "PUT"


class PayloadFormat(enum.StrEnum):
    JSON = "JSON"
    XML = "XML"


class SignatureScheme(enum.StrEnum):
    """How deliveries to this endpoint are signed: the tutorial's header, or Standard Webhooks."""

    COGNIGY = "cognigy"
    STANDARD = "standard"


class RetryPolicy(_Model):
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_interval_ms: Milliseconds = 5000


class BasicAuth(_Model):
    """HTTP Basic credentials Cognigy sends with each delivery (what Cognigy's endpoints offer)."""

    username: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^:\r\n]+$")]
    password: SecretStr | None = None
    password_arn: SecretId | None = None

    @model_validator(mode="after")
    def _one_password(self) -> BasicAuth:
        if (self.password is None) == (self.password_arn is None):
            raise ValueError("give exactly one of password or passwordArn")
        return self


_UUID_OR_EMPTY = r"^(|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"


class CognigyTarget(_Model):
    """Where an endpoint lives in Cognigy.AI (the endpoints dialect): its project (required there),
    the Flow it runs (``flowId``: the Flow's referenceId, a UUID, or ``""`` for none) and the locale
    (``localeId``: a UUID or ``""``). A desired set's top-level ``cognigy:`` block gives the defaults;
    an endpoint's own block overrides them field by field (:func:`with_cognigy_defaults`). A field
    left out is not sent to Cognigy."""

    project_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")] | None = None
    flow_id: Annotated[str, Field(pattern=_UUID_OR_EMPTY)] | None = None
    locale_id: Annotated[str, Field(pattern=_UUID_OR_EMPTY)] | None = None


def with_cognigy_defaults(raw: Any, defaults: Any) -> Any:
    """A raw endpoint spec with the desired set's top-level ``cognigy:`` block merged under its own
    (the endpoint's fields win). Anything that is not a mapping is returned as it is (validation
    names it later)."""
    if not isinstance(raw, dict) or not isinstance(defaults, dict) or not defaults:
        return raw
    own = raw.get("cognigy")
    if own is not None and not isinstance(own, dict):
        return raw
    return {**raw, "cognigy": {**defaults, **(own or {})}}


class WebhookEndpoint(_Model):
    """One webhook endpoint as a user declares it (the spec)."""

    name: EndpointName
    url: HttpsUrl
    fallback_urls: Annotated[list[HttpsUrl], Field(max_length=5)] = Field(default_factory=list)
    method: HttpMethod = HttpMethod.POST
    headers: dict[str, str] = Field(default_factory=dict)
    # Every header value is a secret unless its name is listed here (cognigy_webhooks.secrets).
    public_headers: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)
    payload_format: PayloadFormat = PayloadFormat.JSON
    is_active: bool = True
    retry_policy: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_ms: Milliseconds = 10000
    signature_header: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    signature_secret: Secret | None = None
    # Where the secret lives once the CLI or the API has stored it (Secrets Manager ARN).
    signature_secret_arn: SecretId | None = None
    signature_scheme: SignatureScheme = SignatureScheme.COGNIGY
    basic_auth: BasicAuth | None = None
    # Cognigy.AI's project, Flow and locale (the endpoints dialect); the tutorial's API ignores it.
    cognigy: CognigyTarget | None = None

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            yield key, (redact_headers(value, self.public_headers) if key == "headers" else value)

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        seen: set[str] = set()
        for name, value in headers.items():
            lowered = name.lower()
            if not _TOKEN_RE.fullmatch(name):
                raise ValueError(f"header name {name!r} is not a valid token")
            if lowered in FORBIDDEN_HEADERS:
                raise ValueError(f"header {name!r} is hop-by-hop or framing and is set by the transport")
            if lowered in seen:
                raise ValueError(f"header {name!r} is given twice")
            seen.add(lowered)
            if any(ch in value for ch in "\r\n\x00"):
                raise ValueError(f"header {name!r} value must not contain CR, LF or NUL")
            if len(value) > 8192:
                raise ValueError(f"header {name!r} value is longer than 8192 characters")
        if len(headers) > 50:
            raise ValueError("at most 50 headers")
        return headers

    @field_validator("signature_header")
    @classmethod
    def _check_signature_header(cls, value: str | None) -> str | None:
        if value is not None:
            if not _TOKEN_RE.fullmatch(value):
                raise ValueError("is not a valid header name")
            if value.lower() in FORBIDDEN_HEADERS:
                raise ValueError("must not be a hop-by-hop or framing header")
        return value

    @model_validator(mode="after")
    def _cross_field_rules(self) -> WebhookEndpoint:
        # Each error names the field at fault (a plain ValueError here would be reported against
        # the whole spec); a ValidationError raised in a validator keeps its locations.
        problems: list[tuple[tuple[str | int, ...], str]] = []
        has_secret = self.signature_secret is not None or self.signature_secret_arn is not None
        if self.signature_secret is not None and self.signature_secret_arn is not None:
            problems.append((("signatureSecretArn",), "signatureSecret and signatureSecretArn are exclusive"))
        if self.signature_header is not None and not has_secret:
            problems.append(
                (("signatureSecret",), "is required when signatureHeader is set (or signatureSecretArn)")
            )
        if self.signature_header is None and has_secret:
            problems.append(
                (("signatureHeader",), "is required when signatureSecret or signatureSecretArn is set")
            )
        declared = {k.lower() for k in self.headers}
        public_seen: set[str] = set()
        for index, public in enumerate(self.public_headers):
            if public.lower() not in declared:
                problems.append((("publicHeaders", index), "names no header of this endpoint"))
            elif public.lower() in public_seen:
                problems.append((("publicHeaders", index), "is listed twice"))
            public_seen.add(public.lower())
        if self.basic_auth is not None and any(k.lower() == "authorization" for k in self.headers):
            problems.append(
                (("basicAuth",), "and an Authorization header are exclusive (basicAuth becomes it)")
            )
        seen = {_url_identity(self.url)}
        for index, fallback in enumerate(self.fallback_urls):
            identity = _url_identity(fallback)
            if identity in seen:
                problems.append((("fallbackUrls", index), "must not repeat url or another fallback URL"))
            seen.add(identity)
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("invalid_combination", message), loc=loc, input=None
                    )
                    for loc, message in problems
                ],
            )
        return self

    # --- views ------------------------------------------------------------------------------------

    @property
    def has_signature(self) -> bool:
        return self.signature_header is not None

    def is_public_header(self, name: str) -> bool:
        """True when ``name``'s value may be shown (declared in ``publicHeaders``, or one the library
        adds itself); every other header value is a secret."""
        return name.lower() in public_header_names(self.public_headers)

    def to_api_payload(self, signature_secret: str | None = None) -> dict[str, Any]:
        """The body Cognigy's ``POST /api/v2/webhooks`` takes. The one place a secret is revealed:
        ``signature_secret`` overrides (resolved from ``signatureSecretArn`` by the caller)."""
        payload: dict[str, Any] = {
            "name": self.name,
            "url": self.url,
            "fallbackUrls": list(self.fallback_urls),
            "method": self.method.value,
            "headers": dict(self.headers),
            "payloadFormat": self.payload_format.value,
            "isActive": self.is_active,
            "retryPolicy": {
                "maxRetries": self.retry_policy.max_retries,
                "retryIntervalMs": self.retry_policy.retry_interval_ms,
            },
            "timeout": self.timeout_ms,
        }
        secret = signature_secret
        if secret is None and self.signature_secret is not None:
            secret = self.signature_secret.get_secret_value()
        if self.signature_header is not None and secret is not None:
            payload["signatureHeader"] = self.signature_header
            payload["signatureSecret"] = secret
        return payload

    def public_view(self) -> dict[str, Any]:
        """The spec as records, audit items, responses and logs may show it: no secret value; header
        values redacted unless public (a secret's ARN or reference is kept: it names, it does not
        reveal)."""
        data = self.model_dump(mode="json", by_alias=True, exclude={"signature_secret"})
        data["headers"] = redact_headers(self.headers, self.public_headers)
        if self.basic_auth is not None:
            data["basicAuth"] = {
                "username": self.basic_auth.username,
                "passwordArn": self.basic_auth.password_arn,
            }
        return data

    def spec_hash(self, resolved_secret: str | None = None) -> str:
        """A stable digest of everything Cognigy is told, for drift detection. Key order, header-name
        case do not change it; any value that matters does, including a secret rotated behind its ARN
        (pass the value resolved from ``signatureSecretArn`` as ``resolved_secret``).
        Secrets enter only through a digest of their own, never as text."""
        doc = self.to_api_payload(signature_secret="")
        doc["headers"] = {k.lower(): v for k, v in sorted(self.headers.items(), key=lambda kv: kv[0].lower())}
        doc.pop("signatureSecret", None)
        if self.signature_secret is not None:
            doc["signatureSecretDigest"] = hashlib.sha256(
                self.signature_secret.get_secret_value().encode("utf-8")
            ).hexdigest()
        elif self.signature_secret_arn is not None:
            doc["signatureSecretArn"] = self.signature_secret_arn
            if resolved_secret is not None:  # a rotated value behind the same ARN is drift too
                doc["signatureSecretDigest"] = hashlib.sha256(resolved_secret.encode("utf-8")).hexdigest()
        doc["signatureScheme"] = self.signature_scheme.value
        canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_endpoint(data: Any) -> WebhookEndpoint:
    """Validate a spec from plain data; raises :class:`InvalidSpec` naming each field at fault (an
    unknown field with the nearest known one)."""
    try:
        return WebhookEndpoint.model_validate(data)
    except ValidationError as exc:
        raise InvalidSpec.from_validation_error(
            exc, data=data, known_fields=lambda loc: field_aliases(WebhookEndpoint, loc)
        ) from None


def field_aliases(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str] | None:
    """The field names (aliases) the mapping at ``loc`` inside ``model`` accepts, following nested
    models, list items and optional fields; None when ``loc`` leads to no model. For the "did you
    mean" of an unknown field (:meth:`~cognigy_webhooks.errors.InvalidInput.from_validation_error`)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            current = _unwrap(current)
            if get_origin(current) is not list:
                return None
            current = get_args(current)[0]
            continue
        found = _model_in(current)
        if found is None:
            return None
        field = next((f for n, f in found.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        current = field.annotation
    found = _model_in(current)
    return None if found is None else [f.alias or n for n, f in found.model_fields.items()]


def _unwrap(annotation: Any) -> Any:
    """``X`` from ``Annotated[X, ...]`` and from ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds: itself, or inside ``X | None`` / ``Annotated[X, ...]``."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


#: The most endpoints one desired set declares. The reconcile runs them on a Distributed Map (no
#: bound of its own there); what bounds a set is the plan's one Cognigy listing within its time
#: budget at the stack's request rate, and the management API's 6 MB request (docs/CAPACITY.md).
MAX_ENDPOINTS = 10_000


class DesiredSet(_Model):
    """A whole set of endpoints (the file in the user's repo). ``cognigy``: the project, Flow and
    locale every endpoint gets unless it says otherwise (the endpoints dialect)."""

    cognigy: CognigyTarget | None = None
    endpoints: Annotated[list[WebhookEndpoint], Field(max_length=MAX_ENDPOINTS)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _spread_cognigy(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("endpoints"), list):
            defaults = data.get("cognigy")
            if isinstance(defaults, dict) and not _valid_target(defaults):
                return data  # said once, at cognigy.<field>, not again for every endpoint
            return {**data, "endpoints": [with_cognigy_defaults(e, defaults) for e in data["endpoints"]]}
        return data

    @model_validator(mode="after")
    def _unique_names(self) -> DesiredSet:
        first: dict[str, int] = {}
        problems = []
        for index, ep in enumerate(self.endpoints):
            if ep.name in first:
                problems.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "duplicate_name",
                            "is declared twice (the endpoints at positions {first} and {second} of the list)",
                            {"first": first[ep.name] + 1, "second": index + 1},
                        ),
                        loc=("endpoints", index, "name"),
                        input=None,
                    )
                )
            first.setdefault(ep.name, index)
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


def _valid_target(data: dict[str, Any]) -> bool:
    try:
        CognigyTarget.model_validate(data)
    except ValidationError:
        return False
    return True


def parse_desired_set(data: Any) -> DesiredSet:
    """Validate a desired set; raises :class:`InvalidSpec` naming each field at fault, an endpoint's
    by its name (``endpoints[orders-webhook].timeoutMs``), an unknown field with the nearest known
    one."""
    try:
        return DesiredSet.model_validate(data)
    except ValidationError as exc:
        raise InvalidSpec.from_validation_error(
            exc, data=data, known_fields=lambda loc: field_aliases(DesiredSet, loc)
        ) from None
