"""Every example in README.md works as written: each ```sh block that is
followed by a ```json block is run against a fresh server (in order, so later
examples see earlier writes) and its output must equal the JSON shown; the
YAML examples must be valid --config files, and the collectors example must
turn the API shapes it shows (served by a local fake) into the series it
describes."""

import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from espy_server import EspyServer, clean_env, espy_bin
from probe_targets import ProbeTargets

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


# YAML for other programs (Prometheus, Grafana) opens with a comment naming its file.
OTHER_PROGRAMS_YAML = re.compile(r"# (prometheus\.yml|grafana/\S+\.yaml)\n")


def readme_blocks():
    with open(README, encoding="utf-8") as f:
        return [(m.group(1), m.group(2)) for m in BLOCK.finditer(f.read())]


def espy_yaml_blocks():
    """The YAML examples that are Espy config files."""
    return [body for kind, body in readme_blocks()
            if kind == "yaml" and not OTHER_PROGRAMS_YAML.match(body)]


class ReadmeTest(unittest.TestCase):
    def test_api_examples_answer_as_documented(self):
        blocks = readme_blocks()
        pairs = [(blocks[i][1], blocks[i + 1][1]) for i in range(len(blocks) - 1)
                 if blocks[i][0] == "sh" and blocks[i + 1][0] == "json"]
        self.assertGreaterEqual(len(pairs), 4, "README lost its API examples")
        with EspyServer() as server:
            for snippet, want in pairs:
                got = server.run_shell(snippet).stdout
                self.assertEqual(json.loads(want), json.loads(got), f"example:\n{snippet}")

    def test_yaml_examples_pass_check_config(self):
        yamls = espy_yaml_blocks()
        self.assertGreaterEqual(len(yamls), 2, "README lost its config examples")
        with tempfile.TemporaryDirectory() as tmp:
            for i, body in enumerate(yamls):
                path = os.path.join(tmp, f"example{i}.yaml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(body)
                r = subprocess.run([espy_bin(), "check-config", path], capture_output=True,
                                   text=True, env=clean_env({"COINGECKO_KEY": "demo"}))
                self.assertEqual(r.returncode, 0, f"{r.stderr}\n{body}")

    def test_collectors_example_reads_the_shapes_it_shows(self):
        [example] = [body for body in espy_yaml_blocks() if "collectors:" in body]
        with ProbeTargets() as targets, tempfile.TemporaryDirectory() as tmp:
            # The example's public APIs are replaced by local servers of the same shapes;
            # probes are left out (their hosts do not resolve here).
            config = example[example.index("collectors:"):]
            config = re.sub(r"https://api\.coingecko\.com/\S+", targets.url("/price"), config)
            config = re.sub(r"https://quotes\.example\.com/\S+", targets.url("/quotes"), config)
            config = config.replace("interval: 1m", "interval: 1s")
            config = config.replace("metrics:\n      # {\"quotes\"",
                                    "interval: 1s\n    metrics:\n      # {\"quotes\"")
            path = os.path.join(tmp, "espy.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(config)
            with EspyServer("--config", path, env={"COINGECKO_KEY": "demo"}) as server:
                want = {"crypto_price": 4, "stock_price": 2, "stock_volume": 2}
                deadline = time.monotonic() + 30
                got = {}
                while got != want and time.monotonic() < deadline:
                    for name in want:
                        _, _, body = server.request(
                            "GET", "/api/v1/query?" + urllib.parse.urlencode({"query": name}))
                        got[name] = len(json.loads(body)["data"]["result"])
                    time.sleep(0.05)
                self.assertEqual(got, want)
                _, _, body = server.request("GET", "/api/v1/query?query=" + urllib.parse.quote(
                    'crypto_price{coin="bitcoin",currency="usd"}'))
                self.assertEqual(json.loads(body)["data"]["result"][0]["value"][1], "64000.5")

    def test_settings_example_is_a_valid_config(self):
        yamls = [body for kind, body in readme_blocks()
                 if kind == "yaml" and "listen:" in body]
        self.assertTrue(yamls, "README lost its config example")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "espy.yaml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(yamls[0])
            # Flags override the example's address and directory, as documented.
            with EspyServer("--config", path) as server:
                status, _, _ = server.request("GET", "/healthz")
                self.assertEqual(200, status)


if __name__ == "__main__":
    unittest.main()
