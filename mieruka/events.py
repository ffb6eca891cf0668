"""Events people are told about (alarms): what a lower layer raises and the
application layer delivers (mieruka/service/notify.py).

The collector decides *that* something happened (a demand stage reached, a meter
silent, the buffer dropping, the disk filling) and calls an `EventSink` — a plain
callable the `collect` command wires in.  It never knows where the event goes.

`key` names the condition an event belongs to (e.g. ``meter_offline:pm-press``):
the notifier de-duplicates by it, so a standing condition is not sent again
before `[alarms] repeat_after_min`, while its end (`*_clear`, `*_back`) always is.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

# the event that ends a standing condition (sent even when the condition was repeated)
CLEARS = {"demand_clear": "demand_alarm", "meter_back": "meter_offline"}


@dataclass
class Event:
    event: str                      # demand_alarm, demand_clear, meter_offline, ... (mieruka.site.NOTIFY_EVENTS)
    severity: Severity
    message_ja: str
    message_en: str
    data: dict[str, Any] = field(default_factory=dict)
    key: str = ""                   # the condition's identity for de-duplication (default: the event name)
    time_s: float = field(default_factory=time.time)     # epoch seconds

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.event


EventSink = Callable[[Event], None]
