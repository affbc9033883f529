"""The watch's shapes (declarative, no I/O): an endpoint's :class:`WatchState` (what its record keeps
between watches, hence here with the record's other models), the :class:`HealthRules` (template
parameters), and the :class:`Decision` the rules return (the new state, its :class:`Transition`
events, at most one :class:`CognigyAction`).

Every model takes and gives camelCase (``consecutiveFailures``, ``currentUrl``, ...). A state or a
decision never holds a secret: URLs are the spec's public URLs, reasons are probe reason codes and
status codes, never a probe's free-text message.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AwareDatetime, ConfigDict, Field, field_validator, model_validator

from cognigy_webhooks.models.base import _Model

__all__ = [
    "CertificateFacts",
    "CognigyAction",
    "Decision",
    "DetailType",
    "EndpointUrls",
    "HealthRules",
    "HealthState",
    "Transition",
    "WatchState",
]

NonNegativeInt = Annotated[int, Field(ge=0)]


class HealthState(enum.StrEnum):
    """An endpoint's health as the watch sees it (``cogwh health --json`` shows it as ``state``)."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    DEACTIVATED = "deactivated"


class DetailType(enum.StrEnum):
    """The EventBridge ``detail-type`` of each transition (and the audit event's action)."""

    ENDPOINT_UNHEALTHY = "Endpoint Unhealthy"
    ENDPOINT_DEACTIVATED = "Endpoint Deactivated"
    ENDPOINT_RECOVERED = "Endpoint Recovered"
    CERTIFICATE_EXPIRING = "Certificate Expiring"
    ENDPOINT_FAILED_OVER = "Endpoint Failed Over"
    ENDPOINT_FAILED_BACK = "Endpoint Failed Back"
    #: Cognigy no longer holds the endpoint the record names (deleted outside the product), found when
    #: the watch went to change it; the next apply makes it again.
    DRIFT_DETECTED = "Drift Detected"

    @property
    def action(self) -> str:
        """The audit event's ``action`` for this transition (``endpoint_unhealthy``, ...)."""
        return self.value.lower().replace(" ", "_")


class _Frozen(_Model):
    model_config = ConfigDict(frozen=True)


class HealthRules(_Frozen):
    """The rule parameters (each one a template parameter).

    - ``unhealthyAfter`` (3): consecutive failed watches before ``Endpoint Unhealthy``; one lost probe
      is a blip, three at the default 15-minute rate are 30-45 minutes of a dead target.
    - ``deactivateAfterHours`` (24): the failure streak must span at least this long (first failed
      watch to the current one) before Cognigy is told ``active: false``. Hours, not minutes, as Svix
      does (a deploy or a maintenance window never deactivates anything); a day rather than Svix's
      five because here reactivation is automatic and what the issue complains of is Cognigy
      "delivering into a dead URL for a day".
    - ``recoverAfter`` (3): consecutive healthy watches before ``Endpoint Recovered`` (and the
      reactivation of a deactivated endpoint), and consecutive passes of the primary before a failed
      over endpoint fails back: the same hysteresis both ways, so a flapping target costs no Cognigy
      writes.
    - ``deactivateOnGone`` (True): a primary answering 410 Gone deactivates at once.
    - ``certificateThresholds`` (30, 14, 7): days left at which ``Certificate Expiring`` is sent,
      each once per certificate.
    """

    unhealthy_after: Annotated[int, Field(ge=1)] = 3
    deactivate_after_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    recover_after: Annotated[int, Field(ge=1)] = 3
    deactivate_on_gone: bool = True
    certificate_thresholds: tuple[int, ...] = (30, 14, 7)

    @field_validator("certificate_thresholds")
    @classmethod
    def _thresholds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(t < 0 for t in value):
            raise ValueError("certificate thresholds are days left: each must be >= 0")
        return tuple(sorted(set(value), reverse=True))

    @property
    def deactivate_after(self) -> timedelta:
        return timedelta(hours=self.deactivate_after_hours)


class EndpointUrls(_Frozen):
    """The endpoint's URLs as its spec declares them: ``primary`` first, then ``fallbacks`` in order."""

    primary: Annotated[str, Field(min_length=1)]
    fallbacks: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return (self.primary, *self.fallbacks)


class CertificateFacts(_Frozen):
    """What the watch knows of the certificate one URL shows: ``identity`` (a digest of issuer,
    subject and notAfter, when the probe reported them), ``notAfter``, ``daysLeft`` when last seen,
    and the thresholds already ``announced`` for THIS certificate (a renewed one starts afresh)."""

    identity: str | None = None
    not_after: AwareDatetime | None = None
    days_left: int | None = None
    announced: tuple[int, ...] = ()


class WatchState(_Frozen):
    """What an endpoint's record keeps between watches.

    ``consecutiveFailures`` / ``consecutiveSuccesses`` count watches of the endpoint as a whole (a
    success = some URL fit to serve); ``primarySuccesses`` counts the primary's own consecutive passes
    (for failing back); ``firstFailureAt`` is the first failed watch of the current streak (None when
    the last watch succeeded); ``currentUrl`` is the URL Cognigy delivers to (None = the primary);
    ``lastWatchAt`` is the ``now`` of the last watch applied (a watch at or before it is a retry and
    changes nothing); ``certificates`` is keyed by URL."""

    state: HealthState = HealthState.HEALTHY
    consecutive_failures: NonNegativeInt = 0
    consecutive_successes: NonNegativeInt = 0
    primary_successes: NonNegativeInt = 0
    first_failure_at: AwareDatetime | None = None
    current_url: str | None = None
    last_watch_at: AwareDatetime | None = None
    certificates: dict[str, CertificateFacts] = Field(default_factory=dict)


class Transition(_Frozen):
    """One transition: an audit event and an EventBridge event of ``detailType``. ``reason`` is a
    short code-based explanation (``"primary: connection_refused; fallback 1: server_error 503"``).
    Failover events carry ``fromUrl``/``toUrl``; certificate events ``url``, ``threshold`` and
    ``daysLeft``."""

    detail_type: DetailType
    reason: str
    from_state: HealthState
    to_state: HealthState
    url: str | None = None
    from_url: str | None = None
    to_url: str | None = None
    threshold: int | None = None
    days_left: int | None = None


class CognigyAction(_Frozen):
    """The one Cognigy write a decision needs: ``deactivate`` (``active: false``), ``reactivate``
    (``active: true``, and ``url`` when it must also move) or ``switch_url`` (to ``url``)."""

    kind: Literal["deactivate", "reactivate", "switch_url"]
    url: str | None = None

    @model_validator(mode="after")
    def _url_for_switch(self) -> CognigyAction:
        if self.kind == "switch_url" and not self.url:
            raise ValueError("switch_url needs the url to switch to")
        if self.kind == "deactivate" and self.url is not None:
            raise ValueError("deactivate takes no url")
        return self


class Decision(_Frozen):
    """The rules' verdict on one watch of one endpoint. ``action`` is None unless a transition needs
    Cognigy (then the watch makes exactly that one call); ``observed`` is False when the watch had no
    result for the primary or was a retry (``state`` is then the input state, untouched)."""

    state: WatchState
    transitions: tuple[Transition, ...] = ()
    action: CognigyAction | None = None
    observed: bool = True

    @model_validator(mode="after")
    def _action_needs_transition(self) -> Decision:
        if self.action is not None and not self.transitions:
            raise ValueError("a Cognigy action only accompanies a transition")
        return self

    @property
    def changed(self) -> bool:
        return bool(self.transitions)
