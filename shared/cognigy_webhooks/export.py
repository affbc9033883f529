"""Export: the webhook Endpoints a Cognigy.AI project already holds, as a desired set ``cogwh apply``
takes, so a user starts from what exists (issue 10, item 7).

:func:`export_project` lists every webhook Endpoint of the project once
(:meth:`~cognigy_webhooks.cognigy.CognigyEndpointsClient.iter_webhooks`, every page) and reads each
one (list items carry no ``settings`` and no ``active``), oldest first. Each becomes one
:class:`ExportedEndpoint`: ``name``; ``url`` (``settings.webhookUrl``); ``isActive`` (``active``,
when Cognigy said); ``cognigy: {flowId, localeId}`` when set (``""`` means none and is left out);
``basicAuth: {username, passwordArn: PASSWORD_ARN_PLACEHOLDER}`` when ``settings.basicAuthUser`` is
set. The desired set's top-level block is ``cognigy: {projectId}``.

Secrets stay references to fill in: the Basic auth password is never read (Cognigy's answers reduce
it to a digest in :class:`~cognigy_webhooks.cognigy.CognigyEndpoint`, which keeps the URLToken as a
``SecretStr`` this module never reveals), and a URL's user-info (where a password may hide) is left
out of the exported URL.

**Everything is exported, nothing raises for a bad endpoint.** Each exported spec is checked as
``cogwh apply`` will check it (:func:`~cognigy_webhooks.models.parse_endpoint`, the project block
spread in) and what it would refuse is listed in :attr:`ExportedEndpoint.problems` (``"url: must use
the https scheme"``): a plain-http URL (Cognigy accepts it, this product does not), a name outside
our name rule, a user name with ``:``, no ``settings.webhookUrl`` at all (written as
:data:`URL_PLACEHOLDER`), a name several endpoints share (Cognigy accepts duplicates; a desired set
declares each name once and the engine will not guess which to adopt). :meth:`Export.to_yaml` writes
them as ``# FIX`` comments above the endpoint. :attr:`ExportedEndpoint.notes` say what is worth
knowing but does not block (no Basic auth: this product's receiver accepts no unauthenticated
delivery). Problems and notes never echo a value (they come from the spec rules, which do not).

Errors: the listing's 404 means the project is unknown (or no Endpoints API is served under the
prefix): :class:`~cognigy_webhooks.errors.CognigyNotFound` naming the project. An endpoint deleted
between the listing and its read is left out (:attr:`Export.vanished`). Reads are safe to repeat: a
429 waits its ``Retry-After`` (when at most ``backoff.max_delay``), a 408/5xx/network failure backs
off (:class:`~cognigy_webhooks.backoff.Backoff`, injectable sleep), at most ``backoff.max_attempts``
tries; every other typed error is raised as it is. Nothing here writes to Cognigy.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import ValidationError

from cognigy_webhooks.backoff import Backoff
from cognigy_webhooks.cognigy.endpoints import CognigyEndpoint
from cognigy_webhooks.errors import (
    CognigyNotFound,
    CognigyThrottled,
    CognigyUnavailable,
    InvalidInput,
    InvalidSpec,
)
from cognigy_webhooks.models import CognigyTarget, parse_endpoint, with_cognigy_defaults

__all__ = [
    "DEFAULT_BACKOFF",
    "PASSWORD_ARN_PLACEHOLDER",
    "URL_PLACEHOLDER",
    "EndpointSource",
    "Export",
    "ExportedEndpoint",
    "ProjectEndpoints",
    "check_project_id",
    "export_project",
    "exported_endpoint",
    "printable",
]

PASSWORD_ARN_PLACEHOLDER = "<fill in: arn of the Basic auth password>"


def _holds_placeholder(spec: dict[str, Any]) -> bool:
    auth = spec.get("basicAuth")
    return isinstance(auth, dict) and auth.get("passwordArn") == PASSWORD_ARN_PLACEHOLDER


URL_PLACEHOLDER = "<fill in: the webhook URL>"
DEFAULT_BACKOFF = Backoff(max_attempts=4, base_delay=0.5, max_delay=30.0)

T = TypeVar("T")


class ProjectEndpoints(Protocol):
    """What an export needs of :class:`~cognigy_webhooks.cognigy.CognigyEndpointsClient` bound to
    one project."""

    def iter_webhooks(self) -> AsyncIterator[CognigyEndpoint]: ...

    async def get_webhook(self, webhook_id: str) -> CognigyEndpoint: ...


class EndpointSource(Protocol):
    """A Cognigy.AI endpoints client that can be bound to a project."""

    def scoped(self, project_id: str | None) -> ProjectEndpoints: ...


def printable(text: str) -> str:
    """``text`` safe for one line of a terminal or a YAML comment: every control, format or line
    separator character is written as ``\\uXXXX`` (a name from Cognigy may hold anything)."""
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def check_project_id(project_id: str) -> str:
    """The project id as a desired set's ``cognigy.projectId`` accepts it; :class:`InvalidInput`
    (field ``projectId``) otherwise, before anything is sent."""
    try:
        CognigyTarget.model_validate({"projectId": project_id})
    except ValidationError:
        raise InvalidInput(
            [
                {
                    "field": "projectId",
                    "message": "must be a Cognigy project id: 1 to 64 letters, digits, '_' or '-' "
                    "(Cognigy's own are 24 hex characters)",
                }
            ]
        ) from None
    return project_id


@dataclass(frozen=True)
class ExportedEndpoint:
    """One Cognigy endpoint as a desired-set entry (``spec``: camelCase, as ``cogwh apply`` reads it),
    with what ``cogwh apply`` would refuse in it (``problems``) and what is worth knowing (``notes``)."""

    id: str
    name: str
    spec: dict[str, Any]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def placeholders(self) -> int:
        """How many ``<fill in: ...>`` values the spec holds."""
        return sum(
            1
            for value in (self.spec.get("url"), (self.spec.get("basicAuth") or {}).get("passwordArn"))
            if value in (URL_PLACEHOLDER, PASSWORD_ARN_PLACEHOLDER)
        )


@dataclass(frozen=True)
class Export:
    """What a project holds, ready to write (:meth:`to_yaml`, :meth:`to_json`)."""

    project_id: str
    endpoints: tuple[ExportedEndpoint, ...]
    vanished: tuple[str, ...] = field(default=())  # ids listed, then deleted before their read

    @property
    def placeholders(self) -> int:
        return sum(e.placeholders for e in self.endpoints)

    @property
    def to_fix(self) -> tuple[ExportedEndpoint, ...]:
        return tuple(e for e in self.endpoints if e.problems)

    def desired_set(self) -> dict[str, Any]:
        """The desired set as data: ``{cognigy: {projectId}, endpoints: [...]}``."""
        return {
            "cognigy": {"projectId": self.project_id},
            "endpoints": [dict(e.spec) for e in self.endpoints],
        }

    def to_json(self) -> str:
        """The desired set as JSON (``cogwh apply`` reads JSON too; problems are not in it)."""
        return json.dumps(self.desired_set(), indent=2, ensure_ascii=False) + "\n"

    def to_yaml(self) -> str:
        """The desired set as YAML with comments: how to finish it, each endpoint's Cognigy id, and a
        ``# FIX`` line per problem. Parsing the text gives exactly :meth:`desired_set`."""
        count = len(self.endpoints)
        lines = [
            f"# Exported by `cogwh export` from Cognigy.AI project {self.project_id}: "
            f"{count} webhook endpoint{'' if count == 1 else 's'}.",
            '# Before `cogwh apply`: replace every "<fill in: ...>" (passwordArn: the ARN of a Secrets '
            "Manager secret",
            "# holding that endpoint's Basic auth password, or write password: instead and apply stores "
            "it), and fix",
            "# what each '# FIX' comment names. Secrets are never exported.",
        ]
        if self.vanished:
            lines.append(
                f"# Left out: {len(self.vanished)} endpoint(s) deleted while exporting "
                f"({', '.join(printable(i) for i in self.vanished)})."
            )
        lines.append(_dump({"cognigy": {"projectId": self.project_id}}).rstrip("\n"))
        lines.append("endpoints:" if self.endpoints else "endpoints: []")
        for endpoint in self.endpoints:
            lines.append(f"  # Cognigy endpoint {printable(endpoint.id)}")
            lines.extend(f"  # FIX {printable(problem)}" for problem in endpoint.problems)
            lines.extend(f"  # note: {printable(note)}" for note in endpoint.notes)
            block = _dump([endpoint.spec])
            lines.extend("  " + line for line in block.rstrip("\n").split("\n"))
        text = "\n".join(lines) + "\n"
        if yaml.safe_load(text) != self.desired_set():  # never write a file that reads back otherwise
            raise ValueError("the exported YAML does not read back as the desired set")
        return text


