"""The command line's client for the management API: httpx requests signed with SigV4.

:class:`SigV4` is an ``httpx.Auth`` that signs every request with botocore's own SigV4 code
(service ``execute-api``, the API's region): the body's SHA-256, ``host``, ``x-amz-date``,
``content-type`` and any ``x-amz-*`` header are signed (headers a proxy or the HTTP stack may change
are not). Before signing, the query is rewritten to SigV4's canonical encoding (each name and value
decoded as API Gateway decodes it, ``+`` a space, and percent-encoded with only ``A-Z a-z 0-9 - _ .
~`` left bare), so what is sent is what was signed, on AWS and on the local gateway alike.

:func:`management_client` builds an ``httpx.Client`` for a base URL with such credentials;
:func:`local_management_client` reads them from the state file that `cogwh up` writes
(``managementApiUrl``, ``region``, ``credentials``), and raises :class:`cogwh.ops.CliError` (exit 3)
when no `cogwh up` runs or its state file names no management API. For a deployed stack the
credentials are the caller's own (botocore's chain: environment, profile, SSO, instance role).
A secret key never appears in a repr, an exception or a log line here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from cogwh.sigv4 import canonical_query

__all__ = ["ApiCredentials", "SigV4", "local_management_client", "management_client"]

SERVICE = "execute-api"
#: Headers signed besides every x-amz-* one (the rest may be changed by proxies or the HTTP stack).
_SIGNED = ("host", "content-type")


@dataclass(frozen=True)
class ApiCredentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_state(cls, doc: Mapping[str, Any]) -> ApiCredentials:
        """From the state file's ``credentials`` (``accessKeyId``, ``secretAccessKey``); ValueError."""
        found = doc.get("credentials")
        if not isinstance(found, Mapping):
            raise ValueError("no credentials")
        key, secret = found.get("accessKeyId"), found.get("secretAccessKey")
        token = found.get("sessionToken")
        if not isinstance(key, str) or not isinstance(secret, str) or not key or not secret:
            raise ValueError("credentials need accessKeyId and secretAccessKey")
        return cls(key, secret, token if isinstance(token, str) and token else None)


class SigV4(httpx.Auth):
    """Sign each request for API Gateway (``AWS_IAM`` routes) with botocore's SigV4."""

    requires_request_body = True

    def __init__(self, credentials: ApiCredentials | Credentials, region: str) -> None:
        if isinstance(credentials, ApiCredentials):
            credentials = Credentials(
                credentials.access_key_id, credentials.secret_access_key, credentials.session_token
            )
        self.region = region
        self._signer = SigV4Auth(credentials, SERVICE, region)

    def __repr__(self) -> str:
        return f"SigV4(region={self.region!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        query = canonical_query(request.url.query.decode("ascii", "replace"))
        request.url = request.url.copy_with(query=query.encode("ascii") if query else None)
        headers = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in _SIGNED or name.lower().startswith("x-amz-")
        }
        headers.pop("authorization", None)
        signing = AWSRequest(
            method=request.method, url=str(request.url), data=request.content, headers=headers
        )
        self._signer.add_auth(signing)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = signing.headers.get(name)
            if value is not None:
                request.headers[name] = value
        yield request


def management_client(
    base_url: str,
    credentials: ApiCredentials | Credentials,
    region: str,
    *,
    verify: Any = True,
    timeout: float = 30.0,
) -> httpx.Client:
    """An ``httpx.Client`` on the management API's base URL (``<...>/v1``) signing every call."""
    return httpx.Client(
        base_url=base_url.rstrip("/"),
        auth=SigV4(credentials, region),
        verify=verify,
        timeout=timeout,
    )


def local_management_client(*, timeout: float = 30.0) -> httpx.Client:
    """The management API of the running `cogwh up` (its state file), signed with its credentials."""
    import ssl

    from cogwh import ops

    ops.running_local_stack()  # the one-line error (exit 3) when no `cogwh up` runs
    state = ops.up_state()
    doc = state.doc or {}
    url, region = doc.get("managementApiUrl"), doc.get("region")
    try:
        credentials = ApiCredentials.from_state(doc)
    except ValueError:
        credentials = None
    if not isinstance(url, str) or not isinstance(region, str) or credentials is None:
        raise ops.CliError(
            f"{state.path} names no management API (managementApiUrl, region, credentials): "
            "restart `cogwh up`",
            exit_code=3,
        )
    verify: Any = True
    ca_file = doc.get("caFile")
    if url.startswith("https://") and isinstance(ca_file, str):
        verify = ssl.create_default_context(cafile=ca_file)  # the gateway's certificate: the local CA
    return management_client(url, credentials, region, verify=verify, timeout=timeout)
