"""The input interface and the registry of inputs (Telegraf-style: one protocol,
one self-contained module behind this small interface, a sample config beside it).

An input turns a protocol into `ReadingBatch`es.  The runner builds the inputs a
site config asks for from `INPUTS` (protocol name -> input class) and never knows
which protocols it runs.  Adding a protocol is one entry here (plus its module,
its config table or meter `protocol` value, and a sample in config/examples/).

Entries are "module:Class" texts so that a site without MQTT never imports paho
(and one without Modbus never imports pymodbus): the CLI starts faster, and a
gateway without an optional library still runs the inputs it has.
"""
from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from mieruka.models import ChannelInfo, ReadingBatch

if TYPE_CHECKING:
    from mieruka.site import SiteConfig

    from .runner import CollectorOptions

# `emit(batch)`: queue readings.  Plain inputs get a synchronous emit (cheap, only
# queues); inputs with `durable_emit` get an awaitable one that returns True once
# the batch is fsynced into the disk buffer (then they acknowledge upstream).
Emit = Callable[[ReadingBatch], "None | bool | Awaitable[bool]"]


class Input(ABC):
    """One protocol's readings source.  The runner calls `from_site` once, then
    `channel_infos()`/`counters()` before starting, `run(emit)` as a task, and
    `close()` after that task ended or was cancelled."""

    name: ClassVar[str]                  # shown in metrics and the status file: "modbus", "mqtt"
    durable_emit: ClassVar[bool] = False  # True: `emit` is awaitable and returns after the fsync
    # filled by the runner's pipeline: called with the channel infos an input discovered
    # while running (MQTT wildcard subscriptions), before the readings that use them
    on_channels: Callable[[list[ChannelInfo]], None] | None = None
    emit_errors: int = 0                 # batches the input could not hand over (disk full), retried
    # device id -> stats object (fields of `collector.modbus.DeviceStats`); broker id ->
    # connection stats for inputs that keep broker connections.  Instances set their own.
    stats: Mapping[str, Any] = MappingProxyType({})
    brokers: Mapping[str, Any] = MappingProxyType({})

    @classmethod
    @abstractmethod
    def from_site(cls, cfg: "SiteConfig", options: "CollectorOptions") -> "Input | None":
        """The input for a site config, or None when the site has nothing for it to read.
        Raises ConfigError (naming file and key) for a bad configuration of it."""

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Read until cancelled, handing readings to `emit`.  Protocol faults (a dead
        meter, a lost broker) are the input's to handle: they become quality codes and
        stats, never an exception out of here."""

    def close(self) -> None:
        """Release connections (idempotent; also called when `run` never started)."""

    def check(self) -> None:
        """Build what `run` would build before it talks to anything (clients, TLS
        contexts, outputs) without connecting; raise ConfigError naming file and key.
        `mieruka check` and `collect` both call it (collector.runner.prepare)."""

    def channel_infos(self) -> list[ChannelInfo]:
        """Metadata of the channels known before running (written to the store)."""
        return []

    def counters(self) -> dict[str, float | None]:
        """Counter channels -> wrap modulus in scaled units (None: cannot wrap)."""
        return {}

    # Reload (SIGHUP, `Runner.reload`): the runner stops the old inputs and starts the
    # ones built from the new config.  An input that keeps a schedule hands it on, so
    # that a reload neither loses nor repeats a reading.
    def stop_after_poll(self) -> bool:
        """Ask `run` to return once the work in progress is emitted; True if it will
        (the runner then waits for it), False to be cancelled (the default)."""
        return False

    def slots(self) -> dict[str, tuple[float, int]]:
        """Device id -> (poll interval s, last slot emitted), for the input that replaces this one."""
        return {}

    def resume(self, slots: dict[str, tuple[float, int]]) -> None:
        """Continue the schedules another input handed on (`slots()` of the input replaced)."""

    def output(self, channel_infos: Callable[[], dict[str, ChannelInfo]]):
        """An output that republishes stored readings (`start()`, `publish(batch)`,
        `stop()`), or None.  `channel_infos` gives the channels known so far."""
        return None


# protocol name -> "module:Class" of its input.  Several protocols may share one input
# (Modbus TCP and RTU meters are one input: one scheduler, shared serial lines).
INPUTS: dict[str, str] = {
    "modbus_tcp": "mieruka.collector.modbus:ModbusInput",
    "modbus_rtu": "mieruka.collector.modbus:ModbusInput",
    "rtu_over_tcp": "mieruka.collector.modbus:ModbusInput",
    "mqtt": "mieruka.collector.mqtt:MqttInput",
}


def input_class(protocol: str) -> type[Input]:
    """The input class registered for a protocol name; KeyError names the known ones."""
    try:
        target = INPUTS[protocol]
    except KeyError:
        raise KeyError(f"no input for protocol {protocol!r} (known: {', '.join(sorted(INPUTS))})") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def build_inputs(cfg: "SiteConfig", options: "CollectorOptions") -> list[Input]:
    """Every registered input the site config has something for, each built once,
    in registry order."""
    out: list[Input] = []
    seen: set[str] = set()
    for protocol, target in INPUTS.items():
        if target in seen:
            continue
        seen.add(target)
        inp = input_class(protocol).from_site(cfg, options)
        if inp is not None:
            out.append(inp)
    return out
