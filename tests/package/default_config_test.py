"""The package's default config (packaging/espy.yaml) and unit (packaging/espy.service) agree
with the binary and with each other. Fast, needs no root: the chroot test covers the installed
package.

The config's convention: a line that starts with `#` and no space (or `#` and an indented YAML
line) is a setting or an example; removing that `#` must still give a valid file.
"""

import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from install_test import parse_unit  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO_ROOT, "packaging", "espy.yaml")
UNIT = os.path.join(REPO_ROOT, "packaging", "espy.service")
ESPY = os.environ.get("ESPY_BIN") or os.path.join(REPO_ROOT, "build", "espy")
# An example line: `#key: value`, `#- item`, or `#` and an indented YAML line (`#  - name: x`).
EXAMPLE = re.compile(r"^#(?=[^\s#]|\s\s)")


def check_config(path, **env):
    return subprocess.run([ESPY, "check-config", path], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})


def top_level_settings(text):
    return dict(re.findall(r"^([a-z][a-z0-9-]*):[ \t]*(\S*)", text, re.M))


class DefaultConfigTest(unittest.TestCase):
    def setUp(self):
        with open(CONFIG) as f:
            self.text = f.read()

    def test_shipped_file_is_valid(self):
        result = check_config(CONFIG)
        self.assertEqual(result.returncode, 0, result.stdout)

    def test_every_example_is_valid_once_uncommented(self):
        lines = self.text.splitlines(keepends=True)
        uncommented = [EXAMPLE.sub("", line, count=1) for line in lines]
        examples = sum(1 for line in lines if EXAMPLE.match(line))
        settings = top_level_settings("".join(uncommented))
        # Guards the convention itself: the examples are there and are read as settings.
        self.assertGreaterEqual(examples, 20)
        for key in ("retention", "downsampling", "graphite-listen", "probes", "collectors"):
            self.assertIn(key, settings)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write("".join(uncommented))
            f.flush()
            # The collector example reads its key from the environment (/etc/default/espy).
            result = check_config(f.name, PRICES_API_KEY="test-key")
            self.assertEqual(result.returncode, 0, result.stdout)
            self.assertRegex(result.stdout, r"\(2 probes, 1 collectors\)")
            result = check_config(f.name)
            self.assertNotEqual(result.returncode, 0, "an unset ${PRICES_API_KEY} must fail")
            self.assertIn("PRICES_API_KEY", result.stdout)

    def test_data_dir_is_where_the_unit_may_write(self):
        settings = top_level_settings(self.text)
        service = parse_unit(UNIT)["Service"]
        self.assertEqual(settings.get("data-dir"), "/var/lib/espy")
        self.assertIn(settings["data-dir"], " ".join(service["ReadWritePaths"]).split())
        self.assertEqual(service["WorkingDirectory"], [settings["data-dir"]])
        self.assertEqual(service["ExecStart"], ["/usr/bin/espy serve --config /etc/espy/espy.yaml"])
        # Loopback by default: Espy has no authentication.
        self.assertRegex(settings.get("listen", ""), r"^127\.0\.0\.1:\d+$")


if __name__ == "__main__":
    unittest.main()
