"""PublishSchedule: on time it sleeps to each slot; after a stall it skips ahead instead of bursting."""

from __future__ import annotations

from seg_perception.ros.stream import PublishSchedule


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_on_time_sleeps_to_each_slot() -> None:
    clock = FakeClock()
    sched = PublishSchedule(0.1, clock=clock, sleep=clock.sleep)
    times = []
    for i in range(4):
        sched.wait(i * 0.1)
        times.append(clock.now)
        clock.now += 0.02  # the publish itself
    assert [round(t - 100.0, 6) for t in times] == [0.0, 0.1, 0.2, 0.3]


def test_a_stall_shifts_the_schedule_instead_of_a_burst() -> None:
    clock = FakeClock()
    sched = PublishSchedule(0.1, clock=clock, sleep=clock.sleep)
    sched.wait(0.0)
    clock.now += 1.0  # the process stalled for a second: ten slots missed
    sent = []
    for i in range(1, 5):
        sched.wait(i * 0.1)
        sent.append(round(clock.now - 100.0, 6))
    # Slot 1 goes out at once, then the old spacing resumes from there: no ten owed frames at once.
    assert sent == [1.0, 1.1, 1.2, 1.3]
    assert round(sched.start, 6) == 100.9


def test_lateness_within_tolerance_is_caught_up() -> None:
    clock = FakeClock()
    sched = PublishSchedule(0.1, clock=clock, sleep=clock.sleep)
    clock.now += 0.05  # half a slot late: publish now, keep the schedule
    sched.wait(0.0)
    sched.wait(0.1)
    assert sched.start == 100.0 and round(clock.now - 100.0, 6) == 0.1
