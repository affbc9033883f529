"""The one Logger's lines (cognigy_webhooks.log_format): ServiceFormatter writes, byte for byte, the
line Powertools' own formatter writes for the same record, whatever the record, the keys appended and
the formatter's options; ServiceLogger's direct INFO path writes the line the usual path writes (the
caller's location, every key in its place) and steps aside for anything that could see, change or
drop the record on the way."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from hypothesis import given, settings
from hypothesis import strategies as st

from cognigy_webhooks.log_format import ServiceFormatter, ServiceLogger
from cognigy_webhooks.observability import logger

pytestmark = pytest.mark.filterwarnings("ignore:POWERTOOLS_DEV environment variable is enabled")

KEYS: dict[str, Any] = {
    "cold_start": False,
    "function_name": "cognigy-webhooks-ReceiveFunction",
    "function_memory_size": 256,
    "function_arn": "arn:aws:lambda:eu-central-1:123456789012:function:cognigy-webhooks-ReceiveFunction",
    "function_request_id": "7f1c1c0e-0000-4000-8000-000000000002",
    "correlation_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
}


def pair(**options: Any) -> tuple[LambdaPowertoolsFormatter, ServiceFormatter]:
    """Powertools' formatter and ours, made alike and given the same keys (as the Logger makes and
    feeds its formatter)."""
    ours = ServiceFormatter(service="cognigy-webhooks", **options)
    theirs = LambdaPowertoolsFormatter(service="cognigy-webhooks", **options)
    for formatter in (theirs, ours):
        formatter.append_keys(sampling_rate=None, **KEYS)
    return theirs, ours


def record(msg: object = "delivery accepted", *args: object, **extra: Any) -> logging.LogRecord:
    exc_info = extra.pop("exc_info", None)
    level = extra.pop("level", logging.INFO)
    made = logging.getLogger("cognigy-webhooks").makeRecord(
        "cognigy-webhooks", level, __file__, 42, msg, args, exc_info, "_hand_on", extra or None
    )
    return made


def same(theirs: LambdaPowertoolsFormatter, ours: ServiceFormatter, rec: logging.LogRecord) -> str:
    expected = theirs.format(rec)
    assert ours.format(rec) == expected
    assert ours.format(rec) == expected  # and again, from what it keeps
    return expected


class Odd:
    def __str__(self) -> str:
        return "odd, as str() shows it"


def _raised() -> Any:
    try:
        raise ValueError("the failure")
    except ValueError:
        return sys.exc_info()


RECORDS = {
    "plain": lambda: record(),
    "extras": lambda: record(endpoint="orders", deliveryId="0" * 32, status=202, ok=True, none=None),
    "floats": lambda: record(a=1.5, b=-0.0, c=float("nan"), d=float("inf"), e=1e300),
    "nested": lambda: record(detail={"a": [1, {"b": None}], "c": "ü"}, items=[1, "two", None]),
    "not json": lambda: record(thing=Odd(), raw=b"bytes", when=object.__new__(Odd)),
    "text": lambda: record('Grüße \u2028 \x00 \\ " é 𝄞', name_like="ün\x7f"),
    "json message": lambda: record('{"a": 1}'),
    "json-ish message": lambda: record(" [1, 2]"),
    "number message": lambda: record("123"),
    "word message": lambda: record("true"),
    "not quite json": lambda: record("{not json"),
    "empty message": lambda: record(""),
    "dict message": lambda: record({"a": 1, "b": [2]}),
    "none message": lambda: record(None),
    "args": lambda: record("%s deliveries of %d", "three", 3),
    "exception": lambda: record("failed", exc_info=_raised()),
    "warning": lambda: record("delivery rejected", level=logging.WARNING, reason="x"),
    "extra named like a key": lambda: record(service="another", correlation_id="other"),
    "extra named like a dynamic key": lambda: record(stack_trace="s", xray_trace_id="x", exception="e"),
    "extra named like a reserved key": lambda: record(location="here", timestamp="now"),
}


@pytest.mark.parametrize("case", list(RECORDS))
def test_every_record_gets_powertools_own_line(case: str) -> None:
    theirs, ours = pair()
    same(theirs, ours, RECORDS[case]())


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"utc": True},
        {"use_rfc3339": True},
        {"datefmt": "%H:%M:%S,%F"},
        {"datefmt": "%Y %d", "use_datetime_directive": True},
        {"log_record_order": ["message", "level", "timestamp"]},
        {"serialize_stacktrace": False},
        {"json_default": repr},
    ],
    ids=str,
)
def test_every_option_of_the_formatter_gives_the_same_lines(options: dict[str, Any]) -> None:
    theirs, ours = pair(**options)
    for make in RECORDS.values():
        same(theirs, ours, make())


def test_keys_appended_removed_and_in_context_move_the_line_as_powertools_moves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    theirs, ours = pair()
    for step in (
        lambda f: f.append_keys(function_request_id="another-request"),  # per invocation
        lambda f: f.append_keys(location="%(module)s:%(lineno)d"),  # a reserved key's own template
        lambda f: f.append_keys(stack="prod", nothing=None, weird=Odd()),
        lambda f: f.remove_keys(["weird", "location"]),
        lambda f: f.append_keys(xray_trace_id=None),  # X-Ray trace id turned off
        lambda f: f.append_keys(message="appended"),
        lambda f: f.clear_state(),
    ):
        for formatter in (theirs, ours):
            step(formatter)
        same(theirs, ours, record(endpoint="orders"))
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8")
    theirs, ours = pair()
    same(theirs, ours, record(endpoint="orders"))
    ours.thread_safe_append_keys(tenant="acme", level="%(levelname)s!")
    try:
        same(theirs, ours, record(endpoint="orders"))  # context keys are the thread's: both see them
    finally:
        ours.thread_safe_clear_keys()


def test_indented_output_is_powertools_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    theirs, ours = pair()
    for make in RECORDS.values():
        same(theirs, ours, make())


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(
    message=st.text(max_size=12),
    extras=st.dictionaries(
        st.text(min_size=1, max_size=10).filter(
            lambda k: k not in ("message", "asctime") and k.isidentifier()
        ),
        _values,
        max_size=4,
    ),
    appended=st.dictionaries(st.sampled_from(["service", "tenant", "cold_start", "n"]), _values, max_size=3),
)
def test_any_message_extras_and_appended_keys_give_the_same_line(
    message: str, extras: dict[str, Any], appended: dict[str, Any]
) -> None:
    theirs, ours = pair()
    for formatter in (theirs, ours):
        formatter.append_keys(**appended)
    extras = {k: v for k, v in extras.items() if k not in logging.LogRecord.__dict__}
    rec = logging.LogRecord("cognigy-webhooks", logging.INFO, __file__, 7, message, (), None, "f")
    rec.__dict__.update({k: v for k, v in extras.items() if k not in rec.__dict__})
    same(theirs, ours, rec)


# --- the logger's direct path ---------------------------------------------------------------------


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the service logger's own handler writes, with nothing else on the way (no root handler:
    pytest's log capture steps aside)."""
    stream = io.StringIO()
    handler = logger.registered_handler
    monkeypatch.setattr(logging.root, "handlers", [])
    old = handler.setStream(stream)  # type: ignore[attr-defined]
    level = logger.log_level
    logger.setLevel("INFO")
    logger.append_keys(**KEYS)
    try:
        yield stream
    finally:
        handler.setStream(old)  # type: ignore[attr-defined]
        logger.setLevel(level)
        logger.remove_keys(list(KEYS))


