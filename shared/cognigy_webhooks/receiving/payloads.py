"""What a delivery carries: JSON or XML parsed into plain data, checked in full before anything is
claimed, so that a content problem is a deterministic 400 and the same body always gets the same answer.

- ``payload_invalid``: the body does not parse (JSON: UTF-8, no NaN/Infinity; XML: well-formed, no
  DTD or entity, an ``encoding=`` that can be read);
- ``payload_unrepresentable``: it parses, but past a bound (JSON nesting over :data:`MAX_JSON_DEPTH`,
  checked on the bytes before parsing; XML deeper than 64 elements or over 20,000 of them), or into
  what the hand-off (JSON in UTF-8) cannot carry: a lone surrogate, a number that is not finite.

Also here: the media types each payloadFormat takes, and the conversation (Cognigy's ``sessionId``)
a delivery belongs to. Standard library only (the receiver's cold start).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "MAX_JSON_DEPTH",
    "PAYLOAD_INVALID",
    "PAYLOAD_UNREPRESENTABLE",
    "PayloadRefused",
    "XmlRefused",
    "conversation_of",
    "json_nesting_exceeds",
    "media_label",
    "media_type_matches",
    "parse_payload",
    "parse_xml",
    "payload_max_depth",
    "representation_problem",
    "unrepresentable_message",
]

_MAX_CONVERSATION_LENGTH = 256


PAYLOAD_INVALID = "payload_invalid"
PAYLOAD_UNREPRESENTABLE = "payload_unrepresentable"
#: Deepest nesting of a JSON body (objects and arrays, the outermost counting 1), checked on the bytes
#: before parsing, so that the answer never depends on how much stack the parser happens to have.
MAX_JSON_DEPTH = 64


class PayloadRefused(ValueError):
    """A signed body that is not handed on. ``reason`` is ``payload_invalid`` (it does not parse as the
    endpoint's payloadFormat) or ``payload_unrepresentable`` (it parses, but beyond the documented
    bounds, or into something the hand-off, JSON in UTF-8, cannot carry). ``message`` names the
    problem and never echoes the content. A function of the body alone: the same body is always
    refused the same way."""

    def __init__(self, message: str, *, reason: str = PAYLOAD_INVALID) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class XmlRefused(PayloadRefused):
    """The XML body is malformed, declares an encoding that cannot be read, uses what a delivery never
    needs (a DTD, entities), or exceeds the depth or element bound (``payload_unrepresentable``)."""


_XML_MAX_DEPTH = 64
_XML_MAX_ELEMENTS = 20_000
#: The XML document as plain data nests at most this deep: the root mapping, then per element its
#: mapping and the list of a repeated child.
_XML_MAX_DATA_DEPTH = 2 * _XML_MAX_DEPTH + 1


def parse_xml(body: bytes) -> dict[str, Any]:
    """Parse an XML delivery into plain data: ``{root: value}`` where an element with only text is its
    text (None when empty), and an element with attributes or children is a dict (``@name`` for
    attributes, ``#text`` for text, a list for a repeated child). DTDs and entities are refused (no
    entity expansion, no external fetch); depth and element count are bounded.

    Raises :class:`XmlRefused` for every problem with the content, whatever expat raised for it
    (ExpatError, LookupError for an unknown ``encoding=``, ValueError for a multi-byte one...)."""
    from xml.parsers import expat  # only XML endpoints pay for it

    parser = expat.ParserCreate()
    root: dict[str, Any] = {}
    stack: list[tuple[str, dict[str, Any], list[str]]] = [("", root, [])]
    count = 0

    def refuse(*_args: Any) -> None:
        raise XmlRefused("DTDs and entities are not accepted")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if len(stack) > _XML_MAX_DEPTH:
            raise XmlRefused(
                f"The body nests deeper than {_XML_MAX_DEPTH} elements", reason=PAYLOAD_UNREPRESENTABLE
            )
        if count > _XML_MAX_ELEMENTS:
            raise XmlRefused(
                f"The body has more than {_XML_MAX_ELEMENTS} elements", reason=PAYLOAD_UNREPRESENTABLE
            )
        stack.append((tag, {f"@{k}": v for k, v in attrs.items()}, []))

    def end(tag: str) -> None:
        _tag, node, text_parts = stack.pop()
        text = "".join(text_parts).strip()
        value: Any
        if node:
            if text:
                node["#text"] = text
            value = node
        else:
            value = text or None
        parent = stack[-1][1]
        if tag in parent:
            existing = parent[tag]
            if isinstance(existing, list) and getattr(existing, "_repeated", False):
                existing.append(value)
            else:
                repeated = _Repeated([existing, value])
                parent[tag] = repeated
        else:
            parent[tag] = value

    def chars(data: str) -> None:
        stack[-1][2].append(data)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(body, True)
    except XmlRefused:
        raise
    except expat.ExpatError as exc:
        raise XmlRefused("The body is not well-formed XML") from exc
    except (LookupError, ValueError) as exc:  # the encoding handler: unknown, multi-byte, undecodable
        raise XmlRefused("The body declares an encoding that cannot be read") from exc
    except Exception as exc:  # whatever else the parser raises on content is still the content's
        raise XmlRefused("The body is not well-formed XML") from exc
    if len(root) != 1:
        raise XmlRefused("The body is not well-formed XML")
    return _plain(root)


class _Repeated(list[Any]):
    """A list made for repeated XML children (so a child's own list value is never extended)."""

    _repeated = True


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_UNESCAPED_KEEP = bytes(b for b in range(256) if b not in b'[]{}"')


def json_nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON text ``body`` nests objects and arrays deeper than ``limit`` (the outermost
    counting 1; brackets inside strings do not count). Exact for valid JSON, deterministic for any
    bytes; linear, C-speed but for one pass over the brackets, and it never recurses."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # escaped backslashes, then escaped quotes: what is left of the quotes delimits strings
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.translate(None, _UNESCAPED_KEEP).split(b'"')[::2])
    depth = 0
    for byte in outside:
        if byte in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


