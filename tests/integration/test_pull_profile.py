"""DMTP receiving-side settings and forms the other modules leave untested (issue
14, items 1, 2 and 4): pull_mode = off is the default and changes nothing;
-00's `MSID:` form is accepted; pull_legacy = accept and reject; an SPF pass of
MAIL FROM's domain on the allowed list makes the transaction allowed
(pull_allow_dmarc_pass, and not with it off); a pull never goes to a loopback
address without pull_private_peers.

Peers connect from 127.0.0.33 (unclassified) and 127.0.0.34 (friends.example's
SPF address). And the pull client's per-peer limit: one pull at a time from a
peer (a scripted SMTA on 127.0.0.35:25 counts its concurrent sessions), the
next one started as soon as the last ends, not at the next 30 s scan."""
import os
import socket
import subprocess
import threading
import time
import unittest

from dnsserver import DnsServer
from ferrytest import Ferry, wait_for
from test_pull_receive import PULL_CONF, Peer
from test_pull_recv import TOOL

STRANGER = "127.0.0.33"
FRIEND = "127.0.0.34"
MSID = "0000000000000000-00FFFFFFFF-AAAAAAAAAAAAAAAAAAAAAAAAAA"

ZONE = """$ORIGIN example.
$TTL 300
@ IN SOA ns.example. hostmaster.example. 1 3600 900 604800 60
@ IN NS ns.example.
ns IN A 127.0.0.1
friends IN TXT "v=spf1 ip4:127.0.0.34 ~all"
"""


