"""The local gateway's routes, read from the template as SAM reads them (cogwh/gateway.py serves them).

Every ``Api`` event of every function is one :class:`GatewayRoute`: method, path template, function,
API, the API's stage and binary media types, and the authorizer SAM gives the route
(:func:`route_authorizer`): the event's ``Auth.Authorizer`` if set (``NONE`` opens a route and is only
valid over a ``DefaultAuthorizer``, as SAM checks), else the API's ``Auth.DefaultAuthorizer``
(``Globals.Api`` merged; over a ``DefinitionBody`` the event's own authorizer counts only with
``OverrideApiAuth: true``). What the local gateway cannot check (a Lambda or Cognito authorizer,
``ApiKeyRequired``, an authorizer given by an intrinsic function) is a :class:`GatewayError` naming the
event, never a route served open; so are two APIs declaring the same method and path shape, which one
host cannot tell apart. :func:`local_credentials` is the key pair the local stack's AWS_IAM routes
accept, with the identity moto's STS gives it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cogwh.localstack.errors import LocalStackError
from cogwh.localstack.provision import ApiRoute
from cogwh.sigv4 import CallerIdentity, LocalCredentials

__all__ = [
    "AWS_IAM",
    "GatewayError",
    "GatewayRoute",
    "local_credentials",
    "route_authorizer",
    "routes_from_template",
    "routes_of",
]

AWS_IAM = "AWS_IAM"
_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class GatewayRoute:
    """One route: method (or ANY), path template (``{name}`` one segment, ``{proxy+}`` the rest),
    the function's logical id, the API's stage and binary media types, and its authorizer
    (``AWS_IAM`` or None: open)."""

    method: str
    path: str
    function: str
    api: str
    stage: str
    binary_media_types: tuple[str, ...] = ()
    authorizer: str | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _compile(self.path))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {key.replace("__plus", ""): unquote(value) for key, value in found.groupdict().items()}

    def is_binary(self, content_type: str | None) -> bool:
        media = (content_type or "").split(";")[0].strip().lower()
        return any(fnmatch.fnmatchcase(media, pattern.lower()) for pattern in self.binary_media_types)


def _compile(template: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = piece[1:-1]
            if name.endswith("+"):
                parts.append(f"(?P<{name[:-1]}__plus>.+)")
            else:
                parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


class GatewayError(LocalStackError):
    """The template asks for a route the local gateway cannot serve faithfully (named, with why)."""


def routes_of(stack: Any) -> list[GatewayRoute]:
    """The REST routes of a running LocalStack (the functions its template's conditions keep), with
    each API's stage, binary media types and each route's authorizer read from the template."""
    from cogwh.localstack.template import load_template_file

    return routes_from_template(load_template_file(Path(stack.template_path)), only=stack.api_routes)


def routes_from_template(
    template: Mapping[str, Any], *, only: Sequence[ApiRoute] | None = None
) -> list[GatewayRoute]:
    """The REST routes (``Api`` events) of every function of a template given as plain dicts (as
    :func:`cogwh.localstack.template.load_template_file` returns it); ``only`` keeps the routes the
    local stack created. ``~1`` stands for ``/`` in BinaryMediaTypes, as in SAM. Raises
    :class:`GatewayError` for what cannot be served faithfully (see the module docstring)."""
    from cogwh.localstack.template import apply_globals

    globals_section = template.get("Globals") or {}
    resources = apply_globals(template.get("Resources") or {}, globals_section)
    api_globals = globals_section.get("Api") or {}
    wanted = (
        None if only is None else {(r.function, r.method, r.path, r.api) for r in only if r.kind == "Api"}
    )
    routes: list[GatewayRoute] = []
    for function, event_name, props in _api_events(resources):
        named = props.get("RestApiId")
        api = (
            str(named["Ref"])
            if isinstance(named, dict) and "Ref" in named
            else str(named or "ServerlessRestApi")
        )
        method = str(props.get("Method", "any")).upper()
        path = str(props.get("Path", "/"))
        if wanted is not None and (function, method, path, api) not in wanted:
            continue
        where = f"Resources.{function}.Properties.Events.{event_name}"
        api_props = (resources.get(api) or {}).get("Properties") or (
            api_globals if api == "ServerlessRestApi" else {}
        )
        stage = api_props.get("StageName") if isinstance(api_props.get("StageName"), str) else "Prod"
        binary = api_props.get("BinaryMediaTypes") or []
        types = tuple(str(t).replace("~1", "/") for t in binary if isinstance(t, str))
        authorizer = route_authorizer(api_props, props.get("Auth") or {}, where=where, api=api)
        routes.append(GatewayRoute(method, path, function, api, str(stage), types, authorizer))
    _refuse_clashes(routes)
    return routes


def _api_events(resources: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for logical_id, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event_name, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if isinstance(event, Mapping) and event.get("Type") == "Api":
                yield logical_id, str(event_name), event.get("Properties") or {}


def route_authorizer(
    api_props: Mapping[str, Any], event_auth: Mapping[str, Any], *, where: str, api: str
) -> str | None:
    """The authorizer SAM gives a route: ``AWS_IAM`` or None (open). The event's ``Auth.Authorizer``
    wins over the API's ``Auth.DefaultAuthorizer`` (with a ``DefinitionBody`` only when the event sets
    ``OverrideApiAuth: true``); ``NONE`` is valid only over a default, as SAM checks."""
    api_auth = api_props.get("Auth") or {}
    if not isinstance(api_auth, Mapping) or not isinstance(event_auth, Mapping):
        raise GatewayError(f"{where}: Auth must be a mapping")
    default = _plain_name(
        api_auth.get("DefaultAuthorizer"), f"Resources.{api}.Properties.Auth.DefaultAuthorizer"
    )
    own = _plain_name(event_auth.get("Authorizer"), f"{where}.Properties.Auth.Authorizer")
    if (
        own is not None
        and api_props.get("DefinitionBody") is not None
        and event_auth.get("OverrideApiAuth") is not True
    ):
        own = None  # SAM: over a DefinitionBody the event's authorizer needs OverrideApiAuth
    if own == "NONE" and default is None:
        raise GatewayError(
            f"{where}: Authorizer NONE is only a valid value when a DefaultAuthorizer on the API is specified"
        )
    chosen = own if own is not None else default
    if event_auth.get("ApiKeyRequired") is True or (
        api_auth.get("ApiKeyRequired") is True and event_auth.get("ApiKeyRequired") is not False
    ):
        raise GatewayError(
            f"{where}: ApiKeyRequired is not checked by the local gateway; it would be served open"
        )
    if chosen is None or chosen == "NONE":
        return None
    if chosen == AWS_IAM:
        return AWS_IAM
    raise GatewayError(
        f"{where}: authorizer {chosen!r} (a Lambda or Cognito authorizer) is not checked by the local "
        "gateway; it would be served open"
    )


def _plain_name(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise GatewayError(
            f"{where}: the local gateway needs a plain name here (AWS_IAM, NONE or an authorizer)"
        )
    return value


def _refuse_clashes(routes: Sequence[GatewayRoute]) -> None:
    """Two APIs with a route of the same method (or ANY) and path shape cannot share one host."""
    for i, route in enumerate(routes):
        shape = re.sub(r"\{[^}]+\}", "{}", route.path)
        for other in routes[:i]:
            same_method = "ANY" in (route.method, other.method) or route.method == other.method
            if other.api != route.api and same_method and re.sub(r"\{[^}]+\}", "{}", other.path) == shape:
                raise GatewayError(
                    f"{route.method} {route.path} of {route.api} and {other.method} {other.path} of "
                    f"{other.api}: the local gateway serves every API on one host and cannot tell them apart"
                )


def local_credentials(stack: Any) -> LocalCredentials:
    """The key pair the local stack's own clients use (moto's fake one), with the identity moto's STS
    gives it: what the gateway accepts on an AWS_IAM route and what `cogwh up` writes down."""
    from cogwh.localstack.stack import FAKE_CREDENTIALS

    try:
        found = stack.client("sts").get_caller_identity()
        identity = CallerIdentity(
            str(found["Account"]), str(found["UserId"]), str(found["Arn"]), str(found["UserId"])
        )
    except Exception:  # moto answers this; should it not, the pseudo account's root stands in
        identity = CallerIdentity(_ACCOUNT_ID, _ACCOUNT_ID, f"arn:aws:iam::{_ACCOUNT_ID}:root", _ACCOUNT_ID)
    return LocalCredentials(
        FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        identity,
        session_token=FAKE_CREDENTIALS.get("AWS_SESSION_TOKEN"),
    )
