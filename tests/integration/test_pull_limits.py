"""DMTP receiving side, the limits a second review asked for: a peer's FCrDNS
lookups cannot hold the greeting past pull_fcrdns_wait; a denied peer may still
pull (GTML) what we hold for it. Peers connect from 127.0.0.38 and 127.0.0.39."""
import os
import socket
import subprocess
import threading
import time
import unittest

from ferrytest import ROOT, Ferry, SmtpLines, wait_for
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
        f = self.sender("pull_mode = on\npull_denied_greeting = no\n", relay_networks="127.0.0.1/32")
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


TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "pull_notice_add")


class TricklingSmta:
    """On PEER:25: answers EHLO and GTML 250, then sends one body line every half
    second, never the final dot (a peer holding a pull slot)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PEER, 25))
        self.sock.listen(4)
        self.stop = False
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        try:
            f = conn.makefile("rb")
            conn.sendall(b"220 trickle.test\r\n")
            f.readline()
            conn.sendall(b"250 trickle.test\r\n")
            f.readline()
            conn.sendall(b"250 2.0.0 message follows\r\n")
            for i in range(120):
                if self.stop:
                    break
                conn.sendall(b"Subject: line %d\r\n" % i)
                time.sleep(0.5)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class PullDeadline(unittest.TestCase):
    def test_trickling_peer_loses_the_slot_at_pull_deadline(self):
        smta = TricklingSmta()
        self.addCleanup(smta.close)
        b = Ferry(extra=f"pull_mode = on\npull_private_peers = yes\nsmtp_source_ipv4 = {PEER2}\n"
                        "pull_deadline = 3s\n")
        self.addCleanup(b.cleanup)
        env = dict(os.environ, PULL_NOTICE_MSID="1ABC-00FFFFFFFF-" + "A" * 26, PULL_NOTICE_AUTO="1")
        r = subprocess.run([TOOL, b.conf, "bob", "bob@example.test", "alice@a.test", PEER, "a.test", "slow"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        t0 = time.monotonic()
        b.start()
        self.assertTrue(wait_for(lambda: "took longer than pull_deadline (3s)" in b.read_log(), 10),
                        b.read_log()[-2000:])
        took = time.monotonic() - t0
        self.assertLess(took, 8)
        self.assertGreaterEqual(took, 3)
        self.assertTrue(smta.connections >= 1)
        self.assertEqual(b.mailbox_files("bob"), [])


    def test_scan_is_fair_across_users_and_peers(self):
        # 205 notices of one user from one peer come first in the store's order; a
        # later user's single notice from another peer must still be tried at once.
        b = Ferry(extra=f"pull_mode = on\npull_private_peers = yes\nsmtp_source_ipv4 = {PEER2}\n"
                        "pull_deadline = 2s\n")
        self.addCleanup(b.cleanup)
        for i in range(206):
            user, peer = ("aaa", PEER) if i < 205 else ("zed", PEER2)
            env = dict(os.environ, PULL_NOTICE_MSID="%dABC-00FFFFFFFF-" % i + "A" * 26, PULL_NOTICE_AUTO="1")
            r = subprocess.run([TOOL, b.conf, user, f"{user}@example.test", "alice@a.test", peer, "a.test", "n"],
                               capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
        b.start()
        self.assertTrue(wait_for(lambda: f"for <zed@example.test>: connecting to [{PEER2}]" in b.read_log(), 5),
                        b.read_log()[-2000:])


if __name__ == "__main__":
    unittest.main()
