"""The one Logger's lines: Powertools' JSON lines, the same bytes for less CPU.

:class:`ServiceFormatter` is Powertools' ``LambdaPowertoolsFormatter`` with ``format`` done without
its per-line work that gives the same answer every time. The contract: for every record, every
configuration and every key appended (``append_keys``, the thread-safe context keys, a record's
``extra``), the line is byte for byte the one Powertools writes (``tests/unit/test_log_format.py``
holds the two side by side). What it does not redo per line:

- the keys appended to every line (``service``, the Lambda context, the correlation id...) are kept
  as JSON text while they stay the same, when they are laid out as Powertools lays them out by default
  (``level``, ``location``, ``message``, ``timestamp`` first, no key it fills per record appended);
  the line is then that text with the record's own four keys and its extra keys put around it, each
  ``"key":value`` written by the same encoder (compact, ``default=str``, not ASCII-escaped);
- a message that cannot start a JSON document (its first character after JSON's whitespace is none
  of ``{["-0123456789tfnNI``) is not handed to ``json.loads`` to fail (Powertools decodes a message
  that is JSON text; this one does, exactly then);
- the timestamp of the default format (no ``datefmt``, no RFC 3339) is formatted once per second,
  and its milliseconds put in where Powertools puts its ``%F``;
- the serializer is one encoder made once (``json.dumps`` with options makes one per call).

A record with exception information, a formatter given its own serializer or deserializer, or
indented output (``POWERTOOLS_DEV``) goes through Powertools' own code.

:class:`ServiceLogger` is Powertools' Logger whose ``info`` writes a plain line (no arguments, no
exception, no stack, no buffer) straight to the service's handler when that handler is the only one
the record would reach and nothing on the way could drop, change or see it (one ``StreamHandler``
formatted by :class:`ServiceFormatter`, no filter, the root's handlers all dropping the service's
records as Powertools' ``SuppressFilter`` makes them): the line :class:`ServiceFormatter` writes for
that record (the caller's location, the time of the call, the extra keys), written and flushed under
the handler's lock as ``StreamHandler`` does. Anything else (arguments, another handler, a filter, a
buffer, an extra key named like a record attribute, a running asyncio task) takes the usual path.

Standard library and Powertools only (the receiver's cold start: it is imported with the Logger).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import formatter as _powertools_formatter
from aws_lambda_powertools.logging.filters import SuppressFilter
from aws_lambda_powertools.logging.formatter import RESERVED_LOG_ATTRS, LambdaPowertoolsFormatter
from aws_lambda_powertools.shared.constants import XRAY_TRACE_ID_ENV

__all__ = ["ServiceFormatter", "ServiceLogger"]

_RESERVED = frozenset(RESERVED_LOG_ATTRS)
#: Where Powertools keeps the thread-safe context keys (read through its method when it moves).
_CONTEXT: Any = getattr(_powertools_formatter, "THREAD_LOCAL_KEYS", None)
#: The characters a JSON text may start with, as ``json.loads`` reads it (NaN, Infinity included).
_JSON_HEADS = frozenset('{["-0123456789tfnNI')
_JSON_WHITESPACE = " \t\n\r"
_LEVEL, _LOCATION, _ASCTIME = "%(levelname)s", "%(funcName)s:%(lineno)d", "%(asctime)s"
#: Powertools' first four keys, as it lays them out by default (the message filled per record).
_DEFAULT_HEAD = (("level", _LEVEL), ("location", _LOCATION), ("message", None), ("timestamp", _ASCTIME))
#: Keys Powertools fills or replaces per record, whatever was appended under their name.
_DYNAMIC = frozenset(
    {"message", "stack_trace", "xray_trace_id", "exception", "exception_name", "exception_notes"}
)
_CONSTANT_TYPES = frozenset({str, int, float, bool, type(None)})
#: Values whose text is kept by value (not floats: 0.0 == -0.0, and NaN equals nothing).
_KEPT_TYPES = frozenset({str, int, bool, type(None)})
_MAX_PAIRS = 256
#: A str as the encoder writes it (not ASCII-escaped: Powertools' ``ensure_ascii=False``).
_encode_text: Callable[[str], str] = json.encoder.encode_basestring


class ServiceFormatter(LambdaPowertoolsFormatter):
    """Powertools' formatter, the same lines (see the module docstring)."""

    def __init__(
        self,
        json_serializer: Callable[..., str] | None = None,
        json_deserializer: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(json_serializer=json_serializer, json_deserializer=json_deserializer, **kwargs)
        self._own_code = json_serializer is None and json_deserializer is None
        encoder = json.JSONEncoder(
            default=self.json_default, separators=(",", ":"), indent=self.json_indent, ensure_ascii=False
        )
        self._encode = encoder.encode
        if json_serializer is None:
            self.json_serializer = self._encode
        # compact lines can be put together from their keys' JSON: one ``"key":value`` per key
        self.composes = self._own_code and self.json_indent is None
        self._held: tuple[tuple[tuple[str, Any], ...], str] | None = None
        self._pairs: dict[tuple[str, type, Any], str] = {}  # "key":value texts of appended keys
        self._default_time = not self.use_rfc3339_iso8601 and not self.datefmt
        prefix, _, suffix = self.default_time_format.partition(self.custom_ms_time_directive)
        self._time_parts = (prefix, suffix)
        self._second: tuple[int, str, str] = (-1, "", "")

    # --- the parts of a line ---------------------------------------------------------------------

    def time_text(self, created: float, msecs: float) -> str:
        """``asctime`` of a record created at ``created`` (``msecs``: its milliseconds)."""
        second = int(created)
        held = self._second
        if held[0] != second:
            stamp = self.converter(created)
            prefix, suffix = self._time_parts
            held = (second, time.strftime(prefix, stamp), time.strftime(suffix, stamp))
            self._second = held
        return f"{held[1]}{'%03d' % msecs}{held[2]}"  # noqa: UP031 (Powertools' own format)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if not self._default_time or datefmt is not None:
            return str(super().formatTime(record, datefmt))
        return self.time_text(record.created, record.msecs)

    def _message(self, record: logging.LogRecord) -> Any:
        message = record.msg
        if isinstance(message, dict):
            return message
        if record.args:
            return record.getMessage()
        if isinstance(message, str) and message.lstrip(_JSON_WHITESPACE)[:1] not in _JSON_HEADS:
            return message  # json.loads would fail on it: Powertools then keeps it as it is
        return self._extract_log_message(log_record=record)

    def _value(self, value: Any) -> str:
        """``value`` as the encoder writes it, without making an encoder for a plain value."""
        kind = type(value)
        if kind is str:
            return _encode_text(value)
        if kind is bool:
            return "true" if value else "false"
        if kind is int:
            return int.__repr__(value)
        if value is None:
            return "null"
        return str(self._encode(value))

    def _static(self) -> str | None:
        """The JSON text of the keys after the record's own four (``,"service":"..."...``, None
        values left out), kept while they stay the same; None when the keys are not laid out as
        Powertools lays them out by default (then each line is made in full)."""
        items = tuple(self.log_format.items())
        held = self._held
        if held is not None and held[0] == items:
            return held[1]
        if items[:4] != _DEFAULT_HEAD:
            return None
        pairs = self._pairs
        if len(pairs) > _MAX_PAIRS:  # request ids come and go: keep the lasting ones' text only a while
            pairs.clear()
        parts: list[str] = []
        for key, value in items[4:]:
            kind = type(value)
            part = pairs.get((key, kind, value)) if kind in _KEPT_TYPES else None
            if part is None:
                if key in _DYNAMIC or (value and key in _RESERVED):
                    return None  # filled or replaced per record
                if kind not in _CONSTANT_TYPES:
                    return None  # a value that may change in place: encoded per line
                part = "" if value is None else f",{_encode_text(key)}:{self._value(value)}"
                if kind in _KEPT_TYPES:
                    pairs[key, kind, value] = part
            parts.append(part)
        static = "".join(parts)
        self._held = (items, static)
        return static

    def compose(
        self, levelname: str, location: str, message: Any, asctime: str, extras: Iterable[tuple[str, Any]]
    ) -> str | None:
        """The line of a record with these parts (``extras``: its keys that are not a record's own, in
        order), put together from the held keys; None when it cannot be (keys not laid out by
        default, context keys, an extra named like a key, a message that is None)."""
        static = self._static()
        if (
            static is None
            or message is None
            or (_CONTEXT.get() if _CONTEXT is not None else self._context_keys())
        ):
            return None
        log_format = self.log_format
        parts: list[str] = []
        for key, value in extras:
            if key in log_format or key in _DYNAMIC:
                return None
            if value is not None:
                text = _encode_text(value) if type(value) is str else self._value(value)
                parts.append(f",{_encode_text(key)}:{text}")
        trace = os.environ.get(XRAY_TRACE_ID_ENV)
        xray = f',"xray_trace_id":{_encode_text(trace.split(";")[0].replace("Root=", ""))}' if trace else ""
        said = _encode_text(message) if type(message) is str else self._value(message)
        return (
            f'{{"level":{_encode_text(levelname)},"location":{_encode_text(location)},'
            f'"message":{said},"timestamp":{_encode_text(asctime)}{static}{"".join(parts)}{xray}}}'
        )

    def _context_keys(self) -> dict[str, Any]:
        """The thread-safe context keys (Powertools' ``thread_safe_get_current_keys``)."""
        return _CONTEXT.get() if _CONTEXT is not None else self.thread_safe_get_current_keys()

    # --- a record's line -------------------------------------------------------------------------

    def format(self, record: logging.LogRecord) -> str:
        if not self._own_code or record.exc_info:
            return str(super().format(record))
        asctime = self.formatTime(record)
        if self.composes:
            line = self.compose(
                record.levelname,
                f"{record.funcName}:{record.lineno:d}",
                self._message(record),
                asctime,
                ((k, v) for k, v in record.__dict__.items() if k not in _RESERVED),
            )
            if line is not None:
                return line
        out: dict[str, Any] = {}
        self._fill(out, self.log_format, record, asctime)
        context = self.thread_safe_get_current_keys()
        if context:
            self._fill(out, context, record, asctime)
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                out[key] = value
        out["message"] = self._message(record)
        # no exception: Powertools' exception fields and stack trace are None (dropped below), and
        # its X-Ray trace id replaces any of the same name
        if self.serialize_stacktrace:
            out["stack_trace"] = None
        trace = (
            os.environ.get(XRAY_TRACE_ID_ENV)
            if self.log_format.get("xray_trace_id", "") is not None
            else None
        )
        out["xray_trace_id"] = trace.split(";")[0].replace("Root=", "") if trace else None
        return str(self.serialize(log={k: v for k, v in out.items() if v is not None}))

    def _fill(
        self, out: dict[str, Any], keys: dict[str, Any], record: logging.LogRecord, asctime: str
    ) -> None:
        mapping: dict[str, Any] | None = None
        for key, value in keys.items():
            if not value or key not in _RESERVED:
                out[key] = value
            elif value == _LEVEL:
                out[key] = record.levelname
            elif value == _LOCATION:
                out[key] = f"{record.funcName}:{record.lineno:d}"
            elif value == _ASCTIME:
                out[key] = asctime
            elif isinstance(value, str):
                if mapping is None:
                    mapping = {**record.__dict__, "asctime": asctime}
                out[key] = value % mapping
            else:
                raise ValueError(
                    "Logging keys that override reserved log attributes need to be type 'str', "
                    f"instead got '{type(value).__name__}'",
                )


# --- the logger ------------------------------------------------------------------------------------

_LOGGING_SOURCE = os.path.normcase(logging.__file__)
_NORMCASE = os.path.normcase("A") != "A"  # only where file names are compared without case
#: Names an extra key may not take on the direct path: a record's own attributes (``logging`` refuses
#: or Powertools drops them) and what Python >= 3.12 adds to every record.
_RECORD_NAMES = _RESERVED | {"message", "asctime", "taskName"}
#: Since Python 3.13 a record's time is read in nanoseconds.
_NANOSECOND_RECORDS = sys.version_info >= (3, 13)
#: Since Python 3.12 a record names the asyncio task it was made in.
_TASK_NAMES = hasattr(logging, "logAsyncioTasks")


def _internal(frame: Any) -> bool:
    """A frame of the logging package (or of the import machinery), as ``logging`` skips them."""
    filename = frame.f_code.co_filename
    if _NORMCASE:
        filename = os.path.normcase(filename)
    return filename == _LOGGING_SOURCE or ("_bootstrap" in filename and "importlib" in filename)


def _suppresses(handler: logging.Handler, name: str) -> bool:
    """Whether ``handler`` drops records of logger ``name`` (Powertools' filter on the root's handlers,
    put there so that the service's records are not written twice)."""
    return any(isinstance(f, SuppressFilter) and f.logger in name for f in handler.filters)


def _in_asyncio_task() -> bool:
    """Whether a record made here would name an asyncio task (``taskName``, Python >= 3.12)."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is None or not getattr(logging, "logAsyncioTasks", False):
        return False
    try:
        return asyncio.current_task() is not None
    except RuntimeError:  # no running event loop
        return False


class ServiceLogger(Logger):
    """Powertools' Logger with a direct path for a plain INFO line (see the module docstring)."""

    def info(
        self,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 2,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        if not (args or exc_info or stack_info or self._buffer_config) and type(msg) is str:
            std = self._logger
            if not std.isEnabledFor(logging.INFO):
                return None
            fields: Mapping[str, object] = {**(extra or {}), **kwargs} if kwargs else (extra or {})
            if self._direct(msg, fields, stacklevel):
                return None
        return super().info(
            msg,
            *args,
            exc_info=exc_info,
            stack_info=stack_info,
            stacklevel=stacklevel + 1,
            extra=extra,
            **kwargs,
        )

    def _direct(self, msg: str, fields: Mapping[str, object], stacklevel: int) -> bool:
        """Write the line of an INFO record of ``msg`` and ``fields`` to the one handler it reaches;
        False (nothing written) when it must take the usual path."""
        handler = self._only_handler()
        if (
            handler is None
            or not _RECORD_NAMES.isdisjoint(fields)
            or msg.lstrip(_JSON_WHITESPACE)[:1] in _JSON_HEADS  # a message Powertools decodes as JSON
            or (_TASK_NAMES and _in_asyncio_task())
        ):
            return False
        formatter: ServiceFormatter = handler.formatter  # type: ignore[assignment]
        frame = sys._getframe(1)  # ServiceLogger.info, where Powertools' Logger.info would be
        for _ in range(stacklevel - 1):  # as logging finds the caller: its own frames do not count
            back = frame.f_back
            while back is not None and _internal(back):
                back = back.f_back
            if back is None:
                break
            frame = back
        if _NANOSECOND_RECORDS:  # created and msecs as logging.LogRecord reads them
            ns = time.time_ns()
            created, msecs = ns / 1e9, (ns % 1_000_000_000) // 1_000_000 + 0.0
        else:
            created = time.time()
            msecs = int((created - int(created)) * 1000) + 0.0
        try:
            line = formatter.compose(
                "INFO",
                f"{frame.f_code.co_name}:{frame.f_lineno:d}",
                msg,
                formatter.time_text(created, msecs),
                fields.items(),
            )
        except Exception:  # a key or value the line cannot hold: the usual path reports it its way
            return False
        if line is None:
            return False
        lock = handler.lock
        if lock is not None:
            lock.acquire()
        try:  # StreamHandler.emit, then its flush
            stream = handler.stream  # type: ignore[attr-defined]
            stream.write(line + handler.terminator)  # type: ignore[attr-defined]
            if hasattr(stream, "flush"):
                stream.flush()
        except RecursionError:
            raise
        except Exception:
            code = frame.f_code
            std = self._logger
            handler.handleError(
                std.makeRecord(
                    std.name,
                    logging.INFO,
                    code.co_filename,
                    frame.f_lineno,
                    msg,
                    (),
                    None,
                    code.co_name,
                    fields,
                )
            )
        finally:
            if lock is not None:
                lock.release()
        return True

    def _only_handler(self) -> logging.Handler | None:
        """The one handler an INFO record of the service reaches, when nothing else can drop, change or
        see it on the way (see the module docstring); else None."""
        std = self._logger
        if std.disabled or std.filters or len(std.handlers) != 1:
            return None
        handler = std.handlers[0]
        formatter = handler.formatter
        if (
            type(handler) is not logging.StreamHandler
            or handler.filters
            or handler.level > logging.INFO
            or not isinstance(formatter, ServiceFormatter)
            or not formatter.composes
            or logging.getLogRecordFactory() is not logging.LogRecord
        ):
            return None
        node: logging.Logger | None = std
        while node is not None and node.propagate:
            node = node.parent
            if node is None:
                break
            for other in node.handlers:
                if other.level <= logging.INFO and not _suppresses(other, std.name):
                    return None
        return handler
