"""Progress for a log with no terminal (a cluster job's output file): one plain line per task at most every
`every` seconds, plus the first and the last, each with samples/s and the time left. A terminal gets rich's
live bars instead (`evalkit.cli`); both are fed by the runner's `progress(task, done, total)` callback."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Seen:
    start: float  # when this task's first report came
    done0: int  # samples already made then (a resumed run's kept ones do not count towards the rate)
    last: float  # when a line was last written
    # when the first samples were made, and how many were done then: the rate counts from there, so the
    # model's loading and first batch do not slow it (the first report comes before the model loads)
    anchor: tuple[float, int] | None = None


def duration(seconds: float) -> str:
    """`1h02m`, `3m05s`, `42s`."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


class LineProgress:
    """A `progress(task, done, total)` callback writing lines such as
    `mme: 1200/2374 (50.5%), 12.3 samples/s, ETA 1m35s`."""

    def __init__(
        self, write: Callable[[str], None], every: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._write = write
        self._every = every
        self._clock = clock
        self._seen: dict[str, _Seen] = {}

    def __call__(self, task: str, done: int, total: int) -> None:
        now = self._clock()
        seen = self._seen.get(task)
        if seen is None:
            self._seen[task] = _Seen(start=now, done0=done, last=now)
            resumed = 0 < done < total  # worded as on a terminal (`evalkit.cli`)
            self._write(
                f"{task}: resuming, {done} of {total} samples kept" if resumed else f"{task}: {done}/{total}"
            )
            return
        if seen.anchor is None and done > seen.done0:
            seen.anchor = (now, done)
        if done < total and now - seen.last < self._every:
            return
        if done >= total and seen.last == -1.0:  # the last line is written once
            return
        seen.last = -1.0 if done >= total else now
        self._write(self.line(task, done, total, now - seen.start, self._rate(seen, done, total, now)))

    @staticmethod
    def _rate(seen: _Seen, done: int, total: int, now: float) -> float | None:
        """Samples/s since the first samples were made; over the whole time for a task that ends with its
        first report of progress (nothing to count from); None before there is a rate."""
        if seen.anchor is not None and done > seen.anchor[1] and now > seen.anchor[0]:
            return (done - seen.anchor[1]) / (now - seen.anchor[0])
        if done >= total and done > seen.done0 and now > seen.start:
            return (done - seen.done0) / (now - seen.start)
        return None

    @staticmethod
    def line(task: str, done: int, total: int, elapsed: float, rate: float | None) -> str:
        share = f"{100.0 * done / total:.1f}%" if total else "-"
        text = f"{task}: {done}/{total} ({share})"
        if rate:
            left = (
                f"done in {duration(elapsed)}" if done >= total else f"ETA {duration((total - done) / rate)}"
            )
            text += f", {rate:.1f} samples/s, {left}"
        return text
