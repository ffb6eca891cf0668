"""The MQTT input in process against a real mosquitto: acknowledgement only after
emit returned, retry when the buffer cannot be written."""
from __future__ import annotations

import asyncio
import json
import tomllib

import pytest

from mieruka.collector.mqtt import MqttInput
from mieruka.site import parse_site
from helpers.servers import Mosquitto


def cfg_for(url: str):
    text = f"""
[site]
name = "input test"
[mqtt]
[[mqtt.brokers]]
url = "{url}"
client_id = "mieruka-input-test"
reconnect_min_s = 1
reconnect_max_s = 1
[[mqtt.subscriptions]]
topic = "+/events/rpc"
decoder = "shelly"
"""
    return parse_site(tomllib.loads(text), "site.toml")


def frames(n: int) -> list[str]:
    return [json.dumps({"method": "NotifyStatus", "params": {"ts": 1_780_000_000 + i, "em:0": {"total_act_power": 100.0 + i}}})
            for i in range(n)]


async def run_until(inp: MqttInput, emit, cond, timeout_s: float = 60.0) -> None:
    task = asyncio.create_task(inp.run(emit))
    try:
        for _ in range(int(timeout_s / 0.05)):
            if cond():
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("condition not met")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def connected(inp: MqttInput, timeout_s: float = 60.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if inp.brokers["default"].subscribed:     # the broker acknowledged the subscription
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the broker never acknowledged the subscription")


@pytest.mark.slow
def test_unacknowledged_messages_come_back_and_emit_failures_are_retried(tmp_path):
    mq = Mosquitto(tmp_path).start()
    try:
        cfg = cfg_for(mq.url)

        async def main():
            # 1) emit never returns (as if the disk stalled): the input is stopped with 5 messages unacknowledged
            first = MqttInput(cfg)
            stalled = asyncio.Event()
            seen = []

            async def stall(batch):
                seen.append(len(batch))
                await stalled.wait()

            task = asyncio.create_task(first.run(stall))
            await connected(first)
            await asyncio.to_thread(mq.pub, "pro3em-1/events/rpc", frames(5))
            for _ in range(1200):                 # up to 60 s on a loaded machine
                if seen:
                    break
                await asyncio.sleep(0.05)
            assert seen
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            # 2) same client id again (persistent session): the broker sends them again; the buffer
            #    fails twice ("disk full") before it takes them; nothing is lost, nothing doubled
            second = MqttInput(cfg)
            got, calls = [], []

            def flaky(batch):
                calls.append(len(batch))
                if len(calls) <= 2:
                    raise OSError(28, "No space left on device")
                got.extend(zip(batch.time.tolist(), batch.value.tolist()))

            await run_until(second, flaky, lambda: len(got) >= 5)
            return second, got, calls

        second, got, calls = asyncio.run(main())
        assert second.emit_errors == 2 and calls[0] == calls[2]            # the same batch retried
        assert len(got) == 5 and sorted(v for _, v in got) == pytest.approx([0.1, 0.101, 0.102, 0.103, 0.104])
        assert len({t for t, _ in got}) == 5                                # message times, not receipt
    finally:
        mq.stop()


def test_subscribed_is_reported_once_the_broker_acknowledged(tmp_path, caplog):
    """`subscribed` (stats, status file, log line) means the SUBACK arrived: the tests publish
    only then. (mosquitto 2.0 grants an ACL-denied subscription and filters later, so the
    refusal branch is not reachable with the Debian broker.)"""
    mq = Mosquitto(tmp_path).start()
    try:
        async def main():
            inp = MqttInput(cfg_for(mq.url))
            assert not inp.brokers["default"].subscribed
            task = asyncio.create_task(inp.run(lambda batch: True))
            await connected(inp)
            st = inp.brokers["default"]
            state = (st.connected, st.subscribed, st.last_error)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            inp.close()
            return state, st.subscribed

        with caplog.at_level("INFO", logger="mieruka"):
            (conn, sub, err), after = asyncio.run(main())
        assert conn and sub and err is None and not after       # and no longer once disconnected
        assert f"MQTT subscribed on {mq.url}" in caplog.text
    finally:
        mq.stop()
