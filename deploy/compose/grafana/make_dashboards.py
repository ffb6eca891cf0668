"""Write the Grafana dashboards of the compose stack (dashboards/*.json).

The JSON files are generated so that every panel uses the one provisioned data
source and the names mieruka's InfluxDB sink writes (mieruka/store/influx.py):
measurement `energy` (the `${measurement}` variable), fields `value` and `quality`,
tags site, meter, channel, quantity, equipment, system, equipment_kind.  Run it after
changing a query:  python deploy/compose/grafana/make_dashboards.py
"""
from __future__ import annotations

import json
from pathlib import Path

DS = {"type": "influxdb", "uid": "mieruka-influxdb"}
OUT = Path(__file__).parent / "dashboards"
TZ = 'import "timezone"\noption location = timezone.location(name: "Asia/Tokyo")\n'

FROM = ('from(bucket: "${bucket}")\n  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n'
        '  |> filter(fn: (r) => r._measurement == "${measurement}" and r._field == "value")\n')


def q(quantity: str, extra: str = "") -> str:
    """The readings of one quantity (optionally a further filter)."""
    f = f'  |> filter(fn: (r) => r.quantity == "{quantity}"{(" and " + extra) if extra else ""})\n'
    return FROM + f


def target(flux: str, ref: str = "A") -> dict:
    return {"refId": ref, "datasource": DS, "query": flux.rstrip("\n")}


_id = 0


