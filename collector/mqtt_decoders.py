"""Decoders: an MQTT message (topic, payload) -> the values it carries.

Pure functions of the message (Shelly keeps the last full status per device,
to overlay `NotifyStatus` changes on).  Each decoder returns a `Decoded`: the
device id, a UTC time in ms (or None: use the receive time) and a list of
(field, quantity, value) with values already in the quantity's unit (W -> kW,
Wh -> kWh).  A payload that cannot be decoded raises `BadPayload` with a short
reason; the input counts and logs it, the collector carries on.
"""
from __future__ import annotations

import datetime as dt
import json
import math
import zoneinfo
from dataclasses import dataclass, field
from typing import Any


class BadPayload(ValueError):
    """The message is not what its decoder expects (reason in the text)."""


@dataclass
class Decoded:
    device: str
    time_ms: int | None
    values: list[tuple] = field(default_factory=list)   # (field, quantity, value[, channel template])


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadPayload(f"not JSON ({e})") from None
    except RecursionError:      # "[[[[..." thousands deep: Python's parser gives up
        raise BadPayload("JSON nested too deep") from None


def _number(v: Any) -> float | None:
    """A finite number, or None (strings, bools, null and NaN are not values)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# ------------------------------------------------------------------------ Shelly
# key suffix -> (quantity, scale to the quantity's unit).  Longest suffix first.
_SHELLY_KEYS = [
    ("_act_ret_energy", "energy_kwh", 1e-3), ("_act_energy", "energy_kwh", 1e-3),
    ("total_act_ret", "energy_kwh", 1e-3), ("total_act", "energy_kwh", 1e-3),
    ("act_power", "power_kw", 1e-3), ("current", "current_a", 1.0), ("voltage", "voltage_v", 1.0),
    ("freq", "frequency_hz", 1.0), ("pf", "power_factor", 1.0),
]
_SHELLY_COMPONENTS = ("em", "emdata", "em1", "em1data")


def _shelly_prefix(component: str) -> str | None:
    """Field-name prefix of a component: em:0 and emdata:0 keep Shelly's own names
    (`total_act_power`), other instances get `em1_`, `ch0_` ... so names stay unique."""
    kind, _, n = component.partition(":")
    if kind not in _SHELLY_COMPONENTS or not n.isdigit():
        return None
    if kind in ("em", "emdata"):
        return "" if n == "0" else f"em{n}_"
    return f"ch{n}_"


def _shelly_fields(component: str, status: dict[str, Any]) -> list[tuple[str, str, float]]:
    prefix = _shelly_prefix(component)
    out = []
    for key, raw in status.items():
        v = _number(raw)
        if v is None:
            continue
        for suffix, quantity, scale in _SHELLY_KEYS:
            if key == suffix or key.endswith("_" + suffix) or (suffix.startswith("_") and key.endswith(suffix)):
                out.append((prefix + key, quantity, v * scale))
                break
    return out


class ShellyDecoder:
    """Shelly Gen2+ energy meters (Pro 3EM `em`/`emdata`, Pro EM `em1`/`em1data`).

    `<device>/status/<component>:<id>` carries a component's full status (no time:
    stamped on receipt); `<device>/events/rpc` carries `NotifyStatus` with `ts` and
    only the changed fields, overlaid on the last full status of that component.
    """

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], dict[str, Any]] = {}

    def __call__(self, topic: str, payload: bytes) -> Decoded:
        if "/status/" in topic:
            device, _, component = topic.rpartition("/status/")
            if _shelly_prefix(component) is None:
                raise BadPayload(f"component {component!r} is not an energy meter (em, emdata, em1, em1data)")
            status = _json(payload)
            if not isinstance(status, dict):
                raise BadPayload("status is not a JSON object")
            self.last[(device, component)] = dict(status)
            values = _shelly_fields(component, status)
            if not values:
                raise BadPayload(f"no numeric meter fields in {component} status")
            return Decoded(device, None, values)
        if topic.endswith("/events/rpc"):
            device = topic[: -len("/events/rpc")]
            msg = _json(payload)
            if not isinstance(msg, dict) or not isinstance(msg.get("params"), dict):
                raise BadPayload("RPC frame without `params` object")
            if msg.get("method") not in ("NotifyStatus", "NotifyFullStatus"):
                return Decoded(device, None, [])         # events we do not meter (NotifyEvent ...)
            params = msg["params"]
            ts = _number(params.get("ts"))
            out = Decoded(device, None if ts is None else int(round(ts * 1000)), [])
            for component, change in params.items():
                if _shelly_prefix(component) is None or not isinstance(change, dict):
                    continue
                merged = {**self.last.get((device, component), {}), **change}
                self.last[(device, component)] = merged
                out.values += _shelly_fields(component, merged)
            return out
        raise BadPayload("not a Shelly status or events/rpc topic")


# ----------------------------------------------------------------------- Tasmota
_TASMOTA_KEYS = {"Total": ("total", "energy_kwh", 1.0), "Power": ("power", "power_kw", 1e-3),
                 "Voltage": ("voltage", "voltage_v", 1.0), "Current": ("current", "current_a", 1.0),
                 "Factor": ("power_factor", "power_factor", 1.0), "Frequency": ("frequency", "frequency_hz", 1.0),
                 "ReactivePower": ("reactive_power", "reactive_power_kvar", 1e-3)}


def decode_tasmota(topic: str, payload: bytes, tz: zoneinfo.ZoneInfo) -> Decoded:
    """Tasmota `tele/<topic>/SENSOR` with an `ENERGY` object.  `Time` is the device's
    local time without offset: taken in the site's zone.  Multi-channel devices send
    lists (`"Power":[10,20]`): fields `power_1`, `power_2`."""
    levels = topic.split("/")
    device = levels[-2] if len(levels) >= 2 else topic
    msg = _json(payload)
    if not isinstance(msg, dict):
        raise BadPayload("not a JSON object")
    energy = msg.get("ENERGY")
    if not isinstance(energy, dict):
        if "Time" in msg:
            return Decoded(device, None, [])              # a SENSOR message of another sensor
        raise BadPayload("no ENERGY object")
    t = msg.get("Time")
    time_ms = _parse_time(t, "iso", tz) if t is not None else None
    out = Decoded(device, time_ms, [])
    for key, (name, quantity, scale) in _TASMOTA_KEYS.items():
        raw = energy.get(key)
        if isinstance(raw, list):
            for i, item in enumerate(raw, 1):
                v = _number(item)
                if v is not None:
                    out.values.append((f"{name}_{i}", quantity, v * scale))
        else:
            v = _number(raw)
            if v is not None:
                out.values.append((name, quantity, v * scale))
    return out


# -------------------------------------------------------------------------- JSON
def lookup(doc: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts/lists; KeyError with the failing part."""
    node = doc
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def _parse_time(raw: Any, fmt: str, tz: zoneinfo.ZoneInfo) -> int:
    """A message timestamp -> UTC ms.  Texts without offset are site time."""
    try:
        if fmt == "unix_s":
            return int(round(float(raw) * 1000))
        if fmt == "unix_ms":
            return int(float(raw))
        if not isinstance(raw, str):
            raise ValueError("not text")
        if fmt == "iso":
            t = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        else:
            t = dt.datetime.strptime(raw.strip(), fmt)
    except (TypeError, ValueError, OverflowError):
        raise BadPayload(f"timestamp {raw!r} is not {fmt}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=tz)
    try:
        return int(round(t.timestamp() * 1000))
    except (OverflowError, ValueError):     # year 1 or 9999 shifted out of range by the zone
        raise BadPayload(f"timestamp {raw!r} is out of range") from None


def decode_json(payload: bytes, mapping: list, time_path: str | None, time_format: str,
                tz: zoneinfo.ZoneInfo) -> tuple[int | None, list[tuple[int, float]]]:
    """Generic JSON: (time ms or None, [(mapping index, scaled value)]).  A mapped path
    that is missing or not a number is a bad payload (the sender changed format)."""
    doc = _json(payload)
    time_ms = None
    if time_path:
        try:
            time_ms = _parse_time(lookup(doc, time_path), time_format, tz)
        except KeyError:
            raise BadPayload(f"no timestamp at {time_path!r}") from None
    out = []
    for i, m in enumerate(mapping):
        try:
            raw = lookup(doc, m.path)
        except KeyError:
            raise BadPayload(f"no value at {m.path!r}") from None
        v = _number(raw)
        if v is None:
            raise BadPayload(f"{m.path!r} is {raw!r}, not a number")
        out.append((i, v * m.scale))
    return time_ms, out
