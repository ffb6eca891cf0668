"""Decoders (Shelly Gen2+, Tasmota, generic JSON) and the [mqtt] config section."""
from __future__ import annotations

import re

import json
import subprocess
import tomllib
import zoneinfo

import numpy as np
import pytest

from mieruka.collector.mqtt import MqttInput
from mieruka.collector.mqtt_config import load_mqtt
from mieruka.collector.mqtt_decoders import BadPayload, ShellyDecoder, decode_json, decode_tasmota
from mieruka.errors import ConfigError
from mieruka.site import load_site, parse_site
from helpers.servers import MIERUKA

TOKYO = zoneinfo.ZoneInfo("Asia/Tokyo")
PRO3EM = {"id": 0, "a_current": 4.029, "a_voltage": 236.1, "a_act_power": 951.2, "a_aprt_power": 951.9,
          "a_pf": 1, "a_freq": 50, "b_current": 4.027, "b_voltage": 236.201, "b_act_power": -951.1,
          "c_current": 3.03, "c_voltage": 236.4, "c_act_power": 715.4, "n_current": None,
          "total_current": 11.086, "total_act_power": 715.5, "total_aprt_power": 2617.3,
          "user_calibrated_phase": []}


def values(d) -> dict[str, tuple[str, float]]:
    return {f: (q, v) for f, q, v in d.values}


def test_shelly_full_status_in_quantity_units():
    d = ShellyDecoder()("shellypro3em-c8f09e8a1b2c/status/em:0", json.dumps(PRO3EM).encode())
    v = values(d)
    assert d.device == "shellypro3em-c8f09e8a1b2c" and d.time_ms is None
    assert v["total_act_power"] == ("power_kw", pytest.approx(0.7155))
    assert v["b_act_power"] == ("power_kw", pytest.approx(-0.9511))       # export stays negative
    assert v["a_voltage"] == ("voltage_v", 236.1) and v["a_pf"] == ("power_factor", 1.0)
    assert "n_current" not in v and "total_aprt_power" not in v and "id" not in v


def test_shelly_notify_status_is_overlaid_on_the_last_full_status():
    dec = ShellyDecoder()
    dec("dev1/status/em:0", json.dumps(PRO3EM).encode())
    frame = {"src": "dev1", "dst": "dev1/events", "method": "NotifyStatus",
             "params": {"ts": 1716960000.25, "em:0": {"id": 0, "a_act_power": 100.0}}}
    d = dec("dev1/events/rpc", json.dumps(frame).encode())
    v = values(d)
    assert d.time_ms == 1716960000250
    assert v["a_act_power"][1] == pytest.approx(0.1)                      # the change
    assert v["total_act_power"][1] == pytest.approx(0.7155)               # the rest from the full status
    # a later full status replaces the overlay; an event that is not a status carries nothing
    assert dec("dev1/events/rpc", b'{"method":"NotifyEvent","params":{"ts":1,"events":[]}}').values == []


def test_shelly_pro_em_channels_and_energy_counters_in_kwh():
    dec = ShellyDecoder()
    d = dec("proem/status/em1:1", b'{"id":1,"current":22.78,"voltage":224.6,"act_power":5080.3,'
                                   b'"aprt_power":5142.4,"pf":0.99,"freq":50.0}')
    assert values(d)["ch1_act_power"] == ("power_kw", pytest.approx(5.0803))
    d = dec("proem/status/em1data:1", b'{"id":1,"total_act_energy":6644.90,"total_act_ret_energy":2595.26}')
    assert values(d) == {"ch1_total_act_energy": ("energy_kwh", pytest.approx(6.6449)),
                         "ch1_total_act_ret_energy": ("energy_kwh", pytest.approx(2.59526))}
    d = dec("pro3em/status/emdata:0", b'{"id":0,"a_total_act_energy":1000,"total_act":3000.5,"total_act_ret":7}')
    assert values(d)["total_act"] == ("energy_kwh", pytest.approx(3.0005))


