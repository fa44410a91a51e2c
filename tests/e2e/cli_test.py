"""End-to-end tests of the command line: help, version, setting precedence (flag > ESPY_* env >
--config YAML > default), and how bad settings, config files and data dirs are reported."""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from espy_server import EspyServer, EspyTestCase, ServerError  # noqa: E402

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
