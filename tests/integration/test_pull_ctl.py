"""`ferryctl pull` against a real data_dir: the DMTP peer and per-user lists
(allow/deny/unlist round trips, read back with `pull lists`), and the pending
notices (`pull list` format, `drop`, `fetch`), with ferryd running on the same
Berkeley DB environment. Notices are stored by tests/tools/pull_notice_add, which
does what the smtp process does after an MSID."""
import os
import re
import subprocess
import unittest

from ferrytest import ROOT, Ferry

ADD = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "pull_notice_add")


class PullCtl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry(extra="pull_mode = on\nlog_level = warn").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()

    def ctl(self, *args):
        return self.f.ferryctl("pull", *args)

    def add_notice(self, user, rcpt, sender, ip, name, subject, age=0):
        r = subprocess.run([ADD, self.f.conf, user, rcpt, sender, ip, name, subject, str(age)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        nid = r.stdout.strip()
        self.assertRegex(nid, r"^[0-9a-f]{16}$")
        return nid

    def test_peer_round_trip(self):
        r = self.ctl("allow", "192.0.2.9/24")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.ctl("deny", "Spam.Example.").returncode, 0)
        self.assertEqual(self.ctl("allow", "2001:db8::1").returncode, 0)
        out = self.ctl("lists").stdout.splitlines()
        self.assertIn("allow 192.0.2.0/24", out)            # canonical form
        self.assertIn("deny spam.example", out)
        self.assertIn("allow 2001:db8::1/128", out)
        # deny replaces allow for the same entry
        self.assertEqual(self.ctl("deny", "192.0.2.0/24").returncode, 0)
        out = self.ctl("lists").stdout.splitlines()
        self.assertIn("deny 192.0.2.0/24", out)
        self.assertNotIn("allow 192.0.2.0/24", out)
        # unlist, then unlist again: nothing to remove
        self.assertEqual(self.ctl("unlist", "192.0.2.0/24").returncode, 0)
        r = self.ctl("unlist", "192.0.2.0/24")
        self.assertEqual(r.returncode, 1)
        self.assertIn("is on no list", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        self.assertNotIn("192.0.2.0/24", self.ctl("lists").stdout)
        for e in ("spam.example", "2001:db8::1/128"):
            self.assertEqual(self.ctl("unlist", e).returncode, 0)

    def test_peer_errors(self):
        r = self.ctl("allow", "not a peer")
        self.assertEqual(r.returncode, 1)
        self.assertIn('"not a peer"', r.stderr)
        self.assertEqual(self.ctl("allow", "192.0.2.0/40").returncode, 1)
        self.assertEqual(self.ctl("allow").returncode, 2)
        self.assertEqual(self.ctl("frobnicate", "x").returncode, 2)
        self.assertEqual(self.ctl("allow", "a", "b", "c").returncode, 2)
        self.assertEqual(self.ctl("drop", "alice").returncode, 2)

    def test_user_lists(self):
        self.assertEqual(self.ctl("allow", "carol", "@Friends.example").returncode, 0)
        self.assertEqual(self.ctl("deny", "carol", "pest@friends.example").returncode, 0)
        self.assertEqual(self.ctl("allow", "carolx", "a@b.example").returncode, 0)
        self.assertEqual(self.ctl("lists", "Carol").stdout.splitlines(),
                         ["allow @friends.example", "deny pest@friends.example"])
        self.assertEqual(self.ctl("unlist", "carol", "pest@friends.example").returncode, 0)
        self.assertEqual(self.ctl("lists", "carol").stdout.splitlines(), ["allow @friends.example"])
        r = self.ctl("allow", "carol", "no-at-sign")
        self.assertEqual(r.returncode, 1)
        self.assertIn("user@domain or @domain", r.stderr)
        self.assertEqual(self.ctl("lists", "nobody-here").stdout, "")

    def test_list_format_drop_fetch(self):
        a1 = self.add_notice("dave", "dave@example.test", "someone@far.example", "192.0.2.25",
                             "mx.far.example", "Quarterly report", age=7200)
        a2 = self.add_notice("dave", "dave@example.test", "", "198.51.100.3", "", "bounce\r\nX-Evil: 1", age=30)
        b1 = self.add_notice("erin", "erin@example.test", "x@y.example", "203.0.113.5", "", "Hi")
        r = self.ctl("list", "dave")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines, [
            f"{a1} someone@far.example dave@example.test 192.0.2.25(mx.far.example) 2h pending Quarterly report",
            f"{a2} <> dave@example.test 198.51.100.3 30s pending bounce X-Evil: 1",
        ])
        everyone = self.ctl("list").stdout
        self.assertIn(b1 + " x@y.example erin@example.test 203.0.113.5 ", everyone)
        self.assertRegex(everyone, b1 + r" .* \d+s pending Hi\n")
        self.assertIn(a1, everyone)
        # fetch marks the notice (the pull itself: test_pull_recv); it stays listed, in its new state
        r = self.ctl("fetch", "dave", a1)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("fetch requested", r.stdout)
        self.assertEqual(self.ctl("list", "dave").stdout.splitlines()[0].split()[5:],
                         ["fetch-requested", "Quarterly", "report"])
        # another user's notice is not dave's to fetch or drop
        r = self.ctl("fetch", "dave", b1)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(), f"ferryctl: user dave has no pending notice {b1}")
        self.assertEqual(self.ctl("drop", "dave", b1).returncode, 1)
        # drop
        self.assertEqual(self.ctl("drop", "dave", a1).returncode, 0)
        self.assertEqual([l.split()[0] for l in self.ctl("list", "dave").stdout.splitlines()], [a2])
        self.assertEqual(self.ctl("drop", "dave", a1).returncode, 1)
        self.assertEqual(self.ctl("drop", "dave", "../../etc").returncode, 1)
        # the daemon still runs on the same environment
        self.assertIsNone(self.f.proc.poll())


if __name__ == "__main__":
    unittest.main()