@pytest.mark.parametrize("topic,payload,reason", [
    ("d/status/em:0", b"{oops", "not JSON"),
    ("d/status/em:0", b"[1,2]", "not a JSON object"),
    ("d/status/switch:0", b'{"apower":3}', "not an energy meter"),
    ("d/status/em:0", b'{"id":0,"a_act_power":"x"}', "no numeric"),
    ("d/events/rpc", b'{"method":"NotifyStatus"}', "params"),
])
def test_shelly_bad_payloads_say_why(topic, payload, reason):
    with pytest.raises(BadPayload, match=reason):
        ShellyDecoder()(topic, payload)


def test_tasmota_energy_time_is_site_local_time():
    msg = (b'{"Time":"2021-07-10T12:00:00","ENERGY":{"TotalStartTime":"2021-07-10T11:54:41","Total":0.003,'
           b'"Yesterday":0.000,"Today":0.003,"Period":0,"Power":22,"ApparentPower":24,"ReactivePower":11,'
           b'"Factor":0.90,"Voltage":246,"Current":0.098}}')
    d = decode_tasmota("tele/plug-7/SENSOR", msg, TOKYO)
    assert d.device == "plug-7"
    assert d.time_ms == int(np.datetime64("2021-07-10T03:00:00", "ms").astype(np.int64))   # 12:00 JST
    v = values(d)
    assert v["power"] == ("power_kw", pytest.approx(0.022)) and v["total"] == ("energy_kwh", 0.003)
    assert v["reactive_power"] == ("reactive_power_kvar", pytest.approx(0.011))
    multi = decode_tasmota("tele/pow2/SENSOR", b'{"Time":"2021-07-10T12:00:00","ENERGY":{"Power":[10,20]}}', TOKYO)
    assert values(multi) == {"power_1": ("power_kw", 0.01), "power_2": ("power_kw", 0.02)}
    assert decode_tasmota("tele/x/SENSOR", b'{"Time":"2021-07-10T12:00:00","DS18B20":{"Temperature":20}}', TOKYO).values == []
    with pytest.raises(BadPayload, match="timestamp"):
        decode_tasmota("tele/x/SENSOR", b'{"Time":"yesterday","ENERGY":{"Power":1}}', TOKYO)


class _Map:
    def __init__(self, path, scale=1.0):
        self.path, self.scale = path, scale


def test_generic_json_paths_scales_and_time_formats():
    doc = b'{"t":"2026-04-01 09:00:00","data":[{"w":1500}],"kwh":{"import":12.5}}'
    t, vals = decode_json(doc, [_Map("data.0.w", 0.001), _Map("kwh.import")], "t", "%Y-%m-%d %H:%M:%S", TOKYO)
    assert t == int(np.datetime64("2026-04-01T00:00:00", "ms").astype(np.int64))
    assert vals == [(0, 1.5), (1, 12.5)]
    assert decode_json(b'{"ts":1700000000}', [], "ts", "unix_s", TOKYO)[0] == 1_700_000_000_000
    assert decode_json(b'{"ts":"2026-04-01T00:00:00Z"}', [], "ts", "iso", TOKYO)[0] == \
        int(np.datetime64("2026-04-01T00:00:00", "ms").astype(np.int64))
    with pytest.raises(BadPayload, match="no value at 'data.1.w'"):
        decode_json(doc, [_Map("data.1.w")], None, "iso", TOKYO)
    with pytest.raises(BadPayload, match="not a number"):
        decode_json(b'{"w":"high"}', [_Map("w")], None, "iso", TOKYO)
    with pytest.raises(BadPayload, match="no timestamp"):
        decode_json(b'{"w":1}', [_Map("w")], "time", "iso", TOKYO)


SITE = """
[site]
name = "t"
[mqtt]
[[mqtt.brokers]]
url = "mqtt://127.0.0.1:1883"
[[mqtt.subscriptions]]
topic = "+/status/em:0"
decoder = "shelly"
fields = ["total_act_power"]
equipment = "press line"
[[mqtt.subscriptions]]
topic = "factory/+/+/json"
decoder = "json"
[[mqtt.subscriptions.mapping]]
path = "p"
channel = "{l1}-{l2}.power"
quantity = "power_kw"
"""