#: ``json.loads(text, parse_constant=_refuse_constant)``, made once (``json.loads`` given an option
#: makes a decoder per call).
_JSON_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadRefused("The body is not valid JSON") from None
    if json_nesting_exceeds(body, MAX_JSON_DEPTH):
        raise PayloadRefused(_DEEP.format(MAX_JSON_DEPTH), reason=PAYLOAD_UNREPRESENTABLE)
    try:
        return _JSON_DECODER.decode(text)
    except (ValueError, RecursionError):  # RecursionError: not within MAX_JSON_DEPTH, kept as a guard
        raise PayloadRefused("The body is not valid JSON") from None


_LONE_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_DEEP = "The body nests deeper than {} levels"
_KEY = "The body holds an object key that is not a string"
_SURROGATE = "The body holds a lone surrogate (an unpaired \\ud800-\\udfff escape) in a string"
_NOT_FINITE = "The body holds a number that JSON cannot carry (too large: not finite)"
_OTHER = "The body holds a value that JSON cannot carry"
_UNRENDERABLE = "The body cannot be handed on as JSON"


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        if not value.isascii() and _LONE_SURROGATE_RE.search(value) is not None:
            return _SURROGATE
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else _NOT_FINITE
    if value is None or isinstance(value, int):  # bool is an int
        return None
    return _OTHER


def representation_problem(payload: Any, *, max_depth: int) -> str | None:
    """What keeps parsed ``payload`` from being handed on as JSON in UTF-8, or None: nesting deeper
    than ``max_depth`` (the outermost object or array counting 1), an object key that is not a string,
    a lone surrogate in a key or a string (a ``\\ud83d`` escape without its pair), a number that is
    not finite (``1e400`` parses as infinity), or a value of another type. Iterative (no recursion,
    whatever the depth) and in a fixed order, so the same payload always gets the same message."""
    pending: list[tuple[Any, int]] = [(payload, 0)]
    while pending:
        value, depth = pending.pop()
        if not isinstance(value, dict | list):
            problem = _scalar_problem(value)
            if problem is not None:
                return problem
            continue
        depth += 1
        if depth > max_depth:
            return _DEEP.format(max_depth)
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict):
            for key in value:
                if not isinstance(key, str):
                    return _KEY
                if not key.isascii() and _LONE_SURROGATE_RE.search(key) is not None:
                    return _SURROGATE
        for child in children:
            if isinstance(child, dict | list):
                pending.append((child, depth))
            else:
                problem = _scalar_problem(child)
                if problem is not None:
                    return problem
    return None


