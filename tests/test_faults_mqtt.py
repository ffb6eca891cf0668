"""Hostile MQTT messages against the input: a message that cannot be decoded, or that
carries a time no meter clock can have, is counted and acknowledged; it never stops the
input (a persistent session would hand the same poison message back after every restart)."""
from __future__ import annotations

import asyncio
import json
import time
import tomllib

import numpy as np
import pytest

from mieruka.collector.mqtt import MqttInput
from mieruka.site import parse_site
from helpers.servers import Mosquitto

SITE = """
[site]
name = "faults"
[mqtt]
[[mqtt.brokers]]
url = "{url}"
client_id = "mieruka-faults-test"
reconnect_min_s = 1
reconnect_max_s = 1
[[mqtt.subscriptions]]
topic = "+/events/rpc"
decoder = "shelly"
[[mqtt.subscriptions]]
topic = "tele/+/SENSOR"
decoder = "tasmota"
[[mqtt.subscriptions]]
topic = "plant/+/meter"
decoder = "json"
time_path = "ts"
time_format = "unix_s"
[[mqtt.subscriptions.mapping]]
path = "p"
channel = "{device}.power"
quantity = "power_kw"
"""


def cfg(url: str = "mqtt://127.0.0.1:1"):
    return parse_site(tomllib.loads(SITE.replace("{url}", url)), "site.toml")


def rpc(ts, power_w: float) -> bytes:
    return json.dumps({"method": "NotifyStatus", "params": {"ts": ts, "em:0": {"total_act_power": power_w}}}).encode()


def test_impossible_message_times_are_stamped_on_receipt_and_said_in_words():
    inp = MqttInput(cfg())
    now = time.time()
    good_ts = now - 5
    msgs = [("default", "sh1/events/rpc", rpc(1e20, 100.0), 1, 1, now),           # past int64 ms
            ("default", "tele/tas/SENSOR", b'{"Time":"1970-01-01T00:00:07","ENERGY":{"Power":50}}', 2, 1, now),
            ("default", "plant/p1/meter", b'{"ts": 32503680000, "p": 1.5}', 3, 1, now),   # year 3000
            ("default", "plant/p2/meter", b'{"ts": -1e300, "p": 2.5}', 4, 1, now),
            ("default", "tele/tas2/SENSOR", b'{"Time":"9999-12-31T23:59:59","ENERGY":{"Power":5}}', 5, 1, now),
            ("default", "sh2/events/rpc", rpc(good_ts, 200.0), 6, 1, now)]       # a right clock is kept
    batch = inp.decode_messages(msgs)
    got = dict(zip(batch.channel.tolist(), batch.time.astype(np.int64).tolist()))
    assert set(got) == {"sh1.total_act_power", "tas.power", "p1.power", "p2.power", "tas2.power",
                        "sh2.total_act_power"}
    for ch in ("sh1.total_act_power", "tas.power", "p1.power", "p2.power", "tas2.power"):
        assert abs(got[ch] - now * 1000) < 1000, ch                # the gateway's time of receipt
    assert got["sh2.total_act_power"] == round(good_ts * 1000)
    assert inp.clock_errors == 5 and inp.bad_payloads == 0
    st = inp.stats["tas"]
    assert st.errors["clock"] == 1 and st.problem.startswith("device clock wrong: message time 1970-01-01T00:00:07+09:00")


def test_a_message_no_parser_can_read_is_a_bad_payload_not_an_exception():
    inp = MqttInput(cfg())
    now = time.time()
    deep = b"[" * 200_000 + b"]" * 200_000                       # RecursionError in json
    huge = b'{"ts": 1, "p": 1, "pad": "' + b"x" * (2 << 20) + b'"}'
    msgs = [("default", "plant/p1/meter", deep, 1, 1, now), ("default", "plant/p1/meter", huge, 2, 1, now),
            ("default", "sh1/events/rpc", b'\xff\xfe\x00\x01', 3, 1, now),
            ("default", "plant/p1/meter", b'{"ts": "nan", "p": 1}', 4, 1, now),
            ("default", "plant/p1/meter", b'{"ts": %d, "p": 1.25}' % int(now), 5, 1, now)]
    batch = inp.decode_messages(msgs)
    assert batch.value.tolist() == [1.25]
    assert inp.bad_payloads == 4 and inp.stats["p1"].errors["bad_payload"] == 3