def _dump(data: Any) -> str:
    # Letters of any script are written as they are; anything a reader would not see (a control, a
    # bidirectional override, a line separator) makes the block escape its non-ASCII characters.
    plain = json.dumps(data, ensure_ascii=False).isprintable()
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=plain, default_flow_style=False, width=4096)


def _without_userinfo(url: str) -> tuple[str, bool]:
    """``url`` with any user-info taken out of its authority (it may hold a password)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, False
    if "@" not in parts.netloc:
        return url, False
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), True


def exported_endpoint(remote: CognigyEndpoint, project_id: str) -> ExportedEndpoint:
    """The desired-set entry for one endpoint Cognigy answered whole (a read, not a list item), with
    what ``cogwh apply`` would refuse in it. Shared names are :func:`export_project`'s to flag."""
    problems: list[str] = []
    notes: list[str] = []
    spec: dict[str, Any] = {"name": remote.name}
    if remote.url:
        url, had_userinfo = _without_userinfo(remote.url)
        spec["url"] = url
        if had_userinfo:
            problems.append(
                "url: carried user-info in Cognigy (left out here: it may hold a password); "
                "give the user and password as basicAuth"
            )
    else:
        spec["url"] = URL_PLACEHOLDER
        problems.append(
            "url: Cognigy holds no settings.webhookUrl for this endpoint: fill in where it delivers"
        )
    if remote.active is not None:
        spec["isActive"] = remote.active
    if remote.basic_auth_user:
        spec["basicAuth"] = {"username": remote.basic_auth_user, "passwordArn": PASSWORD_ARN_PLACEHOLDER}
    elif remote.password_digest is not None:
        problems.append(
            "basicAuth: Cognigy holds a Basic auth password without a user name: add basicAuth "
            "(username and passwordArn) or clear the password in Cognigy"
        )
    else:
        notes.append(
            "no Basic auth: deliveries come unauthenticated, which this product's receiver refuses "
            "(add basicAuth)"
        )
    target = {
        key: value for key, value in (("flowId", remote.flow_id), ("localeId", remote.locale_id)) if value
    }
    if target:
        spec["cognigy"] = target
    try:
        parse_endpoint(with_cognigy_defaults(spec, {"projectId": project_id}))
    except InvalidSpec as exc:
        for error in exc.errors:
            if error["field"] == "url" and spec["url"] == URL_PLACEHOLDER:
                continue  # said above, with what to do
            if error["field"] == "basicAuth.passwordArn" and _holds_placeholder(spec):
                continue  # a placeholder to fill in (counted in ``placeholders``); apply refuses it
            problems.append(f"{error['field']}: {error['message']}")
    return ExportedEndpoint(remote.id, remote.name, spec, tuple(problems), tuple(notes))


