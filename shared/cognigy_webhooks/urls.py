"""THE check of a URL we are given (an endpoint's, Cognigy's base URL, the monitoring platform's, what
the simulator accepts): one function, one set of rules, one wording of each problem.

:func:`url_problem` returns the first problem as a phrase that reads after the field's name
(``"url: must use the https scheme"``), or None. It never raises and never echoes the value (a URL may
carry a token in its query). Standard library only.
"""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

__all__ = ["MAX_URL_LENGTH", "is_loopback_host", "url_problem"]

MAX_URL_LENGTH = 2048


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(
    value: object,
    *,
    plain_http: Literal["never", "loopback", "always"] = "never",
    query: bool = True,
    credentials_hint: str = "credentials belong in headers or secrets",
    max_length: int = MAX_URL_LENGTH,
) -> str | None:
    """What is wrong with ``value`` as an absolute https URL, or None.

    ``plain_http`` also accepts http: to a loopback host only (local servers), or anywhere (a
    monitoring platform inside a private network); ``query=False`` refuses a query string (a base
    URL); ``credentials_hint`` says where credentials go instead of the user-info part."""
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a bad port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    scheme = parts.scheme.lower()
    if plain_http == "never":
        if scheme != "https":
            return "must use the https scheme"
        if not parts.hostname:
            return "must name a host"
    else:
        if scheme not in ("https", "http") or not parts.hostname:
            return (
                "must be an absolute https URL"
                if plain_http == "loopback"
                else "must be an absolute http(s) URL"
            )
        if scheme == "http" and plain_http == "loopback" and not is_loopback_host(parts.hostname):
            return "must use https (plain http is allowed for loopback only)"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return f"must not carry user-info ({credentials_hint})"
    if parts.fragment or "#" in value:
        return "must not carry a fragment"
    if not query and parts.query:
        return "must not carry a query"
    if port == 0:
        return "must not use port 0"
    return None
