"""A simulator of Cognigy's REST API (the webhook endpoints), for tests, the demo and benchmarks.

An ASGI app (Starlette) made by :func:`create_simulator_app`, served by uvicorn on a real socket
(TLS when given a certificate). It keeps the contract our client relies on:

- ``X-API-Key`` auth: 401 when missing or unknown; read-only keys get 403 on every write.
- ``POST /api/v2/webhooks`` (201), ``GET /api/v2/webhooks?name=&limit=&cursor=`` (``items`` and
  ``nextCursor``; ``limit`` 1-100, default 25), ``GET``/``PATCH`` (200) and ``DELETE`` (204)
  ``/api/v2/webhooks/{id}`` (404 when unknown).
- 422 with ``fieldErrors`` ([{field, message}]) for schema violations: name 3-100 characters, https
  urls, at most 5 fallbacks, method POST|PUT, payloadFormat JSON|XML, retryPolicy ranges, timeout
  1000-30000, signatureHeader and signatureSecret together, unknown fields, the headers contract
  (token names, each once in any letter case, no hop-by-hop or framing header, no CR/LF/NUL in a
  value, at most 50); and one rule the library's own models do not check (so a demo can show a
  server-side 422): ``headers`` must not set Cognigy's reserved ``X-Cognigy-*`` names, except the
  tutorial's own ``X-Cognigy-Webhook-Source`` (whatever ``inject_loop_prevention_headers`` sends is
  accepted as sent).
- A duplicate name on create (or a rename onto another webhook's name) is 409, unless the simulator
  is configured with ``allow_duplicate_names`` (then duplicates are stored, which is how a blind
  re-send of a lost create shows up as two webhooks).
- A token bucket per API key: refills at ``rate_per_minute``, holds at most ``burst``; when empty,
  429 with ``Retry-After`` in whole seconds, rounded up (or as an HTTP-date when asked).

Fault injection (:class:`Faults`, set by config, by ``cogwh simulator`` flags, or live through
``POST /_admin/faults``), decided per API request after auth and the rate limit, with a seeded
random: a fraction of 5xx, a fraction of 429, a fraction of dropped connections (closed with no
response), ``drop_after_create`` (the webhook is created, then the connection is dropped: a lost
response), slow responses, and a ``script`` of faults applied to the next requests in order.

Admin routes (simulator only, no API key): ``GET/POST /_admin/faults``, ``GET /_admin/requests``
(every API request received: method, path, a fingerprint of the key (never the key), the body
without ``signatureSecret``, the status sent; plus counts), ``POST /_admin/reset``, and
``GET/POST /_admin/config`` (``allow_duplicate_names`` switched live, as the real service may
store a second webhook under a taken name; also ``cogwh simulator --allow-duplicate-names``).

Tests reach the state directly as ``app.state.sim`` (:class:`SimulatorState`), thread-safe.

The same app also speaks Cognigy.AI's real Endpoints resource (``/new/v2.0/endpoints``, RFC 7807
errors, projects from ``SimulatorConfig.project_ids``): :mod:`cogwh.sim_endpoints`, behind this
module's gate (keys, read-only keys, token bucket, faults; ``_Api._serve`` takes its error shape).
A request body's ``settings.basicAuthPassword`` is recorded as ``<redacted>``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import email.utils
import hashlib
import json
import math
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cognigy_webhooks.loopguard import TUTORIAL_HEADERS
from cognigy_webhooks.models import FORBIDDEN_HEADERS, redact_headers
from cognigy_webhooks.urls import url_problem

__all__ = [
    "WEBHOOKS_PATH",
    "Faults",
    "SimulatorConfig",
    "SimulatorState",
    "create_simulator_app",
    "key_fingerprint",
]

WEBHOOKS_PATH = "/api/v2/webhooks"
RESERVED_HEADER_PREFIX = "x-cognigy-"
# The tutorial's loop-prevention headers (one of them is an X-Cognigy-* name): never reserved.
_TUTORIAL_HEADERS = frozenset(name.lower() for name in TUTORIAL_HEADERS)
# Set by the transport, never by a webhook's configuration (the delivery contract).
TRANSPORT_HEADERS = FORBIDDEN_HEADERS
_HEADER_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 token
MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_BODY_BYTES = 1_000_000
_RAW_SEND = "cogwh.raw_send"
_LIVE_SETTINGS = ("allow_duplicate_names",)  # what POST /_admin/config may change

# One scripted fault: "5xx" (status_5xx), "429" (throttled, Retry-After), any other status from
# 400-599 (that status, e.g. "408" or "501"), "drop" (no response), "drop_after" (handle, then drop),
# "slow:<ms>" (handle, answer after <ms> ms), "stale" (a listing answers as if it held nothing, as an
# index that has not caught up with the latest creates does; any other request passes), "pass".
ScriptItem = Annotated[str, Field(pattern=r"^(5xx|drop|drop_after|pass|stale|slow:[0-9]{1,6}|[45][0-9]{2})$")]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


def key_fingerprint(api_key: str) -> str:
    """What the simulator keeps of a key: a short SHA-256 fingerprint (the key is never stored)."""
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


class Faults(BaseModel):
    """Faults to inject into API requests that passed auth and the rate limit.

    - ``fault_5xx`` / ``fault_429`` / ``fault_drop``: fractions (their sum at most 1; one seeded draw
      per request decides) answered ``status_5xx``, answered 429, or closed with no response.
    - ``retry_after_s`` is the ``Retry-After`` of injected 429s; ``retry_after_http_date`` sends it
      (and the rate limit's own) as an HTTP-date; ``retry_after_raw`` sends that exact text on
      injected 429s instead (``""``: no header at all), for garbage and absent values.
    - ``drop_after_create``: every create is stored, then its connection dropped (lost response).
    - ``slow_ms``: every answer is delayed (after the request was handled).
    - ``script``: faults for the next requests, one each, in order, before any fraction applies.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    fault_5xx: Fraction = 0.0
    status_5xx: Annotated[int, Field(ge=500, le=599)] = 503
    fault_429: Fraction = 0.0
    retry_after_s: Annotated[int, Field(ge=0, le=86400)] = 1
    retry_after_http_date: bool = False
    retry_after_raw: Annotated[str, Field(max_length=200)] | None = None
    fault_drop: Fraction = 0.0
    drop_after_create: bool = False
    slow_ms: Annotated[int, Field(ge=0, le=120_000)] = 0
    script: Annotated[list[ScriptItem], Field(max_length=10_000)] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fractions(self) -> Faults:
        if self.fault_5xx + self.fault_429 + self.fault_drop > 1.0 + 1e-9:
            raise ValueError("fault_5xx + fault_429 + fault_drop must not exceed 1")
        return self


@dataclasses.dataclass(frozen=True)
class SimulatorConfig:
    """How the simulator behaves. Keys are kept out of ``repr``.

    ``retry_after_raw`` on :class:`Faults` sends that exact ``Retry-After`` on injected 429s (``""``
    sends none): how tests get garbage or absent values. ``clock`` (monotonic seconds) drives the
    token buckets; tests may pass a fake one.
    """

    api_keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    read_only_keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    rate_per_minute: float = 60.0
    burst: int = 10
    faults: Faults = dataclasses.field(default_factory=Faults)
    seed: int | None = 0
    allow_duplicate_names: bool = False
    # The Cognigy projects the endpoints dialect (cogwh.sim_endpoints) knows: others are 404.
    project_ids: tuple[str, ...] = ()
    # The CA bundle (PEM) the Endpoint service trusts for its deliveries to ``settings.webhookUrl``
    # (cogwh.sim_endpoint_service); None: the public roots.
    delivery_ca_bundle: str | None = None
    clock: Callable[[], float] = dataclasses.field(default=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_keys", tuple(self.api_keys))
        object.__setattr__(self, "read_only_keys", tuple(self.read_only_keys))
        object.__setattr__(self, "project_ids", tuple(self.project_ids))
        keys = self.api_keys + self.read_only_keys
        if not keys:
            raise ValueError("give at least one API key (api_keys or read_only_keys)")
        for key in keys:
            if not isinstance(key, str) or not key or any(not 0x21 <= ord(ch) <= 0x7E for ch in key):
                raise ValueError("API keys must be non-empty visible ASCII without spaces")
        if set(self.api_keys) & set(self.read_only_keys):
            raise ValueError("a key cannot be both read-write and read-only")
        if not (isinstance(self.rate_per_minute, int | float) and math.isfinite(self.rate_per_minute)):
            raise ValueError("rate_per_minute must be a finite number")
        if self.rate_per_minute <= 0:
            raise ValueError("rate_per_minute must be > 0")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError("burst must be an integer >= 1")
        bundle = self.delivery_ca_bundle
        if bundle is not None and not (isinstance(bundle, str) and bundle and os.path.isfile(bundle)):
            raise ValueError("delivery_ca_bundle must name a readable PEM file")


# --- the schema (what Cognigy accepts) -----------------------------------------------------------

_FIELDS = frozenset(
    {
        "name",
        "url",
        "fallbackUrls",
        "method",
        "headers",
        "payloadFormat",
        "isActive",
        "retryPolicy",
        "timeout",
        "signatureHeader",
        "signatureSecret",
    }
)
_DEFAULTS: dict[str, Any] = {
    "fallbackUrls": [],
    "method": "POST",
    "headers": {},
    "payloadFormat": "JSON",
    "isActive": True,
    "retryPolicy": {"maxRetries": 3, "retryIntervalMs": 5000},
    "timeout": 10000,
}


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _https_problem(value: Any) -> str | None:
    return url_problem(value)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header_problems(headers: Any) -> list[tuple[str, str]]:
    """What is wrong with a ``headers`` object, as (field, message); names may be echoed, values never.

    The delivery contract: names are RFC 9110 tokens, each once (names ignore letter case), never a
    hop-by-hop or framing header (the transport sets those); values are strings without CR, LF or
    NUL, at most 8192 characters; at most 50 headers. Cognigy's reserved ``X-Cognigy-*`` names are
    refused too, except the tutorial's own loop-prevention headers: what
    ``inject_loop_prevention_headers`` sends is accepted as it is sent, in any letter case.
    """
    if not isinstance(headers, dict):
        return [("headers", "must be an object of strings")]
    problems: list[tuple[str, str]] = []
    if len(headers) > MAX_HEADERS:
        problems.append(("headers", f"must hold at most {MAX_HEADERS} headers"))
    seen: set[str] = set()
    for hname, hvalue in list(headers.items())[: MAX_HEADERS + 1]:
        field = f"headers.{_short(hname)}"
        lowered = hname.lower()
        if not _HEADER_TOKEN.fullmatch(hname):
            problems.append((field, "is not a valid header name"))
        elif lowered in TRANSPORT_HEADERS:
            problems.append((field, "is hop-by-hop or framing: the transport sets it"))
        elif lowered.startswith(RESERVED_HEADER_PREFIX) and lowered not in _TUTORIAL_HEADERS:
            problems.append((field, "X-Cognigy-* headers are reserved for Cognigy"))
        if lowered in seen:
            problems.append((field, "is given twice (header names ignore letter case)"))
        seen.add(lowered)
        if not isinstance(hvalue, str):
            problems.append((field, "must be a string"))
        elif any(ch in hvalue for ch in "\r\n\x00"):
            problems.append((field, "must not contain CR, LF or NUL"))
        elif len(hvalue) > MAX_HEADER_VALUE:
            problems.append((field, f"must be at most {MAX_HEADER_VALUE} characters"))
    return problems


def validate_webhook(body: dict[str, Any], *, partial: bool) -> list[dict[str, str]]:
    """Field errors for a create (``partial=False``) or a PATCH body. Values are never echoed."""
    errors: list[dict[str, str]] = []

    def bad(field: str, message: str) -> None:
        errors.append({"field": field, "message": message})

    for key in body:
        if key not in _FIELDS:
            bad(_short(str(key)), "is not a known field")
    if not partial:
        for required in ("name", "url"):
            if required not in body:
                bad(required, "is required")
    if "name" in body:
        name = body["name"]
        if not isinstance(name, str):
            bad("name", "must be a string")
        elif not 3 <= len(name) <= 100:
            bad("name", "must be 3 to 100 characters")
    if "url" in body and (problem := _https_problem(body["url"])):
        bad("url", problem)
    if "fallbackUrls" in body:
        fallbacks = body["fallbackUrls"]
        if not isinstance(fallbacks, list):
            bad("fallbackUrls", "must be a list")
        else:
            if len(fallbacks) > 5:
                bad("fallbackUrls", "must hold at most 5 URLs")
            for i, url in enumerate(fallbacks[:6]):
                if problem := _https_problem(url):
                    bad(f"fallbackUrls.{i}", problem)
    if "method" in body and body["method"] not in ("POST", "PUT"):
        bad("method", "must be POST or PUT")
    if "headers" in body:
        for field, message in _header_problems(body["headers"]):
            bad(field, message)
    if "payloadFormat" in body and body["payloadFormat"] not in ("JSON", "XML"):
        bad("payloadFormat", "must be JSON or XML")
    if "isActive" in body and not isinstance(body["isActive"], bool):
        bad("isActive", "must be a boolean")
    if "retryPolicy" in body:
        policy = body["retryPolicy"]
        if not isinstance(policy, dict):
            bad("retryPolicy", "must be an object")
        else:
            for key in policy:
                if key not in ("maxRetries", "retryIntervalMs"):
                    bad(f"retryPolicy.{_short(str(key))}", "is not a known field")
            if "maxRetries" in policy and not _int_in(policy["maxRetries"], 0, 10):
                bad("retryPolicy.maxRetries", "must be an integer from 0 to 10")
            if "retryIntervalMs" in policy and not _int_in(policy["retryIntervalMs"], 1000, 30000):
                bad("retryPolicy.retryIntervalMs", "must be an integer from 1000 to 30000")
    if "timeout" in body and not _int_in(body["timeout"], 1000, 30000):
        bad("timeout", "must be an integer from 1000 to 30000 (milliseconds)")
    header = body.get("signatureHeader")
    if header is not None and not (isinstance(header, str) and 1 <= len(header) <= 128):
        bad("signatureHeader", "must be a string of 1 to 128 characters")
    elif isinstance(header, str) and not _HEADER_TOKEN.fullmatch(header):
        bad("signatureHeader", "is not a valid header name")
    elif isinstance(header, str) and header.lower() in TRANSPORT_HEADERS:
        bad("signatureHeader", "must not be a hop-by-hop or framing header")
    secret = body.get("signatureSecret")
    if secret is not None and not (isinstance(secret, str) and 1 <= len(secret) <= 1024):
        bad("signatureSecret", "must be a string of 1 to 1024 characters")
    if not partial and (header is None) != (secret is None):
        bad("signatureSecret", "signatureHeader and signatureSecret come together or not at all")
    return errors


# --- state ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


class SimulatorState:
    """Everything the simulator holds; every method is safe to call from another thread."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._lock = threading.RLock()
        self._reset_hooks: list[Callable[[], None]] = []
        self.reset(config)

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (under the state's lock) at every :meth:`reset` (another dialect's store)."""
        with self._lock:
            self._reset_hooks.append(hook)
            hook()

    # --- set-up -------------------------------------------------------------------------------

    def reset(self, config: SimulatorConfig | None = None) -> None:
        """Forget webhooks, requests, counters and buckets; faults back to the config's. A new
        ``config`` (e.g. ``dataclasses.replace(state.config, burst=3)``) replaces the old one."""
        with self._lock:
            if config is not None:
                self.config = config
            cfg = self.config
            self._rw = frozenset(key_fingerprint(k) for k in cfg.api_keys)
            self._ro = frozenset(key_fingerprint(k) for k in cfg.read_only_keys)
            self.faults = cfg.faults.model_copy(deep=True)
            seed = cfg.seed if cfg.seed is not None else random.SystemRandom().getrandbits(64)
            self._fault_rng = random.Random(f"faults:{seed}")
            self._id_rng = random.Random(f"ids:{seed}")
            self._webhooks: dict[str, dict[str, Any]] = {}
            self._seq = 0
            self._requests: list[dict[str, Any]] = []
            self._buckets: dict[str, _Bucket] = {}
            self.creates_by_name: Counter[str] = Counter()
            self.create_attempts_by_name: Counter[str] = Counter()
            self.status_counts: Counter[int] = Counter()
            for hook in self._reset_hooks:
                hook()

    def set_config(self, changes: dict[str, Any]) -> SimulatorConfig:
        """Change the live settings (:data:`_LIVE_SETTINGS`) without forgetting anything else."""
        with self._lock:
            self.config = dataclasses.replace(
                self.config, **{k: v for k, v in changes.items() if k in _LIVE_SETTINGS}
            )
            return self.config

    def set_faults(self, changes: dict[str, Any]) -> Faults:
        """Merge ``changes`` into the current faults (validated as a whole; ValidationError if bad)."""
        with self._lock:
            self.faults = Faults.model_validate({**self.faults.model_dump(), **changes})
            return self.faults

    # --- views for tests and the admin routes ---------------------------------------------------

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    @property
    def webhooks(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {wid: _public(w) for wid, w in self._webhooks.items()}

    def webhooks_named(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [_public(w) for w in self._ordered() if w["name"] == name]

    def secret_digest(self, webhook_id: str) -> str | None:
        """SHA-256 (hex) of the signature secret stored for a webhook: tests compare, never read it."""
        with self._lock:
            stored = self._webhooks.get(webhook_id)
            return None if stored is None else stored.get("_secretDigest")

    def count(self, *, method: str | None = None, path: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(
                1
                for r in self._requests
                if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)
                and (status is None or r["status"] == status)
            )

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "statusCounts": {str(k): v for k, v in sorted(self.status_counts.items())},
                "createsByName": dict(self.creates_by_name),
                "createAttemptsByName": dict(self.create_attempts_by_name),
                "webhookCount": len(self._webhooks),
            }

    # --- used by the app ----------------------------------------------------------------------

    def record(
        self, method: str, path: str, query: dict[str, str], key: str | None, body: Any
    ) -> dict[str, Any]:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k != "signatureSecret"}
            if isinstance(body.get("settings"), dict) and "basicAuthPassword" in body["settings"]:
                body["settings"] = {**body["settings"], "basicAuthPassword": "<redacted>"}
            if isinstance(body.get("headers"), dict):
                body["headers"] = redact_headers({str(k): str(v) for k, v in body["headers"].items()})
        with self._lock:
            entry = {
                "seq": len(self._requests) + 1,
                "method": method,
                "path": path,
                "query": query,
                "key": key_fingerprint(key) if key else None,
                "body": body,
                "status": None,
                "fault": None,
                "webhookId": None,
            }
            self._requests.append(entry)
            return entry

    def finish(self, entry: dict[str, Any], status: int | None, *, fault: str | None = None) -> None:
        with self._lock:
            entry["status"] = status
            if fault is not None:
                entry["fault"] = fault
            if status is not None:
                self.status_counts[status] += 1

    def key_role(self, key: str) -> Literal["rw", "ro"] | None:
        fingerprint = key_fingerprint(key)
        if fingerprint in self._rw:
            return "rw"
        if fingerprint in self._ro:
            return "ro"
        return None

    def take_token(self, key: str) -> float | None:
        """Spend one of the key's tokens; None when there was one, else seconds until there is."""
        with self._lock:
            now = self.config.clock()
            rate = self.config.rate_per_minute / 60.0
            burst = float(self.config.burst)
            bucket = self._buckets.setdefault(key_fingerprint(key), _Bucket(burst, now))
            bucket.tokens = min(burst, bucket.tokens + max(0.0, now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return None
            return (1.0 - bucket.tokens) / rate

    def next_fault(self) -> str | None:
        """The next scripted fault if any, else a seeded draw among the fractions (None = no fault)."""
        with self._lock:
            if self.faults.script:
                return self.faults.script.pop(0)
            f = self.faults
            if f.fault_5xx + f.fault_429 + f.fault_drop <= 0:
                return None
            draw = self._fault_rng.random()
            if draw < f.fault_5xx:
                return "5xx"
            if draw < f.fault_5xx + f.fault_429:
                return "429"
            if draw < f.fault_5xx + f.fault_429 + f.fault_drop:
                return "drop"
            return None

    def _ordered(self) -> list[dict[str, Any]]:
        return sorted(self._webhooks.values(), key=lambda w: w["_seq"])

    def _name_taken(self, name: str, but: str | None = None) -> bool:
        return any(w["name"] == name and w["id"] != but for w in self._webhooks.values())

    def note_create_attempt(self, name: str) -> None:
        with self._lock:
            self.create_attempts_by_name[name] += 1

    def create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Store a valid create body (the caller validated it); 201, or 409 on a taken name."""
        with self._lock:
            if not self.config.allow_duplicate_names and self._name_taken(body["name"]):
                return 409, _error(409, f"a webhook named {_short(body['name'])!r} exists already")
            webhook_id = f"{self._id_rng.getrandbits(96):024x}"
            while webhook_id in self._webhooks:
                webhook_id = f"{self._id_rng.getrandbits(96):024x}"
            now = datetime.now(UTC).isoformat()
            self._seq += 1
            stored = {**json.loads(json.dumps(_DEFAULTS)), **body, "id": webhook_id}
            stored.update(_seq=self._seq, createdAt=now, updatedAt=now)
            _keep_secret_digest(stored)
            self._webhooks[webhook_id] = stored
            self.creates_by_name[body["name"]] += 1
            return 201, _public(stored)

    def get(self, webhook_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._webhooks.get(webhook_id)
            return _public(stored) if stored else None

    def update(self, webhook_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            stored = self._webhooks.get(webhook_id)
            if stored is None:
                return 404, _error(404, "no webhook with this id")
            name = body.get("name", stored["name"])
            if not self.config.allow_duplicate_names and self._name_taken(name, but=webhook_id):
                return 409, _error(409, f"a webhook named {_short(name)!r} exists already")
            header = body["signatureHeader"] if "signatureHeader" in body else stored.get("signatureHeader")
            if "signatureSecret" in body:
                has_secret = body["signatureSecret"] is not None
            else:
                has_secret = stored["_secretDigest"] is not None
            if (header is None) == has_secret:
                problem = {
                    "field": "signatureSecret",
                    "message": "signatureHeader and signatureSecret come together",
                }
                return 422, _error(422, "payload violates the schema", [problem])
            merged = {**stored, **{k: v for k, v in body.items() if k != "signatureSecret"}}
            if isinstance(body.get("retryPolicy"), dict):
                merged["retryPolicy"] = {**stored["retryPolicy"], **body["retryPolicy"]}
            if "signatureSecret" in body:
                merged["signatureSecret"] = body["signatureSecret"]
                _keep_secret_digest(merged)
            if header is None:
                merged.pop("signatureHeader", None)
            merged["updatedAt"] = datetime.now(UTC).isoformat()
            self._webhooks[webhook_id] = merged
            return 200, _public(merged)

    def delete(self, webhook_id: str) -> bool:
        with self._lock:
            return self._webhooks.pop(webhook_id, None) is not None

    def page(self, name: str | None, limit: int, after: int) -> tuple[list[dict[str, Any]], str | None]:
        with self._lock:
            rows = [w for w in self._ordered() if w["_seq"] > after and (name is None or w["name"] == name)]
            items = rows[:limit]
            more = len(rows) > limit
            return [_public(w) for w in items], (_cursor(items[-1]["_seq"]) if more and items else None)


def _keep_secret_digest(stored: dict[str, Any]) -> None:
    """Cognigy must keep the secret to sign; the simulator keeps only a digest of it (tests compare)."""
    secret = stored.pop("signatureSecret", None)
    if secret is None:
        stored["_secretDigest"] = None
        stored.pop("signatureHeader", None)
    else:
        stored["_secretDigest"] = hashlib.sha256(str(secret).encode()).hexdigest()


def _public(stored: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stored.items() if not k.startswith("_") and k != "signatureSecret"}


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def _parse_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "after" and number.isdigit() and len(number) < 12 else None


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}


def _error(status: int, message: str, field_errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "statusCode": status,
        "error": _REASONS.get(status, "Server Error" if status >= 500 else "Error"),
        "message": message,
    }
    if field_errors is not None:
        body["fieldErrors"] = field_errors
    return body


# --- the app --------------------------------------------------------------------------------------


class _SimulatorApp(Starlette):
    """Keeps the server's own ``send`` in the scope, so a fault can drop the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_RAW_SEND] = send
        await super().__call__(scope, receive, send)


async def _drop_connection(scope: MutableMapping[str, Any]) -> None:
    """Close the TCP connection at once, with no response (uvicorn's protocol cycles keep their
    transport on the ``send`` they hand the app). Waits until uvicorn has seen the loss, so it
    neither writes nor logs a 500 afterwards."""
    send = scope.get(_RAW_SEND)
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs the simulator served by uvicorn")
    transport.abort()
    for _ in range(200):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


def _retry_after(state: SimulatorState, seconds: float, *, injected: bool) -> dict[str, str]:
    faults = state.faults
    if injected and faults.retry_after_raw is not None:
        return {"Retry-After": faults.retry_after_raw} if faults.retry_after_raw else {}
    whole = max(1, math.ceil(seconds - 1e-9)) if not injected else int(seconds)
    if faults.retry_after_http_date:
        return {"Retry-After": email.utils.formatdate(math.ceil(time.time() + whole), usegmt=True)}
    return {"Retry-After": str(whole)}


class _Api:
    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def _serve(
        self,
        request: Request,
        action: Callable[[Request, Any, str], tuple[int, Any]],
        *,
        write: bool,
        error: Callable[[int, str], Any] | None = None,
    ) -> Response:
        """Auth, the rate limit, faults and body parsing, then ``action``. ``error(status, message)``
        shapes the error bodies written here (the tutorial's by default; the endpoints dialect gives
        its RFC 7807 one)."""
        problem: Callable[[int, str], Any] = error or _error
        state = self.state
        raw = await request.body()
        body: Any = None
        body_problem: tuple[int, str] | None = None
        if len(raw) > MAX_BODY_BYTES:
            body_problem = (413, "the body is too large")
        elif raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body_problem = (400, "the body is not valid JSON")
        key = request.headers.get("x-api-key")
        entry = state.record(request.method, request.url.path, dict(request.query_params), key, body)

        def answer(
            status: int, content: Any, headers: dict[str, str] | None = None, fault: str | None = None
        ) -> Response:
            state.finish(entry, status, fault=fault)
            if status == 204:
                return Response(status_code=204, headers=headers)
            return JSONResponse(content, status_code=status, headers=headers)

        if not key:
            return answer(401, problem(401, "the X-API-Key header is missing"))
        role = state.key_role(key)
        if role is None:
            return answer(401, problem(401, "the API key is not valid"))
        wait = state.take_token(key)
        if wait is not None:
            headers = _retry_after(state, wait, injected=False)
            return answer(429, problem(429, "rate limit exceeded for this API key"), headers)
        fault = state.next_fault()
        delay_ms = state.faults.slow_ms
        if fault is not None and fault.startswith("slow:"):
            delay_ms = int(fault.removeprefix("slow:"))
        if fault == "429":
            headers = _retry_after(state, state.faults.retry_after_s, injected=True)
            return answer(429, problem(429, "rate limit exceeded (injected)"), headers, fault=fault)
        if fault == "5xx" or (fault is not None and fault.isdigit()):
            status = state.faults.status_5xx if fault == "5xx" else int(fault)
            return answer(status, problem(status, "injected failure"), fault=fault)
        if fault == "drop":
            state.finish(entry, None, fault="drop")
            await _drop_connection(request.scope)
            return Response(status_code=500)  # never sent: the connection is gone
        if write and role == "ro":
            return answer(403, problem(403, "this API key lacks the webhooks:write permission"))
        if body_problem is not None:
            return answer(body_problem[0], problem(*body_problem))
        if raw and "json" not in request.headers.get("content-type", "").lower():
            return answer(415, problem(415, "send the body as application/json"))
        status, content = action(request, body, key)
        if fault == "stale" and action == self._list and status == 200:
            content = {"items": [], "nextCursor": None}  # a listing that has not caught up yet
        if isinstance(content, dict) and status < 300 and "id" in content:
            entry["webhookId"] = content["id"]
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000.0)
        created = request.method == "POST" and status == 201
        if fault == "drop_after" or (created and state.faults.drop_after_create):
            state.finish(entry, None, fault="drop_after")
            await _drop_connection(request.scope)
            return Response(status_code=500)  # never sent
        return answer(status, content, fault="stale" if fault == "stale" else None)

    # --- routes -------------------------------------------------------------------------------

    async def collection(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._serve(request, self._create, write=True)
        return await self._serve(request, self._list, write=False)

    async def item(self, request: Request) -> Response:
        write = request.method != "GET"
        action = {"GET": self._get, "PATCH": self._patch, "DELETE": self._delete}[request.method]
        return await self._serve(request, action, write=write)

    def _create(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 422, _error(
                422, "payload violates the schema", [{"field": "body", "message": "must be an object"}]
            )
        if isinstance(body.get("name"), str):
            self.state.note_create_attempt(body["name"])
        errors = validate_webhook(body, partial=False)
        if errors:
            return 422, _error(422, "payload violates the schema", errors)
        return self.state.create(body)

    def _list(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        params = request.query_params
        limit_text = params.get("limit", str(DEFAULT_PAGE_SIZE))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
            return 422, _error(
                422,
                "invalid query",
                [{"field": "limit", "message": f"must be an integer from 1 to {MAX_PAGE_SIZE}"}],
            )
        after = 0
        if params.get("cursor"):
            parsed = _parse_cursor(params["cursor"])
            if parsed is None:
                return 400, _error(400, "the cursor is not valid")
            after = parsed
        items, next_cursor = self.state.page(params.get("name"), int(limit_text), after)
        return 200, {"items": items, "nextCursor": next_cursor}

    def _get(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        found = self.state.get(request.path_params["webhook_id"])
        return (200, found) if found is not None else (404, _error(404, "no webhook with this id"))

    def _patch(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        if not isinstance(body, dict):
            return 422, _error(
                422, "payload violates the schema", [{"field": "body", "message": "must be an object"}]
            )
        errors = validate_webhook(body, partial=True)
        if errors:
            return 422, _error(422, "payload violates the schema", errors)
        return self.state.update(request.path_params["webhook_id"], body)

    def _delete(self, request: Request, body: Any, key: str) -> tuple[int, Any]:
        if self.state.delete(request.path_params["webhook_id"]):
            return 204, None
        return 404, _error(404, "no webhook with this id")

    # --- admin (simulator only; no key) ----------------------------------------------------------

    async def admin_faults(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(self.state.faults.model_dump())
        try:
            changes = json.loads(await request.body() or b"{}")
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(_error(400, "the body is not valid JSON"), status_code=400)
        if not isinstance(changes, dict):
            return JSONResponse(_error(400, "send a JSON object of fault settings"), status_code=400)
        try:
            faults = self.state.set_faults(changes)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "faults", "message": e["msg"]}
                for e in exc.errors(include_input=False, include_url=False)
            ]
            return JSONResponse(_error(422, "invalid fault settings", errors), status_code=422)
        return JSONResponse(faults.model_dump())

    async def admin_config(self, request: Request) -> Response:
        """``GET``: the behaviour switches; ``POST`` ``{"allow_duplicate_names": bool}`` flips them
        live (nothing else is forgotten)."""
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
            except (ValueError, UnicodeDecodeError):
                return JSONResponse(_error(400, "the body is not valid JSON"), status_code=400)
            if not isinstance(changes, dict):
                return JSONResponse(_error(400, "send a JSON object of settings"), status_code=400)
            problems = [
                {"field": _short(str(k)), "message": "is not a setting that can change live"}
                for k in changes
                if k not in _LIVE_SETTINGS
            ] + [
                {"field": k, "message": "must be true or false"}
                for k, v in changes.items()
                if k in _LIVE_SETTINGS and not isinstance(v, bool)
            ]
            if problems:
                return JSONResponse(_error(422, "invalid settings", problems), status_code=422)
            self.state.set_config(changes)
        return JSONResponse({k: getattr(self.state.config, k) for k in _LIVE_SETTINGS})

    async def admin_requests(self, request: Request) -> Response:
        return JSONResponse(self.state.snapshot())

    async def admin_reset(self, request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)


def create_simulator_app(config: SimulatorConfig) -> Starlette:
    """The simulator as an ASGI app; its state is ``app.state.sim`` (a :class:`SimulatorState`)."""
    state = SimulatorState(config)
    api = _Api(state)
    app = _SimulatorApp(
        routes=[
            Route(WEBHOOKS_PATH, api.collection, methods=["GET", "POST"]),
            Route(WEBHOOKS_PATH + "/{webhook_id}", api.item, methods=["GET", "PATCH", "DELETE"]),
            Route("/_admin/faults", api.admin_faults, methods=["GET", "POST"]),
            Route("/_admin/requests", api.admin_requests, methods=["GET"]),
            Route("/_admin/config", api.admin_config, methods=["GET", "POST"]),
            Route("/_admin/reset", api.admin_reset, methods=["POST"]),
        ]
    )
    app.state.sim = state
    from cogwh.sim_endpoints import mount_endpoints  # the second dialect builds on this module

    app.state.endpoints = mount_endpoints(app, api)
    return app
