"""DMTP receiving side, the limits a second review asked for: a peer's FCrDNS
lookups cannot hold the greeting past pull_fcrdns_wait; a denied peer may still
pull (GTML) what we hold for it. Peers connect from 127.0.0.38 and 127.0.0.39."""
import socket
import subprocess
import time
import unittest

from ferrytest import Ferry, SmtpLines, wait_for
from test_pull_send import GtmlClient, MSG, PullBase

PEER = "127.0.0.38"
PEER2 = "127.0.0.39"


class Peer(SmtpLines):
    def __init__(self, port, source, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply()


class SilentDns:
    """A UDP 'resolver' that reads every query and answers none."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class FcrdnsWait(unittest.TestCase):
    def test_greeting_waits_at_most_pull_fcrdns_wait(self):
        dns = SilentDns()
        self.addCleanup(dns.close)
        # the resolver alone would hold the greeting dns_timeout x dns_rounds = 10 s
        f = Ferry(extra=f"pull_mode = on\nresolver = 127.0.0.1:{dns.port}\ndns_timeout = 5s\ndns_rounds = 2\n"
                        "pull_fcrdns_wait = 1s\n")
        f.start()
        self.addCleanup(f.cleanup)
        t0 = time.monotonic()
        c = Peer(f.port, PEER)
        waited = time.monotonic() - t0
        self.assertEqual(c.greeting[0], 220, c.greeting)
        self.assertLess(waited, 4, waited)
        self.assertGreaterEqual(waited, 0.9, waited)
        self.assertEqual(c.cmd("EHLO x.test")[0], 250)
        c.cmd("QUIT")
        c.close()
        self.assertTrue(wait_for(lambda: "within pull_fcrdns_wait; classified by address" in f.read_log(), 5))
        self.assertIn(f"dmtp peer [{PEER}] fcrdns=- class=unclassified", f.read_log())


class NoticeCaps(unittest.TestCase):
    """An unclassified peer cannot fill a mailbox with intent messages."""

    def offer(self, f, source, sender, rcpt, msid):
        c = Peer(f.port, source)
        c.cmd("EHLO smta.example")
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}> DMTP")[0], 250)
        code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
        if code == 250:
            code, lines = c.cmd(f"MSID {msid} hello")
        c.cmd("QUIT")
        c.close()
        return code, lines[0]

    def test_caps_per_user_per_sender_and_per_peer(self):
        f = Ferry(extra="pull_mode = on\nlocal_recipients = any\npull_max_pending = 3\n"
                        "pull_max_pending_sender = 2\npull_max_intent_rate = 5\n")
        f.start()
        self.addCleanup(f.cleanup)
        n = iter(range(100))
        msid = lambda: "%dCAP-00FFFFFFFF-CAPSCAPS" % next(n)
        # per sender: the third message from a@ to una waits at RCPT
        self.assertEqual(self.offer(f, PEER, "a@x.example", "una@example.test", msid())[0], 250)
        self.assertEqual(self.offer(f, PEER, "a@x.example", "una@example.test", msid())[0], 250)
        code, line = self.offer(f, PEER, "a@x.example", "una@example.test", msid())
        self.assertEqual(code, 452, line)
        self.assertIn("4.2.2", line)
        # per user: b@ fills una's three places, then c@ waits too
        self.assertEqual(self.offer(f, PEER, "b@x.example", "una@example.test", msid())[0], 250)
        code, line = self.offer(f, PEER, "c@x.example", "una@example.test", msid())
        self.assertEqual((code, line[:9]), (452, "452 4.2.2"), line)
        self.assertEqual(len(f.ferryctl("pull", "list", "una").stdout.splitlines()), 3)
        self.assertTrue(wait_for(lambda: len(f.mailbox_files("una")) == 3, 10))
        # per peer: 3 intent messages this hour from PEER; two more, then 450
        self.assertEqual(self.offer(f, PEER, "d@x.example", "vic@example.test", msid())[0], 250)
        self.assertEqual(self.offer(f, PEER, "e@x.example", "vic@example.test", msid())[0], 250)
        code, line = self.offer(f, PEER, "g@x.example", "vic@example.test", msid())
        self.assertEqual((code, line[:9]), (450, "450 4.7.0"), line)
        # another peer is not held back by PEER's count
        self.assertEqual(self.offer(f, PEER2, "g@x.example", "vic@example.test", msid())[0], 250)
        self.assertTrue(wait_for(lambda: len(f.mailbox_files("vic")) == 3, 10))
        time.sleep(0.5)
        self.assertEqual(len(f.mailbox_files("una")), 3)


class DeniedPeerPulls(PullBase):
    """Ferry A (PEER) holds a message for b.test, whose MX is PEER2; A denies PEER2
    as a sender, yet PEER2 may still pull what A holds for it."""
    a_addr, b_addr = PEER, PEER2

    def test_denied_peer_may_pull_but_not_send(self):
        r = self.rmta(addr=PEER2)
        f = self.sender("pull_mode = on\n", relay_networks="127.0.0.1/32")
        _, hid, msid = self.send_held(f, r)
        r.close()
        self.assertEqual(f.ferryctl("pull", "deny", PEER2).returncode, 0)
        g = GtmlClient(PEER2, host=PEER)
        self.assertEqual(g.greeting[0], 220, g.greeting)
        g.cmd("EHLO mx.b.test")
        code, lines = g.cmd("MAIL FROM:<x@b.test>")
        self.assertEqual(code, 550, f.read_log()[-3000:])
        self.assertIn("DENIED", lines[0])
        code, body = g.gtml(msid, "bob@b.test")
        self.assertEqual(code, 250, f.read_log()[-2000:])
        self.assertEqual(body, MSG.format(to="bob@b.test", subj="pull-me").encode())
        self.assertEqual(g.cmd("QUIT")[0], 221)
        g.close()
        self.assertTrue(wait_for(lambda: hid not in self.held(f), 5), f.read_log()[-2000:])
        self.assertIn(f"dmtp peer [{PEER2}] denied", f.read_log())


if __name__ == "__main__":
    unittest.main()