def panel(title: str, kind: str, targets: list[dict], x: int, y: int, w: int = 12, h: int = 8,
          unit: str | None = None, description: str = "", **extra) -> dict:
    global _id
    _id += 1
    p = {"id": _id, "type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
         "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []}, "options": {}}
    p.update(extra)
    return p


def var_const(name: str, value: str, label: str) -> dict:
    return {"name": name, "label": label, "type": "constant", "query": value, "hide": 2}


def var_text(name: str, value: str, label: str) -> dict:
    return {"name": name, "label": label, "type": "textbox", "query": value,
            "current": {"text": value, "value": value}}


def var_tag(name: str, tag: str, predicate: str, label: str) -> dict:
    flux = ('import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "${bucket}", tag: "' + tag + '", '
            'predicate: (r) => r._measurement == "${measurement}" and ' + predicate + ', start: -30d)')
    return {"name": name, "label": label, "type": "query", "datasource": DS, "query": flux, "definition": flux,
            "multi": True, "includeAll": True, "refresh": 2, "sort": 1}


def dashboard(uid: str, title: str, panels: list[dict], variables: list[dict], description: str,
              time_from: str = "now-24h") -> dict:
    base = [var_const("bucket", "mieruka", "bucket"), var_const("measurement", "energy", "measurement")]
    return {"uid": uid, "title": title, "description": description, "tags": ["mieruka"], "timezone": "Asia/Tokyo",
            "schemaVersion": 39, "version": 1, "editable": False, "refresh": "1m",
            "time": {"from": time_from, "to": "now"}, "templating": {"list": base + variables},
            "annotations": {"list": []}, "panels": panels}


def overview() -> dict:
    incomer = 'r.equipment_kind == "incomer"'
    return dashboard("mieruka-overview", "mieruka: site overview", [
        panel("Site power now (incomers)", "stat", [target(
            q("power_kw", incomer) + '  |> last()\n  |> group()\n  |> sum()')], 0, 0, 6, 5, unit="kwatt"),
        panel("Energy in range (incomers)", "stat", [target(
            q("power_kw", incomer) + '  |> integral(unit: 1h)\n  |> group()\n  |> sum()')], 6, 0, 6, 5,
            unit="kwatth", description="kWh: the integral of the incomers' active power over the time range"),
        panel("Compressed air now", "stat", [target(
            q("air_flow_m3min") + '  |> last()\n  |> group()\n  |> sum()')], 12, 0, 6, 5, unit="m3/min"),
        panel("Readings with a quality problem", "stat", [target(
            FROM.replace('r._field == "value"', 'r._field == "quality"')
            + '  |> filter(fn: (r) => r._value != 0)\n  |> group()\n  |> count()')], 18, 0, 6, 5,
            description="quality != 0: meter errors, out-of-range values (see `mieruka status`)"),
        panel("Active power by channel", "timeseries", [target(
            q("power_kw") + '  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n'
            '  |> keep(columns: ["_time", "_value", "channel"])')], 0, 5, 24, 10, unit="kwatt"),
    ], [], "Where the power goes right now, and whether the meters are healthy.")


def breakers() -> dict:
    sel = 'contains(value: r.channel, set: ${channel:json})'
    return dashboard("mieruka-breakers", "mieruka: breakers", [
        panel("Power by breaker", "timeseries", [target(
            q("power_kw", sel) + '  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n'
            '  |> keep(columns: ["_time", "_value", "channel"])')], 0, 0, 24, 10, unit="kwatt"),
        panel("Energy by breaker in range", "bargauge", [target(
            q("power_kw", sel) + '  |> integral(unit: 1h)\n  |> keep(columns: ["_value", "channel"])')],
            0, 10, 12, 10, unit="kwatth", options={"orientation": "horizontal"}),
        panel("Energy by equipment kind in range", "piechart", [target(
            q("power_kw", 'r.equipment_kind != "incomer"') + '  |> integral(unit: 1h)\n'
            '  |> group(columns: ["equipment_kind"])\n  |> sum()')], 12, 10, 12, 10, unit="kwatth"),
    ], [var_tag("channel", "channel", 'r.quantity == "power_kw"', "breaker channel")],
        "Breaker-level circuits: load curves and kWh per circuit and per kind of equipment.")


def compressed_air() -> dict:
    comp = 'r.equipment_kind == "compressor"'
    spec = (FROM + '  |> filter(fn: (r) => (r.quantity == "power_kw" and ' + comp + ') or r.quantity == "air_flow_m3min")\n'
            '  |> aggregateWindow(every: 5m, fn: mean, createEmpty: false)\n'
            '  |> group(columns: ["quantity"])\n  |> aggregateWindow(every: 5m, fn: sum, createEmpty: false)\n'
            '  |> group()\n  |> pivot(rowKey: ["_time"], columnKey: ["quantity"], valueColumn: "_value")\n'
            '  |> filter(fn: (r) => exists r.power_kw and exists r.air_flow_m3min and r.air_flow_m3min > 0.05)\n'
            '  |> map(fn: (r) => ({_time: r._time, _value: r.power_kw / r.air_flow_m3min}))')
    return dashboard("mieruka-air", "mieruka: compressed air", [
        panel("Air flow", "timeseries", [target(
            q("air_flow_m3min") + '  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n'
            '  |> keep(columns: ["_time", "_value", "channel"])')], 0, 0, 12, 8, unit="m3/min"),
        panel("Line pressure", "timeseries", [target(
            q("pressure_mpa") + '  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n'
            '  |> keep(columns: ["_time", "_value", "channel"])')], 12, 0, 12, 8, unit="MPa"),
        panel("Compressor power", "timeseries", [target(
            q("power_kw", comp) + '  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n'
            '  |> keep(columns: ["_time", "_value", "channel"])')], 0, 8, 12, 8, unit="kwatt"),
        panel("Specific power (kW per m3/min)", "timeseries", [target(spec)], 12, 8, 12, 8,
              description="compressor kW / free-air flow, 5-minute means; rising at night or at low flow "
                          "points to leaks and unloaded running (mieruka's air-leak detector quantifies it)"),
    ], [], "Compressed air: flow, pressure, compressor power and specific power.")


def demand() -> dict:
    d30 = (q("power_kw", 'r.equipment_kind == "incomer"')
           + '  |> aggregateWindow(every: 30m, fn: mean, timeSrc: "_start", createEmpty: false)\n'
           '  |> group()\n  |> aggregateWindow(every: 30m, fn: sum, timeSrc: "_start", createEmpty: false)')
    return dashboard("mieruka-demand", "mieruka: demand (30-minute)", [
        panel("30-minute demand", "timeseries", [target(d30)], 0, 0, 24, 10, unit="kwatt",
              description="Japanese demand: the mean active power of each 30-minute slot (on the clock) of the "
                          "incomers; the red line is the contract demand (契約電力) set above",
              fieldConfig={"defaults": {"unit": "kwatt", "custom": {"drawStyle": "bars"},
                                        "thresholds": {"mode": "absolute", "steps": [
                                            {"color": "green", "value": None},
                                            {"color": "red", "value": 500}]}}, "overrides": []}),
        panel("Highest demand in range", "stat", [target(TZ + d30 + '\n  |> max()')], 0, 10, 8, 5, unit="kwatt"),
        panel("Highest demand vs contract", "gauge", [target(
            TZ + d30 + '\n  |> max()\n  |> map(fn: (r) => ({r with _value: r._value / float(v: ${contract_kw}) * 100.0}))')],
            8, 10, 8, 5, unit="percent"),
    ], [var_text("contract_kw", "500", "contract demand kW")],
        "30-minute demand (デマンド) of the incomers against the contract demand.", time_from="now-7d")


def co2_monthly() -> dict:
    kwh_month = (TZ + q("power_kw", 'r.equipment_kind == "incomer"')
                 + '  |> aggregateWindow(every: 1mo, fn: (column, tables=<-) => tables |> integral(unit: 1h), '
                 'timeSrc: "_start", createEmpty: false)\n  |> group()\n'
                 '  |> aggregateWindow(every: 1mo, fn: sum, timeSrc: "_start", createEmpty: false)')
    return dashboard("mieruka-co2", "mieruka: CO2 by month", [
        panel("Electricity by month", "barchart", [target(kwh_month)], 0, 0, 12, 9, unit="kwatth"),
        panel("CO2 by month (electricity)", "barchart", [target(
            kwh_month + '\n  |> map(fn: (r) => ({r with _value: r._value * float(v: ${factor_t_per_kwh})}))')],
            12, 0, 12, 9, unit="t",
            description="t-CO2 = kWh x the factor set above (default: 東京電力エナジーパートナー, FY2022 results, "
                        "adjusted company-wide 0.000451 t-CO2/kWh, MOE/METI list for reports submitted in 2024). "
                        "The reportable figures (Scope 1/2, fiscal year, bills) come from mieruka's CO2 sheet: "
                        "`mieruka co2` or GET /api/v1/co2"),
        panel("Cost by month", "barchart", [target(
            kwh_month + '\n  |> map(fn: (r) => ({r with _value: r._value * float(v: ${jpy_per_kwh})}))')],
            0, 9, 24, 8, unit="currencyJPY"),
    ], [var_text("factor_t_per_kwh", "0.000451", "t-CO2 per kWh"),
        var_text("jpy_per_kwh", "27", "yen per kWh")],
        "Monthly electricity, t-CO2 and yen from the incomers (site time zone months).", time_from="now-1y")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, make in [("site-overview", overview), ("breakers", breakers), ("compressed-air", compressed_air),
                       ("demand", demand), ("co2-by-month", co2_monthly)]:
        (OUT / f"{name}.json").write_text(json.dumps(make(), indent=2, ensure_ascii=False) + "\n", "utf-8")


if __name__ == "__main__":
    main()