@pytest.mark.slow
def test_poison_messages_on_a_persistent_session_never_stop_the_input(tmp_path):
    """Before: one message with `ts: 1e20` raised OverflowError in the input task, the collector
    stopped, and the broker sent the unacknowledged message again at every restart."""
    mq = Mosquitto(tmp_path).start()
    try:
        site = cfg(mq.url)

        async def main():
            inp = MqttInput(site)
            got = []
            task = asyncio.create_task(inp.run(lambda b: got.extend(zip(b.channel.tolist(), b.value.tolist()))))
            try:
                for _ in range(1200):                             # subscriptions acknowledged (SUBACK)
                    if inp.brokers["default"].subscribed:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(mq.pub, "sh1/events/rpc", [rpc(1e20, 100.0).decode()])
                await asyncio.to_thread(mq.pub, "plant/p1/meter", ["[" * 100_000 + "]" * 100_000])
                await asyncio.to_thread(mq.pub, "plant/p1/meter", ['{"ts": %d, "p": 7.5}' % int(time.time())])
                for _ in range(400):
                    if ("p1.power", 7.5) in got or task.done():
                        break
                    await asyncio.sleep(0.05)
                assert not task.done(), task.exception()
                return inp, got
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

        inp, got = asyncio.run(main())
        assert ("p1.power", 7.5) in got and ("sh1.total_act_power", 0.1) in got
        assert inp.clock_errors == 1 and inp.bad_payloads == 1
    finally:
        mq.stop()


def test_a_broker_that_cannot_be_reached_is_said_in_the_status(caplog):
    """Before: a broker down at start left `last error` empty and nothing in the log."""
    from helpers.net import free_port
    inp = MqttInput(cfg(f"mqtt://127.0.0.1:{free_port()}"))       # nobody listens there

    async def main():
        task = asyncio.create_task(inp.run(lambda b: None))
        try:
            for _ in range(400):
                if inp.brokers["default"].last_error:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    st = inp.brokers["default"]
    assert not st.connected and st.last_error.startswith("cannot connect to mqtt://127.0.0.1:")
    assert "cannot be reached" in caplog.text


@pytest.mark.slow
def test_retained_messages_without_a_time_are_not_stored_again_at_every_subscribe(tmp_path):
    """Before: the broker replays retained messages at every (re)subscribe; one without a time
    of its own was stored again each time, stamped 'now', with a value that may be hours old."""
    mq = Mosquitto(tmp_path).start()
    try:
        site = cfg(mq.url)
        mq.pub("tele/old/SENSOR", ['{"ENERGY": {"Power": 111}}'], "-r")                 # no time: skipped
        mq.pub("plant/p9/meter", ['{"ts": %d, "p": 2.5}' % int(time.time() - 60)], "-r")  # its own time: kept

        async def main():
            got = []
            for _ in range(2):                     # two connects: the retained ones come twice
                inp = MqttInput(site)
                task = asyncio.create_task(inp.run(
                    lambda b: got.extend(zip(b.channel.tolist(), b.value.tolist(), b.time.tolist()))))
                try:
                    for _ in range(400):
                        if inp.brokers["default"].connected and inp.messages >= 2:
                            break
                        await asyncio.sleep(0.05)
                    await asyncio.to_thread(mq.pub, "tele/old/SENSOR", ['{"ENERGY": {"Power": 222}}'])
                    for _ in range(400):
                        if any(v == 0.222 for _, v, _ in got[-3:]):
                            break
                        await asyncio.sleep(0.05)
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            return inp, got

        inp, got = asyncio.run(main())
        powers = [v for ch, v, _ in got if ch == "old.power"]
        assert powers == [0.222, 0.222]                                   # the live ones only
        p9 = {(v, t) for ch, v, t in got if ch == "p9.power"}
        assert len(p9) == 1 and inp.retained_skipped == 1                 # same time both times: one reading
    finally:
        mq.stop()


def test_with_the_gateway_clock_not_set_the_device_time_is_kept():
    inp = MqttInput(cfg())
    good_ts = time.time()
    batch = inp.decode_messages([("default", "sh1/events/rpc", rpc(good_ts, 100.0), 1, 1, 1000.0)])  # gateway: 1970
    assert batch.time.astype(np.int64).tolist() == [round(good_ts * 1000)] and inp.clock_errors == 0
