"""The delivery pipeline: what the receive function does with each of Cognigy's deliveries, top to
bottom (the steps' parts live beside it: http, auth, payloads, outputs, report).

Steps, each only when the earlier ones passed:

1. the API Gateway (REST, v1 proxy) event becomes a request: raw body bytes (base64 decoded when API
   Gateway marks it so), headers by lower-cased name with every value kept (each valid text) .. else 400
2. the body size, before any lookup or HMAC ............................................. else 413
3. the endpoint record (cached briefly); unknown, inactive and unauthenticated endpoints get the
   same 401 as a failed authentication, so names cannot be probed
4. authentication over the raw bytes: the tutorial's signature header, Standard Webhooks, and/or HTTP
   Basic auth; current and previous secret (a rotation), one forced re-fetch on a mismatch .. 401
5. the content type against the endpoint's payloadFormat ................................. else 415
6. the content, in full and before anything is claimed, so that a content problem never claims
   anything and the same body always gets the same answer ..................................... else 400
   - ``payload_invalid``: the body does not parse (JSON: UTF-8, no NaN/Infinity; XML: well-formed,
     no DTD or entity, an ``encoding=`` that can be read);
   - ``payload_unrepresentable``: it parses, but past a bound (JSON nesting over
     :data:`MAX_JSON_DEPTH` = 64 levels, checked on the bytes before parsing; XML deeper than 64
     elements or over 20,000 of them), or into what the hand-off (JSON in UTF-8) cannot carry: a lone
     surrogate (``"\\ud83d"``) in a key or string, a number that is not finite (``1e400``). The detail
     that will be published (slimmed when too big for EventBridge) is rendered here, and exactly that
     text is published later. The output's fields are read from the parsed body, leniently
     (:func:`~cognigy_webhooks.receiving.outputs.output_fields`: never a refusal).
7. the hop header above its bound (``X-Cogwh-Hop``: only where the sender can set headers; absent
   from a real Cognigy.AI delivery, this step then does nothing) ............................ 508
8. the claim in the delivery ledger: the first delivery with this replay key stores it; every other
   is a duplicate, answered 200 with the first one's id and with no second side effect once the
   first is handed on. While the first is still in flight, the duplicate waits for it (at most
   ``inflight_wait_seconds``, reading the ledger on a fixed schedule): published -> 200, stopped as a
   loop -> 508, given back -> this one claims and hands it on, still in flight -> 503 ``in_flight``
   (Cognigy retries; a claim whose invocation died is taken over after its lease). A duplicate is
   never acknowledged for a delivery that may not be handed on. The replay key never depends on the
   secret that verified it (see :mod:`cognigy_webhooks.dal.deliveries`; for a real output under
   Basic auth it is the ``traceId`` with the body's SHA-256: :mod:`cognigy_webhooks.receiving.auth`)
9. the conversation's sliding-window count above its bound ................................ 508
   (the conversation is the body's ``sessionId``, so the guard needs no header: more than
   ``LoopMaxPerWindow`` new deliveries of one ``sessionId`` to one endpoint within
   ``LoopWindowSeconds`` are a loop, such as a consumer echoing each output back as input; a body
   without a ``sessionId`` is not counted)
10. hand-off: publish to the EventBridge bus, mark the delivery published ................. 202

The event's detail: ``endpoint``, ``deliveryId``, ``payloadFormat``, ``receivedAt``, ``payload`` (the
parsed body), ``hop`` (when the header came), and the output's fields found in the body, each at the
top for consumers' event patterns: ``userId``, ``sessionId``, ``text``, ``data``, ``traceId``,
``disableSensitiveLogging`` (where each is looked for: :mod:`cognigy_webhooks.receiving.outputs`). A
detail too big for EventBridge goes without ``payload``, then ``data``, then ``text``
(``payloadOmitted``... :data:`~cognigy_webhooks.dal.bus.DeliveryBus.OMITTABLE`). Nothing of the
request's headers is in it: never the Authorization header nor a credential.

A real Cognigy.AI webhook Endpoint (the endpoints dialect) POSTs once per Flow output, the body
``{userId, sessionId, AIOutput: {text, data, traceId, disableSensitiveLogging, source}}`` (reshaped at
will by an output transformer), authenticated by HTTP Basic alone: no signature, and no header of ours
(Cognigy cannot send custom headers). So its record has ``basicAuth`` and nothing else; step 4 checks
the credentials in constant time (a record with no authentication at all takes nothing: step 3), step
7 has nothing to read, step 8 keys the delivery on ``AIOutput.traceId`` and the body's digest, step 9
counts its ``sessionId``. Assumed, because it cannot be verified here: a retry re-sends the same bytes
(it is a duplicate: 200), and two outputs of one turn differ in their bytes (two deliveries) even
where they share a ``traceId``; the consequences when not are in :mod:`cognigy_webhooks.receiving.auth`.

After a won claim, every exit either publishes exactly once or releases the claim: whatever is raised
before the event is out (a failing count, bus or mark, a bug, even a BaseException) gives the claim
back before it propagates (503), so Cognigy's retry is processed afresh instead of being answered
``200 duplicate`` for a delivery never handed on. Once the event is out the answer is 202, whatever
fails next (marking it, logging, metrics).

Rejections are audited (reason only: never a secret, a signature or a credential) and counted in
metrics; logs and audit items are rate-limited (the rest are counted and summarised) so a flood
cannot flood them. Nothing a client sends produces a 500, nor a 5xx of any kind when AWS is up:
failures of AWS itself answer 503 (Cognigy retries), anything unexpected too, with the details in the
(bounded) logs only.

This module must not import pydantic or httpx (the receiver's cold start); see ``bench/receive.py``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from cognigy_webhooks.dal.audit import AuditLog
from cognigy_webhooks.dal.bus import DeliveryBus
from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.deliveries import (
    STATE_CLAIMED,
    STATE_LOOPED,
    STATE_PUBLISHED,
    DeliveryLedger,
    delivery_id_for,
)
from cognigy_webhooks.dal.endpoints import EndpointAuth, EndpointDirectory
from cognigy_webhooks.dal.schema import Delivery, delivery_item, iso_time
from cognigy_webhooks.dal.secretsmanager import SecretVersions
from cognigy_webhooks.errors import DeliveryStoreError
from cognigy_webhooks.loopguard import LOOP_HOP_HEADER, LOOP_ID_HEADER, LOOP_ORIGIN_HEADER, read_loop_headers
from cognigy_webhooks.receiving.auth import Authenticator, output_replay_key
from cognigy_webhooks.receiving.http import UNAVAILABLE, Reply, bad_request, parse_api_event, unauthorized
from cognigy_webhooks.receiving.outputs import output_fields
from cognigy_webhooks.receiving.payloads import (
    PAYLOAD_UNREPRESENTABLE,
    PayloadRefused,
    media_label,
    media_type_matches,
    parse_payload,
    unrepresentable_message,
)
from cognigy_webhooks.receiving.report import DeliveryMetrics, RejectionReporter
from cognigy_webhooks.settings_receive import ReceiveSettings

__all__ = ["Receiver", "inflight_waits"]

#: Names as the models allow them (3-100 characters); anything else is unknown without a lookup.
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{1,98}[A-Za-z0-9._-]")
UNKNOWN_ENDPOINT = "_unknown"
_LOOP_HEADER_NAMES = (LOOP_ORIGIN_HEADER, LOOP_ID_HEADER, LOOP_HOP_HEADER)
_LOOP_KEYS = tuple(name.lower() for name in _LOOP_HEADER_NAMES)  # as DeliveryRequest keeps them
#: What a request without any loop header reads as (a real Cognigy.AI delivery sends none).
_NO_LOOP_HEADERS = read_loop_headers(())

_log = logging.getLogger("cognigy-webhooks")


# --- the receiver -------------------------------------------------------------------------------

_IN_FLIGHT = "This delivery is still being handed on; retry later"


def inflight_waits(total: float) -> tuple[float, ...]:
    """The pauses a duplicate makes while the first delivery is in flight: 20 ms doubling up to
    250 ms, adding up to ``total`` seconds (a fixed schedule: the number of ledger reads is bounded)."""
    waits: list[float] = []
    delay, left = 0.02, total
    while left > 1e-9:
        step = round(min(delay, left), 6)
        waits.append(step)
        left -= step
        delay = min(delay * 2, 0.25)
    return tuple(waits)


def _state_of(item: Mapping[str, Any]) -> str:
    value = item.get(Delivery.STATE)
    text = value.get("S") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else STATE_CLAIMED


class Receiver:
    """The pipeline with its collaborators. Thread-safe: concurrent invocations may share one."""

    def __init__(
        self,
        settings: ReceiveSettings,
        *,
        directory: EndpointDirectory,
        secrets: SecretVersions,
        ledger: DeliveryLedger,
        bus: DeliveryBus,
        audit: AuditLog,
        log: Any = None,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.settings = settings
        self.sleep = sleep
        self._inflight_waits = inflight_waits(settings.inflight_wait_seconds)
        self.directory = directory
        self.secrets = secrets
        self.ledger = ledger
        self.bus = bus
        self.audit = audit
        self.log = log if log is not None else _log
        self.metrics = metrics
        self.clock = clock
        self.reporter = RejectionReporter(
            audit, self.log, burst=settings.reject_report_burst, per_second=settings.reject_report_per_second
        )
        self.authenticator = Authenticator(secrets, tolerance_seconds=settings.tolerance_seconds)
        self.counter = DeliveryMetrics(metrics, self.log)

    @classmethod
    def from_settings(
        cls,
        settings: ReceiveSettings,
        *,
        clients: LazyClients | None = None,
        log: Any = None,
        metrics: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> Receiver:
        """Wire the AWS collaborators from the settings (clients are made on first use)."""
        clients = clients or LazyClients()
        return cls(
            settings,
            directory=EndpointDirectory(clients, settings.endpoints_table, ttl=settings.record_cache_seconds),
            secrets=SecretVersions(
                clients,
                max_age=settings.secret_max_age,
                refresh_seconds=settings.secret_refresh_seconds,
                log=log,
            ),
            ledger=DeliveryLedger(clients, settings.deliveries_table),
            bus=DeliveryBus(clients, settings.bus_name, source=settings.event_source),
            audit=AuditLog(clients, settings.audit_table, retention_days=settings.audit_retention_days),
            log=log,
            metrics=metrics,
            clock=clock,
        )

    # --- entry points ----------------------------------------------------------------------------

    def handle_event(self, event: object) -> dict[str, Any]:
        """An API Gateway proxy event in, a proxy response out. Never answers 500 and raises no
        Exception (a BaseException propagates, after the claim, if any, was given back)."""
        reply = self.receive(event)
        self.counter.count(reply)
        return reply.to_api_gateway()

    def receive(self, event: object) -> Reply:
        try:
            return self._receive(event)
        except DeliveryStoreError as exc:
            self._quietly(self.reporter.failure, str(exc))
        except Exception as exc:  # a bug must not become a 500 (nor a traceback in the response)
            self._quietly(self.reporter.failure, f"unexpected {type(exc).__name__}", exc_info=True)
        return UNAVAILABLE

    # --- the steps -------------------------------------------------------------------------------

    def _receive(self, event: object) -> Reply:
        settings = self.settings
        request = parse_api_event(event, max_body_bytes=settings.max_body_bytes)
        if isinstance(request, Reply):
            return self._reject(None, request)
        now = self.clock()

        name = request.name
        endpoint = self.directory.get(name) if name is not None and _NAME_RE.fullmatch(name) else None
        if endpoint is None or not endpoint.accepts_deliveries:
            reason = "endpoint_unknown" if endpoint is None else "endpoint_not_accepting"
            return self._reject(endpoint, unauthorized(reason), requested=name)

        auth = self.authenticator.authenticate(endpoint, request, now)
        if not auth.ok:
            return self._reject(endpoint, unauthorized(auth.reason))

        if not media_type_matches(request.values("content-type"), endpoint.payload_format):
            label = media_label(endpoint.payload_format)
            return self._reject(
                endpoint, Reply(415, "rejected", "unsupported_media_type", f"This endpoint takes {label}")
            )
        # the content, in full, before anything is claimed: the body parses, and the very detail that
        # will be published renders (a content problem is a 400, the same one every time)
        try:
            payload = parse_payload(request.body, endpoint.payload_format)
        except PayloadRefused as exc:
            return self._reject(endpoint, bad_request(exc.reason, exc.message))
        fields = output_fields(payload)  # userId, sessionId, text, data, traceId... as found
        conversation: str | None = fields.get("sessionId")
        auth = output_replay_key(auth, endpoint, fields.get("traceId"))
        delivery_id = delivery_id_for(endpoint.name, auth.replay_kind, auth.replay_key)
        headers = request.headers
        if _LOOP_KEYS[0] in headers or _LOOP_KEYS[1] in headers or _LOOP_KEYS[2] in headers:
            loop = read_loop_headers(request.pairs(*_LOOP_HEADER_NAMES))
        else:
            loop = _NO_LOOP_HEADERS
        detail_doc: dict[str, Any] = {
            "endpoint": endpoint.name,
            "deliveryId": delivery_id,
            "payloadFormat": endpoint.payload_format,
            "receivedAt": iso_time(now),
            "payload": payload,
            **fields,
        }
        if loop.hop is not None:
            detail_doc["hop"] = loop.hop
        try:
            detail = self.bus.render(detail_doc)
        except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError, a non-finite number...
            reply = bad_request(
                PAYLOAD_UNREPRESENTABLE, unrepresentable_message(payload, endpoint.payload_format)
            )
            return self._reject(endpoint, reply)

        if loop.hop is not None and loop.hop > settings.loop_max_hops:
            reply = Reply(508, "loop", "hop_limit", "Loop detected")
            return self._reject(endpoint, reply, action="loop_detected", detail=f"hop {loop.hop}")

        token = os.urandom(12).hex()
        item = delivery_item(
            delivery_id=delivery_id,
            endpoint=endpoint.name,
            now=now,
            replay_kind=auth.replay_kind,
            payload_format=endpoint.payload_format,
            content_type=request.values("content-type")[0],
            body=request.body,
            retention_days=settings.retention_days,
            session_id=conversation,
            hop=loop.hop,
        )
        claim = self.ledger.claim(delivery_id, item, token=token, now=now, lease=settings.claim_lease_seconds)
        state = None if claim.won else claim.state
        for delay in self._inflight_waits:
            if state != STATE_CLAIMED:
                break
            # the first delivery is still being handed on (or its invocation died): wait for it
            # rather than acknowledge what may never be published
            self.sleep(delay)
            current = self.ledger.get(delivery_id)
            if current is None:  # it gave its claim back: this one hands the delivery on
                claim = self.ledger.claim(
                    delivery_id, item, token=token, now=now, lease=settings.claim_lease_seconds
                )
                state = None if claim.won else claim.state
            else:
                state = _state_of(current)
        if state is None:
            return self._hand_on(endpoint, delivery_id, token, conversation, detail, now)
        if state == STATE_LOOPED:
            return self._reject(endpoint, Reply(508, "loop", "loop_repeated", "Loop detected", delivery_id))
        if state == STATE_CLAIMED:  # still not handed on: Cognigy must come back (after the lease at worst)
            return Reply(503, "unavailable", "in_flight", _IN_FLIGHT, delivery_id)
        return Reply(200, "duplicate", "duplicate", "", delivery_id)

    def _hand_on(
        self,
        endpoint: EndpointAuth,
        delivery_id: str,
        token: str,
        conversation: str | None,
        detail: str,
        now: float,
    ) -> Reply:
        """Everything after a won claim. Until the event is out, whatever is raised (BaseException
        included) releases the claim before it propagates, so Cognigy's retry is processed afresh
        rather than answered ``200 duplicate`` for a delivery never handed on. Once the event is out
        the answer is 202 whatever fails next (marking it, logging, metrics)."""
        settings = self.settings
        looped: int | None = None
        try:
            if conversation is not None:
                count = self.ledger.count_conversation(
                    endpoint.name, conversation, now=now, window=settings.loop_window_seconds
                )
                if count > settings.loop_max_per_window:
                    self.ledger.finish(delivery_id, token=token, state=STATE_LOOPED, now=now)
                    looped = count
            if looped is None:
                self.bus.publish_rendered(detail)
        except BaseException:
            self._release(delivery_id, token)
            raise
        if looped is not None:  # decided and recorded: reporting it cannot change the answer
            reply = Reply(508, "loop", "conversation_limit", "Loop detected", delivery_id)
            note = f"{looped} deliveries of one conversation within {settings.loop_window_seconds} s"
            self._quietly(self._reject, endpoint, reply, action="loop_detected", detail=note)
            return reply
        # the event is out: answer 202. Marking it is tried twice; when it still fails, a retry within
        # the lease is answered 503 (in flight) and one after it publishes again, with the same
        # deliveryId (consumers dedupe on it): at least once, never acknowledged and lost
        for attempt in (1, 2):
            try:
                self.ledger.finish(delivery_id, token=token, state=STATE_PUBLISHED, now=now)
                break
            except Exception as exc:
                if attempt == 2:
                    why = (
                        str(exc)
                        if isinstance(exc, DeliveryStoreError)
                        else f"unexpected {type(exc).__name__}"
                    )
                    self._quietly(
                        self.reporter.failure, f"delivery {delivery_id} published but not marked: {why}"
                    )
        try:  # logging never costs a delivery its answer
            self.log.info("delivery accepted", extra={"endpoint": endpoint.name, "deliveryId": delivery_id})
        except Exception:
            with contextlib.suppress(Exception):
                self.log.debug("reporting failed")
        return Reply(202, "accepted", "accepted", "", delivery_id)

    def _release(self, delivery_id: str, token: str) -> None:
        """Give the claim back; a failure here leaves it to the lease (never hides what was raised)."""
        try:
            self.ledger.release(delivery_id, token=token)
        except Exception as exc:
            self._quietly(self.reporter.failure, f"delivery {delivery_id} not released: {type(exc).__name__}")

    def _quietly(self, report: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Logging, auditing and metrics never cost a delivery its answer."""
        try:
            report(*args, **kwargs)
        except Exception:
            with contextlib.suppress(Exception):
                self.log.debug("reporting failed")

    # --- reporting -------------------------------------------------------------------------------

    def _reject(
        self,
        endpoint: EndpointAuth | None,
        reply: Reply,
        *,
        action: str = "delivery_rejected",
        detail: str | None = None,
        requested: str | None = None,
    ) -> Reply:
        if endpoint is not None:
            name = endpoint.name
        else:
            name = UNKNOWN_ENDPOINT
            if requested is not None:
                shown = requested if _NAME_RE.fullmatch(requested) else "(not a valid name)"
                detail = f"requested endpoint {shown}"
        self.reporter.report(name=name, action=action, reply=reply, detail=detail)
        return reply
