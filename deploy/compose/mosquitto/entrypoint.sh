#!/bin/sh
# Make the hashed password file from MQTT_USER / MQTT_PASSWORD (.env), then run the broker.
set -eu
: "${MQTT_USER:?set MQTT_USER in .env}" "${MQTT_PASSWORD:?set MQTT_PASSWORD in .env}"
umask 077
rm -f /mosquitto/data/passwd
touch /mosquitto/data/passwd
mosquitto_passwd -b /mosquitto/data/passwd "$MQTT_USER" "$MQTT_PASSWORD"
chown mosquitto:mosquitto /mosquitto/data/passwd 2>/dev/null || true
exec /usr/sbin/mosquitto -c /mosquitto/config/mosquitto.conf
