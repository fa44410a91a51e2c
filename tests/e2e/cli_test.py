"""End-to-end tests of the command line: help, version, setting precedence (flag > ESPY_* env >
--config YAML > default), how bad settings, config files and data dirs are reported, the
generated configuration reference, and the log lines (logfmt or JSON) on stderr."""

import difflib
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import REPO_ROOT, EspyServer, EspyTestCase, ServerError  # noqa: E402

SETTINGS = ["listen", "data-dir", "fsync", "retention", "downsampling", "graphite-listen",
            "log-level", "access-log", "threads", "max-body-size", "idle-timeout", "io-timeout"]
BAD_START_TIMEOUT = 20  # a run that should exit at once but starts serving is killed after this


class HelpTest(EspyTestCase):
    def test_help_lists_the_commands(self):
        r = self.run_espy("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("serve", r.stdout)
        self.assertIn("version", r.stdout)

    def test_serve_help_lists_every_flag_with_its_env_var_and_default(self):
        r = self.run_espy("serve", "--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for name in SETTINGS + ["config"]:
            with self.subTest(name):
                env = "ESPY_" + name.upper().replace("-", "_")
                self.assertRegex(r.stdout, rf"--{name}\b.*{env}")
        self.assertIn("[default: 127.0.0.1:5000]", r.stdout)
        self.assertIn("[default: ./espy-data]", r.stdout)
        self.assertIn("[default: batch]", r.stdout)

    def test_version(self):
        for args in (["version"], ["--version"]):
            with self.subTest(args):
                r = self.run_espy(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertRegex(r.stdout.strip(), r"^(espy )?\d+\.\d+\.\d+")

    def test_no_command_and_unknown_flag_fail_with_a_message(self):
        r = self.run_espy()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("subcommand", r.stderr)
        r = self.run_espy("serve", "--no-such-flag", "--listen", "127.0.0.1:0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--no-such-flag", r.stderr)


class HelpCommandTest(EspyTestCase):
    def test_help_command_prints_what_dash_dash_help_prints(self):
        for words in ([], ["serve"], ["check-config"], ["probe"], ["config"],
                      ["config", "reference"]):
            with self.subTest(words):
                want = self.run_espy(*words, "--help")
                got = self.run_espy("help", *words)
                self.assertEqual(got.returncode, 0, got.stderr)
                self.assertEqual(got.stdout, want.stdout)
                self.assertIn("Usage: ", got.stdout)

    def test_help_for_an_unknown_command_names_it(self):
        r = self.run_espy("help", "serv")
        self.assertEqual(r.returncode, 2)
        self.assertIn('no command "serv"', r.stderr)

    def test_every_flag_has_its_real_type(self):
        out = self.run_espy("serve", "--help").stdout
        self.assertNotIn(" TEXT", out)
        for flag, kind in [("listen", "HOST:PORT"), ("data-dir", "PATH"), ("config", "PATH"),
                           ("retention", "DURATION"), ("io-timeout", "DURATION"),
                           ("threads", "INT"), ("max-series", "INT"),
                           ("access-log", "BOOL"), ("enable-admin-api", "BOOL"),
                           ("max-body-size", "BYTES"), ("query-cache-size", "BYTES"),
                           ("graphite-listen", "HOST:PORT"), ("fsync", "batch|always|never"),
                           ("log-level", "debug|info|warn|error"), ("log-format", "logfmt|json"),
                           ("downsampling", "TIERS")]:
            with self.subTest(flag):
                self.assertRegex(out, rf"--{flag} {re.escape(kind)}\s")
        for words in (["probe"], ["check-config"]):
            self.assertNotIn(" TEXT", self.run_espy(*words, "--help").stdout, words)

    def test_serve_help_describes_the_config_file_and_its_sections(self):
        out = self.run_espy("serve", "--help").stdout
        self.assertIn("Config file (--config FILE)", out)
        self.assertRegex(out, r"\n  probes: +website")
        self.assertRegex(out, r"\n  collectors: +JSON APIs")
        self.assertIn("docs/configuration.md", out)


class ConfigReferenceTest(EspyTestCase):
    """docs/configuration.md is what `espy config reference` prints (regenerate it with
    `make reference`), so the committed reference never disagrees with the code."""

    def reference(self):
        r = self.run_espy("config", "reference")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_committed_reference_matches_the_code(self):
        path = os.path.join(REPO_ROOT, "docs", "configuration.md")
        with open(path, encoding="utf-8") as f:
            committed = f.read()
        generated = self.reference()
        if committed != generated:
            diff = "".join(difflib.unified_diff(
                committed.splitlines(True), generated.splitlines(True),
                "docs/configuration.md (committed)", "espy config reference"))
            self.fail("docs/configuration.md is out of date; run `make reference`:\n" + diff)

    def test_reference_has_every_flag_of_serve_help(self):
        flags = set(re.findall(r"^\s+--([a-z-]+)", self.run_espy("serve", "--help").stdout,
                               re.M)) - {"help"}
        self.assertGreaterEqual(len(flags), 20)
        ref = self.reference()
        for flag in flags:
            with self.subTest(flag):
                env = "ESPY_" + flag.upper().replace("-", "_")
                self.assertRegex(ref, rf"\n\| `--{flag}` \| `{env}` \|")

    def test_reference_example_is_a_valid_config_file(self):
        [example] = re.findall(r"```yaml\n(.*?)```", self.reference(), re.S)
        path = os.path.join(self.tmpdir(), "example.yaml")
        with open(path, "w") as f:
            f.write(example)
        r = self.run_espy("check-config", path)
        self.assertEqual(r.returncode, 0, r.stderr)


# A strict logfmt line: key=value pairs split by one space; a bare value has no space, '=', '"'
# or control character; a quoted one escapes '"', '\\' and control characters.
_LOGFMT_PAIR = re.compile(r'([^\s="]+)=(?:"((?:[^"\\\x00-\x1f]|\\["\\nrt]|\\u00[0-9a-f]{2})*)"'
                          r'|([^\s="\x00-\x1f]+))(?: |$)')
_UNESCAPE = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
LEVELS = {"debug", "info", "warn", "error"}


def parse_logfmt(line):
    """The fields of one logfmt line as a dict; ValueError if the line is not strict logfmt."""
    fields, pos = {}, 0
    while pos < len(line):
        m = _LOGFMT_PAIR.match(line, pos)
        if not m:
            raise ValueError(f"not logfmt at column {pos}: {line!r}")
        key, quoted, bare = m.groups()
        if key in fields:
            raise ValueError(f"repeated key {key}: {line!r}")
        if quoted is None:
            fields[key] = bare
        else:
            fields[key] = re.sub(r"\\(u00([0-9a-f]{2})|.)",
                                 lambda e: chr(int(e.group(2), 16)) if e.group(2)
                                 else _UNESCAPE[e.group(1)], quoted)
        pos = m.end()
    if not line or line.endswith(" "):
        raise ValueError(f"empty line or trailing space: {line!r}")
    return fields


class LogFormatTest(EspyTestCase):
    """Every line the server writes to stderr parses (logfmt by a strict parser, JSON by
    json.loads) and has ts, level, component and msg, with levels named as --log-level names
    them. The runs cover a config error quoting the user's text, access-log lines with quotes
    in the target, and a restart after kill -9 (the WAL's preallocated tail)."""

    BAD_PROBE = 'probes:\n  - name: x\n    url: "ftp://a b/\\"q\\""\n'

    def lines_of_runs(self, *fmt_args):
        """The stderr lines of: a start refused for a bad probe, a server killed with -9 after a
        write and a quoted request, and its restart, all with `fmt_args`."""
        tmp = self.tmpdir()
        bad = os.path.join(tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(self.BAD_PROBE)
        r = self.run_espy("serve", "--listen", "127.0.0.1:0", "--data-dir",
                          os.path.join(tmp, "bad"), "--config", bad, *fmt_args)
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.splitlines()
        srv = self.server("--access-log", "true", *fmt_args)
        self.assertEqual(srv.post_metrics({"name": "cpu", "value": 1})[0], 202)
        srv.request("GET", '/v1/metrics?name="quoted%20name"=x')  # any status: logged
        # The access line is written after the answer: wait for it before the kill.
        self.assertIsNotNone(srv.stderr.wait_for(re.compile("quoted%20name"), 30))
        srv.kill()
        srv.start()
        srv.stop()
        for text in srv.logs:
            lines += text.splitlines()
        return lines

    def check_line(self, fields, line):
        for key in ("ts", "level", "component", "msg"):
            self.assertIn(key, fields, line)
        self.assertRegex(fields["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", line)
        self.assertIn(fields["level"], LEVELS, line)

    def check_runs(self, parsed):
        by_msg = {}
        for fields in parsed:
            by_msg.setdefault(fields["msg"], []).append(fields)
        [refused] = by_msg["bad configuration"]
        self.assertEqual(refused["level"], "error")
        self.assertIn('probes[0] "x": url: want an http:// or https:// URL with a host, '
                      'got "ftp://a b/"q""', refused["err"])
        access = [f for f in by_msg["access"] if f["target"].startswith("/v1/metrics?")]
        self.assertEqual([f["target"] for f in access], ['/v1/metrics?name="quoted%20name"=x'])
        # kill -9 leaves the WAL's reserved tail: said at info, not as a torn write.
        [tail] = by_msg["wal: dropped the unused preallocated tail of the last segment"]
        self.assertEqual(tail["level"], "info")
        self.assertEqual([f["msg"] for f in parsed if f["level"] == "warn"], [])

    def test_logfmt_lines_are_strict_logfmt(self):
        lines = self.lines_of_runs()
        parsed = []
        for line in lines:
            fields = parse_logfmt(line)
            self.check_line(fields, line)
            self.assertTrue(line.startswith(f"ts={fields['ts']} level={fields['level']} "), line)
            parsed.append(fields)
        self.check_runs(parsed)

    def test_json_lines_are_one_object_each(self):
        lines = self.lines_of_runs("--log-format", "json")
        parsed = []
        for line in lines:
            fields = json.loads(line)
            self.assertIsInstance(fields, dict, line)
            self.assertTrue(all(isinstance(v, str) for v in fields.values()), line)
            self.check_line(fields, line)
            parsed.append(fields)
        self.check_runs(parsed)

    def test_log_format_from_env_and_bad_value(self):
        srv = self.server(env={"ESPY_LOG_FORMAT": "json"})
        srv.stop()
        self.assertTrue(all(json.loads(l) for l in srv.log_text().splitlines()))
        r = self.run_espy("serve", "--log-format", "text", "--listen", "127.0.0.1:0",
                          "--data-dir", os.path.join(self.tmpdir(), "d"))
        self.assertEqual(r.returncode, 2)
        self.assertIn('--log-format: want logfmt or json, got "text"', r.stderr)


class PrecedenceTest(EspyTestCase):
    """Observed through the data dir a server uses (where its WAL appears, and the data it
    serves after a restart) and the body limit it enforces (the 413 message quotes it)."""

    def setUp(self):
        self.tmp = self.tmpdir()
        self.dirs = {k: os.path.join(self.tmp, k) for k in ("flag", "env", "file")}

    def config(self, text):
        path = os.path.join(self.tmp, "espy.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, *args, env=None):
        return self.server(*args, env=env, listen=None, data_dir_flag=False)

    def assertUsesDir(self, server, which):
        self.assertIn(f"data_dir={self.dirs[which]} ", server.log_text())
        for name, path in self.dirs.items():
            self.assertEqual(os.path.isdir(os.path.join(path, "wal")), name == which, name)

    def body_limit(self, server):
        status, err = server.post_metrics(" " * 70_000)
        self.assertEqual(status, 413)
        return int(re.search(r"larger than (\d+) bytes", err["error"]).group(1))

    def test_config_file_over_defaults(self):
        path = self.config(f"listen: 127.0.0.1:0\ndata-dir: {self.dirs['file']}\n"
                           f"max-body-size: 2KiB\n")
        srv = self.start("--config", path)
        self.assertUsesDir(srv, "file")
        self.assertEqual(self.body_limit(srv), 2048)

    def test_env_over_config_file(self):
        path = self.config(f"listen: 127.0.0.1:0\ndata_dir: {self.dirs['file']}\n"
                           f"max_body_size: 2KiB\n")
        srv = self.start("--config", path, env={"ESPY_DATA_DIR": self.dirs["env"],
                                               "ESPY_MAX_BODY_SIZE": "4KiB"})
        self.assertUsesDir(srv, "env")
        self.assertEqual(self.body_limit(srv), 4096)

    def test_flag_over_env_over_config_file(self):
        path = self.config(f"listen: 127.0.0.1:0\ndata-dir: {self.dirs['file']}\n"
                           f"max-body-size: 2KiB\n")
        srv = self.start("--config", path, "--data-dir", self.dirs["flag"],
                         "--max-body-size", "8KiB",
                         env={"ESPY_DATA_DIR": self.dirs["env"], "ESPY_MAX_BODY_SIZE": "4KiB"})
        self.assertUsesDir(srv, "flag")
        self.assertEqual(self.body_limit(srv), 8192)

    def test_config_file_from_espy_config_env(self):
        path = self.config(f"listen: 127.0.0.1:0\ndata-dir: {self.dirs['file']}\n")
        srv = self.start(env={"ESPY_CONFIG": path})
        self.assertUsesDir(srv, "file")

    def test_listen_from_env_and_flag(self):
        # A bad value where a higher-precedence source wins is never looked at.
        path = self.config("listen: not-an-address\n")
        srv = self.start("--config", path, "--data-dir", self.dirs["flag"],
                         env={"ESPY_LISTEN": "127.0.0.1:0"})
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)
        srv.stop()
        srv2 = self.start("--listen", "127.0.0.1:0", "--data-dir", self.dirs["flag"],
                          env={"ESPY_LISTEN": "garbage"})
        self.assertEqual(srv2.request("GET", "/healthz")[0], 200)

    def test_default_data_dir_is_espy_data_in_the_working_dir(self):
        srv = self.start("--listen", "127.0.0.1:0")
        self.assertTrue(os.path.isdir(os.path.join(srv.workdir, "espy-data", "wal")))
        self.assertEqual(srv.post_metrics({"name": "d", "value": 1, "ts": 1})[0], 202)
        srv.restart()
        self.assertEqual(len(srv.query(name="d")), 1)

    def test_default_listen_address_is_127_0_0_1_5000(self):
        srv = EspyServer("--data-dir", self.dirs["flag"], listen=None, data_dir_flag=False,
                         start=False)
        self.addCleanup(srv.cleanup)
        try:
            srv.start()
        except ServerError as e:
            # Port 5000 may be taken on this machine; the attempt must still name it.
            self.assertIn("127.0.0.1:5000", str(e))
            return
        self.assertEqual(srv.address, "127.0.0.1:5000")

    def test_fsync_setting_changes_syncing(self):
        srv = self.start("--listen", "127.0.0.1:0", "--data-dir", self.dirs["flag"],
                         "--fsync", "never")
        for i in range(5):
            self.assertEqual(srv.post_metrics({"name": "f", "value": 1, "ts": i})[0], 202)
        self.assertEqual(srv.metric("espy_wal_fsyncs"), 0)
        srv.stop()
        srv = self.start(env={"ESPY_LISTEN": "127.0.0.1:0", "ESPY_DATA_DIR": self.dirs["env"],
                              "ESPY_FSYNC": "always"})
        for i in range(5):
            self.assertEqual(srv.post_metrics({"name": "f", "value": 1, "ts": i})[0], 202)
        self.assertGreaterEqual(srv.metric("espy_wal_fsyncs"), 5)


class BadSettingTest(EspyTestCase):
    def run_serve(self, *args, env=None):
        """espy serve with a free port and a temporary data dir unless the args give them."""
        base = ["serve"]
        if "--listen" not in args:
            base += ["--listen", "127.0.0.1:0"]
        if "--data-dir" not in args:
            base += ["--data-dir", os.path.join(self.tmpdir(), "d")]
        return self.run_espy(*base, *args, env=env, timeout=BAD_START_TIMEOUT)

    def assertRejected(self, result, *fragments, code=2):
        self.assertEqual(result.returncode, code, result.stderr)
        self.assertNotIn("msg=listening", result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)

    def test_bad_flag_values_exit_2_naming_the_setting(self):
        cases = [
            (["--retention", "30m"], "--retention: want >= 1h"),
            (["--retention", "forever"], "--retention: want a duration"),
            (["--fsync", "sometimes"], "--fsync: want batch, always or never"),
            (["--listen", "nope"], "--listen: want host:port"),
            (["--listen", "127.0.0.1:70000"], "--listen: want host:port"),
            (["--graphite-listen", "2003"], "--graphite-listen: want host:port"),
            (["--log-level", "loud"], "--log-level: want debug, info, warn or error"),
            (["--access-log", "yes please"], "--access-log: want true or false"),
            (["--threads", "-1"], "--threads: want a number"),
            (["--max-body-size", "10"], "--max-body-size: want at least 1KiB"),
            (["--max-body-size", "lots"], "--max-body-size: want a size"),
            (["--idle-timeout", "0s"], "--idle-timeout: want a positive duration"),
            (["--io-timeout", "soon"], "--io-timeout: want a duration"),
            (["--data-dir", ""], "--data-dir: want a directory path"),
            (["--downsampling", "5m"], '--downsampling: tier 1 "5m": want RESOLUTION:AGE'),
            (["--downsampling", "1h:30d,5m:1y"],
             '--downsampling: tier 2 "5m:1y": want a coarser resolution and a greater age'),
            (["--retention", "90d", "--downsampling", "5m:1y"], "--downsampling: a tier's age"),
        ]
        for args, message in cases:
            with self.subTest(args):
                self.assertRejected(self.run_serve(*args), message)

    def test_bad_env_values_exit_2_naming_the_setting(self):
        self.assertRejected(self.run_serve(env={"ESPY_FSYNC": "sometimes"}), "--fsync:")
        self.assertRejected(self.run_serve(env={"ESPY_RETENTION": "1m"}), "--retention: want >= 1h")

    def test_bad_config_values_exit_2_naming_the_setting(self):
        tmp = self.tmpdir()
        path = os.path.join(tmp, "c.yaml")
        with open(path, "w") as f:
            f.write("retention: 10m\n")
        self.assertRejected(self.run_serve("--config", path), "--retention: want >= 1h")

    def config_file(self, text):
        path = os.path.join(self.tmpdir(), "espy.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_unknown_yaml_key_names_file_and_line(self):
        path = self.config_file("listen: 127.0.0.1:0\n\n# a comment\nretension: 90d\n")
        self.assertRejected(self.run_serve("--config", path),
                            f"config file {path} line 4: unknown setting \"retension\"")

    def test_yaml_syntax_error_names_file_and_line(self):
        path = self.config_file("listen: 127.0.0.1:0\nfsync: [batch\n")
        self.assertRejected(self.run_serve("--config", path), f"config file {path} line ")

    def test_yaml_that_is_not_a_mapping(self):
        path = self.config_file("- listen\n- fsync\n")
        self.assertRejected(self.run_serve("--config", path), path, "mapping")

    def test_yaml_setting_with_a_list_value(self):
        path = self.config_file("fsync:\n  - batch\n")
        self.assertRejected(self.run_serve("--config", path),
                            f"config file {path} line 1: setting \"fsync\" wants a single value")

    def test_missing_config_file(self):
        path = os.path.join(self.tmpdir(), "absent.yaml")
        self.assertRejected(self.run_serve("--config", path), "--config:", path)

    def test_config_file_may_hold_sections_for_other_parts(self):
        tmp = self.tmpdir()
        path = self.config_file(f"listen: 127.0.0.1:0\ndata-dir: {tmp}/d\nprobes:\n"
                                "  - name: local\n    tcp: 127.0.0.1:1\nalerts: []\nrules: []\n")
        srv = self.server("--config", path, listen=None, data_dir_flag=False)
        self.assertEqual(srv.request("GET", "/healthz")[0], 200)

    def test_unusable_data_dir_fails_with_a_clear_message(self):
        tmp = self.tmpdir()
        blocker = os.path.join(tmp, "a-file")
        with open(blocker, "w") as f:
            f.write("not a directory")
        bad = os.path.join(blocker, "data")
        r = self.run_espy("serve", "--listen", "127.0.0.1:0", "--data-dir", bad,
                          timeout=BAD_START_TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("msg=listening", r.stderr)
        self.assertIn("cannot open storage", r.stderr)
        self.assertIn(bad, r.stderr)
        self.assertIn("Not a directory", r.stderr)

    def test_listen_address_in_use_fails_naming_it(self):
        srv = self.server()
        r = self.run_espy("serve", "--listen", srv.address, "--data-dir",
                          os.path.join(self.tmpdir(), "d"), timeout=BAD_START_TIMEOUT)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(srv.address, r.stderr)
        self.assertIn("in use", r.stderr)

    def test_data_dir_in_use_by_another_server_is_refused(self):
        srv = self.server()
        second = EspyServer(data_dir=srv.data_dir, start=False)
        self.addCleanup(second.cleanup)
        with self.assertRaises(ServerError, msg="a second server serves the same data dir") as e:
            second.start()
        self.assertIn(srv.data_dir, str(e.exception))


if __name__ == "__main__":
    unittest.main()
