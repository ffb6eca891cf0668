"""Issue 10 item 16 (API side): each channel's state carries the age of its latest
reading, and "stale" follows [api] stale_after_s (default 120 s)."""
from __future__ import annotations

import time

import pytest

from helpers.api_site import START, auth, client, loaded_site


@pytest.mark.parametrize("stale_after_s, status", [(None, "stale"), (10 * 365 * 86400.0, "ok")])
def test_channel_state_has_age_and_threshold(tmp_path, stale_after_s, status):
    cfg, store, _ = loaded_site(tmp_path, days=2)
    assert cfg.api.stale_after_s == 120.0
    if stale_after_s is not None:      # a threshold longer than the data's age: the same reading is "ok"
        cfg.api.stale_after_s = stale_after_s
    try:
        d = client(cfg, store).get("/api/v1/channels/main_power", headers=auth("read")).json()
    finally:
        store.close()
    last_s = START.astype("datetime64[ms]").astype("int64") / 1000 + 2 * 86400 - 60    # the last 1-minute reading
    assert d["status"] == status
    assert d["age_s"] == pytest.approx(time.time() - last_s, abs=30)
