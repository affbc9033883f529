"""cogwh probe URL: probe one https URL as the probe task would (TLS 1.2+, certificate, timings, SSRF
guard) and print the report. Exit status 0 when it passed, 1 when it failed, 2 on bad usage."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from cogwh.commands import pem_file

if TYPE_CHECKING:
    from cognigy_webhooks.models import ProbeReport


def _positive_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of milliseconds") from None
    if not 1 <= value <= 300_000:
        raise argparse.ArgumentTypeError("must be between 1 and 300000 ms")
    return value


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="probe an https URL (TLS 1.2+, certificate, timings) as the probe task would",
        description=(
            "Probe one https URL: resolve it once behind the SSRF guard, connect to the checked address, "
            "require TLS 1.2 or 1.3, describe the certificate and time each phase. Sends no credentials "
            "and follows no redirect. Exit status: 0 passed, 1 failed, 2 bad usage."
        ),
        epilog="examples:\n  cogwh probe https://hooks.example.com/cognigy\n"
        "  cogwh probe https://localhost:18443/deliveries/bot-outputs --allow-private-networks "
        "--ca-bundle CA.pem --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="the https URL to probe")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--allow-private-networks",
        action="store_true",
        help="let loopback and private-use addresses through the SSRF guard (local testing only)",
    )
    p.add_argument(
        "--ca-bundle",
        metavar="FILE",
        type=pem_file,
        help="trust the CAs in this PEM file instead of the public roots",
    )
    p.add_argument(
        "--timeout-ms",
        metavar="N",
        type=_positive_ms,
        default=10_000,
        help="the endpoint's timeout: a slower answer fails as too_slow (default 10000)",
    )
    p.add_argument(
        "--cert-warning-days",
        metavar="N",
        type=_days,
        default=21,
        help="warn when the certificate expires within N days (default 21)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cognigy_webhooks.errors import InvalidSpec
    from cognigy_webhooks.net.probe import ProbePolicy, probe_url

    try:
        policy = ProbePolicy(
            allow_private_networks=args.allow_private_networks,
            ca_bundle=args.ca_bundle,
            timeout_ms=args.timeout_ms,
            cert_warning_days=args.cert_warning_days,
        )
        report = asyncio.run(probe_url(args.url, policy))
    except InvalidSpec as exc:
        print(f"cogwh probe: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.model_dump(mode="json", by_alias=True), indent=2))
    else:
        print(render(report))
    return 0 if report.passed else 1


def probe_hint(report: ProbeReport) -> str | None:
    """The flag that gets past a refusal a user can be stuck on, or None."""
    from cognigy_webhooks.models.probe import CertificateProblem, ProbeReason

    if report.reason is ProbeReason.BLOCKED_ADDRESS:
        return "a private or loopback address: add --allow-private-networks for a local target"
    if report.reason is ProbeReason.CERTIFICATE_INVALID and report.detail == CertificateProblem.UNTRUSTED:
        return "the certificate is not signed by a public root: --ca-bundle FILE trusts a private CA"
    return None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(report: ProbeReport) -> str:
    """The report as a short table for people."""
    verdict = "PASSED" if report.passed else "FAILED"
    reason = report.reason.value + (f": {report.detail}" if report.detail and not report.passed else "")
    rows: list[tuple[str, str]] = []
    if report.message:
        rows.append(("why", report.message))
    reach = "yes" if report.reachable else "no"
    if report.status_code is not None:
        reach += f" (HTTP {report.status_code})"
    rows.append(("reachable", reach))
    rows.append(("address", report.resolved_address or "-"))
    rows.append(("tls", " ".join(x for x in (report.tls_version, report.tls_cipher) if x) or "-"))
    if report.cert_subject is not None:
        rows.append(("cert subject", report.cert_subject or "(empty)"))
        rows.append(("cert issuer", report.cert_issuer or "(empty)"))
    if report.cert_not_after is not None:
        rows.append(
            (
                "cert expires",
                f"{report.cert_not_after:%Y-%m-%d %H:%M} UTC ({report.cert_days_left} days left)",
            )
        )
    t = report.timings_ms
    rows.append(
        (
            "timings (ms)",
            f"dns {_ms(t.dns)}  connect {_ms(t.connect)}  tls {_ms(t.tls)}  "
            f"first byte {_ms(t.first_byte)}  total {_ms(t.total)}",
        )
    )
    rows.extend(("warning", w) for w in report.warnings)
    hint = probe_hint(report)
    if hint is not None:
        rows.append(("hint", hint))
    width = max(len(k) for k, _ in rows)
    lines = [f"{report.url}  {verdict} ({reason})"]
    lines.extend(f"  {k.ljust(width)}  {v}" for k, v in rows)
    return "\n".join(lines)
