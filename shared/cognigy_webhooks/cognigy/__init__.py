"""Cognigy's REST API in its two dialects, each an adapter the one engine drives: Cognigy.AI's
webhook Endpoints (:mod:`.endpoints`, the real API) and the tutorial's webhooks (:mod:`.client`, with
the plumbing both share, :class:`CognigyHttp`), the tutorial's
``create_cognigy_client`` (:mod:`.transport`), what Cognigy returns (:mod:`.webhook`) and the one
mapping of responses to typed errors (:mod:`.responses`).

Every name is importable from here too.
"""

from __future__ import annotations

from cognigy_webhooks.cognigy.client import WEBHOOKS_PATH, CognigyClient, CognigyHttp
from cognigy_webhooks.cognigy.endpoints import (
    DEFAULT_API_PREFIX,
    DEFAULT_ENDPOINTS_BASE_URL,
    ENDPOINTS_PATH,
    CognigyEndpoint,
    CognigyEndpointsClient,
)
from cognigy_webhooks.cognigy.responses import map_cognigy_error, parse_retry_after
from cognigy_webhooks.cognigy.say import SayResult, say, say_body
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
    "DEFAULT_API_PREFIX",
    "DEFAULT_BASE_URL",
    "DEFAULT_ENDPOINTS_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ENDPOINTS_PATH",
    "WEBHOOKS_PATH",
    "CognigyClient",
    "CognigyEndpoint",
    "CognigyEndpointsClient",
    "CognigyHttp",
    "CognigyRetryPolicy",
    "CognigyWebhook",
    "SayResult",
    "Verify",
    "create_cognigy_client",
    "map_cognigy_error",
    "parse_retry_after",
    "say",
    "say_body",
]
