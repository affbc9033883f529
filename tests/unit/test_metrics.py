"""The metrics registry and the one Metrics (cognigy_webhooks.metric_names, .observability): every
metric emitted somewhere and everything emitted registered; counting only inside a handler wrapped by
``metrics.log_metrics`` (never a line on stdout elsewhere, not even past Powertools' 100 values);
dimensional metrics printed with the handler's flush and dropped with it; POWERTOOLS_METRICS_DISABLED
honoured on every path; the ``stack`` dimension from STACK_NAME."""

from __future__ import annotations

import ast
import asyncio
import contextvars
import importlib.util
import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.metric_properties import MetricUnit
from moto import mock_aws

from cognigy_webhooks.emf import CountsDocument
from cognigy_webhooks.metric_names import (
    METRICS,
    MetricName,
    is_registered,
    rejection_metric,
)
from cognigy_webhooks.observability import (
    count_cognigy_call,
    is_recording,
    metrics,
    record_metric,
)
from tests.support.emf import dimensions, documents, metric_names, total, unit_of, values

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    path
    for folder in ("functions", "shared")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if path.name != "metric_names.py"
]
EMITTING_CALLS = {"add_metric", "single_metric", "record_metric", "add_single_metric"}


@pytest.fixture(autouse=True)
def clean_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("STACK_NAME", raising=False)
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def handler(body: Callable[[], Any]) -> Callable[[dict[str, Any], Any], Any]:
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: Any) -> Any:
        return body()

    return lambda_handler


# --- the registry --------------------------------------------------------------------------------


def test_every_metric_has_a_unit_cloudwatch_knows_an_emitter_and_its_own_dimensions_only() -> None:
    units = {unit.value for unit in MetricUnit}
    assert set(METRICS) == set(MetricName)
    for name, spec in METRICS.items():
        assert spec.unit in units, name
        assert spec.emitter, name
        assert spec.doc, name
        assert not {"service", "stack"} & set(spec.dimensions), name
    assert len({str(n) for n in MetricName}) == len(MetricName)


def test_the_watch_metrics_are_registered_with_the_names_the_watch_emits() -> None:
    assert METRICS[MetricName("EndpointsWatched")].unit == "Count"
    assert METRICS[MetricName("EndpointsUnhealthy")].unit == "Count"
    assert METRICS[MetricName("EndpointsDeactivated")].unit == "Count"
    assert METRICS[MetricName("WatchTransitions")].dimensions == ("DetailType",)
    assert METRICS[MetricName("CertificateMinDaysLeft")].unit == "Count"
    assert METRICS[MetricName("ProbeLatency")].unit == "Milliseconds"
    assert METRICS[MetricName("ProbeResult")].dimensions == ("Reason",)
    assert METRICS[MetricName("Deliveries")].dimensions == ("Status",)


def test_the_rejection_family_is_registered_by_pattern() -> None:
    assert rejection_metric("signature_mismatch") == "RejectedSignatureMismatch"
    assert is_registered("RejectedSignatureMismatch")
    assert is_registered("ProbeLatency")
    for bad in ("Rejected", "rejectedX", "Nope", "ProbeLatencyX", ""):
        assert not is_registered(bad), bad
    for reason in ("", "Signature", "a b", "x-y"):
        with pytest.raises(ValueError, match="not a rejection reason"):
            rejection_metric(reason)


def _emitted_literals() -> dict[str, Path]:
    """Metric names passed as literals to an emitting call anywhere in functions/ and shared/ (the
    key ``""`` counts the emitting calls seen, so a scan that finds none fails)."""
    found: dict[str, Path] = {}
    calls = 0
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called not in EMITTING_CALLS:
                continue
            calls += 1
            args = [kw.value for kw in node.keywords if kw.arg == "name"] or node.args[:1]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found[arg.value] = path
    return found | ({"": Path(str(calls))} if calls else {})