class Counted(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.seen += 1
        return True


def accept(delivery_id: str) -> None:
    logger.info("delivery accepted", extra={"endpoint": "orders", "deliveryId": delivery_id})


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_plain_info_line_goes_straight_to_the_handler_and_reads_as_the_usual_path_writes_it(
    written: io.StringIO,
) -> None:
    assert isinstance(logger, ServiceLogger)
    # Given a counting filter that only the usual path passes through (it is on the logger itself)
    counting = Counted()
    accept("d1")  # the direct path: nothing counted, the line written
    assert counting.seen == 0
    logger.addFilter(counting)  # now the usual path: logging's record, handled and formatted
    try:
        accept("d2")
    finally:
        logger.removeFilter(counting)
    assert counting.seen == 1
    direct, usual = lines(written)
    # Then the two lines are the same keys in the same order, the caller's location in both
    assert list(direct) == list(usual)
    for key in ("timestamp", "deliveryId"):
        direct.pop(key), usual.pop(key)
    assert direct == usual
    assert direct["location"].startswith("accept:")
    assert (direct["level"], direct["message"], direct["endpoint"]) == ("INFO", "delivery accepted", "orders")
    assert direct["correlation_id"] == KEYS["correlation_id"]


def test_the_direct_path_steps_aside_for_whatever_could_see_change_or_drop_the_record(
    written: io.StringIO,
) -> None:
    # a second handler on the logger sees the record, as logging gives it
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        accept("d3")
    finally:
        logger.removeHandler(keep)
    assert [r.deliveryId for r in seen] == ["d3"]  # type: ignore[attr-defined]
    # a root handler that does not drop the service's records sees it too
    logging.root.handlers = [keep]
    try:
        accept("d4")
    finally:
        logging.root.handlers = []
    assert [r.deliveryId for r in seen] == ["d3", "d4"]  # type: ignore[attr-defined]
    # above INFO nothing is written at all
    logger.setLevel("WARNING")
    accept("d5")
    logger.setLevel("INFO")
    # an extra key that would overwrite the record's own is refused as logging refuses it
    with pytest.raises(KeyError, match="Attempt to overwrite"):
        logger.info("delivery accepted", extra={"name": "x"})
    # a message that is JSON text is decoded, as Powertools decodes it
    logger.info('{"structured": true}')
    got = lines(written)
    assert [line.get("deliveryId") for line in got[:-1]] == ["d3", "d4"]
    assert got[-1]["message"] == {"structured": True}


def test_a_line_that_cannot_be_written_is_reported_as_logging_reports_it(
    written: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[logging.LogRecord] = []
    handler = logger.registered_handler
    monkeypatch.setattr(handler, "handleError", reported.append)
    monkeypatch.setattr(written, "write", lambda text: (_ for _ in ()).throw(OSError("disk full")))
    accept("d6")  # never raises into the caller
    assert [r.deliveryId for r in reported] == ["d6"]  # type: ignore[attr-defined]


# --- the handler's decorator ------------------------------------------------------------------------


class Context:
    function_name = "cognigy-webhooks-ReceiveFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = (
        "arn:aws:lambda:eu-central-1:123456789012:function:cognigy-webhooks-ReceiveFunction"
    )

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def test_the_decorator_adds_powertools_keys_and_api_gateways_request_id_as_correlation_id(
    written: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cognigy_webhooks.observability import api_gateway_request_id, inject_lambda_context

    @inject_lambda_context(correlation_id=api_gateway_request_id)
    def handler(event: dict[str, Any], context: Any) -> str:
        accept("d7")
        return "answered"

    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    secret_header = {"Authorization": "Basic c2VjcmV0LXBhc3N3b3Jk"}
    assert (
        handler({"requestContext": {"requestId": "req-1"}, "headers": secret_header}, Context("a-1"))
        == "answered"
    )
    handler({"requestContext": {"requestId": 7}}, Context("a-2"))  # not text: no correlation id
    handler({}, Context("a-3"))
    first, second, third = lines(written)
    assert first["cold_start"] is True
    assert second["cold_start"] is third["cold_start"] is False
    assert (first["correlation_id"], first["function_request_id"]) == ("req-1", "a-1")
    assert "correlation_id" not in second
    assert "correlation_id" not in third
    assert third["function_request_id"] == "a-3"
    assert first["function_arn"] == Context.invoked_function_arn
    assert first["function_memory_size"] == 256
    assert "c2VjcmV0" not in written.getvalue()  # the event is never logged


def test_with_provisioned_concurrency_no_invocation_is_a_cold_start(
    written: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cognigy_webhooks.observability import inject_lambda_context

    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")

    @inject_lambda_context()
    def handler(event: dict[str, Any], context: Any) -> None:
        accept("d8")

    handler({}, Context("p-1"))
    [line] = lines(written)
    assert line["cold_start"] is False
