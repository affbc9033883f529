"""One test's executions never write into the next test's clean slate (issue 8, item 13).

A refused API key fails the whole execution through a Fail state in one Map iteration while another
iteration's register task may still be recording its own refusal, as on AWS. ``test_faults.py``'s
``[read_only-CognigyForbidden-403]`` failed about one run in 13 because the ``[revoked-...-401]`` case
before it had left such a task running: its 401 refusal landed in the audit table after the next
test's wipe. Here that task is made slow on purpose (its audit write waits 0.3 s, as on a busy
machine), and :meth:`Harness.apply` must still return only once it has finished."""

from __future__ import annotations

import dataclasses
import secrets
import sys
import time
from typing import Any

import pytest

from cogwh.simulator import SimulatorConfig
from tests.integration.reconcile.harness import Harness


def test_apply_returns_only_once_the_last_task_of_a_failed_execution_has_ended(
    h: Harness, simulator_config: SimulatorConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an endpoint registered, and the register task of a second one that records slowly
    h.apply([h.endpoint("keyed-hook")])
    register = sys.modules[h.stack.functions["RegisterFunction"].module_name]
    commit = register.STORE.commit

    def slow_commit(**kwargs: Any) -> None:
        if kwargs["name"] == "new-hook":
            time.sleep(0.3)  # the straggler: widens the window a busy machine opens now and then
        commit(**kwargs)

    monkeypatch.setattr(register.STORE, "commit", slow_commit)

    # When the key is revoked: the first refusal fails the execution, the other is still recording
    h.sim.reset(dataclasses.replace(simulator_config, api_keys=("ck_other_" + secrets.token_urlsafe(12),)))
    applied = h.apply([h.endpoint("keyed-hook", timeoutMs=7000), h.endpoint("new-hook")])

    # Then apply returned after the straggler recorded its refusal, not before
    assert applied.run.status == "FAILED"
    assert [(e.action, e.status_code) for e in h.audit("new-hook")] == [("failure", 401)]
    assert [(e.action, e.status_code) for e in h.audit("keyed-hook")][-1] == ("failure", 401)
    # and the next clean slate starts empty
    h.in_flight.wait_idle()
    h.wipe()
    assert h.raw_items("AuditTableName") == []
