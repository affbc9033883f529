"""What in an endpoint spec is secret, how it leaves the spec, and how it is kept out of text.

The one module that decides. Standard library only (the models, the Cognigy client, the CLI and the
receiver all import it; none pays for more than it needs).

What is secret:

- the signature secret (``signatureSecret``) and the Basic auth password (``basicAuth.password``);
- **every header value**, unless the spec declares the header public (``publicHeaders: [X-Team]``).
  A list of "credential-looking" header names can never be complete (``X-Functions-Key``,
  ``Ocp-Apim-Subscription-Key``, ``Api_Key``, ...), so the default is secret. The headers the library
  itself adds (the loop marks, the tutorial's loop-prevention headers) are public by construction.

Where secrets go: :func:`move_spec_secrets` hands each plain value to a ``put(kind, value) -> ARN``
callable (the CLI's is Secrets Manager) and leaves in the spec only ARNs (``signatureSecretArn``,
``basicAuth.passwordArn``) and header references ``{{resolve:secretsmanager:ARN}}`` (CloudFormation's
dynamic-reference form). Execution state, S3, records and audit items only ever see those.
:func:`plain_secret_fields` names what is still in clear (the plan refuses such a spec).

Scrubbing: :func:`scrub` removes every secret value from a text in every form a request can carry it:
as is, base64 (standard and URL-safe, padded or not), as the ``user:password`` pair of a Basic
``Authorization`` header (and its base64), URL-encoded and JSON-escaped. :func:`secret_forms` lists
those forms (tests use it to know what to hunt for).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = [
    "BUILTIN_PUBLIC_HEADERS",
    "REDACTED",
    "SECRET_REFERENCE",
    "header_is_secret",
    "move_spec_secrets",
    "plain_secret_fields",
    "public_header_names",
    "redact_headers",
    "reference_target",
    "scrub",
    "scrub_line",
    "secret_forms",
    "secret_reference",
]

REDACTED = "**********"

#: A header value naming a Secrets Manager secret; only the register task resolves it.
SECRET_REFERENCE = re.compile(r"^\{\{resolve:secretsmanager:([^{}\s]+)\}\}$")

#: Headers the library adds itself, whose values are derived, never a credential (lower-case names).
BUILTIN_PUBLIC_HEADERS = frozenset(
    {
        # the project's own loop marks (cognigy_webhooks.loopguard)
        "x-cogwh-origin",
        "x-cogwh-loop-id",
        "x-cogwh-hop",
        # the tutorial's loop-prevention headers (inject_loop_prevention_headers)
        "x-cognigy-webhook-source",
        "x-request-id",
        "x-correlation-id",
        "prevent-loop",
    }
)

#: Shorter values are still moved to Secrets Manager, but not scrubbed from text: replacing every
#: "1" or "on" in an error message would garble it and protect nothing.
MIN_SCRUB_LENGTH = 4


def secret_reference(secret_id: str) -> str:
    """The header value that stands for a Secrets Manager secret."""
    return "{{resolve:secretsmanager:" + secret_id + "}}"


def reference_target(value: object) -> str | None:
    """The secret id a header reference names, or None when ``value`` is not a reference."""
    if not isinstance(value, str):
        return None
    match = SECRET_REFERENCE.match(value)
    return match.group(1) if match else None


# --- what is secret --------------------------------------------------------------------------------


def public_header_names(declared: Iterable[object] | None) -> frozenset[str]:
    """The lower-cased names of the headers a spec declared public, plus the built-in ones."""
    names = {str(name).strip().lower() for name in (declared or ()) if isinstance(name, str)}
    return frozenset(names) | BUILTIN_PUBLIC_HEADERS


def header_is_secret(name: str, public: Iterable[str] | frozenset[str] = ()) -> bool:
    """True unless the header was declared public (``public`` as given by :func:`public_header_names`,
    or any iterable of names) or is one the library adds itself."""
    lowered = name.lower()
    if lowered in BUILTIN_PUBLIC_HEADERS:
        return False
    return lowered not in {p.lower() for p in public}


def redact_headers(headers: Mapping[str, str], public: Iterable[str] = ()) -> dict[str, str]:
    """The headers as a repr, a record, a response or a log may show them: a secret value becomes
    :data:`REDACTED`; a reference stays (it names where the secret is, it does not reveal it)."""
    allowed = public_header_names(public)
    return {
        name: value if (name.lower() in allowed or reference_target(value) is not None) else REDACTED
        for name, value in headers.items()
    }


def _get(raw: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if key in raw:
            return raw[key]
    return None


def plain_secret_fields(raw: Mapping[str, Any]) -> list[str]:
    """The fields of a raw spec (camelCase or snake_case) that hold a secret in clear."""
    found: list[str] = []
    if _get(raw, "signatureSecret", "signature_secret") is not None:
        found.append("signatureSecret")
    basic = _get(raw, "basicAuth", "basic_auth")
    if isinstance(basic, Mapping) and basic.get("password") is not None:
        found.append("basicAuth.password")
    headers = raw.get("headers")
    if isinstance(headers, Mapping):
        public = public_header_names(_get(raw, "publicHeaders", "public_headers"))
        for name, value in headers.items():
            if header_is_secret(str(name), public) and reference_target(value) is None:
                found.append(f"headers.{name}")
    return found


def move_spec_secrets(raw: Mapping[str, Any], put: Callable[[str, str], str]) -> dict[str, Any]:
    """A copy of a raw spec with every plain secret handed to ``put(kind, value) -> ARN`` and replaced
    by what names it. ``kind`` is ``signature``, ``basic-auth`` or ``header-<lower-cased name>``.
    Values already stored (ARNs, references) are left as they are. The result uses camelCase for the
    fields it rewrites."""
    spec = dict(raw)
    secret = spec.pop("signatureSecret", None)
    snake = spec.pop("signature_secret", None)
    secret = secret if secret is not None else snake
    if secret is not None:
        spec["signatureSecretArn"] = put("signature", str(secret))
    basic = _get(spec, "basicAuth", "basic_auth")
    if isinstance(basic, Mapping) and basic.get("password") is not None:
        moved = {k: v for k, v in basic.items() if k != "password"}
        moved["passwordArn"] = put("basic-auth", str(basic["password"]))
        spec.pop("basic_auth", None)
        spec["basicAuth"] = moved
    headers = spec.get("headers")
    if isinstance(headers, Mapping):
        public = public_header_names(_get(spec, "publicHeaders", "public_headers"))
        rewritten: dict[str, Any] = {}
        for name, value in headers.items():
            if (
                header_is_secret(str(name), public)
                and isinstance(value, str)
                and reference_target(value) is None
            ):
                rewritten[name] = secret_reference(put("header-" + str(name).lower(), value))
            else:
                rewritten[name] = value
        spec["headers"] = rewritten
    return spec


# --- keeping secrets out of text ---------------------------------------------------------------------


def _b64_forms(data: bytes) -> list[str]:
    standard = base64.b64encode(data).decode("ascii")
    urlsafe = base64.urlsafe_b64encode(data).decode("ascii")
    return [standard, standard.rstrip("="), urlsafe, urlsafe.rstrip("=")]


def _basic_pair(value: str) -> str | None:
    """``user:password`` from a ``Basic <base64>`` header value, else None."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token:
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return decoded if ":" in decoded else None


