"""The one verifying TLS client context every outbound connection uses (probe, Cognigy client,
monitoring sync): TLS 1.2 or newer, hostname checked, certifi's public roots or a given CA bundle.
Built once per bundle: loading a bundle costs milliseconds."""

from __future__ import annotations

import functools
import ssl

import certifi


@functools.lru_cache(maxsize=16)
def client_ssl_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """Trusts ``ca_bundle`` (a PEM file) instead of certifi's public roots when given."""
    context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
    # Python 3.13 turns on X509_STRICT by default; HTTPS clients such as Cognigy's do not, and the
    # probe must judge a certificate as they will (3.11 and 3.12: no change).
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context