def test_every_name_the_code_emits_is_registered() -> None:
    literals = _emitted_literals()
    assert literals, "the scan found no emitting call at all"
    unregistered = {
        name: str(path.relative_to(ROOT))
        for name, path in literals.items()
        if name and not is_registered(name)
    }
    assert unregistered == {}


def _summarize_names(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """What the summarize function emits, run for real (its names are made from the outcomes) over an
    empty map run's results in a moto bucket."""
    with mock_aws():
        monkeypatch.setenv("CONFIG_BUCKET", "summarize-metrics")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
        s3 = boto3.client("s3", region_name="eu-central-1")
        s3.create_bucket(
            Bucket="summarize-metrics", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        )
        manifest = {"ResultFiles": {"SUCCEEDED": [], "FAILED": [], "PENDING": []}}
        s3.put_object(Bucket="summarize-metrics", Key="m.json", Body=json.dumps(manifest).encode())
        return _run_summarize(
            capsys, {"resultWriterDetails": {"Bucket": "summarize-metrics", "Key": "m.json"}}
        )


def _run_summarize(capsys: pytest.CaptureFixture[str], event: dict[str, Any]) -> set[str]:
    spec = importlib.util.spec_from_file_location(
        "summarize_app_under_test", ROOT / "functions/summarize/app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(spec.name, None)
    capsys.readouterr()
    module.lambda_handler(event, _Context())
    return {name for doc in documents(capsys.readouterr().out) for name in metric_names(doc)}


class _Context:
    function_name = "summarize"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:summarize"
    aws_request_id = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("name", list(MetricName), ids=str)
def test_every_registry_metric_is_emitted_somewhere(
    name: MetricName, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if METRICS[name].emitter == "summarize":
        assert str(name) in _summarize_names(capsys, monkeypatch)
        return
    member = re.compile(rf"\bMetricName\.{name.name}\b")
    literal = f'"{name.value}"'
    where = [p for p in SOURCES if member.search(text := p.read_text(encoding="utf-8")) or literal in text]
    assert where, f"{name} is in the registry but nothing in functions/ or shared/ emits it"


# --- counting only inside a handler -------------------------------------------------------------


def test_outside_a_handler_nothing_is_kept_or_printed_even_past_100_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given library code counting far past Powertools' 100 values, with no handler running
    for _ in range(250):
        record_metric(MetricName.COGNIGY_CALLS)
        count_cognigy_call(429)
        count_cognigy_call(401)
        record_metric(MetricName.WATCH_TRANSITIONS, dimensions={"DetailType": "Endpoint Unhealthy"})
    # Then nothing was printed, and nothing waits to be
    assert capsys.readouterr().out == ""
    assert not is_recording()
    assert metrics.provider.metric_set == {}
    # and a handler afterwards prints only what it counted itself
    handler(lambda: record_metric(MetricName.PROBE_REQUESTED))({}, None)
    docs = documents(capsys.readouterr().out)
    assert [metric_names(d) for d in docs] == [["ProbeRequested"]]


def test_inside_a_handler_everything_is_counted_including_asyncio_tasks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def calls() -> None:
        async def one(status: int) -> None:
            count_cognigy_call(status)

        await asyncio.gather(*(one(s) for s in (200, 201, 429, 401, 403, 404)))

    def body() -> None:
        assert is_recording()
        asyncio.run(calls())
        count_cognigy_call(None)  # no answer at all: a call still

    handler(body)({}, None)
    docs = documents(capsys.readouterr().out)
    assert total(docs, "CognigyCalls") == 7
    assert total(docs, "CognigyThrottles") == 1
    assert total(docs, "CognigyAuthFailures") == 2
    assert not is_recording()


def test_a_thread_counts_only_when_it_runs_in_the_handlers_context(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body() -> None:
        plain = threading.Thread(target=record_metric, args=(MetricName.COGNIGY_CALLS,))
        plain.start()
        plain.join()
        context = contextvars.copy_context()
        carried = threading.Thread(target=context.run, args=(record_metric, MetricName.COGNIGY_THROTTLES))
        carried.start()
        carried.join()

    handler(body)({}, None)
    docs = documents(capsys.readouterr().out)
    assert (total(docs, "CognigyCalls"), total(docs, "CognigyThrottles")) == (0, 1)


def test_a_handler_that_raises_still_flushes_and_stops_recording(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> None:
        record_metric(MetricName.PROBE_REQUESTED)
        record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": "tls_error"})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        handler(body)({}, None)
    docs = documents(capsys.readouterr().out)
    assert total(docs, "ProbeRequested") == 1
    assert total(docs, "ProbeResult", Reason="tls_error") == 1
    assert not is_recording()
    record_metric(MetricName.PROBE_REQUESTED)
    assert metrics.provider.metric_set == {}


def test_the_decorator_with_arguments_records_too(capsys: pytest.CaptureFixture[str]) -> None:
    @metrics.log_metrics(raise_on_empty_metrics=False)
    def lambda_handler(event: dict[str, Any], context: Any) -> bool:
        record_metric(MetricName.REPLAYS, 2)
        return is_recording()

    assert lambda_handler({}, None) is True
    assert total(documents(capsys.readouterr().out), "Replays") == 2


def test_a_handler_that_counted_nothing_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    handler(lambda: None)({}, None)
    assert capsys.readouterr().out == ""


# --- dimensional metrics -----------------------------------------------------------------------------


def test_dimensional_metrics_are_printed_at_the_flush_one_document_per_dimension_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body() -> None:
        for reason in ("ok", "ok", "connection_refused"):
            record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": reason})
        record_metric(MetricName.PROBE_LATENCY, 12.5)
        metrics.add_single_metric(MetricName.DELIVERIES, dimensions={"Status": 202})
        assert capsys.readouterr().out == ""  # nothing before the flush

    handler(body)({}, None)
    docs = documents(capsys.readouterr().out)
    assert len(docs) == 4
    plain = [d for d in docs if "ProbeLatency" in metric_names(d)]
    assert [dimensions(d) for d in plain] == [{"service": "cognigy-webhooks"}]
    assert unit_of(plain[0], "ProbeLatency") == "Milliseconds"
    assert values(docs, "ProbeResult", Reason="ok") == [1.0, 1.0]
    assert values(docs, "ProbeResult", Reason="connection_refused") == [1.0]
    [status] = [d for d in docs if "Deliveries" in metric_names(d)]
    assert dimensions(status) == {"service": "cognigy-webhooks", "Status": "202"}
    assert all(metric_names(d) == ["ProbeResult"] for d in docs if "Reason" in dimensions(d))


def test_more_than_100_values_of_one_dimensional_metric_go_in_documents_of_at_most_100(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def body() -> None:
        for _ in range(230):
            record_metric(MetricName.WATCH_TRANSITIONS, dimensions={"DetailType": "Endpoint Recovered"})

    handler(body)({}, None)
    docs = documents(capsys.readouterr().out)
    assert [len(d["WatchTransitions"]) for d in docs] == [100, 100, 30]


def test_whoever_silences_the_flush_silences_the_dimensional_metrics_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # as the demo quiets the functions: a flush that only clears
    provider = metrics.provider
    monkeypatch.setattr(
        provider, "flush_metrics", lambda raise_on_empty_metrics=False: provider.clear_metrics()
    )

    def body() -> None:
        record_metric(MetricName.PROBE_REQUESTED)
        record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": "ok"})

    handler(body)({}, None)
    assert capsys.readouterr().out == ""
    monkeypatch.undo()
    handler(lambda: record_metric(MetricName.PROBE_PASSED))({}, None)
    docs = documents(capsys.readouterr().out)
    assert [metric_names(d) for d in docs] == [["ProbePassed"]]


def test_metrics_disabled_keeps_nothing_and_prints_nothing_on_any_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    def body() -> None:
        for _ in range(150):  # Powertools alone prints a set once a metric holds 100 values
            record_metric(MetricName.COGNIGY_CALLS)
            metrics.add_metric(name="ProbeRequested", unit="Count", value=1)
            record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": "ok"})

    handler(body)({}, None)
    assert capsys.readouterr().out == ""
    assert metrics.provider.metric_set == {}
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    handler(lambda: record_metric(MetricName.PROBE_FAILED))({}, None)
    assert [metric_names(d) for d in documents(capsys.readouterr().out)] == [["ProbeFailed"]]


def test_the_stack_dimension_comes_from_stack_name_at_each_flush(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def body() -> None:
        record_metric(MetricName.ENDPOINTS_WATCHED, 3)
        record_metric(MetricName.WATCH_TRANSITIONS, dimensions={"DetailType": "Endpoint Unhealthy"})

    monkeypatch.setenv("STACK_NAME", "cognigy-webhooks-prod")
    handler(body)({}, None)
    monkeypatch.setenv("STACK_NAME", "cognigy-webhooks-dev")
    handler(body)({}, None)
    docs = documents(capsys.readouterr().out)
    assert [dimensions(d).get("stack") for d in docs] == [
        "cognigy-webhooks-prod",
        "cognigy-webhooks-prod",
        "cognigy-webhooks-dev",
        "cognigy-webhooks-dev",
    ]
    assert total(docs, "EndpointsWatched", stack="cognigy-webhooks-dev") == 3
    assert total(docs, "WatchTransitions", stack="cognigy-webhooks-dev", DetailType="Endpoint Unhealthy") == 1
    # and the set Powertools prints by itself once a metric holds 100 values carries it too
    handler(lambda: [record_metric(MetricName.COGNIGY_CALLS) for _ in range(150)])({}, None)
    docs = documents(capsys.readouterr().out)
    assert [len(d["CognigyCalls"]) for d in docs] == [100, 50]
    assert [dimensions(d) for d in docs] == [
        {"service": "cognigy-webhooks", "stack": "cognigy-webhooks-dev"}
    ] * 2


# --- programming errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: record_metric("NotAMetric"), "not a metric of the registry"),
        (lambda: record_metric("RejectedSignatureMismatch"), "not a metric of the registry"),
        (lambda: record_metric(MetricName.PROBE_RESULT), r"takes the dimensions \['Reason'\]"),
        (
            lambda: record_metric(MetricName.PROBE_LATENCY, dimensions={"Reason": "ok"}),
            "takes the dimensions",
        ),
        (lambda: record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": ""}), "non-empty"),
        (lambda: record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": None}), "non-empty"),
        (lambda: record_metric(MetricName.PROBE_RESULT, dimensions={"Reason": "x" * 251}), "non-empty"),
        (lambda: record_metric(MetricName.PROBE_LATENCY, float("nan")), "finite number"),
        (lambda: record_metric(MetricName.PROBE_LATENCY, float("inf")), "finite number"),
        (lambda: record_metric(MetricName.PROBE_LATENCY, True), "finite number"),
        (lambda: record_metric(MetricName.PROBE_LATENCY, "12"), "finite number"),  # type: ignore[arg-type]
        (lambda: metrics.add_single_metric("Nope", dimensions={}), "not a metric of the registry"),
    ],
)
def test_a_name_value_or_dimension_outside_the_registry_is_a_value_error_in_or_out_of_a_handler(
    call: Callable[[], None], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=message):
        call()
    with pytest.raises(ValueError, match=message):
        handler(call)({}, None)
    assert capsys.readouterr().out == ""


def test_the_cognigy_hook_never_raises_into_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("metrics down")

    monkeypatch.setattr(metrics, "add_metric", broken)
    handler(lambda: count_cognigy_call(429))({}, None)


# --- documents counted in advance (the receiver's) ---------------------------------------------------


def test_a_counts_document_is_one_line_with_a_directive_per_dimension_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the receiver's document for an accepted delivery, made once
    document = CountsDocument(
        [MetricName.DELIVERIES_ACCEPTED, "RejectedSignatureMismatch"],
        dimensional=(MetricName.DELIVERIES, {"Status": 202}),
    )
    # When it is counted twice, in two flushes, the stack's name read at each
    out = ""
    for stack in ("cognigy-webhooks-prod", ""):
        if stack:
            monkeypatch.setenv("STACK_NAME", stack)
        else:
            monkeypatch.delenv("STACK_NAME")
        metrics.add_document(document)
        assert capsys.readouterr().out == ""  # nothing before the flush
        metrics.flush_metrics()
        out += capsys.readouterr().out
    # Then each flush printed one line, the same data points as Powertools' two documents would hold
    assert len(out.splitlines()) == 2
    first, second = documents(out)
    directives = first["_aws"]["CloudWatchMetrics"]
    assert [d["Dimensions"] for d in directives] == [[["service", "stack"]], [["service", "stack", "Status"]]]
    assert [[m["Name"] for m in d["Metrics"]] for d in directives] == [
        ["DeliveriesAccepted", "RejectedSignatureMismatch"],
        ["Deliveries"],
    ]
    assert {d["Namespace"] for d in directives} == {"CognigyWebhooks"}
    assert {unit_of(first, n) for n in metric_names(first)} == {"Count"}
    assert dimensions(first) == {
        "service": "cognigy-webhooks",
        "stack": "cognigy-webhooks-prod",
        "Status": "202",
    }
    assert (first["DeliveriesAccepted"], first["Deliveries"]) == ([1.0], [1.0])
    assert isinstance(first["_aws"]["Timestamp"], int)
    assert [d["Dimensions"] for d in second["_aws"]["CloudWatchMetrics"]] == [
        [["service"]],
        [["service", "Status"]],
    ]
    assert total([first, second], "Deliveries", Status="202") == 2


def test_a_counts_document_is_silenced_dropped_and_disabled_like_every_other_metric(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    document = CountsDocument(
        [MetricName.DELIVERIES_DUPLICATE], dimensional=(MetricName.DELIVERIES, {"Status": 200})
    )
    # a flush that only clears (the demo's quiet functions)
    provider = metrics.provider
    monkeypatch.setattr(
        provider, "flush_metrics", lambda raise_on_empty_metrics=False: provider.clear_metrics()
    )
    metrics.add_document(document)
    metrics.flush_metrics()
    monkeypatch.undo()
    metrics.flush_metrics()
    assert capsys.readouterr().out == ""
    # metrics disabled
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.add_document(document)
    metrics.flush_metrics()
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    metrics.flush_metrics()
    assert capsys.readouterr().out == ""
    # and printed with a handler's own set, at its flush
    handler(lambda: (record_metric(MetricName.PROBE_REQUESTED), metrics.add_document(document)))({}, None)
    assert sorted(n for d in documents(capsys.readouterr().out) for n in metric_names(d)) == [
        "Deliveries",
        "DeliveriesDuplicate",
        "ProbeRequested",
    ]


@pytest.mark.parametrize(
    ("names", "dimensional", "message"),
    [
        (["NotAMetric"], None, "not a metric of the registry"),
        (["Rejected"], None, "not a metric of the registry"),
        ([MetricName.DELIVERIES], None, "give it as dimensional"),
        ([], (MetricName.DELIVERIES_ACCEPTED, {}), "no dimensions of its own"),
        ([], (MetricName.DELIVERIES, {"Reason": "x"}), "takes the dimensions"),
        ([], (MetricName.DELIVERIES, {"Status": ""}), "non-empty"),
        ([MetricName.REPLAYS, "Replays"], None, "counted once per document"),
        ([], None, "at least one metric"),
    ],
)
def test_a_counts_document_outside_the_registry_is_a_value_error_when_made(
    names: list[str], dimensional: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CountsDocument(names, dimensional=dimensional)
