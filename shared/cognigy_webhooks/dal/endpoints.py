"""The receiver's endpoint lookup: EndpointsTable records read by name, briefly cached, as the few
facts a delivery's authentication needs (:class:`EndpointAuth`).

Read only: the records are written by :class:`cognigy_webhooks.dal.records.Store` (the register task),
in the item shape of :mod:`cognigy_webhooks.dal.schema`, which is also how they are read here
(without pydantic: the receiver's cold start). An unknown name is cached too, for a fifth of the time,
and the cache is bounded, so a flood of made-up names cannot grow it nor turn into reads. A DynamoDB
failure is a :class:`~cognigy_webhooks.errors.DeliveryStoreError` (the receiver answers 503).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from cognigy_webhooks.dal.clients import LazyClients
from cognigy_webhooks.dal.schema import Endpoint, Spec, from_item, record_fields, text
from cognigy_webhooks.errors import DeliveryStoreError

__all__ = ["EndpointAuth", "EndpointDirectory", "endpoint_auth_from_item"]


class EndpointAuth(NamedTuple):
    """What the receiver needs from an endpoint record: how deliveries to it authenticate, and what
    they carry. Holds secret ARNs only, never a value."""

    name: str
    status: str
    active: bool
    payload_format: str  # "JSON" | "XML"
    scheme: str  # "cognigy" | "standard"
    signature_header: str | None
    signature_secret_arn: str | None
    basic_username: str | None
    basic_password_arn: str | None

    @property
    def has_signature(self) -> bool:
        return self.signature_secret_arn is not None and (
            self.scheme == "standard" or self.signature_header is not None
        )

    @property
    def has_basic_auth(self) -> bool:
        return self.basic_username is not None and self.basic_password_arn is not None

    @property
    def accepts_deliveries(self) -> bool:
        """Registered, active, and authenticated somehow (an endpoint without any authentication
        would take deliveries from anyone: it is refused like an unknown one)."""
        return self.status == "registered" and self.active and (self.has_signature or self.has_basic_auth)


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def endpoint_auth_from_item(item: Mapping[str, Any]) -> EndpointAuth | None:
    """Read an EndpointsTable item (DynamoDB attribute values) without pydantic. None when it is not
    a usable endpoint record: no name, not made of attribute values, or no record at all (an item
    holding only a create claim, as :class:`~cognigy_webhooks.dal.records.Store` reads it too)."""
    try:
        data = record_fields(from_item(item))
    except (TypeError, ValueError, ArithmeticError):
        return None
    if data is None:
        return None
    name = text(data, Endpoint.NAME)
    if name is None:
        return None
    spec = _mapping(data, Endpoint.SPEC)
    basic = _mapping(spec, Spec.BASIC_AUTH)
    fmt = (text(spec, Spec.PAYLOAD_FORMAT) or "JSON").upper()
    scheme = (text(spec, Spec.SIGNATURE_SCHEME) or "cognigy").lower()
    return EndpointAuth(
        name=name,
        status=text(data, Endpoint.STATUS) or "failed",
        active=spec.get(Spec.IS_ACTIVE) is not False,
        payload_format=fmt if fmt in ("JSON", "XML") else "JSON",
        scheme=scheme if scheme in ("cognigy", "standard") else "cognigy",
        signature_header=text(spec, Spec.SIGNATURE_HEADER),
        signature_secret_arn=text(spec, Spec.SIGNATURE_SECRET_ARN),
        basic_username=text(basic, Spec.BASIC_USERNAME),
        basic_password_arn=text(basic, Spec.BASIC_PASSWORD_ARN),
    )


class EndpointDirectory:
    """Endpoint records by name, cached briefly (a known name for ``ttl`` seconds, an unknown one for a
    fifth of it, so a newly registered endpoint is seen soon). The cache is bounded: a flood of made-up
    names cannot grow it without limit."""

    def __init__(
        self,
        clients: LazyClients,
        table: str,
        *,
        ttl: float = 30.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clients = clients
        self.table = table
        self.ttl = ttl
        self.negative_ttl = ttl / 5
        self.max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[str, tuple[float, EndpointAuth | None]] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # DynamoDB reads made (tests and benchmarks look)

    def get(self, name: str) -> EndpointAuth | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] > now:
                self._cache.move_to_end(name)
                return hit[1]
        try:
            self.reads += 1
            resp = self._clients.get("dynamodb").get_item(
                TableName=self.table,
                Key={Endpoint.NAME: {"S": name}},
                ProjectionExpression="#n, #t, #s, #p",
                ExpressionAttributeNames={
                    "#n": Endpoint.NAME,
                    "#t": Endpoint.RECORD_TYPE,
                    "#s": Endpoint.STATUS,
                    "#p": Endpoint.SPEC,
                },
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryStoreError.from_aws("reading the endpoint record", exc) from None
        item = resp.get("Item")
        auth = endpoint_auth_from_item(item) if item else None
        if auth is not None and auth.name != name:
            auth = None
        with self._lock:
            self._cache[name] = (now + (self.ttl if auth is not None else self.negative_ttl), auth)
            self._cache.move_to_end(name)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return auth

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
