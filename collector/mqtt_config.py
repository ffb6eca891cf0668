"""The `[mqtt]` table of the site config: brokers, subscriptions, output.

One design for MQTT meters: the `[mqtt]` section lists brokers and
subscriptions; each subscription names a topic filter (wildcards allowed) and a
decoder, and turns what the decoder finds into channels whose ids come from a
template (`{device}.{field}` by default, where `{device}` is the device id the
decoder read from the topic).  A wildcard subscription therefore picks up every
Shelly on the broker without listing them.  `[[meters]]` with
`protocol = "mqtt"` are refused with a pointer here (one way to say one thing);
see docs/mqtt-influx.md.

Validated at start with `mieruka.site.validate_section`, so errors name the file
and key like the rest of the config.
"""
from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mieruka.ids import validate_id_template
from mieruka.site import check_quantity

_FORMAT_FIELD = re.compile(r"\{([^{}]*)\}")
TEMPLATE_KEYS = {"device", "field", "site", "topic"} | {f"l{i}" for i in range(10)}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, protected_namespaces=(), allow_inf_nan=False)


def _check_template(v: str | None) -> str | None:
    if v is None:
        return v
    for name in _FORMAT_FIELD.findall(v):
        if name not in TEMPLATE_KEYS:
            raise ValueError(f"unknown placeholder {{{name}}} in {v!r}; use {{device}}, {{field}}, "
                             "{site}, {topic} or {l0}..{l9} (topic levels)")
    return v


def _check_id_template(v: str) -> str:
    """Placeholders known, and the literal text follows the channel-id rule."""
    return validate_id_template(_check_template(v))


class Broker(_Model):
    id: str = "default"
    url: str = Field(description="mqtt://host:port or mqtts://host:port")
    username: str | None = None
    password: str | None = None
    client_id: str | None = Field(default=None, description="default: mieruka-<site name>-<broker id>")
    ca_file: str | None = Field(default=None, description="CA certificate (PEM) to verify the broker (mqtts)")
    cert_file: str | None = Field(default=None, description="client certificate (PEM) for mutual TLS")
    key_file: str | None = None
    tls_insecure: bool = Field(default=False, description="do not check the broker's host name (test setups only)")
    keepalive_s: int = Field(default=30, ge=5)
    qos: Literal[0, 1] = 1
    clean_session: bool = Field(default=False, description="false keeps a persistent session: the broker "
                                "queues QoS 1 messages while we are away")
    reconnect_min_s: int = Field(default=1, ge=1)
    reconnect_max_s: int = Field(default=30, ge=1)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        u = urlsplit(v)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError(f"{v!r} is not mqtt://host[:port] or mqtts://host[:port]")
        try:
            u.port
        except ValueError:
            raise ValueError(f"{v!r}: bad port") from None
        return v

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    @property
    def user(self) -> str | None:
        # an empty `${MQTT_USER:-}` means "no login"
        return self.username or urlsplit(self.url).username or None


class JsonField(_Model):
    """Generic JSON decoder: where a value sits in the message and what it is."""

    path: str = Field(description="dotted path into the JSON document, list indexes as numbers: 'ENERGY.Power', 'data.0.v'")
    channel: str = Field(description="channel id or template, e.g. '{device}.power'")
    quantity: str
    unit: str | None = Field(default=None, description="unit of the value in the message (documentation; use `scale` to convert)")
    scale: float = Field(default=1.0, description="multiply the value by this to get the quantity's unit (W -> kW: 0.001)")
    _t = field_validator("channel")(_check_id_template)
    _quantity = field_validator("quantity")(check_quantity)


class Subscription(_Model):
    topic: str = Field(description="topic filter, MQTT wildcards + and # allowed")
    decoder: Literal["shelly", "tasmota", "json"]
    broker: str | None = Field(default=None, description="broker id (default: the first broker)")
    channel: str = Field(default="{device}.{field}", description="channel id template (shelly, tasmota)")
    meter: str = Field(default="{device}", description="meter tag template")
    device: str | None = Field(default=None, description="device id template (json decoder; default: first wildcard level)")
    fields: list[str] | None = Field(default=None, description="shelly/tasmota: keep only these decoded fields")
    mapping: list[JsonField] = Field(default_factory=list, description="json decoder: the values to take")
    time_path: str | None = Field(default=None, description="json decoder: path of the timestamp; none = receive time")
    time_format: str = Field(default="iso", description="unix_s | unix_ms | iso | a strptime pattern (without offset: site time)")
    equipment: str | None = None
    system: str | None = None
    equipment_kind: str | None = None
    _t = field_validator("device")(_check_template)
    _ids = field_validator("channel", "meter")(_check_id_template)

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        levels = v.split("/")
        if not v or any(("+" in lv and lv != "+") or ("#" in lv and lv != "#") for lv in levels) \
                or ("#" in levels[:-1]):
            raise ValueError(f"{v!r} is not a valid MQTT topic filter (+ and # must fill a whole level, # last)")
        return v

    @model_validator(mode="after")
    def _json_needs_mapping(self) -> "Subscription":
        if self.decoder == "json" and not self.mapping:
            raise ValueError("decoder 'json' needs `mapping` entries ([[mqtt.subscriptions.mapping]] path/channel/quantity)")
        if self.decoder != "json" and self.mapping:
            raise ValueError(f"`mapping` is for decoder 'json'; decoder {self.decoder!r} knows its fields")
        return self


class Output(_Model):
    """Republish normalised readings (docs/mqtt-influx.md, "Output")."""

    enabled: bool = True
    broker: str | None = None
    prefix: str = "mieruka/{site}"
    qos: Literal[0, 1] = 1
    retain: bool = False


class MqttSection(_Model):
    brokers: list[Broker] = Field(min_length=1)
    subscriptions: list[Subscription] = Field(default_factory=list)
    output: Output | None = None
    bad_payload_log_every_s: float = Field(default=60.0, ge=0, description="at most one log line per topic this often")

    @model_validator(mode="after")
    def _refs(self) -> "MqttSection":
        ids = [b.id for b in self.brokers]
        if len(set(ids)) != len(ids):
            raise ValueError("broker ids must differ (give each [[mqtt.brokers]] an `id`)")
        for s in self.subscriptions:
            if s.broker is not None and s.broker not in ids:
                raise ValueError(f"subscription {s.topic!r}: no broker with id {s.broker!r}")
        if self.output and self.output.broker is not None and self.output.broker not in ids:
            raise ValueError(f"output: no broker with id {self.output.broker!r}")
        return self

    def broker(self, broker_id: str | None) -> Broker:
        if broker_id is None:
            return self.brokers[0]
        return next(b for b in self.brokers if b.id == broker_id)


def load_mqtt(cfg) -> MqttSection | None:
    """The validated `[mqtt]` section of a site config, or None.  (`[[meters]]` with
    `protocol = "mqtt"` never get here: `mieruka.site` refuses them with a pointer to `[mqtt]`.)"""
    from mieruka.site import validate_section
    return validate_section(MqttSection, cfg, "mqtt")