class Profile(unittest.TestCase):
    def ferry(self, extra=""):
        f = Ferry(extra=extra)
        self.addCleanup(f.cleanup)
        f.start()
        return f

    def session(self, f, source=STRANGER):
        c = Peer(f.port, source)
        self.addCleanup(c.close)
        self.assertEqual(c.greeting[0], 220)
        code, lines = c.cmd("EHLO smta.example")
        self.assertEqual(code, 250)
        return c, lines

    def test_pull_mode_off_is_the_default_and_changes_nothing(self):
        f = self.ferry()
        c, ehlo = self.session(f)
        self.assertFalse([l for l in ehlo if "MSID" in l or "GTML" in l], ehlo)
        self.assertEqual(c.cmd("MAIL FROM:<a@far.example> DMTP")[0], 555)     # no such parameter
        self.assertEqual(c.cmd("MAIL FROM:<a@far.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.test>")[0], 250)         # not greylisted
        self.assertEqual(c.cmd("MSID %s subject" % MSID)[0], 500)            # no such verb
        self.assertEqual(c.cmd("DATA")[0], 354)
        self.assertEqual(c.cmd("Subject: plain\r\n\r\nbody\r\n.")[0], 250)
        self.assertTrue(f.wait_mail("bob"))
        # nothing was classified, no store opened for it
        self.assertNotIn("dmtp peer", f.read_log())
        # GTML is the sending side's service (pull_hold), answered whatever pull_mode says
        self.assertEqual(c.cmd("GTML %s bob@example.test" % MSID)[0], 550)

    def test_draft00_msid_colon_form(self):
        f = self.ferry(PULL_CONF)
        for i, form in enumerate(("MSID:%s old form", "MSID: %s old form, blank after the colon")):
            c, ehlo = self.session(f)
            self.assertIn("250-MSID", ehlo)
            self.assertEqual(c.cmd("MAIL FROM:<old%d@far.example> DMTP" % i)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<olga@example.test>")[0], 250)
            code, lines = c.cmd(form % MSID.replace("AAAA", "AAA%d" % i, 1))
            self.assertEqual(code, 250, lines)
            c.cmd("QUIT")
        rows = f.ferryctl("pull", "list", "olga").stdout.splitlines()
        self.assertEqual(len(rows), 2, rows)
        self.assertEqual(sorted(r.split()[1] for r in rows), ["old0@far.example", "old1@far.example"])
        self.assertEqual(sorted(r.split(None, 6)[6] for r in rows),
                         ["old form", "old form, blank after the colon"])

    def test_legacy_accept(self):
        f = self.ferry(PULL_CONF + "pull_legacy = accept\n")
        c, _ = self.session(f)
        self.assertEqual(c.cmd("MAIL FROM:<old@legacy.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<ivan@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        self.assertEqual(c.cmd("Subject: legacy\r\n\r\nbody\r\n.")[0], 250)
        self.assertTrue(f.wait_mail("ivan"))
        # a DMTP sender from the same peer is still asked for MSID
        self.assertEqual(c.cmd("MAIL FROM:<new@legacy.example> DMTP")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<ivan@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 503)

    def test_legacy_reject(self):
        f = self.ferry(PULL_CONF + "pull_legacy = reject\n")
        c, _ = self.session(f)
        self.assertEqual(c.cmd("MAIL FROM:<old@legacy.example>")[0], 250)
        code, lines = c.cmd("RCPT TO:<ivan@example.test>")
        self.assertEqual(code, 550, lines)
        self.assertTrue(lines[0].startswith("550 5.7.1 unclassified sender"), lines)
        self.assertIn("dmtp reject legacy RCPT <ivan@example.test>", f.read_log())

    def spf_ferry(self, allow_pass):
        dns = DnsServer({"example": ZONE}).start()
        self.addCleanup(dns.stop)
        f = self.ferry(PULL_CONF + "spf_check = yes\nresolver = 127.0.0.1:%d\npull_allow_dmarc_pass = %s\n"
                       % (dns.port, "yes" if allow_pass else "no"))
        self.assertEqual(f.ferryctl("pull", "allow", "friends.example").returncode, 0)
        return f

    def test_spf_pass_of_an_allowed_domain_allows(self):
        f = self.spf_ferry(True)
        c, ehlo = self.session(f, FRIEND)
        self.assertIn("250-MSID", ehlo)          # the peer itself is on no list
        # DMTP declared, but the domain passes SPF and is allowed: ordinary DATA
        self.assertEqual(c.cmd("MAIL FROM:<pal@friends.example> DMTP")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<kai@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        self.assertEqual(c.cmd("Subject: friend\r\n\r\nbody\r\n.")[0], 250)
        self.assertTrue(f.wait_mail("kai"))
        self.assertIn("dmtp sender domain friends.example allowed by SPF pass", f.read_log())
        # a legacy sender of that domain is not greylisted either
        self.assertEqual(c.cmd("MAIL FROM:<pal@friends.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<kai@example.test>")[0], 250)
        c.cmd("RSET")
        # the same domain from an address its SPF does not name (softfail): no allow
        s, _ = self.session(f, STRANGER)
        self.assertEqual(s.cmd("MAIL FROM:<pal@friends.example>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<kai@example.test>")[0], 451)          # greylisted

    def test_spf_pass_counts_only_with_pull_allow_dmarc_pass(self):
        f = self.spf_ferry(False)
        c, _ = self.session(f, FRIEND)
        self.assertEqual(c.cmd("MAIL FROM:<pal@friends.example> DMTP")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<kai@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 503)

    def test_no_pull_from_loopback_without_pull_private_peers(self):
        f = self.ferry(PULL_CONF)
        env = dict(os.environ, PULL_NOTICE_MSID=MSID, PULL_NOTICE_AUTO="0")
        r = subprocess.run([TOOL, f.conf, "bob", "bob@example.test", "alice@a.test", STRANGER, "", "pull me"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        nid = r.stdout.strip()
        self.assertEqual(f.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        self.assertTrue(wait_for(lambda: "will not connect to a private or loopback address" in f.read_log(), 15),
                        f.read_log()[-2000:])
        self.assertNotIn("connecting to [%s]" % STRANGER, f.read_log())
        self.assertIn(nid, f.ferryctl("pull", "list", "bob").stdout)     # kept: the user may still decide


SMTA = "127.0.0.35"


class SlowSmta:
    """A holder on SMTA:25 that answers every GTML after a second with a small
    message, and records how many sessions were open at once."""

    def __init__(self):
        self.open = self.most = self.served = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((SMTA, 25))
        self.sock.listen(8)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        with self.lock:
            self.open += 1
            self.most = max(self.most, self.open)
        f = conn.makefile("rb")
        try:
            conn.sendall(b"220 smta.example ESMTP\r\n")
            while True:
                line = f.readline()
                if not line:
                    return
                verb = line.split(b" ", 1)[0].strip().upper()
                if verb == b"EHLO":
                    conn.sendall(b"250 smta.example\r\n")
                elif verb == b"GTML":
                    time.sleep(1)
                    n = line.split()[1].decode()
                    conn.sendall(b"250 2.0.0 message follows\r\nSubject: slow %s\r\n\r\nbody\r\n.\r\n" % n.encode())
                elif verb == b"QUIT":
                    with self.lock:
                        self.served += 1
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"502 no\r\n")
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1
            conn.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class PeerLimit(unittest.TestCase):
    def test_one_pull_at_a_time_per_peer_and_the_next_at_once(self):
        smta = SlowSmta()
        self.addCleanup(smta.close)
        b = Ferry(extra=PULL_CONF + "pull_private_peers = yes\n")
        self.addCleanup(b.cleanup)
        b.start()
        b.stop()
        for i in range(4):
            env = dict(os.environ, PULL_NOTICE_MSID=MSID.replace("AAAA", "AAA%d" % i, 1), PULL_NOTICE_AUTO="1")
            r = subprocess.run([TOOL, b.conf, "bob", "bob@example.test", "alice@a.test", SMTA, "", "slow"],
                               capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
        b.start()
        # four pulls of about a second each: well inside one 30 s scan period only
        # if each starts when the last ends
        self.assertTrue(wait_for(lambda: len(b.mailbox_files("bob")) == 4, 25),
                        "%d pulled\n%s" % (len(b.mailbox_files("bob")), b.read_log()[-3000:]))
        self.assertEqual(smta.most, 1)
        self.assertEqual(smta.served, 4)
        self.assertEqual(b.ferryctl("pull", "list", "bob").stdout.strip(), "")


if __name__ == "__main__":
    unittest.main()
