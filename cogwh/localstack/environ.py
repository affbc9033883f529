"""Each function's own environment inside one process: what ``os.environ`` is while a local stack runs.

On Lambda every function runs in its own process, with the Environment the template gives it. Here
all of them run in this one. While a stack runs, ``os.environ`` is an :class:`IsolatedEnviron` that
answers every read through the :class:`FunctionEnviron` of the function whose code is running (a
context variable the stack sets around each invocation and around each handler module's cold import),
over the real process environment; outside any function it is the process environment itself. So two
functions may give one variable different values, and a function never sees another's variables.

Contract:

- Reads (``os.environ[...]``, ``.get``, ``os.getenv``, iteration, ``copy()``) inside a function see its
  variables over the process's; elsewhere, the process's.
- Writes and deletes inside a function change that function's environment only (kept for its later
  invocations, as in its own process); elsewhere they change the real process environment.
- A thread started by a function's code (while its environment is active) runs in that environment
  too, as a thread of its own process would.
- Not isolated (one process, whatever this module does): C-level ``getenv`` (OpenSSL reading
  ``SSL_CERT_FILE``, a subprocess started without ``env=``), and module state read from the
  environment at import by a library module the functions share: the first function to import it
  decides. Values never appear in a repr.

:func:`install` replaces ``os.environ`` and returns what :func:`uninstall` needs to put the real one back.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

from cogwh.localstack.errors import LocalStackError

__all__ = ["FunctionEnviron", "IsolatedEnviron", "active_function", "install", "uninstall"]

_current: contextvars.ContextVar[FunctionEnviron | None] = contextvars.ContextVar(
    "cogwh_localstack_function_environ", default=None
)


class FunctionEnviron:
    """One function's variables over the process environment: the values it sets (the template's,
    then its own writes) and the names it removed."""

    __slots__ = ("_lock", "_removed", "_values", "owner")

    def __init__(self, owner: str, values: Mapping[str, str]) -> None:
        self.owner = owner
        self._values: dict[str, str] = dict(values)
        self._removed: set[str] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # values may be NoEcho parameters: names only
        return f"FunctionEnviron({self.owner}: {sorted(self._values)})"

    def variables(self) -> dict[str, str]:
        """The variables this function sets over the process environment (a copy)."""
        with self._lock:
            return dict(self._values)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Run the block (and the threads it starts) in this function's environment."""
        token = _current.set(self)
        try:
            yield
        finally:
            _current.reset(token)

    def _lookup(self, key: str) -> str | bool | None:
        """The value, False when removed, None when the process environment decides."""
        with self._lock:
            if key in self._values:
                return self._values[key]
            return False if key in self._removed else None

    def _set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value
            self._removed.discard(key)

    def _delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)
            self._removed.add(key)

    def _overlay(self) -> tuple[dict[str, str], set[str]]:
        with self._lock:
            return dict(self._values), set(self._removed)


def active_function() -> FunctionEnviron | None:
    """The environment of the function whose code runs here, or None outside any function."""
    return _current.get()


def _checked(value: object) -> str:
    if not isinstance(value, str):  # as os.environ refuses them
        raise TypeError(f"str expected, not {type(value).__name__}")
    return value


class IsolatedEnviron(MutableMapping[str, str]):
    """``os.environ`` while a local stack runs (see the module docstring). ``real`` is the process
    environment it stands in for; a reference kept after the stack closed still works (it then acts
    on the process environment, as no function runs)."""

    def __init__(self, real: MutableMapping[str, str]) -> None:
        self.real = real

    def __getitem__(self, key: str) -> str:
        function = _current.get()
        if function is not None:
            found = function._lookup(key)
            if isinstance(found, str):
                return found
            if found is False:
                raise KeyError(key)
        return self.real[key]

    def __setitem__(self, key: str, value: str) -> None:
        key, value = _checked(key), _checked(value)
        function = _current.get()
        if function is None:
            self.real[key] = value
        else:
            function._set(key, value)

    def __delitem__(self, key: str) -> None:
        function = _current.get()
        if function is None:
            del self.real[key]
            return
        if key not in self:
            raise KeyError(key)
        function._delete(key)

    def _view(self) -> dict[str, str]:
        function = _current.get()
        merged = dict(self.real)
        if function is not None:
            values, removed = function._overlay()
            for key in removed:
                merged.pop(key, None)
            merged.update(values)
        return merged

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def copy(self) -> dict[str, str]:
        """A plain dict of what this thread's code sees (as ``os.environ.copy()``)."""
        return self._view()

    def __or__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        return {**self._view(), **other}

    def __ror__(self, other: Any) -> Any:
        if not isinstance(other, Mapping):
            return NotImplemented
        return {**other, **self._view()}

    def __ior__(self, other: Any) -> IsolatedEnviron:
        self.update(other)
        return self

    def __repr__(self) -> str:  # never the values: a function's may be NoEcho parameters
        function = _current.get()
        where = function.owner if function is not None else "the process"
        return f"IsolatedEnviron({where}: {len(self)} variables)"


class _Installed:
    """What :func:`uninstall` restores."""

    def __init__(self, isolated: IsolatedEnviron, start: Callable[[threading.Thread], None]) -> None:
        self.isolated = isolated
        self.start = start


def install() -> _Installed:
    """Make ``os.environ`` an :class:`IsolatedEnviron` over the current one, and let threads started
    inside a function inherit its environment."""
    if isinstance(os.environ, IsolatedEnviron):
        raise LocalStackError("os.environ is already isolated: one local stack per process")
    isolated = IsolatedEnviron(os.environ)
    original_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        function = _current.get()
        if function is not None:
            run = thread.run

            def run_in_function() -> None:
                with function.active():
                    run()

            thread.run = run_in_function  # type: ignore[method-assign]
        original_start(thread)

    threading.Thread.start = start  # type: ignore[method-assign, assignment]
    os.environ = isolated  # type: ignore[assignment]  # noqa: B003 (replacing the mapping is the point)
    return _Installed(isolated, original_start)


def uninstall(installed: _Installed) -> None:
    """Put the real ``os.environ`` and ``Thread.start`` back (a no-op when already done)."""
    if os.environ is installed.isolated:
        os.environ = installed.isolated.real  # type: ignore[assignment]  # noqa: B003
    threading.Thread.start = installed.start  # type: ignore[method-assign, assignment]
