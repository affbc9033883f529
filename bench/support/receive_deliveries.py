"""Deliveries as Cognigy sends them, for the receiver's benchmarks (bench/receive_load.py): each one
unique, in either dialect, and forgeries of each.

- The endpoints dialect (a real Cognigy.AI webhook Endpoint): Flow outputs ``{userId, sessionId,
  AIOutput: {text, data, traceId, disableSensitiveLogging}}`` under HTTP Basic auth alone; one to three
  outputs per turn share a ``traceId`` (two deliveries all the same: their bytes differ), at most
  :data:`OUTPUTS_PER_SESSION` per session, well under the loop guard's bound (``LoopMaxPerWindow``, 20),
  so that no delivery of the benchmark is a loop.
- The tutorial's dialect: ``{sessionId, userId, text, data}`` signed with the endpoint's secret in the
  ``X-Cognigy-Signature`` header.

Bodies are compact JSON padded (in ``text``) to the size asked for. A delivery sent again keeps its
bytes; in the tutorial's dialect it is signed afresh half of the time (as a retry would be). Forgeries
are fresh deliveries with a wrong password, a wrong user name or no credentials; a signature by another
secret, a right signature over other bytes, or none: each must be answered 401.

Standard library only at import (the senders' process imports it); the signing helper on first use.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DIALECTS",
    "OUTPUTS_PER_SESSION",
    "SIGNATURE_HEADER",
    "USERNAME",
    "Deliveries",
    "Prepared",
    "Target",
    "basic_header",
]

DIALECTS = ("endpoints", "tutorial")
SIGNATURE_HEADER = "X-Cognigy-Signature"
USERNAME = "cognigy"
OUTPUTS_PER_SESSION = 9


@dataclass(frozen=True)
class Target:
    """A registered endpoint and what authenticates for it (plain values: the senders need them)."""

    name: str
    dialect: str  # endpoints (Basic auth alone) | tutorial (signed)
    password: str | None = None
    secret: str | None = None

    def __repr__(self) -> str:  # never the password or the secret
        return f"Target(name={self.name!r}, dialect={self.dialect!r})"


@dataclass(frozen=True)
class Prepared:
    """One request ready to send. ``key`` names the delivery: every send of the same bytes shares it."""

    key: str
    target: int
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)  # credentials: never in a repr


def basic_header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _padded(doc: dict[str, Any], size: int, put: Callable[[dict[str, Any], str], None]) -> bytes:
    """``doc`` as compact JSON, its text (set by ``put``) padded for a body of ``size`` bytes (or as
    short as it gets)."""
    put(doc, "")
    bare = len(json.dumps(doc, separators=(",", ":")).encode())
    put(doc, "x" * max(0, size - bare))
    return json.dumps(doc, separators=(",", ":")).encode()


def _set_output_text(doc: dict[str, Any], text: str) -> None:
    doc["AIOutput"]["text"] = text


def _set_text(doc: dict[str, Any], text: str) -> None:
    doc["text"] = text


class Deliveries:
    """One sender's deliveries to ``targets`` (``prefix`` keeps them apart from every other sender's)."""

    def __init__(self, targets: Sequence[Target], prefix: str, rng: random.Random, body_bytes: int) -> None:
        self.targets = tuple(targets)
        self.prefix = prefix
        self.rng = rng
        self.body_bytes = body_bytes
        self.n = 0
        self.session = 0
        self.in_session = OUTPUTS_PER_SESSION
        self.turn = 0
        self.turn_left = 0

    def _next_output(self) -> tuple[str, str]:
        """The session and traceId of the next output."""
        if self.in_session >= OUTPUTS_PER_SESSION:
            self.session, self.in_session, self.turn_left = self.session + 1, 0, 0
        if self.turn_left == 0:
            self.turn, self.turn_left = self.turn + 1, self.rng.randint(1, 3)
        self.in_session += 1
        self.turn_left -= 1
        return f"load-{self.prefix}-s{self.session}", f"trace-{self.prefix}-t{self.turn}"

    def _body(self, target: Target) -> tuple[str, bytes]:
        self.n += 1
        key = f"{self.prefix}-{self.n}"
        session, trace = self._next_output()
        data = {"seq": self.n, "channel": "webhook"}
        if target.dialect == "endpoints":
            output = {"text": "", "data": data, "traceId": trace, "disableSensitiveLogging": False}
            doc: dict[str, Any] = {"userId": f"user-{self.prefix}", "sessionId": session, "AIOutput": output}
            return key, _padded(doc, self.body_bytes, _set_output_text)
        doc = {"sessionId": session, "userId": f"user-{self.prefix}", "text": "", "data": data}
        return key, _padded(doc, self.body_bytes, _set_text)

    def fresh(self, index: int) -> Prepared:
        """A new delivery to ``targets[index]``, authenticated as Cognigy would."""
        from cognigy_webhooks.signing import sign_webhook_payload

        target = self.targets[index]
        key, body = self._body(target)
        headers = {"Content-Type": "application/json"}
        if target.dialect == "endpoints":
            assert target.password is not None
            headers["Authorization"] = basic_header(USERNAME, target.password)
        else:
            assert target.secret is not None
            headers[SIGNATURE_HEADER] = sign_webhook_payload(body, target.secret)
        return Prepared(key, index, body, headers)

    def again(self, sent: Prepared) -> Prepared:
        """``sent`` sent again: the same bytes; for the tutorial's dialect, half of the time signed
        afresh (a retry's new timestamp: the signature covers the body alone, so it is the same
        delivery)."""
        from cognigy_webhooks.signing import sign_webhook_payload

        target = self.targets[sent.target]
        if target.dialect != "tutorial" or target.secret is None or self.rng.random() < 0.5:
            return sent
        headers = {**sent.headers, SIGNATURE_HEADER: sign_webhook_payload(sent.body, target.secret)}
        return Prepared(sent.key, sent.target, sent.body, headers)

    def forged(self, index: int) -> Prepared:
        """A new delivery to ``targets[index]`` that must be refused (401), in one of three ways."""
        from cognigy_webhooks.signing import sign_webhook_payload

        good = self.fresh(index)
        key, body = "bad-" + good.key, good.body
        headers = {"Content-Type": "application/json"}
        variant = self.rng.randrange(3)
        target = self.targets[index]
        if target.dialect == "endpoints":
            if variant == 0:
                headers["Authorization"] = basic_header(USERNAME, "wrong-" + uuid.uuid4().hex)
            elif variant == 1:
                headers["Authorization"] = basic_header("someone-else", target.password or "")
        elif variant == 0:
            headers[SIGNATURE_HEADER] = sign_webhook_payload(body, "another-secret-" + uuid.uuid4().hex)
        elif variant == 1:  # the right signature, over other bytes
            headers[SIGNATURE_HEADER] = good.headers[SIGNATURE_HEADER]
            body = body.replace(b"webhook", b"WEBHOOK")
        return Prepared(key, index, body, headers)