def parse_payload(body: bytes, payload_format: str) -> Any:
    """The body as plain data. Raises :class:`PayloadRefused` (a 400 with its reason) for every
    problem with the content that parsing can see: not valid, deeper than the bound (JSON: checked on
    the bytes first, so the answer never depends on the parser's stack), and for XML anything
    :func:`representation_problem` finds (keys are always strings there, but it is checked)."""
    if payload_format != "XML":
        return _parse_json(body)
    payload = parse_xml(body)
    problem = representation_problem(payload, max_depth=_XML_MAX_DATA_DEPTH)
    if problem is not None:
        raise PayloadRefused(problem, reason=PAYLOAD_UNREPRESENTABLE)
    return payload


def payload_max_depth(payload_format: str) -> int:
    """How deep a parsed payload of this format may nest as plain data."""
    return _XML_MAX_DATA_DEPTH if payload_format == "XML" else MAX_JSON_DEPTH


def conversation_of(payload: Any) -> str | None:
    """Cognigy's ``sessionId`` in a delivery: at the top, under ``data``, or under the XML root."""
    candidates: list[Any] = [payload]
    if isinstance(payload, dict):
        candidates.append(payload.get("data"))
        if len(payload) == 1:  # an XML document: {root: {...}}
            candidates.append(next(iter(payload.values())))
    for candidate in candidates:
        if isinstance(candidate, dict):
            value = candidate.get("sessionId")
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                value = str(value)
            if isinstance(value, str) and 0 < len(value) <= _MAX_CONVERSATION_LENGTH:
                return value
    return None


_MEDIA_TYPES = {
    "JSON": ("application/json", "+json", "application/json"),
    "XML": ("application/xml", "+xml", "application/xml or text/xml"),
}


_MEDIA_ANSWERS: dict[tuple[str, str], bool] = {}  # (Content-Type, payloadFormat) -> fits: a few in practice
_MAX_MEDIA_ANSWERS = 256


def media_type_matches(values: tuple[str, ...], payload_format: str) -> bool:
    """One Content-Type that fits the endpoint's payloadFormat (charset, when given, must be UTF-8 for
    JSON; XML declares its own encoding)."""
    if len(values) != 1:
        return False
    key = (values[0], payload_format)
    fits = _MEDIA_ANSWERS.get(key)
    if fits is None:
        fits = _media_type_fits(values[0], payload_format)
        if len(_MEDIA_ANSWERS) >= _MAX_MEDIA_ANSWERS:
            _MEDIA_ANSWERS.clear()
        _MEDIA_ANSWERS[key] = fits
    return fits


def _media_type_fits(value: str, payload_format: str) -> bool:
    media, _, params = value.partition(";")
    media = media.strip(" \t").lower()
    exact, suffix, _label = _MEDIA_TYPES.get(payload_format, _MEDIA_TYPES["JSON"])
    if payload_format == "XML":
        fits = media in (exact, "text/xml") or (media.startswith("application/") and media.endswith(suffix))
    else:
        fits = media == exact or (media.startswith("application/") and media.endswith(suffix))
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip(" \t").lower() == "charset" and value.strip(" \t\"'").lower() not in (
                "utf-8",
                "utf8",
            ):
                return False
    return fits


def media_label(payload_format: str) -> str:
    """What an endpoint of this payloadFormat takes, for the 415's message."""
    return _MEDIA_TYPES.get(payload_format, _MEDIA_TYPES["JSON"])[2]


def unrepresentable_message(payload: Any, payload_format: str) -> str:
    """Why the hand-off cannot carry ``payload`` (its rendering failed), for the 400's message."""
    return representation_problem(payload, max_depth=payload_max_depth(payload_format)) or _UNRENDERABLE
