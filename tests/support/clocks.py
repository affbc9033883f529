"""Time under the test's control: a clock it sets, and a sleep that parks every sleeper until the test
wakes it (so the test, not the machine's timers, decides the order sleeps end in)."""

from __future__ import annotations

import asyncio


class ManualClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ParkedSleeps:
    """An injected sleep: each sleeper waits until the test wakes it."""

    def __init__(self) -> None:
        self.parked: list[asyncio.Future[None]] = []
        self._changed = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.parked.append(woken)
        async with self._changed:
            self._changed.notify_all()
        await woken

    async def wait_for(self, count: int) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: len(self.parked) >= count)

    def wake(self, order: list[int]) -> None:
        for index in order:
            if not self.parked[index].done():  # a cancelled sleeper's future is done already
                self.parked[index].set_result(None)

    def wake_all_in_reverse(self) -> None:
        self.wake(list(reversed(range(len(self.parked)))))
