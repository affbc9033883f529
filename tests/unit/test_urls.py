"""The one URL check: each problem, in each mode, and never the value echoed."""

from __future__ import annotations

import pytest

from cognigy_webhooks.urls import is_loopback_host, url_problem

SECRET = "tok3n-in-the-query"


@pytest.mark.parametrize(
    ("url", "mode", "problem"),
    [
        ("https://hooks.example.com/x?a=1", "never", None),
        ("http://hooks.example.com/x", "never", "must use the https scheme"),
        ("https:///x", "never", "must name a host"),
        ("https://u:p@hooks.example.com/", "never", "must not carry user-info"),
        ("https://hooks.example.com/#frag", "never", "must not carry a fragment"),
        ("https://hooks.example.com:0/", "never", "must not use port 0"),
        ("https://hooks.example.com:99999/", "never", "is not a valid URL"),
        ("https://hooks.example.com/ x", "never", "must not contain whitespace"),
        ("http://127.0.0.1:8443", "loopback", None),
        ("http://localhost:8443", "loopback", None),
        ("http://hooks.example.com", "loopback", "must use https (plain http is allowed for loopback only)"),
        ("ftp://hooks.example.com", "loopback", "must be an absolute https URL"),
        ("http://monitoring.internal/ingest", "always", None),
        ("/relative/ingest", "always", "must be an absolute http(s) URL"),
    ],
)
def test_each_problem_is_named(url: str, mode: str, problem: str | None) -> None:
    found = url_problem(url, plain_http=mode)  # type: ignore[arg-type]
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


def test_a_query_can_be_refused_and_nothing_is_echoed() -> None:
    found = url_problem(f"https://api.example.com/?key={SECRET}", query=False)
    assert found == "must not carry a query"
    assert SECRET not in (url_problem(f"https://u:{SECRET}@api.example.com/") or "")
    assert url_problem(42) == "must be a string"
    assert url_problem("https://a.example/" + "x" * 3000) == "must be at most 2048 characters"


def test_loopback_hosts() -> None:
    assert is_loopback_host("localhost")
    assert is_loopback_host("127.0.0.2")
    assert is_loopback_host("::1")
    assert not is_loopback_host("10.0.0.1")
    assert not is_loopback_host("hooks.example.com")
