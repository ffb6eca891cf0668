"""Helpers the tests share (one copy each): free loopback ports and waiting
(`net`), real child processes stopped with their whole process group (`proc`),
the MQTT broker / InfluxDB / collector / serial-line starters (`servers`), and
the API tests' site config and recording (`api_site`).  Tests import them as
`from helpers.net import free_port`; tests never import each other."""
