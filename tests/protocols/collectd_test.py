"""collectd (Debian's /usr/sbin/collectd) with the load plugin and write_graphite sends to Espy's
Graphite TCP listener; the test finds its metrics through GET /v1/metrics."""

import os
import shutil
import tempfile
import unittest

from protocol_server import Espy, PeerProcess

COLLECTD = shutil.which("collectd") or "/usr/sbin/collectd"
PLUGIN_DIR = "/usr/lib/collectd"


class CollectdGraphiteTest(unittest.TestCase):
    def test_write_graphite_metrics_arrive(self):
        espy = Espy(graphite=True)
        self.addCleanup(espy.close)
        tmp = tempfile.mkdtemp(prefix="espy-collectd-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "collectd.conf")
        with open(conf, "w") as f:
            f.write(f"""
Hostname "espytest.example"
FQDNLookup false
Interval 1
BaseDir "{tmp}"
PIDFile "{tmp}/collectd.pid"
PluginDir "{PLUGIN_DIR}"
TypesDB "/usr/share/collectd/types.db"
LoadPlugin load
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "espy">
    Host "127.0.0.1"
    Port "{espy.graphite_port}"
    Protocol "tcp"
    Prefix "collectd."
    EscapeCharacter "_"
    StoreRates true
    AlwaysAppendDS false
  </Node>
</Plugin>
""")
        collectd = PeerProcess(self, [COLLECTD, "-f", "-C", conf],
                               os.path.join(tmp, "collectd.log"))

        # write_graphite names it <Prefix><host with '.' escaped>.load.load.shortterm.
        name = "collectd.espytest_example.load.load.shortterm"
        try:
            rows = espy.wait_for_samples(name, count=2)
        except AssertionError:
            raise AssertionError("collectd log:\n" + collectd.tail())
        for row in rows:
            self.assertEqual(name, row["name"])
            self.assertGreaterEqual(row["value"], 0)
        self.assertTrue(espy.samples("collectd.espytest_example.load.load.longterm"))
        self.assertNotIn("bad graphite line", espy.log.text())


if __name__ == "__main__":
    unittest.main()