def secret_forms(value: str) -> list[str]:
    """Every form of ``value`` that a request or an echo of it may carry, longest first."""
    if not value:
        return []
    roots = [value]
    scheme, _, credential = value.strip().partition(" ")
    if credential and scheme.isalpha():  # "Bearer <token>", "Basic <b64>": the credential alone too
        roots.append(credential.strip())
    pair = _basic_pair(value)
    if pair is not None:
        roots.extend([pair, pair.partition(":")[2]])
    forms: set[str] = set()
    for root in roots:
        if len(root) < MIN_SCRUB_LENGTH:
            continue
        forms.update([root, quote(root, safe=""), quote_plus(root), json.dumps(root)[1:-1]])
        forms.update(_b64_forms(root.encode("utf-8")))
    return sorted((f for f in forms if len(f) >= MIN_SCRUB_LENGTH), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every form of every secret replaced by :data:`REDACTED`."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update(secret_forms(secret))
    for form in sorted(forms, key=len, reverse=True):
        if form in text:
            text = text.replace(form, REDACTED)
    return text


def scrub_line(text: str, secrets: Iterable[str | None], *, limit: int = 300) -> str:
    """:func:`scrub`, then folded onto one line (no CR/LF from a server into a log) and cut to
    ``limit`` characters: what an error message may quote of what a remote side said."""
    text = " ".join(scrub(text, [s for s in secrets if s]).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
