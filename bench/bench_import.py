"""Logger export import throughput: `mieruka import` vs a naive csv-module converter.

    .venv/bin/python bench/bench_import.py [--rows 1000000] [--quick]

A wide logger export (one local-time column, 10 value columns with units in the
names, thousands separators and some `-` cells), UTF-8 and Shift_JIS, 1 M rows.
Measured: (1) reading and converting to channels of UTC readings in the
quantities' units (`import_files`), (2) the whole `mieruka import` including the
recording (format v1) written.  Baseline: the straightforward converter
(csv.reader, datetime.strptime, zoneinfo, float() per cell), run on the first
200 k rows and given as rows/s.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

import numpy as np

from mieruka.importer import import_files, load_mapping

COLUMNS = 10


def make_export(path: Path, rows: int, encoding: str) -> None:
    rng = np.random.default_rng(1)
    t0 = np.datetime64("2026-04-01T00:00:00")
    times = np.datetime_as_string(t0 + np.arange(rows).astype("timedelta64[s]"), unit="s")
    times = np.char.replace(np.char.replace(times, "-", "/"), "T", " ")
    header = "日時," + ",".join(f"電力{k}(W)" for k in range(COLUMNS)) + "\n"
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write("ロガー,LR8410\n記録間隔,1秒\n" + header)
        chunk = 100_000
        for a in range(0, rows, chunk):
            b = min(rows, a + chunk)
            vals = rng.uniform(0, 50_000, (b - a, COLUMNS)).round(1)
            cells = vals.astype(str)
            cells[rng.random(cells.shape) < 0.001] = "-"
            lines = [t + "," + ",".join(r) for t, r in zip(times[a:b], cells.tolist())]
            f.write("\n".join(lines) + "\n")


MAPPING = "[source]\nheader_row = 3\n[time]\ncolumn = \"日時\"\nformat = \"%Y/%m/%d %H:%M:%S\"\n" + "".join(
    f"[[columns]]\ncolumn = \"電力{k}(W)\"\nchannel = \"p{k}\"\nquantity = \"power_kw\"\nunit = \"W\"\n"
    for k in range(COLUMNS))


def naive(path: Path, encoding: str, limit: int) -> int:
    tz = zoneinfo.ZoneInfo("Asia/Tokyo")
    out = []
    with open(path, encoding=encoding, newline="") as f:
        r = csv.reader(f)
        for _ in range(3):
            next(r)
        for n, row in enumerate(r):
            if n >= limit:
                break
            t = dt.datetime.strptime(row[0], "%Y/%m/%d %H:%M:%S").replace(tzinfo=tz).astimezone(dt.timezone.utc)
            for k, cell in enumerate(row[1:]):
                v = None if cell.strip() in ("", "-", "***") else float(cell.replace(",", "")) / 1000
                out.append((t, k, v))
    return len(out) // COLUMNS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100 k rows")
    args = ap.parse_args()
    rows = 100_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        mp = d / "map.toml"
        mp.write_text(MAPPING, "utf-8")
        m = load_mapping(mp)
        print(f"{rows:,} rows x {COLUMNS} columns ({rows * COLUMNS:,} readings)")
        for enc in ("utf-8", "cp932"):
            src = d / f"export-{enc}.csv"
            make_export(src, rows, enc)
            size = src.stat().st_size / 1e6
            t0 = time.perf_counter()
            res = import_files([src], m)
            t_conv = time.perf_counter() - t0
            assert res.rows == rows * COLUMNS
            t0 = time.perf_counter()
            res.write(d / "rec.csv", tz="Asia/Tokyo")
            t_write = time.perf_counter() - t0
            lim = min(rows, 200_000)
            t0 = time.perf_counter()
            naive(src, enc, lim)
            t_naive = time.perf_counter() - t0
            fast = rows / t_conv
            slow = lim / t_naive
            print(f"{enc:6} {size:7.1f} MB | import to readings {t_conv:6.2f} s ({fast / 1e6:5.2f} M rows/s, "
                  f"{fast * COLUMNS / 1e6:5.1f} M readings/s) | + write recording {t_write:6.2f} s | "
                  f"naive csv module {slow / 1e6:5.3f} M rows/s | x{fast / slow:5.1f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
