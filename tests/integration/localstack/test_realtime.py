"""ONE test keeps the real clock: the retry interval and the Wait state really wait (the others run
at time_factor 0). The gaps are read from the execution history's own timestamps."""

from __future__ import annotations

import pytest

from cogwh.localstack import LocalStack
from tests.integration.localstack.helpers import FIXTURES, events_of, unique


@pytest.mark.realtime
def test_retry_intervals_and_waits_take_real_time_at_time_factor_one() -> None:
    with LocalStack(FIXTURES, stack_name="lsreal", time_factor=1.0) as stack:
        # Given two executions in parallel: one retried after IntervalSeconds 1, one told to wait 1 s
        retried = stack.start_execution(
            "FlowStateMachine", {"items": [{"key": unique("r"), "mode": "flaky"}]}
        )
        waited = stack.start_execution(
            "FlowStateMachine", {"items": [{"key": unique("w"), "mode": "throttle", "retryAfter": 1}]}
        )

        assert stack.wait_execution(retried)["status"] == "SUCCEEDED"
        assert stack.wait_execution(waited)["status"] == "SUCCEEDED"

        # Then the retry came at least IntervalSeconds after the failure
        history = stack.execution_history(retried)
        (failed,) = events_of(history, "TaskFailed")
        scheduled = events_of(history, "TaskScheduled")
        assert len(scheduled) == 2
        assert (scheduled[1]["timestamp"] - failed["timestamp"]).total_seconds() >= 1.0

        # and the Wait state lasted the retryAfter the error carried
        history = stack.execution_history(waited)
        (entered,) = events_of(history, "WaitStateEntered")
        (exited,) = events_of(history, "WaitStateExited")
        assert (exited["timestamp"] - entered["timestamp"]).total_seconds() >= 1.0
