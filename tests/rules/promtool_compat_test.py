"""`espy check rules` against Prometheus 2.42's `promtool check rules`.

Every file in src/rules/testdata/ is checked by both; the exit codes and
stdout ("Checking FILE", "  SUCCESS: N rules found", blank lines) must be
identical, and so must the error lines on stderr, after these
normalisations, each for something that must or may differ:

- Order: error lines are compared as sorted lists. Prometheus validates a
  rule's labels and annotations by iterating Go maps, whose order is random
  from run to run; Espy reports them sorted.
- Durations: promtool names no position for a bad duration
  (`f.yml: not a valid duration string: "5x"`); Espy adds the value's
  line:column after the file name. That added position is removed.
- YAML syntax errors: the wording comes from the YAML library (Go's yaml.v3
  vs yaml-cpp) and promtool prints its error twice (it decodes the file
  twice). Both become `FILE: yaml: <syntax error>`, once.
- Regular expressions in PromQL: Go's regexp and RE2 word compile errors
  differently; the text after "parse error: " becomes `<bad regexp>` when
  it is a regular-expression error. The position before it is compared.
- A missing file: the program name differs (`promtool: error: ...`,
  `espy check rules: error: ...`), and promtool adds ", try --help".

Skipped when promtool is not installed (Debian's `prometheus` package;
`scripts/install-deps test` installs it).
"""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import unittest

ESPY = os.environ.get("ESPY_BIN", "build/espy")
TESTDATA = pathlib.Path(__file__).resolve().parents[2] / "src" / "rules" / "testdata"
PROMTOOL = shutil.which("promtool")

DURATION_ERROR = re.compile(
    r"^(?P<file>\S+: )\d+:\d+: (?P<msg>(not a valid duration string|empty duration string|"
    r"duration out of range).*)$")
YAML_SYNTAX = re.compile(r"^(?P<file>\S+: )yaml: (?!unmarshal errors:).*$")
REGEX_ERROR = re.compile(
    r"^(?P<head>.*could not parse expression: \d+:\d+: parse error: )"
    r".*(regexp|regular expression).*$")
MISSING = re.compile(r"^(promtool|espy check rules): error: (?P<msg>path '.*' does not exist)")


def error_items(stderr):
    """stderr as a list of error items: an item is a line and the indented
    or lint lines that continue it."""
    items = []
    for line in stderr.splitlines():
        if line == "  FAILED:":
            items.append(line)
        elif items and (line.startswith("  line ") or line.startswith("\t") or
                        line.startswith("Metric: ") or line.startswith("Label(s):") or
                        line.startswith("Might cause")):
            items[-1] += "\n" + line
        else:
            items.append(line)
    return items


def normalise(item):
    if m := DURATION_ERROR.match(item):
        return m["file"] + m["msg"]
    if m := YAML_SYNTAX.match(item):
        return m["file"] + "yaml: <syntax error>"
    if m := REGEX_ERROR.match(item):
        return m["head"] + "<bad regexp>"
    if m := MISSING.match(item):
        return "error: " + m["msg"]
    return item


def verdict(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    seen = set()
    items = []
    for item in map(normalise, error_items(p.stderr)):
        if item in seen and "yaml: <syntax error>" in item:
            continue
        seen.add(item)
        items.append(item)
    return p.returncode, p.stdout, sorted(items)


@unittest.skipIf(PROMTOOL is None, "promtool (Debian package prometheus) is not installed")
class PromtoolCompatTest(unittest.TestCase):
    def check(self, *args, cwd=TESTDATA):
        want = verdict([PROMTOOL, "check", "rules", *args], cwd)
        got = verdict([os.path.abspath(ESPY), "check", "rules", *args], cwd)
        self.assertEqual(got, want, f"check rules {' '.join(args)}")
        return got

    def test_each_file(self):
        files = sorted(p.name for p in TESTDATA.glob("*.yml"))
        self.assertGreater(len(files), 40)
        codes = {}
        for name in files:
            with self.subTest(file=name):
                code, stdout, _ = self.check(name)
                codes[name] = code
                # The corpus says what each file is: good_ and lint_ pass, bad_ fail.
                self.assertEqual(code, 1 if name.startswith("bad_") else 0, name)
                if name.startswith("good_"):
                    self.assertIn("  SUCCESS: ", stdout)

    def test_all_files_at_once(self):
        files = sorted(p.name for p in TESTDATA.glob("*.yml"))
        code, _, errors = self.check(*files)
        self.assertEqual(code, 1)
        self.assertGreater(len(errors), 40)

    def test_good_files_together_pass(self):
        files = sorted(p.name for p in TESTDATA.glob("good_*.yml"))
        self.assertEqual(self.check(*files)[0], 0)

    def test_lint_options(self):
        self.assertEqual(self.check("--lint-fatal", "lint_duplicate_records.yml")[0], 3)
        self.assertEqual(self.check("--lint=none", "lint_duplicate_records.yml")[0], 0)
        self.assertEqual(self.check("--lint=all", "--lint-fatal", "lint_duplicate_across_groups.yml",
                                    "good_empty.yml")[0], 3)
        # A real error outranks a lint finding.
        self.assertEqual(self.check("--lint-fatal", "lint_duplicate_records.yml",
                                    "bad_expr_missing.yml")[0], 1)

    def test_missing_file_checks_nothing(self):
        code, stdout, errors = self.check("good_empty.yml", "no_such_file.yml")
        self.assertEqual((code, stdout), (1, ""))
        self.assertEqual(errors, ["error: path 'no_such_file.yml' does not exist"])

    def test_template_expansions_are_prometheus_own(self):
        """template_test.cc's MatchesPrometheusExpansions expects the strings
        templates/expansions_test.yml holds; promtool must agree with them."""
        d = pathlib.Path(__file__).resolve().parent / "templates"
        p = subprocess.run([PROMTOOL, "test", "rules", "expansions_test.yml"], cwd=d,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.check("expansions_rules.yml", cwd=d)[0], 0)

    def test_unreadable_file(self):
        if os.geteuid() == 0:
            self.skipTest("root reads every file")
        with tempfile.TemporaryDirectory() as d:
            f = pathlib.Path(d) / "secret.yml"
            f.write_text("groups: []\n")
            f.chmod(0)
            self.check("secret.yml", cwd=d)


if __name__ == "__main__":
    unittest.main()
