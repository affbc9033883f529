"""Webhook signatures: Cognigy's header and Standard Webhooks. Standard library only.

The receiver's cold start imports this module, so it must never pull in pydantic or httpx.

Two schemes:

* **Cognigy** (the tutorial's): header value ``<unix seconds>,<base64 of HMAC-SHA256(secret, raw body)>``.
  The timestamp is *not* signed, so it only bounds how old a captured body may be when the
  attacker also keeps its signature; pair it with a replay ledger keyed on what is signed, the body
  (its digest: the signature itself would change with the secret, so a retry across a rotation
  would pass as new).
* **Standard Webhooks** (https://www.standardwebhooks.com): headers ``webhook-id``,
  ``webhook-timestamp`` and ``webhook-signature`` (a space-separated list of ``v1,<base64>``),
  signed content ``f"{id}.{timestamp}.".encode() + body``, secrets ``whsec_<base64>``. The
  timestamp and the id are bound into the signature.

The verifiers never raise, whatever they are given: they return a :class:`Verification` that says
whether the delivery is authentic and, when not, why (:class:`Refusal`). Signatures are decoded
strictly (standard alphabet, correct padding, canonical form, 32 bytes) so that one signature has
exactly one spelling: a replay ledger keyed on ``Verification.signature`` cannot be dodged by
re-encoding it. Bytes are compared in constant time.
"""

from __future__ import annotations

from cognigy_webhooks.signing.common import (
    DEFAULT_TOLERANCE_SECONDS,
    MAX_HEADER_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    MAX_SECRETS,
    MAX_STANDARD_SIGNATURE_HEADER_LENGTH,
    STANDARD_ID_HEADER,
    STANDARD_SECRET_PREFIX,
    STANDARD_SIGNATURE_HEADER,
    STANDARD_TIMESTAMP_HEADER,
    Refusal,
    Verification,
)
from cognigy_webhooks.signing.standard import sign_standard_webhook, verify_standard_webhook
from cognigy_webhooks.signing.tutorial import (
    sign_webhook_payload,
    verify_cognigy_signature,
    verify_webhook_signature,
)

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "MAX_HEADER_LENGTH",
    "MAX_MESSAGE_ID_LENGTH",
    "MAX_SECRETS",
    "MAX_STANDARD_SIGNATURE_HEADER_LENGTH",
    "STANDARD_ID_HEADER",
    "STANDARD_SECRET_PREFIX",
    "STANDARD_SIGNATURE_HEADER",
    "STANDARD_TIMESTAMP_HEADER",
    "Refusal",
    "Verification",
    "sign_standard_webhook",
    "sign_webhook_payload",
    "verify_cognigy_signature",
    "verify_standard_webhook",
    "verify_webhook_signature",
]
