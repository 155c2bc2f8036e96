"""DMTP sending side (issue 14, items 6-8): Ferry A on 127.0.0.6:25 relays mail for
b.test, whose MX (127.0.0.7:25) is a scripted receiving MTA in Python. A peer that
offers MSID gets MAIL ... DMTP, the RCPTs and MSID; the message is held in
spool/held/ and served to GTML only under the msid's rules; a peer without MSID
gets plain SMTP."""
import os
import re
import shutil
import socket
import threading
import time
import unittest

from dnsserver import DnsServer
from ferrytest import Ferry, SmtpLines, wait_for

A_ADDR = "127.0.0.6"
B_ADDR = "127.0.0.7"
THIRD = "127.0.0.8"
MX2_ADDR = "127.0.0.9"     # a second MX host of multi.test (a client address only)


def zone(origin, body):
    return (f"$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 900 604800 60\n"
            f"@ IN NS ns\nns IN A 127.0.0.1\n" + body)


MSG = ("From: alice@a.test\r\nTo: {to}\r\nSubject: {subj}\r\nMessage-ID: <{subj}@a.test>\r\n\r\n"
       "Hello,\r\n.leading dot line\r\n..two dots\r\nbye\r\n")


class ScriptedRmta:
    """A receiving MTA on B_ADDR:25 that offers MSID and GTML (or not) and records
    every command it gets. msid_reply: the reply to MSID; msid_gate: an Event the
    reply to MSID waits for; drop_after_rcpt: the connection is closed right after
    the reply to the first RCPT."""

    def __init__(self, offer_msid=True, msid_reply="250 2.0.0 notice taken", code00=False, addr=B_ADDR,
                 msid_gate=None, drop_after_rcpt=False):
        self.offer_msid = offer_msid
        self.msid_reply = msid_reply
        self.code00 = code00
        self.msid_gate = msid_gate
        self.drop_after_rcpt = drop_after_rcpt
        self.sessions = []
        self.data = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 25))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        cmds = []
        self.sessions.append(cmds)
        f = conn.makefile("rb")
        conn.sendall(b"220 mx.b.test ESMTP scripted\r\n")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                cmds.append(text)
                verb = text.split(" ", 1)[0].split(":", 1)[0].upper()
                if verb == "EHLO":
                    ext = ["PIPELINING", "8BITMIME"] + (["MSID", "GTML"] if self.offer_msid else [])
                    out = ["250-mx.b.test"] + ["250-" + e for e in ext[:-1]] + ["250 " + ext[-1]]
                    conn.sendall(("\r\n".join(out) + "\r\n").encode())
                elif verb == "MAIL" or verb == "RCPT":
                    conn.sendall(b"253 send MSID\r\n" if self.code00 and verb == "MAIL" else b"250 2.1.0 ok\r\n")
                    if verb == "RCPT" and self.drop_after_rcpt:
                        return
                elif verb == "MSID":
                    if self.msid_gate is not None:
                        self.msid_gate.wait(60)
                    conn.sendall((self.msid_reply + "\r\n").encode())
                elif verb == "DATA" and self.code00:
                    conn.sendall(b"253 send MSID, not DATA\r\n")
                elif verb == "DATA":
                    conn.sendall(b"354 go\r\n")
                    body = b""
                    while True:
                        l = f.readline()
                        if l in (b".\r\n", b""):
                            break
                        body += l
                    self.data.append(body)
                    conn.sendall(b"250 2.0.0 queued\r\n")
                elif verb == "QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        finally:
            conn.close()

    def msid_lines(self):
        return [c for s in self.sessions for c in s if c.upper().startswith("MSID")]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes the accept() so the port is free
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


