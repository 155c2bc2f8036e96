"""DMTP pull client (issue 14, item 4): Ferry A (127.0.0.6:25) holds a message
after a scripted receiver took its MSID on 127.0.0.7:25; then Ferry B takes over
127.0.0.7:25 with pull_mode = on and a notice carrying that msid (stored with the
test tool, as the smtp process's MSID verb will). ferryctl pull fetch, or a
NOTICE_AUTO notice, makes B pull from A over GTML: the message lands in B's
Maildir byte-identical below the trace fields, and A removes the held copy."""
import os
import subprocess
import unittest

from ferrytest import Ferry, ROOT, wait_for
from test_pull_send import A_ADDR, B_ADDR, MSG, PullBase, ScriptedRmta

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "pull_notice_add")


class PullRecv(PullBase):
    def held_at_a(self, subj, rcpt="bob@b.test"):
        r = ScriptedRmta()
        try:
            a = self.sender()
            _, hid, msid = self.send_held(a, r, rcpts=(rcpt,), subj=subj)
        finally:
            r.close()
        return a, hid, msid

    def receiver(self, notice_msid=None, auto=False, start=True):
        b = Ferry(extra=f"hostname = mx.b.test\nlisten = smtp {B_ADDR}:25\n"
                        f"resolver = 127.0.0.1:{self.dns.port}\nsmtp_source_ipv4 = {B_ADDR}\n"
                        "pull_mode = on\npull_private_peers = yes\n",
                  domains="b.test")
        self.addCleanup(b.cleanup)
        if start:
            b.start()
        return b

    def add_notice(self, b, msid, auto=False):
        env = dict(os.environ, PULL_NOTICE_MSID=msid, PULL_NOTICE_AUTO="1" if auto else "0")
        r = subprocess.run([TOOL, b.conf, "bob", "bob@b.test", "alice@a.test", A_ADDR, "a.test", "pull me"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def assert_pulled(self, a, b, hid, subj):
        files = b.wait_mail("bob", 1, 20)
        self.assertTrue(files, b.read_log()[-3000:] + a.read_log()[-2000:])
        data = open(files[0], "rb").read()
        original = MSG.format(to="bob@b.test", subj=subj).encode().replace(b"\r\n", b"\n")
        # byte-identical below the trace fields B added
        self.assertTrue(data.endswith(original), data)
        trace = data[:-len(original)]
        self.assertIn(b"with DMTP pull (GTML)", trace)
        self.assertTrue(wait_for(lambda: hid not in self.held(a), 10), a.read_log()[-2000:])
        self.assertTrue(wait_for(lambda: b.ferryctl("pull", "list", "bob").stdout.strip() == "", 5))

    def test_fetch_pulls_from_the_holder(self):
        a, hid, msid = self.held_at_a("fetched")
        b = self.receiver()
        nid = self.add_notice(b, msid)
        self.assertEqual(b.mailbox_files("bob"), [])        # pending: nothing pulled yet
        r = b.ferryctl("pull", "fetch", "bob", nid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pulls are being looked at", r.stdout)
        self.assert_pulled(a, b, hid, "fetched")
        self.assertIn(f"<bob@b.test> pulled by [{B_ADDR}]", a.read_log())

    def test_auto_notice_survives_kill9_and_is_pulled(self):
        a, hid, msid = self.held_at_a("auto")
        b = self.receiver(start=False)
        b.start()
        b.kill9_all()                    # between MSID and the pull: the notice is on disk
        self.add_notice(b, msid, auto=True)
        b.start()                        # the first pull run takes NOTICE_AUTO notices
        self.assert_pulled(a, b, hid, "auto")

    def test_refused_pull_is_retried_later_not_lost(self):
        a, hid, msid = self.held_at_a("altered")
        b = self.receiver()
        altered = msid[:-1] + ("0" if msid[-1] != "0" else "1")
        nid = self.add_notice(b, altered)
        b.ferryctl("pull", "fetch", "bob", nid)
        self.assertTrue(wait_for(lambda: "GTML refused: 550 5.7.1" in b.read_log(), 10), b.read_log()[-2000:])
        self.assertIn(nid, b.ferryctl("pull", "list", "bob").stdout)    # kept, for a retry
        self.assertEqual(self.held(a), [hid])


if __name__ == "__main__":
    unittest.main()


class TwoFerries(PullBase):
    """End to end: A relays for b.test, B (pull_mode = on) takes the MSID."""
    receiver = PullRecv.receiver

    def pair(self):
        b = self.receiver()
        a = self.sender()
        return a, b

    def notice_id(self, b):
        out = wait_for(lambda: b.ferryctl("pull", "list", "bob").stdout.strip(), 15)
        self.assertTrue(out, b.read_log()[-3000:])
        return out.split()[0]

    def test_unclassified_sender_held_then_fetched(self):
        a, b = self.pair()
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="e2e"))
        nid = self.notice_id(b)
        hid = wait_for(lambda: self.held(a), 10)[0]
        self.assertRegex(a.ferryctl("queue", "list").stdout, r"bob@b.test.*waiting for pull")
        # only the intent message so far
        files = b.wait_mail("bob", 1, 10)
        self.assertEqual(len(files), 1)
        self.assertIn(b"[pull " + nid.encode(), open(files[0], "rb").read())
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        files = b.wait_mail("bob", 2, 20)
        self.assertTrue(files, b.read_log()[-3000:])
        original = MSG.format(to="bob@b.test", subj="e2e").encode().replace(b"\r\n", b"\n")
        self.assertTrue(any(open(p, "rb").read().endswith(original) for p in files), files)
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])

    def test_user_allowed_sender_pulled_right_after_msid(self):
        a, b = self.pair()
        self.assertEqual(b.ferryctl("pull", "allow", "bob", "alice@a.test").returncode, 0)
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="auto-e2e"))
        original = MSG.format(to="bob@b.test", subj="auto-e2e").encode().replace(b"\r\n", b"\n")

        def arrived():
            return [p for p in b.mailbox_files("bob") if open(p, "rb").read().endswith(original)]
        self.assertTrue(wait_for(arrived, 20), b.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])
