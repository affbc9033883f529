"""Receiving Cognigy's deliveries: one module per concern, the pipeline reading top to bottom.

- :mod:`~cognigy_webhooks.receiving.http`: the API Gateway event in, the reply out (400, 413);
- :mod:`~cognigy_webhooks.receiving.auth`: signatures and Basic auth, the replay key (401);
- :mod:`~cognigy_webhooks.receiving.payloads`: JSON/XML, media types, what the hand-off can carry
  (415, 400);
- :mod:`~cognigy_webhooks.receiving.outputs`: a Cognigy.AI Flow output's fields (``userId``,
  ``sessionId``, ``text``, ``data``, ``traceId``), read leniently for the event and the replay key;
- :mod:`~cognigy_webhooks.receiving.report`: bounded rejection logs and audit items, metrics;
- :mod:`~cognigy_webhooks.receiving.pipeline`: :class:`Receiver`, the steps in order (508, 202, 200,
  503) and the publish-or-release rule after a claim.

None of them imports pydantic or httpx (the receiver's cold start, ``bench/receive.py``).
"""

from __future__ import annotations

from cognigy_webhooks.receiving.auth import basic_credentials
from cognigy_webhooks.receiving.http import DeliveryRequest, Reply, parse_api_event
from cognigy_webhooks.receiving.outputs import output_fields, trace_id_of
from cognigy_webhooks.receiving.payloads import (
    MAX_JSON_DEPTH,
    PayloadRefused,
    XmlRefused,
    conversation_of,
    json_nesting_exceeds,
    media_type_matches,
    parse_payload,
    parse_xml,
    representation_problem,
)
from cognigy_webhooks.receiving.pipeline import Receiver, inflight_waits
from cognigy_webhooks.receiving.report import RejectionReporter

__all__ = [
    "MAX_JSON_DEPTH",
    "DeliveryRequest",
    "PayloadRefused",
    "Receiver",
    "RejectionReporter",
    "Reply",
    "XmlRefused",
    "basic_credentials",
    "conversation_of",
    "inflight_waits",
    "json_nesting_exceeds",
    "media_type_matches",
    "output_fields",
    "parse_api_event",
    "parse_payload",
    "parse_xml",
    "representation_problem",
    "trace_id_of",
]
