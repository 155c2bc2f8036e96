"""DMTP receiver-pull against Postfix from Debian (issue 14): Ferry with
pull_mode = on listens on 127.0.0.30:25; a private Postfix (peers.py) on
127.0.0.31:25 relays to it (relayhost) and receives from it (MX of pf.test).
Postfix does not speak DMTP and is not classified: Ferry greylists it (451), and
Postfix's own retry, seconds later with the peer's short back-off, gets through.
Allowed with `ferryctl pull allow`, it is delivered at the first attempt. The
other way Postfix offers no MSID, so Ferry sends plain SMTP and holds nothing."""
import re
import unittest

from dnsserver import DnsServer
from ferrytest import Ferry, wait_for
from peers import PostfixPeer
from test_pull_send import zone
from test_remote_delivery import wait_status

FERRY_ADDR = "127.0.0.30"
POSTFIX_ADDR = "127.0.0.31"


def read(path):
    with open(path, "rb") as f:
        return f.read()


class PullPostfix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer({"pf.test": zone("pf.test", f"@ IN MX 10 mx\nmx IN A {POSTFIX_ADDR}\n")}).start()
        cls.pf = cls.ferry = None
        try:
            # queue_run_delay and minimal_backoff_time are 1s in peers.py: a
            # greylisted message is retried within seconds.
            cls.pf = PostfixPeer(listen=POSTFIX_ADDR, domains=("pf.test",), myhostname="mx.pf.test",
                                 relayhost=f"[{FERRY_ADDR}]:25").start()
            cls.ferry = Ferry(extra=f"hostname = mx.f.test\nlisten = smtp {FERRY_ADDR}:25\n"
                                    f"smtp_source_ipv4 = {FERRY_ADDR}\nresolver = 127.0.0.1:{cls.dns.port}\n"
                                    "pull_mode = on\npull_greylist_delay = 2s\n",
                              domains="f.test").start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.ferry:
            cls.ferry.cleanup()
        if cls.pf:
            cls.pf.cleanup()
        cls.dns.stop()

    def postfix_lines(self, rcpt):
        return [l for l in self.pf.log().splitlines() if f"to=<{rcpt}>" in l]

    def ferry_got(self, user, marker, timeout=20):
        """The Maildir file of user holding marker, waited for; fails with both logs."""
        def found():
            return [p for p in self.ferry.mailbox_files(user) if marker in read(p)]
        files = wait_for(found, timeout)
        self.assertTrue(files, "Ferry did not deliver %r to %s; Postfix queue:\n%s\nPostfix log:\n%s\nferryd log:\n%s"
                        % (marker, user, self.pf.queue(), self.pf.log()[-3000:], self.ferry.read_log()[-3000:]))
        return read(files[0])

    def test_unclassified_postfix_is_greylisted_then_retries(self):
        self.pf.send("old@pf.test", ["carol@f.test"],
                     "From: old@pf.test\nTo: carol@f.test\nSubject: greylisted\n\nlegacy via Postfix\n")
        body = self.ferry_got("carol", b"legacy via Postfix")
        self.assertIn(b"by mx.pf.test (Postfix", body)
        lines = self.postfix_lines("carol@f.test")
        deferred = [l for l in lines if "status=deferred" in l]
        self.assertTrue(deferred, lines)
        self.assertRegex(deferred[0], r"relay=127\.0\.0\.30\[127\.0\.0\.30\]:25, .*said: 451 4\.7\.1 .*greylisted.*"
                                      r"\(in reply to RCPT TO command\)")
        self.assertRegex(lines[-1], r"relay=127\.0\.0\.30\[127\.0\.0\.30\]:25, .*status=sent \(250 ")
        log = self.ferry.read_log()
        self.assertRegex(log, r"dmtp peer \[127\.0\.0\.31\] fcrdns=- class=unclassified")
        self.assertRegex(log, r"dmtp greylisted RCPT <carol@f\.test> from=<old@pf\.test> \[127\.0\.0\.31\]")
        self.assertRegex(log, r"dmtp greylist pass <carol@f\.test> from=<old@pf\.test> \[127\.0\.0\.31\]")

    def test_allowed_postfix_is_delivered_at_once(self):
        self.assertEqual(self.ferry.ferryctl("pull", "allow", POSTFIX_ADDR).returncode, 0)
        self.addCleanup(self.ferry.ferryctl, "pull", "unlist", POSTFIX_ADDR)
        self.pf.send("friend@pf.test", ["dora@f.test"],
                     "From: friend@pf.test\nTo: dora@f.test\nSubject: allowed\n\nstraight through\n")
        self.ferry_got("dora", b"straight through")
        lines = self.postfix_lines("dora@f.test")
        self.assertEqual([l for l in lines if "status=" in l and "status=sent" not in l], [], lines)
        self.assertRegex(self.ferry.read_log(), r"dmtp peer \[127\.0\.0\.31\] fcrdns=- class=allowed")

    def test_ferry_sends_plain_smtp_to_postfix(self):
        qid = self.ferry.inject("erin@f.test", ["bob@pf.test"],
                                "From: erin@f.test\r\nTo: bob@pf.test\r\nSubject: to-postfix\r\n\r\nplain SMTP\r\n")
        msgs = self.pf.wait_for_messages(1, timeout=20, address="bob@pf.test")
        self.assertIn(b"plain SMTP", msgs[0])
        st = wait_status(self.ferry, qid, "bob@pf.test")
        self.assertEqual(st[0], "sent", st)
        # nothing held, no DMTP said: Postfix would have refused an unknown MAIL parameter
        self.assertEqual([n for n in self.ferry.queue_files("held") if n.endswith(".env")], [])
        self.assertNotRegex(self.ferry.read_log(), r"%s: .*(MSID|held for pull)" % qid)
        self.assertNotIn("DMTP", self.pf.log())
        self.assertTrue(re.search(r"connect from unknown\[127\.0\.0\.30\]", self.pf.log()))


if __name__ == "__main__":
    unittest.main()
