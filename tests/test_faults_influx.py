"""InfluxDB faults seen from the store: a server that comes back without our database."""
from __future__ import annotations

import numpy as np

from helpers.servers import Influxd
from mieruka.models import ReadingBatch
from mieruka.store.influx import InfluxStore


def test_a_database_dropped_while_running_is_created_again(tmp_path):
    """Before: only the first 404 `database not found` created it; after InfluxDB came back on
    an empty data dir, every write failed with 404 for ever and the disk buffer filled up."""
    server = Influxd(tmp_path).start()
    try:
        st = InfluxStore(server.url, database="gone_again")
        t = np.datetime64("2026-04-01T00:00:00", "ms") + np.arange(5).astype("timedelta64[s]")
        st.write(ReadingBatch.single_channel("p", t, np.arange(5.0)))
        st.query("DROP DATABASE gone_again", post=True)
        st.write(ReadingBatch.single_channel("p", t + np.timedelta64(10, "s"), np.arange(5.0)))
        assert st.count("p") == 5
        st.close()
    finally:
        server.stop()
