"""Cognigy's REST API: the client with typed errors (:mod:`.client`), the tutorial's
``create_cognigy_client`` (:mod:`.transport`), what Cognigy returns (:mod:`.webhook`) and the one
mapping of responses to typed errors (:mod:`.responses`).

Every name is importable from here too.
"""

from __future__ import annotations

from cognigy_webhooks.cognigy.client import WEBHOOKS_PATH, CognigyClient
from cognigy_webhooks.cognigy.responses import map_cognigy_error, parse_retry_after
from cognigy_webhooks.cognigy.transport import (
    API_KEY_HEADER,
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    Verify,
    create_cognigy_client,
)
from cognigy_webhooks.cognigy.webhook import CognigyRetryPolicy, CognigyWebhook

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "WEBHOOKS_PATH",
    "CognigyClient",
    "CognigyRetryPolicy",
    "CognigyWebhook",
    "Verify",
    "create_cognigy_client",
    "map_cognigy_error",
    "parse_retry_after",
]
