"""Running a collector `Runner` in-process until what a test needs has happened.

A fixed `duration_s` and then "at least N polls" is a race on a loaded machine (the
collector, the simulator thread and other test workers share two cores): the run is
at least `min_s` long, as before, and then goes on until `until(runner)` holds; it
fails, saying so, only if that takes more than `max_s`."""
from __future__ import annotations

import asyncio
import time


async def collect_until(runner, until=None, *, min_s: float = 0.0, max_s: float = 60.0):
    """Run `runner` (mieruka.collector.runner.Runner) for at least `min_s` seconds and until
    `until(runner)` is true; stop it (flushing what it holds) and return its stats."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop=stop))
    t0 = time.monotonic()
    met = False
    try:
        while not task.done():
            elapsed = time.monotonic() - t0
            if elapsed >= min_s and (until is None or until(runner)):
                met = True
                break
            if elapsed > max_s:
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        stats = await task                    # re-raises what ended the run early
    assert met, f"the collector run did not reach its condition within {max_s} s"
    return stats


def run_collector(runner, until=None, *, min_s: float = 0.0, max_s: float = 60.0):
    """`collect_until` in its own event loop."""
    return asyncio.run(collect_until(runner, until, min_s=min_s, max_s=max_s))


def polled(n: int, *devices: str, ok: bool = True):
    """`until` for run_collector: each of `devices` (all when none named) has had `n` polls
    (`ok`: answered ones)."""
    def cond(runner) -> bool:
        stats = runner.device_stats()
        names = devices or tuple(stats)
        return bool(names) and all(name in stats and (stats[name].ok_polls if ok else stats[name].polls) >= n
                                   for name in names)
    return cond
