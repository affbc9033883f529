"""The local stack's isolated ``os.environ`` as a mapping: a function's reads, writes and deletes stay in
its own environment and behave as ``os.environ``'s do; outside any function it is the process's."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

from cogwh.localstack import LocalStackError
from cogwh.localstack.environ import FunctionEnviron, IsolatedEnviron, active_function, install, uninstall


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[IsolatedEnviron]:
    monkeypatch.setenv("COGWH_ENVIRON_TEST_OUTER", "outer")
    monkeypatch.delenv("COGWH_ENVIRON_TEST_OWN", raising=False)
    installed = install()
    try:
        assert isinstance(os.environ, IsolatedEnviron)
        yield os.environ
    finally:
        uninstall(installed)
    assert not isinstance(os.environ, IsolatedEnviron)


def test_a_function_s_changes_stay_its_own(isolated: IsolatedEnviron) -> None:
    function = FunctionEnviron("Fn", {"COGWH_ENVIRON_TEST_OWN": "own"})

    with function.active():
        assert active_function() is function
        assert os.environ["COGWH_ENVIRON_TEST_OWN"] == "own"
        assert os.getenv("COGWH_ENVIRON_TEST_OUTER") == "outer"  # the process's, beneath
        del os.environ["COGWH_ENVIRON_TEST_OUTER"]
        assert "COGWH_ENVIRON_TEST_OUTER" not in os.environ
        assert "COGWH_ENVIRON_TEST_OUTER" not in list(os.environ)
        with pytest.raises(KeyError):
            del os.environ["COGWH_ENVIRON_TEST_OUTER"]
        assert os.environ.setdefault("COGWH_ENVIRON_TEST_NEW", "new") == "new"
        with pytest.raises(TypeError, match="str expected"):
            os.environ["COGWH_ENVIRON_TEST_NUMBER"] = 3  # type: ignore[assignment]
        assert os.environ.pop("COGWH_ENVIRON_TEST_OWN") == "own"

    assert active_function() is None
    assert os.environ["COGWH_ENVIRON_TEST_OUTER"] == "outer"  # the process never saw the delete
    assert "COGWH_ENVIRON_TEST_NEW" not in os.environ
    assert function.variables() == {"COGWH_ENVIRON_TEST_NEW": "new"}


def test_outside_any_function_it_is_the_process_environment(isolated: IsolatedEnviron) -> None:
    os.environ["COGWH_ENVIRON_TEST_OWN"] = "written"
    try:
        assert isolated.real["COGWH_ENVIRON_TEST_OWN"] == "written"
        assert os.environ.copy() == dict(isolated.real)
    finally:
        del os.environ["COGWH_ENVIRON_TEST_OWN"]
    assert "COGWH_ENVIRON_TEST_OWN" not in isolated.real


def test_threads_started_inside_a_function_inherit_its_environment(isolated: IsolatedEnviron) -> None:
    function = FunctionEnviron("Fn", {"COGWH_ENVIRON_TEST_OWN": "own"})
    seen: list[str | None] = []

    def look() -> None:
        seen.append(os.environ.get("COGWH_ENVIRON_TEST_OWN"))

    with function.active():
        inside = threading.Thread(target=look)
        inside.start()
    inside.join()
    outside = threading.Thread(target=look)
    outside.start()
    outside.join()

    assert seen == ["own", None]


def test_values_stay_out_of_reprs_and_a_second_install_is_refused(isolated: IsolatedEnviron) -> None:
    function = FunctionEnviron("Fn", {"COGWH_ENVIRON_TEST_OWN": "no-echo-value"})

    with function.active():
        assert "no-echo-value" not in repr(os.environ)
        assert "Fn" in repr(os.environ)
    assert "no-echo-value" not in repr(function)
    with pytest.raises(LocalStackError, match="already isolated"):
        install()