class GtmlClient(SmtpLines):
    """A pulling MTA: connects from a chosen source address."""

    def __init__(self, source, host=A_ADDR, port=25):
        self.sock = socket.create_connection((host, port), timeout=10, source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply()

    def gtml(self, msid, receiver, verb="GTML "):
        """(code, message bytes or None)."""
        code, _ = self.cmd(f"{verb}{msid} {receiver}")
        if code != 250:
            return code, None
        body = []
        while True:
            l = self.line()
            if l == ".":
                break
            body.append(l[1:] if l.startswith(".") else l)
        return code, ("\r\n".join(body) + "\r\n").encode()


class PullBase(unittest.TestCase):
    """DNS for b.test and multi.test, and helpers; no tests of its own. A subclass
    may move Ferry A and b.test's MX to other addresses (a_addr, b_addr)."""
    a_addr, b_addr = A_ADDR, B_ADDR

    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer({
            "b.test": zone("b.test", f"@ IN MX 10 mx\nmx IN A {cls.b_addr}\n"),
            "multi.test": zone("multi.test", f"@ IN MX 10 mx1\n@ IN MX 20 mx2\nmx1 IN A {cls.b_addr}\n"
                                             f"mx2 IN A {MX2_ADDR}\n"),
            # SPF for the sender's domain: a receiver's per-user allow needs an SPF pass
            "a.test": zone("a.test", f'@ IN TXT "v=spf1 ip4:{cls.a_addr} -all"\n'),
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def sender(self, extra="", relay_networks="127.0.0.0/8"):
        f = Ferry(extra=f"hostname = a.test\nlisten = smtp {self.a_addr}:25\nresolver = 127.0.0.1:{self.dns.port}\n"
                        f"smtp_source_ipv4 = {self.a_addr}\nrelay_networks = {relay_networks}\nretry_min = 1h\n"
                        "retry_max = 2h\n" + extra,
                  domains="a.test")
        f.start()
        self.addCleanup(f.cleanup)
        return f

    def rmta(self, **kw):
        r = ScriptedRmta(**kw)
        self.addCleanup(r.close)
        return r

    def held(self, f):
        return sorted(n[:-4] for n in f.queue_files("held") if n.endswith(".env"))

    def send_held(self, f, r, rcpts=("bob@b.test",), subj="pull-me"):
        qid = f.inject("alice@a.test", list(rcpts), MSG.format(to=", ".join(rcpts), subj=subj))
        self.assertTrue(wait_for(lambda: r.msid_lines(), 15), f.read_log()[-3000:])
        ids = wait_for(lambda: self.held(f), 10)
        self.assertTrue(ids, f.read_log()[-3000:])
        msid = r.msid_lines()[-1].split(" ")[1]
        # the queue recorded the recipients as delivered (held), and the original went
        self.assertTrue(wait_for(lambda: qid + ".msg" not in f.queue_files(), 10), f.read_log()[-3000:])
        return qid, ids[-1], msid


class PullSend(PullBase):
    def test_msid_offered_holds_and_gtml_serves_once(self):
        r = self.rmta()
        f = self.sender()
        qid, hid, msid = self.send_held(f, r, rcpts=("bob@b.test", "carol@b.test"))
        cmds = r.sessions[0]
        self.assertTrue(any(c.startswith("MAIL FROM:<alice@a.test>") and c.endswith(" DMTP") for c in cmds), cmds)
        self.assertFalse(any(c.upper() == "DATA" for c in cmds), cmds)
        self.assertTrue(msid.startswith(hid + "-"), (msid, hid))
        self.assertTrue(r.msid_lines()[0].endswith(" pull-me"), r.msid_lines())
        self.assertIn(f"held for pull as {hid}", f.read_log())
        # the held copy is byte-identical to the queued message
        with open(os.path.join(f.spool, "held", hid + ".msg"), "rb") as fh:
            self.assertEqual(fh.read(), MSG.format(to="bob@b.test, carol@b.test", subj="pull-me").encode())
        # queue list shows it held, per recipient
        out = f.ferryctl("queue", "list").stdout
        self.assertRegex(out, hid + r".*held")
        self.assertRegex(out, r"bob@b.test.*waiting for pull")
        # bob pulls: the message, dot-stuffed on the wire, comes back whole
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO mx.b.test")
        code, body = g.gtml(msid, "bob@b.test")
        self.assertEqual(code, 250, f.read_log()[-2000:])
        self.assertEqual(body, MSG.format(to="bob@b.test, carol@b.test", subj="pull-me").encode())
        self.assertEqual(g.cmd("QUIT")[0], 221)
        g.close()
        self.assertTrue(wait_for(lambda: "<bob@b.test> pulled by [127.0.0.7]" in f.read_log(), 5))
        self.assertIn(hid, self.held(f))        # carol has not pulled yet
        out = f.ferryctl("queue", "show", hid).stdout
        self.assertRegex(out, r"bob@b.test.*pulled")
        # carol pulls with the -00 form: the last pull removes the held message
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO mx.b.test")
        code, body = g.gtml(msid, "<carol@b.test>", verb="GTML:")
        self.assertEqual(code, 250)
        g.cmd("QUIT")
        g.close()
        self.assertTrue(wait_for(lambda: hid not in self.held(f), 5), f.read_log()[-2000:])
        self.assertFalse(os.path.exists(os.path.join(f.spool, "held", hid + ".msg")))

    def test_refusals_are_all_alike(self):
        r = self.rmta()
        f = self.sender()
        _, hid, msid = self.send_held(f, r)
        altered = msid[:-1] + ("0" if msid[-1] != "0" else "1")
        cases = [
            (THIRD, msid, "bob@b.test", "neither the MTA"),                      # a third address
            (B_ADDR, altered, "bob@b.test", "altered, guessed"),                # one character changed
            (B_ADDR, hid + "-00FFFFFFFF-" + "A" * 26, "bob@b.test", "altered"),  # guessed
            (B_ADDR, msid, "mallory@b.test", "not a recipient"),                # wrong receiver
            (B_ADDR, "0000000000000000-00FFFFFFFF-" + "A" * 26, "bob@b.test", "altered"),
        ]
        for src, m, rcpt, why in cases:
            g = GtmlClient(src)
            g.cmd("EHLO x.test")
            code, lines = g.cmd(f"GTML {m} {rcpt}")
            self.assertEqual((code, lines[0]), (550, "550 5.7.1 no such message for you"), (src, m, rcpt))
            g.cmd("QUIT")
            g.close()
            self.assertTrue(wait_for(lambda: why in f.read_log(), 5), (why, f.read_log()[-2000:]))
        # inside a transaction: a sequence error
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO x.test")
        g.cmd("MAIL FROM:<x@b.test>")
        self.assertEqual(g.cmd(f"GTML {msid} bob@b.test")[0], 503)
        g.close()
        self.assertIn(hid, self.held(f))        # nothing was served

    def test_mac_checked_before_the_held_store_is_read(self):
        # A guessed msid for a held ID that exists and for one that does not must take
        # the same path: refused on the MAC, the held envelope never read (no oracle).
        r = self.rmta()
        f = self.sender()
        _, hid, msid = self.send_held(f, r)
        for qid in (hid, "0000000000000000"):
            g = GtmlClient(B_ADDR)
            g.cmd("EHLO x.test")
            code, _ = g.cmd(f"GTML {qid}-{msid.split('-')[1]}-{'A' * 26} bob@b.test")
            self.assertEqual(code, 550)
            g.cmd("QUIT")
            g.close()
        self.assertTrue(wait_for(lambda: f.read_log().count("altered, guessed or for another MTA") >= 2, 5),
                        f.read_log()[-2000:])
        self.assertNotIn("no held message", f.read_log())
        # the real msid still works afterwards
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO mx.b.test")
        self.assertEqual(g.gtml(msid, "bob@b.test")[0], 250)
        g.close()

    def test_mx_of_receiver_domain_may_pull(self):
        r = self.rmta()
        f = self.sender()
        _, hid, msid = self.send_held(f, r, rcpts=("dan@multi.test",))
        g = GtmlClient(MX2_ADDR)
        g.cmd("EHLO mx2.multi.test")
        code, body = g.gtml(msid, "dan@multi.test")
        self.assertEqual(code, 250, f.read_log()[-2000:])
        g.cmd("QUIT")
        g.close()
        self.assertIn("is an MX host of <dan@multi.test>'s domain", f.read_log())
        self.assertTrue(wait_for(lambda: hid not in self.held(f), 5))

    def test_expired_msid_refused(self):
        r = self.rmta()
        f = self.sender("pull_expiry = 2s\n")
        _, hid, msid = self.send_held(f, r)
        time.sleep(3)
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO mx.b.test")
        self.assertEqual(g.cmd(f"GTML {msid} bob@b.test")[0], 550)
        g.close()
        self.assertTrue(wait_for(lambda: "expired" in f.read_log(), 5))

    def test_refused_msid_drops_the_held_copy(self):
        r = self.rmta(msid_reply="554 5.7.1 no thanks")
        f = self.sender()
        qid = f.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="refused"))
        self.assertTrue(wait_for(lambda: "MSID refused: held copy removed" in f.read_log(), 15),
                        f.read_log()[-3000:])
        self.assertEqual(self.held(f), [])
        self.assertTrue(wait_for(lambda: qid + ": to=<bob@b.test> status=bounced" in f.read_log(), 5))

    def test_draft00_253_gets_msid(self):
        r = self.rmta(offer_msid=False, code00=True)
        f = self.sender()
        f.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="old-draft"))
        self.assertTrue(wait_for(lambda: r.msid_lines(), 15), f.read_log()[-3000:])
        self.assertEqual(len(self.held(f)), 1)
        self.assertEqual(r.data, [])

    def test_peer_without_msid_gets_smtp(self):
        r = self.rmta(offer_msid=False)
        f = self.sender()
        qid = f.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="plain"))
        self.assertTrue(wait_for(lambda: r.data, 15), f.read_log()[-3000:])
        self.assertEqual(r.msid_lines(), [])
        self.assertFalse(any(c.endswith(" DMTP") for s in r.sessions for c in s))
        self.assertEqual(self.held(f), [])
        self.assertIn(b"Subject: plain", r.data[0])

    def test_pull_hold_no_gives_plain_smtp(self):
        r = self.rmta()
        f = self.sender("pull_hold = no\n")
        f.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="nohold"))
        self.assertTrue(wait_for(lambda: r.data, 15), f.read_log()[-3000:])
        self.assertEqual(r.msid_lines(), [])

    def test_kill9_after_msid_keeps_the_held_message(self):
        r = self.rmta()
        f = self.sender()
        _, hid, msid = self.send_held(f, r)
        f.kill9_all()
        f.start()
        self.assertEqual(self.held(f), [hid])
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO mx.b.test")
        code, body = g.gtml(msid, "bob@b.test")
        self.assertEqual(code, 250)
        g.cmd("QUIT")
        g.close()
        self.assertTrue(wait_for(lambda: self.held(f) == [], 5))


if __name__ == "__main__":
    unittest.main()
