"""The watch: health rules, failover and certificate warnings for registered endpoints.

:func:`decide` (:mod:`.rules`) is the pure decision engine: one endpoint's watch state, its URLs, one
watch's probe results, the rules and ``now`` -> a :class:`Decision` (new state, transitions, at most
one Cognigy action). Nothing here does I/O; the watch state machine's tasks wire it to the probe, the
records and Cognigy.
"""

from __future__ import annotations

from cognigy_webhooks.models.watch import (
    CertificateFacts,
    CognigyAction,
    Decision,
    DetailType,
    EndpointUrls,
    HealthRules,
    HealthState,
    Transition,
    WatchState,
)
from cognigy_webhooks.watch.rules import ProbeResults, decide, results_by_url

__all__ = [
    "CertificateFacts",
    "CognigyAction",
    "Decision",
    "DetailType",
    "EndpointUrls",
    "HealthRules",
    "HealthState",
    "ProbeResults",
    "Transition",
    "WatchState",
    "decide",
    "results_by_url",
]