def cfg_of(text: str):
    return parse_site(tomllib.loads(text), "site.toml")


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("mqtt://127.0.0.1:1883", "http://x"), "mqtt.brokers[0].url: 'http://x' is not mqtt://"),
    (lambda t: t.replace('decoder = "json"', 'decoder = "jsn"'), "mqtt.subscriptions[1].decoder"),
    (lambda t: t.replace("factory/+/+/json", "factory/a+/json"), "not a valid MQTT topic filter"),
    (lambda t: t.replace("{l1}-{l2}", "{dev}"), "unknown placeholder {dev}"),
    (lambda t: t.replace('quantity = "power_kw"', 'quantity = "power_w"'), "unknown quantity 'power_w'"),
    (lambda t: t.split("[[mqtt.subscriptions.mapping]]")[0], "decoder 'json' needs `mapping`"),
])
def test_config_errors_name_file_and_key(edit, message, tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(edit(SITE))
    with pytest.raises(ConfigError) as e:
        load_mqtt(load_site(path))
    # FILE: line N: mqtt.<key>: ... (the line of the key in the site config)
    assert re.match(rf"{re.escape(str(path.resolve()))}: line \d+: mqtt", str(e.value)) and message in str(e.value)


def test_collect_refuses_a_bad_mqtt_section_with_one_line(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text(SITE.replace('decoder = "shelly"', 'decoder = "shely"') + f'\n[storage]\n')
    r = subprocess.run([*MIERUKA, "collect", "--config", str(path), "--duration", "1"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "mqtt.subscriptions[0].decoder" in r.stderr


def test_input_turns_messages_into_tagged_channels_and_counts_bad_ones():
    cfg = cfg_of(SITE)
    inp = MqttInput(cfg)
    msgs = [("default", "shellypro3em-1/status/em:0", json.dumps(PRO3EM).encode(), 1, 1, 1000.0),
            ("default", "shellypro3em-1/status/em:0", json.dumps(PRO3EM).encode(), 2, 1, 1000.0),  # same ms
            ("default", "factory/hall/press/json", b'{"p": 3.5}', 3, 1, 1000.5),
            ("default", "factory/hall/press/json", b'{"q": 1}', 4, 1, 1000.6),
            ("default", "shellypro3em-2/status/em:0", b"garbage", 5, 1, 1001.0)]
    batch = inp.decode_messages(msgs)
    assert batch.channel.tolist() == ["shellypro3em-1.total_act_power", "shellypro3em-1.total_act_power",
                                      "hall-press.power"]
    t = batch.time.astype(np.int64)
    assert t[0] == 1_000_000 and t[1] == 1_000_001           # receipt stamps never collide
    assert inp.bad_payloads == 2 and inp.stats["shellypro3em-2"].errors["bad_payload"] == 1
    info = {i.id: i for i in inp.channel_infos()}
    assert info["shellypro3em-1.total_act_power"].equipment == "press line"
    assert info["shellypro3em-1.total_act_power"].meter == "shellypro3em-1"
    assert info["hall-press.power"].quantity == "power_kw"


def test_mqtt_meters_are_refused_with_a_pointer_to_the_mqtt_section(tmp_path):
    path = tmp_path / "site.toml"
    path.write_text('[site]\nname = "t"\n[[meters]]\nid = "sh1"\nprotocol = "mqtt"\ntopic = "x/status/em:0"\n')
    with pytest.raises(ConfigError, match=r"meters\[0:sh1\]\.protocol: MQTT meters are configured as \[\[mqtt.subscriptions\]\]"):
        MqttInput(load_site(path))



def test_values_no_meter_can_produce_are_flagged_like_modbus_and_recordings():
    """One set of physical bounds (mieruka.quantities) for every path (issue 10, item 4)."""
    from mieruka.models import Quality
    inp = MqttInput(cfg_of(SITE))
    msgs = [("default", "factory/hall/press/json", b'{"p": 3.5}', 1, 1, 1000.0),
            ("default", "factory/hall/press/json", b'{"p": 1e12}', 2, 1, 1001.0),
            ("default", "factory/hall/press/json", b'{"p": -2e6}', 3, 1, 1002.0)]
    batch = inp.decode_messages(msgs)
    assert batch.quality.tolist() == [Quality.OK, Quality.OUT_OF_RANGE, Quality.OUT_OF_RANGE]
    assert batch.value[0] == 3.5 and np.isnan(batch.value[1:]).all()
