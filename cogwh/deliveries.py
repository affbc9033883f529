"""Deliver to a receiver as Cognigy would, good and bad, and say what came back: the demo's checks.

``run_delivery_checks`` posts real HTTP requests to ``<base_url>/deliveries/<name>`` (the local
gateway, or a deployed API's URL) and returns one :class:`Verdict` per case: expected status, the
status that came back, and whether they match.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from cognigy_webhooks.loopguard import LOOP_HOP_HEADER
from cognigy_webhooks.signing import sign_standard_webhook, sign_webhook_payload

__all__ = ["DeliveryTarget", "Verdict", "format_verdicts", "run_delivery_checks"]

DEFAULT_SIGNATURE_HEADER = "X-Cognigy-Signature"


@dataclass(frozen=True)
class DeliveryTarget:
    """A registered endpoint the checks deliver to, with the secret Cognigy signs with (kept in
    memory only; never printed: ``repr`` hides it)."""

    name: str
    secret: str
    scheme: str = "cognigy"  # or "standard"
    signature_header: str = DEFAULT_SIGNATURE_HEADER
    payload_format: str = "JSON"  # or "XML"

    def __repr__(self) -> str:
        return (
            f"DeliveryTarget(name={self.name!r}, scheme={self.scheme!r}, "
            f"payload_format={self.payload_format!r}, secret='**********')"
        )

    @property
    def content_type(self) -> str:
        return "application/xml" if self.payload_format == "XML" else "application/json"

    def headers(
        self, body: bytes, *, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        key = secret or self.secret
        stamp = int(time.time()) if timestamp is None else timestamp
        headers = {"Content-Type": self.content_type}
        if self.scheme == "standard":
            msg_id = "msg_" + uuid.uuid4().hex
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(stamp)
            headers["webhook-signature"] = sign_standard_webhook(msg_id, stamp, body, key)
        else:
            headers[self.signature_header] = sign_webhook_payload(body, key, stamp)
        return headers

    def body(self, session: str, text: str) -> bytes:
        if self.payload_format == "XML":
            return (
                f'<?xml version="1.0" encoding="UTF-8"?><output><sessionId>{session}</sessionId>'
                f"<text>{text}</text></output>"
            ).encode()
        return json.dumps({"sessionId": session, "userId": "demo-user", "text": text}).encode()


@dataclass(frozen=True)
class Verdict:
    case: str
    expected_status: int | str
    got_status: int | str
    ok: bool


def _session() -> str:
    return "demo-" + uuid.uuid4().hex[:12]


def run_delivery_checks(
    base_url: str,
    json_endpoint: DeliveryTarget,
    xml_endpoint: DeliveryTarget | None = None,
    *,
    max_body_bytes: int = 256 * 1024,
    loop_max_per_window: int = 20,
    loop_max_hops: int = 3,
    burst: int = 20,
    timeout: float = 30.0,
    on_verdict: Callable[[Verdict], None] | None = None,
) -> list[Verdict]:
    """Deliver valid JSON and XML deliveries, a tampered body, a stale timestamp, a wrong secret,
    genuine bodies whose content cannot be handed on (a lone surrogate in JSON, an unknown XML
    encoding: 400, never claimed), a replay, a burst of duplicates, an oversized body and a callback
    loop; one verdict each.

    The loop bounds and the size cap must be the receiver's (its template parameters). A failure to
    connect is a verdict too (got ``"no answer: <error>"``), never an exception."""
    base = base_url.rstrip("/")
    verdicts: list[Verdict] = []

    def record(case: str, expected: int | str, got: int | str) -> None:
        verdict = Verdict(case, expected, got, expected == got)
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(verdict)

    with httpx.Client(timeout=timeout) as client:

        def post(target: DeliveryTarget, body: bytes, headers: dict[str, str]) -> int | str:
            try:
                return client.post(
                    f"{base}/deliveries/{target.name}", content=body, headers=headers
                ).status_code
            except httpx.HTTPError as exc:
                return f"no answer: {type(exc).__name__}"

        ep = json_endpoint
        first = ep.body(_session(), "your order has shipped")
        first_stamp = int(time.time()) - 5
        first_headers = ep.headers(first, timestamp=first_stamp)
        record("valid JSON delivery", 202, post(ep, first, first_headers))
        if xml_endpoint is not None:
            xml = xml_endpoint.body(_session(), "invoice ready")
            record("valid XML delivery", 202, post(xml_endpoint, xml, xml_endpoint.headers(xml)))

        body = ep.body(_session(), "pay 10 EUR")
        headers = ep.headers(body)
        record("tampered body", 401, post(ep, body.replace(b"10 EUR", b"9000 EUR"), headers))

        body = ep.body(_session(), "old news")
        record("stale timestamp", 401, post(ep, body, ep.headers(body, timestamp=int(time.time()) - 3600)))

        body = ep.body(_session(), "who signed this?")
        wrong = "not-the-secret-" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
        if ep.scheme == "standard":
            wrong = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()
        record("wrong secret", 401, post(ep, body, ep.headers(body, secret=wrong)))

        # genuinely signed, but what it holds cannot be handed on as JSON: a 400 naming the problem,
        # the same every time (never a 503 that Cognigy would retry into a "duplicate")
        body = b'{"sessionId":"%s","text":"\\ud83d"}' % _session().encode()
        record("signed JSON with a lone surrogate", 400, post(ep, body, ep.headers(body)))
        if xml_endpoint is not None:
            body = b'<?xml version="1.0" encoding="x-unknown"?><output><text>hi</text></output>'
            record(
                "signed XML in an unknown encoding", 400, post(xml_endpoint, body, xml_endpoint.headers(body))
            )

        # a captured delivery sent again later: the tutorial's timestamp is not signed, so the
        # attacker puts a fresh one on; Standard Webhooks headers are replayed as they were
        replay = dict(first_headers)
        if ep.scheme != "standard":
            signature = first_headers[ep.signature_header].split(",", 1)[1]
            replay[ep.signature_header] = f"{int(time.time())},{signature}"
        record("replay of the first delivery", 200, post(ep, first, replay))

        body = ep.body(_session(), "the same message, many times")
        headers = ep.headers(body)
        barrier = threading.Barrier(burst)

        def one(_: int) -> int | str:
            with httpx.Client(timeout=timeout) as own:
                barrier.wait(timeout=timeout)
                try:
                    return own.post(f"{base}/deliveries/{ep.name}", content=body, headers=headers).status_code
                except httpx.HTTPError as exc:
                    return f"no answer: {type(exc).__name__}"

        with ThreadPoolExecutor(max_workers=burst) as pool:
            counts = Counter(pool.map(one, range(burst)))
        record(f"burst of {burst} duplicates", _counts({202: 1, 200: burst - 1}), _counts(counts))

        padding = "x" * (max_body_bytes + 1)
        body = ep.body(_session(), padding)
        record("oversized body", 413, post(ep, body, ep.headers(body)))

        body = ep.body(_session(), "ping")
        record(
            "loop: hop header past the bound",
            508,
            post(ep, body, ep.headers(body) | {LOOP_HOP_HEADER: str(loop_max_hops + 1)}),
        )

        session = _session()
        got: int | str = "no 508"
        for turn in range(loop_max_per_window + 1):
            body = ep.body(session, f"echo {turn}")
            got = post(ep, body, ep.headers(body))
            if got != 202:
                break
        record(f"loop: conversation echoed {loop_max_per_window + 1} times", 508, got)
    return verdicts


def _counts(counts: Counter[int | str] | dict[int, int]) -> str:
    return ", ".join(f"{n}x {status}" for status, n in sorted(counts.items(), key=lambda kv: str(kv[0])))


def format_verdicts(verdicts: Sequence[Verdict]) -> str:
    """The verdict table: case, expected, got, and a mark."""
    rows = [
        [v.case, str(v.expected_status), str(v.got_status), "ok" if v.ok else "MISMATCH"] for v in verdicts
    ]
    headers = ["CASE", "EXPECTED", "GOT", "VERDICT"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)) for r in rows]
    return "\n".join(lines)
