"""Every example in README.md works as written: each ```sh block that is
followed by a ```json block is run against a fresh server (in order, so later
examples see earlier writes) and its output must equal the JSON shown; the
YAML example must be a valid --config file."""

import json
import os
import re
import tempfile
import unittest

from espy_server import EspyServer

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def readme_blocks():
    with open(README, encoding="utf-8") as f:
        return [(m.group(1), m.group(2)) for m in BLOCK.finditer(f.read())]


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

    def test_yaml_example_is_a_valid_config(self):
        yamls = [body for kind, body in readme_blocks() if kind == "yaml"]
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
