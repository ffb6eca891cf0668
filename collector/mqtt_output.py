"""MQTT output: republish normalised readings for other systems.

Topic tree: `<prefix>/<channel>/<quantity>`, prefix `mieruka/{site}` by default
(the site name with `/ + #` replaced by `_`).  Payload, one JSON object per reading:

    {"time": "2026-04-01T00:00:00.000Z", "channel": "pm1.total_act_power",
     "quantity": "power_kw", "unit": "kW", "value": 12.5, "quality": "ok",
     "meter": "pm1"}

`value` is null when quality is not "ok" (timeout, exception, out_of_range,
stale, error).  Readings are published after the store confirmed them (so the
output never shows what storage lost), QoS as configured (default 1).
"""
from __future__ import annotations

import json
import logging
import re

import numpy as np

from mieruka.models import Quality, ReadingBatch

from .mqtt import make_client
from .mqtt_config import MqttSection

log = logging.getLogger(__name__)
_TOPIC_BAD = re.compile(r"[/+#\s]")


def reading_payloads(batch: ReadingBatch, infos: dict, prefix: str) -> list[tuple[str, str]]:
    """(topic, JSON payload) for every reading of a batch."""
    out = []
    times = np.datetime_as_string(batch.time, unit="ms")
    for t, ch, v, q in zip(times.tolist(), batch.channel.tolist(), batch.value.tolist(), batch.quality.tolist()):
        info = infos.get(ch)
        quantity = info.quantity if info else "value"
        doc = {"time": t + "Z", "channel": ch, "quantity": quantity, "unit": info.unit if info else None,
               "value": v if (q == Quality.OK and v == v) else None, "quality": Quality(q).name.lower(),
               "meter": info.meter if info else None}
        out.append((f"{prefix}/{_TOPIC_BAD.sub('_', ch)}/{quantity}", json.dumps(doc, ensure_ascii=False)))
    return out


class MqttOutput:
    def __init__(self, cfg, section: MqttSection, infos) -> None:
        self.out = section.output
        self.broker = section.broker(self.out.broker)
        self.prefix = self.out.prefix.replace("{site}", _TOPIC_BAD.sub("_", cfg.site.name)).rstrip("/")
        self.infos = infos                    # callable -> {channel: ChannelInfo}
        cid = (self.broker.client_id or f"mieruka-{cfg.site.name}-{self.broker.id}") + "-out"
        self.client = make_client(self.broker, _TOPIC_BAD.sub("-", cid)[:64])
        self.client.manual_ack_set(False)
        self.published = 0

    def start(self) -> None:
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s)
        self.client.loop_start()

    def publish(self, batch: ReadingBatch) -> None:
        for topic, payload in reading_payloads(batch, self.infos(), self.prefix):
            self.client.publish(topic, payload, qos=self.out.qos, retain=self.out.retain)
        self.published += len(batch)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