async def _again(call: Callable[[], Awaitable[T]], backoff: Backoff) -> T:
    """``call`` (a read), once more after a throttle or a transient failure, as ``backoff`` allows."""
    sleep = backoff.sleeper(asyncio.sleep)
    attempts = max(1, backoff.max_attempts)
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except CognigyThrottled as exc:
            wait = exc.retry_after if exc.retry_after is not None else backoff.delay(attempt)
            if attempt == attempts or wait > backoff.max_delay:
                raise
        except CognigyUnavailable:
            if attempt == attempts:
                raise
            wait = backoff.delay(attempt)
        await sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


async def _listing(api: ProjectEndpoints) -> list[CognigyEndpoint]:
    return [item async for item in api.iter_webhooks()]


def _shared_names(endpoints: Sequence[ExportedEndpoint]) -> list[ExportedEndpoint]:
    """Each endpoint with a problem added when other endpoints of the project share its name."""
    ids: dict[str, list[str]] = {}
    for endpoint in endpoints:
        ids.setdefault(endpoint.name, []).append(endpoint.id)
    counts = Counter(e.name for e in endpoints)
    out = []
    for endpoint in endpoints:
        if counts[endpoint.name] > 1:
            others = ", ".join(i for i in ids[endpoint.name] if i != endpoint.id)
            problem = (
                f"name: {counts[endpoint.name]} endpoints of this project hold this name (also {others}): a "
                "desired set declares each name once and `cogwh apply` will not guess which to adopt; "
                "rename or delete all but one in Cognigy"
            )
            endpoint = ExportedEndpoint(
                endpoint.id, endpoint.name, endpoint.spec, (problem, *endpoint.problems), endpoint.notes
            )
        out.append(endpoint)
    return out


async def export_project(
    api: EndpointSource,
    project_id: str,
    *,
    backoff: Backoff = DEFAULT_BACKOFF,
    on_read: Callable[[int, int], None] | None = None,
) -> Export:
    """Every webhook Endpoint of ``project_id`` as an :class:`Export` (see the module docstring).
    ``on_read(done, total)`` is told after each read (progress)."""
    check_project_id(project_id)
    scoped: ProjectEndpoints = api.scoped(project_id)
    try:
        listed = await _again(lambda: _listing(scoped), backoff)
    except CognigyNotFound as exc:
        error = CognigyNotFound(
            f"Cognigy has no project {project_id!r} (HTTP 404 listing its endpoints; or no Endpoints API "
            "under this base URL and prefix)",
            status_code=exc.status_code,
        )
        error.trace_id = exc.trace_id
        raise error from None
    unique = list({item.id: item for item in listed}.values())  # a page that shifted may repeat one
    endpoints: list[ExportedEndpoint] = []
    vanished: list[str] = []
    for done, item in enumerate(unique, start=1):
        try:
            remote = await _again(functools.partial(scoped.get_webhook, item.id), backoff)
        except CognigyNotFound:
            vanished.append(item.id)
        else:
            endpoints.append(exported_endpoint(remote, project_id))
        if on_read is not None:
            on_read(done, len(unique))
    return Export(project_id, tuple(_shared_names(endpoints)), tuple(vanished))
