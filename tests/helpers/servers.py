"""Real servers for the MQTT / InfluxDB tests and the ingest benchmark: Debian's
mosquitto and influxd (1.6), on free loopback ports in a temp dir.  Each can
be stopped, killed (SIGKILL) and restarted on the same port and data dir."""
from __future__ import annotations

import json
import os
import pwd
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .net import free_port, wait_for
from .proc import MIERUKA, REPO, Process

__all__ = ["MIERUKA", "REPO", "Collector", "Influxd", "Mosquitto", "make_tls"]


class Influxd(Process):
    """influxd 1.6 with every listener on 127.0.0.1 and reporting off."""

    def __init__(self, tmp: Path, port: int | None = None):
        self.dir = tmp / "influxd"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.conf = self.dir / "influxdb.conf"
        d = self.dir
        self.conf.write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-row-limit = 0
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
""")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Influxd":
        self.spawn(["/usr/bin/influxd", "-config", self.conf], log=self.dir / "influxd.log", port=self.port)
        wait_for(lambda: self._ping(), 60, what="influxd /ping")
        return self

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=5) as r:
                return r.status == 204
        except OSError:
            return False

    def query(self, q: str, db: str = "energy", post: bool = False) -> dict:
        data = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"})
        if post:
            req = urllib.request.Request(self.url + "/query", data=data.encode(), method="POST")
        else:
            req = urllib.request.Request(self.url + "/query?" + data)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def create_database(self, db: str) -> None:
        """CREATE DATABASE, checked: InfluxDB answers HTTP 200 even when a statement failed
        (the error is in the body), so the body is read, and the database must be listed."""
        doc = self.query(f'CREATE DATABASE "{db}"', db="", post=True)
        assert "error" not in doc["results"][0], doc
        wait_for(lambda: [db] in (self.query("SHOW DATABASES", db="")["results"][0]["series"][0].get("values") or []),
                 30, what=f"database {db} listed")

    def write_lines(self, db: str, body: str) -> None:
        """Line protocol (ms) straight to /write; an HTTP error names the server's reason."""
        req = urllib.request.Request(f"{self.url}/write?db={urllib.parse.quote(db)}&precision=ms", method="POST",
                                     data=body.encode())
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                assert r.status == 204, r.status
        except urllib.error.HTTPError as e:
            raise AssertionError(f"influxd at {self.url} refused the write: HTTP {e.code} {e.read()[:300]!r}") from None

    def count(self, db: str = "energy", measurement: str = "energy", field: str = "quality",
              where: str = "") -> int:
        """Points stored (InfluxQL count over the field every point has)."""
        try:
            doc = self.query(f'SELECT count("{field}") FROM "{measurement}" {where}', db)
        except OSError:
            return -1
        res = doc["results"][0]
        if "series" not in res:
            return 0
        return int(res["series"][0]["values"][0][1])


class Mosquitto(Process):
    def __init__(self, tmp: Path, port: int | None = None, *, passwords: dict[str, str] | None = None,
                 tls: dict[str, Path] | None = None):
        self.dir = tmp / "mosquitto"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = self.dir / "mosquitto.conf"
        # `user`: started as root, mosquitto would switch to user "mosquitto", who cannot read the temp dir
        lines = [f"user {pwd.getpwuid(os.getuid()).pw_name}", f"listener {self.port} 127.0.0.1", "persistence true", f"persistence_location {self.dir}/",
                 "autosave_interval 1", "max_queued_messages 100000", "max_inflight_messages 100",
                 f"log_dest file {self.dir}/mosquitto.log"]
        if passwords:
            pw = self.dir / "passwd"
            pw.write_text("")
            for user, password in passwords.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True,
                               capture_output=True)
            os.chmod(pw, 0o600)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            lines += [f"cafile {tls['ca']}", f"certfile {tls['cert']}", f"keyfile {tls['key']}"]
            if tls.get("client_cert"):
                lines.append("require_certificate true")     # mutual TLS: clients show a cert from our CA
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "Mosquitto":
        self.spawn(["mosquitto", "-c", self.conf], log=self.dir / "stderr.log", port=self.port)
        return self

    def pub(self, topic: str, messages: list[str], *extra: str, qos: int = 1) -> None:
        """Publish messages with mosquitto_pub (one process, `-l` reads lines from stdin)."""
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", str(qos), "-t", topic,
                        "-l", *extra], input="\n".join(messages) + "\n", text=True, check=True, timeout=30)


def make_tls(tmp: Path) -> dict[str, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 (openssl)."""
    d = tmp / "tls"
    d.mkdir(exist_ok=True)
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=d)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=mieruka-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", "server.crt", "-extfile", "ext.cnf")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=gw")
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-out", "client.crt")
    return {"ca": d / "ca.crt", "cert": d / "server.crt", "key": d / "server.key",
            "client_cert": d / "client.crt", "client_key": d / "client.key"}


class Collector(Process):
    """`mieruka collect --config FILE` as a real subprocess."""

    stop_timeout_s = 15.0      # SIGTERM: it forwards what its buffer holds first

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None):
        self.config, self.log, self.env = config, log, env

    def start(self, *extra: str) -> "Collector":
        self.spawn([*MIERUKA, "-v", "collect", "--config", self.config, *extra], log=self.log,
                   env={**os.environ, **(self.env or {})}, cwd=REPO)
        return self
