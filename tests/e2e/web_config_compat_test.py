"""`espy check web-config` against `promtool check web-config` (Debian's prometheus package) on
every file of src/auth/testdata/web_config/: both must give the verdict the file's folder names
(good/ or bad/), with the same exit code."""

import glob
import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import REPO_ROOT, espy_bin  # noqa: E402

CORPUS = os.path.join(REPO_ROOT, "src", "auth", "testdata", "web_config")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def check(cmd, path):
    r = subprocess.run(cmd + [path], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stderr.strip()


class WebConfigCompatTest(unittest.TestCase):
    def test_same_verdicts_as_promtool(self):
        files = sorted(glob.glob(os.path.join(CORPUS, "*", "*.yml")))
        self.assertGreater(len(files), 30)
        for path in files:
            name = os.path.relpath(path, CORPUS)
            want = 0 if name.startswith("good/") else 1
            with self.subTest(file=name):
                prom_code, prom_err = check([PROMTOOL, "check", "web-config"], path)
                espy_code, espy_err = check([espy_bin(), "check", "web-config"], path)
                self.assertEqual(want, prom_code, f"promtool: {prom_err}")
                self.assertEqual(want, espy_code, f"espy: {espy_err}\npromtool: {prom_err}")
                self.assertIn("SUCCESS" if want == 0 else "FAILED: ", espy_err)

    def test_messages_say_what_is_wrong(self):
        code, err = check([espy_bin(), "check", "web-config"],
                          os.path.join(CORPUS, "bad", "header_value.yml"))
        self.assertEqual(1, code)
        self.assertIn('header_value.yml:3: header X-Frame-Options: want "deny" or "sameorigin", '
                      'got "allow-from"', err)
        code, err = check([espy_bin(), "check", "web-config"],
                          os.path.join(CORPUS, "bad", "tls_key_mismatch.yml"))
        self.assertEqual(1, code)
        self.assertIn("cannot be loaded as the key of cert_file", err)
        self.assertIn("key values mismatch", err)

    def test_several_files_fail_if_one_does(self):
        r = subprocess.run([espy_bin(), "check", "web-config",
                            os.path.join(CORPUS, "good", "users.yml"),
                            os.path.join(CORPUS, "bad", "cost3.yml")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(1, r.returncode)
        self.assertIn("users.yml SUCCESS", r.stderr)
        self.assertIn("cost3.yml FAILED: ", r.stderr)


if __name__ == "__main__":
    unittest.main()
