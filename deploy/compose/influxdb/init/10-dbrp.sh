#!/bin/bash
# mieruka reads InfluxDB 2 through InfluxQL (/query): map database "$INFLUX_BUCKET" to the bucket.
set -euo pipefail
bucket_id="$(influx bucket list --name "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | cut -f1)"
influx v1 dbrp create --db "$DOCKER_INFLUXDB_INIT_BUCKET" --rp autogen --bucket-id "$bucket_id" --default
