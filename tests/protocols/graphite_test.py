"""Graphite plaintext from raw TCP and UDP sockets: partial lines across writes, long-lived
connections, tags, bad lines counted and skipped without dropping the connection."""

import re
import socket
import unittest

from protocol_server import Espy, wait_until


class GraphiteTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.espy = Espy(graphite=True)

    @classmethod
    def tearDownClass(cls):
        cls.espy.close()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.espy.graphite_port), timeout=30)
        self.addCleanup(s.close)
        return s

    def test_lines_split_across_tcp_writes(self):
        s = self.connect()
        for part in [b"split.a 1 17000", b"00000\nsplit.b", b" 2 1700000000\nspl", b"it.c 3 1700000000\n"]:
            s.sendall(part)
        rows = self.espy.wait_for_samples("split.a") + self.espy.wait_for_samples("split.b") + \
            self.espy.wait_for_samples("split.c")
        self.assertEqual([1, 2, 3], [r["value"] for r in rows])
        self.assertEqual("2023-11-14T22:13:20.000Z", rows[0]["ts"])

    def test_long_lived_connection_with_bad_lines(self):
        s = self.connect()
        bad_before = self.espy.self_metric("espy_graphite_bad_lines_total") or 0
        s.sendall(b"live.one 1 1700000000\nthis is not graphite\nlive.bad notanumber 1700000000\n")
        self.espy.wait_for_samples("live.one")
        wait_until("bad lines counted",
                   lambda: (self.espy.self_metric("espy_graphite_bad_lines_total") or 0) >= bad_before + 2)
        # The same connection still works.
        s.sendall(b"live.two 2 1700000000\n")
        self.assertEqual(2, self.espy.wait_for_samples("live.two")[0]["value"])
        # Logged when the read was parsed; the test's reader of stderr may not
        # have taken the line from the pipe yet, so wait for it.
        logged = self.espy.log.wait_for(re.compile(r'msg="bad graphite line skipped"'), 10)
        self.assertIsNotNone(logged, self.espy.log.text())

    def test_tags_and_now(self):
        s = self.connect()
        s.sendall(b"tagged.load;host=web1;dc=eu 0.5 -1\n")
        row = self.espy.wait_for_samples("tagged.load", host="web1")[0]
        self.assertEqual({"name": "tagged.load", "value": 0.5, "host": "web1", "dc": "eu"},
                         {k: v for k, v in row.items() if k != "ts"})

    def test_udp(self):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(u.close)
        u.sendto(b"udp.x 5 1700000000\nudp.y 6 1700000000", ("127.0.0.1", self.espy.graphite_port))
        self.assertEqual(5, self.espy.wait_for_samples("udp.x")[0]["value"])
        self.assertEqual(6, self.espy.wait_for_samples("udp.y")[0]["value"])

    def test_partial_last_line_at_close(self):
        s = self.connect()
        s.sendall(b"eof.last 9 1700000000")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(b"", s.recv(1))  # the server closes its side once done
        self.assertEqual(9, self.espy.wait_for_samples("eof.last")[0]["value"])

    def test_samples_counted(self):
        s = self.connect()
        s.sendall(b"counted.g 1 1700000000\n")
        self.espy.wait_for_samples("counted.g")
        wait_until("graphite samples counted",
                   lambda: (self.espy.self_metric('espy_samples_ingested_total{protocol="graphite"}') or 0) >= 1)


class GraphiteShutdownTest(unittest.TestCase):
    def test_sigterm_with_open_connection_exits_cleanly_and_keeps_data(self):
        espy = Espy(graphite=True)
        s = socket.create_connection(("127.0.0.1", espy.graphite_port), timeout=30)
        self.addCleanup(s.close)
        s.sendall(b"kept 1 1700000000\n")
        espy.wait_for_samples("kept")
        self.assertEqual(0, espy.close())
        self.assertEqual(b"", s.recv(1))


if __name__ == "__main__":
    unittest.main()
