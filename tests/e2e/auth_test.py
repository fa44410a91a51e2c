"""Basic auth from the Prometheus web config file (--web-config-file), on the real binary: every
route but health, readiness and the public status page needs credentials; a wrong password and
an unknown user get the same 401; failures are counted; the file reloads on SIGHUP and
POST /-/reload; Debian's prometheus remote-writes with basic_auth; curl authenticates with -u."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
import urllib.parse
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import (REPO_ROOT, EspyServer, PeerProcess, ServerError, free_port,  # noqa: E402
                         wait_until)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Debian's python3 3.11 still has it; bcrypt hashes as htpasswd -B makes

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
OPEN_PATHS = ["/healthz", "/readyz", "/-/healthy", "/-/ready", "/status", "/status/probes"]


def bcrypt(password, cost=10):
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**cost))


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def write_users(path, users):
    with open(path, "w") as f:
        f.write("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
        f.write("basic_auth_users:\n")
        for user, password in users.items():
            f.write(f"  {user}: '{bcrypt(password)}'\n")


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="espy-auth-")
        cls.web = os.path.join(cls.tmp, "web.yml")
        write_users(cls.web, {"alice": "s3cret", "bob": "hunter2"})
        cls.espy = EspyServer("--web-config-file", cls.web)

    @classmethod
    def tearDownClass(cls):
        cls.espy.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, headers=None):
        return self.espy.request("GET", path, headers=headers)

    def failures(self):
        status, _, body = self.get("/metrics", basic("alice", "s3cret"))
        self.assertEqual(200, status)
        counts = {}
        for line in body.decode().splitlines():
            if line.startswith("espy_http_auth_failures_total{"):
                reason = line.split('"')[1]
                counts[reason] = float(line.rsplit(" ", 1)[1])
        return counts

    def test_credentials_required(self):
        before = self.failures()
        status, headers, body = self.get("/api/v1/query?query=1")
        self.assertEqual(401, status)
        self.assertEqual('Basic realm="espy"', headers["www-authenticate"])
        self.assertEqual("deny", headers["x-frame-options"])
        status, _, wrong_password = self.get("/api/v1/query?query=1", basic("alice", "s3creT"))
        self.assertEqual(401, status)
        status, _, unknown_user = self.get("/api/v1/query?query=1", basic("mallory", "s3cret"))
        self.assertEqual(401, status)
        self.assertEqual(wrong_password, unknown_user)
        self.assertEqual(body, unknown_user)
        status, headers, body = self.get("/api/v1/query?query=1", basic("alice", "s3cret"))
        self.assertEqual(200, status, body)
        self.assertEqual("success", json.loads(body)["status"])
        self.assertEqual("deny", headers["x-frame-options"])
        after = self.failures()
        self.assertEqual(before.get("missing", 0) + 1, after["missing"])
        self.assertEqual(before.get("wrong", 0) + 2, after["wrong"])

    def test_every_other_route_is_closed(self):
        for method, path in [("GET", "/"), ("GET", "/metrics"), ("GET", "/v1/metrics?name=x"),
                             ("POST", "/v1/metrics"), ("POST", "/api/v1/write"),
                             ("POST", "/write"), ("GET", "/v1/probes"), ("GET", "/v1/stream"),
                             ("GET", "/assets/app.js"), ("POST", "/-/reload"),
                             ("GET", "/no/such/route")]:
            with self.subTest(path=path):
                status, _, _ = self.espy.request(method, path, body=b"" if method == "POST"
                                                 else None)
                self.assertEqual(401, status)

    def test_health_and_status_page_stay_open(self):
        for path in OPEN_PATHS:
            with self.subTest(path=path):
                status, headers, _ = self.get(path)
                self.assertEqual(200, status)
                self.assertEqual("deny", headers["x-frame-options"])

    def test_writes_with_credentials_are_kept(self):
        line = b"auth_test_temp,room=a value=21.5\n"
        status, _, _ = self.espy.request("POST", "/write", line)
        self.assertEqual(401, status)
        status, _, body = self.espy.request("POST", "/write", line, basic("bob", "hunter2"))
        self.assertEqual(204, status, body)
        q = urllib.parse.urlencode({"query": "auth_test_temp"})
        status, _, body = self.get("/api/v1/query?" + q, basic("bob", "hunter2"))
        self.assertEqual(200, status)
        self.assertEqual("21.5", json.loads(body)["data"]["result"][0]["value"][1])

    def test_curl(self):
        url = self.espy.url("/api/v1/query?query=2")
        ok = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                             "alice:s3cret", url], capture_output=True, text=True, timeout=60)
        self.assertEqual("200", ok.stdout)
        bad = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                              "alice:nope", url], capture_output=True, text=True, timeout=60)
        self.assertEqual("401", bad.stdout)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="espy-auth-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.web = os.path.join(self.tmp, "web.yml")
        write_users(self.web, {"alice": "s3cret"})
        self.espy = EspyServer("--web-config-file", self.web)
        self.addCleanup(self.espy.cleanup)

    def status(self, user, password):
        return self.espy.request("GET", "/api/v1/query?query=1", headers=basic(user, password))[0]

    def test_sighup_and_reload_endpoint(self):
        self.assertEqual(200, self.status("alice", "s3cret"))
        write_users(self.web, {"carol": "passw0rd"})
        self.espy.signal(signal.SIGHUP)
        wait_until("carol let in after SIGHUP", lambda: self.status("carol", "passw0rd") == 200)
        self.assertEqual(401, self.status("alice", "s3cret"))
        # A bad file is refused and the running users stay.
        with open(self.web, "w") as f:
            f.write("basic_auth_users:\n  carol: plaintext\n")
        status, _, body = self.espy.request("POST", "/-/reload",
                                            headers=basic("carol", "passw0rd"))
        self.assertEqual(400, status)
        self.assertIn('user \\"carol\\"', body.decode())
        self.assertEqual(200, self.status("carol", "passw0rd"))
        # POST /-/reload applies a new file too (the server has no --config here).
        write_users(self.web, {"dave": "0ther"})
        status, _, body = self.espy.request("POST", "/-/reload",
                                            headers=basic("carol", "passw0rd"))
        self.assertEqual(200, status, body)
        self.assertEqual(200, self.status("dave", "0ther"))
        self.assertEqual(401, self.status("carol", "passw0rd"))
        # An empty file turns auth off.
        open(self.web, "w").close()
        self.espy.signal(signal.SIGHUP)
        wait_until("auth off after SIGHUP",
                   lambda: self.espy.request("GET", "/api/v1/query?query=1")[0] == 200)

    def test_environment_variable(self):
        other = EspyServer(env={"ESPY_WEB_CONFIG_FILE": self.web})
        self.addCleanup(other.cleanup)
        self.assertEqual(401, other.request("GET", "/metrics")[0])


class RefusedAtStartTest(unittest.TestCase):
    def test_tls_is_refused_not_ignored(self):
        tls = os.path.join(REPO_ROOT, "src", "auth", "testdata", "web_config", "good", "tls.yml")
        with self.assertRaises(ServerError) as e:
            EspyServer("--web-config-file", tls)
        self.assertIn("exit code 2", str(e.exception))
        self.assertIn("does not serve TLS yet", str(e.exception))

    def test_bad_file_is_refused(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            f.write("basic_auth_users:\n  alice: s3cret\n")
            f.flush()
            with self.assertRaises(ServerError) as e:
                EspyServer("--web-config-file", f.name)
            self.assertIn("exit code 2", str(e.exception))
            # The error is a logfmt value: its quotes are escaped.
            self.assertIn('basic_auth_users: user \\"alice\\"', str(e.exception))


class PrometheusRemoteWriteTest(unittest.TestCase):
    """Debian's prometheus scrapes itself and remote-writes to Espy with basic_auth."""

    def test_remote_write_with_basic_auth(self):
        tmp = tempfile.mkdtemp(prefix="espy-auth-prom-")
        self.addCleanup(shutil.rmtree, tmp, True)
        web = os.path.join(tmp, "web.yml")
        write_users(web, {"prom": "remote-s3cret"})
        espy = EspyServer("--web-config-file", web)
        self.addCleanup(espy.cleanup)
        prom_port = free_port()
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ["127.0.0.1:{prom_port}"]
remote_write:
  - url: {espy.url("/api/v1/write")}
    basic_auth:
      username: prom
      password: remote-s3cret
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
""")
        prom = PeerProcess(self, [PROMETHEUS, "--config.file=" + config,
                                  "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                  f"--web.listen-address=127.0.0.1:{prom_port}"],
                           os.path.join(tmp, "prometheus.log"))

        q = urllib.parse.urlencode({"query": 'up{job="self"}'})

        def arrived():
            status, _, body = espy.request("GET", "/api/v1/query?" + q,
                                           headers=basic("prom", "remote-s3cret"))
            self.assertEqual(200, status, body)
            return json.loads(body)["data"]["result"]
        try:
            result = wait_until("up{job=\"self\"} remote-written to Espy", arrived, timeout=60)
        except AssertionError:
            raise AssertionError("prometheus log:\n" + prom.tail())
        self.assertEqual("1", result[0]["value"][1])
        self.assertEqual(f"127.0.0.1:{prom_port}", result[0]["metric"]["instance"])
        # Without credentials the same write path is closed.
        self.assertEqual(401, espy.request("POST", "/api/v1/write", b"")[0])


if __name__ == "__main__":
    unittest.main()
