"""Recording format v1: round trip, offsets, and errors naming file, line and field."""
import numpy as np
import pytest

from mieruka.errors import InputError
from mieruka.models import ChannelInfo, Quality, ReadingBatch
from mieruka.recording import read_recording, write_recording

HEADER = "time,channel,quantity,value,equipment_kind,system,unit,quality\n"


def test_round_trip_keeps_instants_values_quality_and_metadata(tmp_path):
    t = np.datetime64("2026-04-01T00:00:00", "ms") + np.arange(5) * np.timedelta64(60_000, "ms")
    b = ReadingBatch.concat([
        ReadingBatch.single_channel("comp", t, np.array([30.1, 9.5, np.nan, 30.2, 0.0]),
                                    np.array([0, 0, Quality.TIMEOUT, 0, 0], np.uint8)),
        ReadingBatch.single_channel("flow", t[:3], np.array([5.0, 0.8, 0.7])),
    ])
    infos = [ChannelInfo("comp", "power_kw", equipment_kind="compressor", system="air1"),
             ChannelInfo("flow", "air_flow_m3min", equipment_kind="air_meter", system="air1")]
    p = tmp_path / "r.csv"
    assert write_recording(p, b, infos, tz="Asia/Tokyo") == 8
    lines = p.read_text().splitlines()
    assert lines[0] == HEADER.strip()
    assert lines[1].startswith("2026-04-01T09:00:00+09:00,comp,power_kw,30.1,compressor,air1,kW,ok")
    rec = read_recording(p)
    c = rec.channels["comp"]
    assert np.array_equal(c.time, t)
    assert c.quality.tolist() == [0, 0, 1, 0, 0] and np.isnan(c.value[2])
    assert c.info.system == "air1" and c.info.equipment_kind == "compressor"
    ok_t, ok_v = c.ok()
    assert ok_v.tolist() == [30.1, 9.5, 30.2, 0.0]
    assert rec.channels["flow"].info.quantity == "air_flow_m3min"
    assert len(rec.sha256) == 64


def test_minimal_columns_and_utc_z(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("time,channel,quantity,value\n2026-04-01T00:00:00Z,a,power_kw,1.5\n2026-04-01T09:01:00+09:00,a,power_kw,2\n")
    rec = read_recording(p)
    assert rec.channels["a"].value.tolist() == [1.5, 2.0]
    assert np.diff(rec.channels["a"].time).astype(int).tolist() == [60_000]


@pytest.mark.parametrize("body, expected", [
    ("2026-04-01T09:00:00,a,power_kw,1\n", "line 2: field `time`: '2026-04-01T09:00:00' has no UTC offset"),
    ("2026-04-01T09:00:00+09:00,a,power_kw,1\n2026-04-01T09:01:00+09:00,a,power_kw,x1\n", "line 3: field `value`: 'x1' is not a number"),
    ("2026-04-01T09:00:00+09:00,a,power,1\n", "line 2: field `quantity`: unknown quantity 'power'"),
    ("2026-04-01T09:00:00+09:00,a,power_kw,1\n2026-04-01T09:01:00+09:00,a,energy_kwh,1\n", "line 3: field `quantity`: channel 'a' was 'power_kw'"),
    ("2026-04-01T09:00:00+09:00,a,power_kw,\n", "line 2: field `value` is empty but quality is ok"),
    ("2026-04-01T09:00:00+09:00,a,power_kw,1,2\n", "line 2: 5 fields, the header has 4"),
    ("not a time,a,power_kw,1\n", "line 2: field `time`: 'not a time' is not ISO 8601"),
])
def test_bad_rows_name_line_and_field(tmp_path, body, expected):
    p = tmp_path / "bad.csv"
    p.write_text("time,channel,quantity,value\n" + body)
    with pytest.raises(InputError) as e:
        read_recording(p)
    assert str(e.value).startswith(str(p)) and expected in str(e.value), str(e.value)


def test_bad_header_and_unit(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("time,channel,value\n")
    with pytest.raises(InputError, match="line 1: header lacks column"):
        read_recording(p)
    p.write_text(HEADER + "2026-04-01T09:00:00+09:00,a,power_kw,1,,,W,ok\n")
    with pytest.raises(InputError, match="line 2: field `unit`: 'W' does not fit power_kw"):
        read_recording(p)
    p.write_text(HEADER + "2026-04-01T09:00:00+09:00,a,power_kw,1,,,kW,sometimes\n")
    with pytest.raises(InputError, match="line 2: field `quality`: unknown quality"):
        read_recording(p)


def test_write_is_atomic_on_failure(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("previous")
    b = ReadingBatch.single_channel("x", np.array(["2026-04-01"], "datetime64[ms]"), np.array([1.0]))
    with pytest.raises(ValueError):
        write_recording(p, b, [ChannelInfo("other", "power_kw")])
    assert p.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [p]
