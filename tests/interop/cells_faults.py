"""The matrix's fault and routing cases: a connection cut mid-DATA (both ways,
through the cut proxy, cutproxy.py), smart-host relaying with AUTH through each
peer and through Ferry's submission, and Ferry delivering to Dovecot over LMTP."""
import re
import smtplib
import ssl
import time

from ferrytest import wait_for
from interop_matrix import AUX_ADDR, FERRY_ADDR, LMTP_PORT, InteropMeta, cell, msg, state

CUT_BODY = ("z" * 76 + "\r\n") * 4000        # 312 KB: the cut after 100 KB lands in the body
CUT_AFTER = 100000


class FaultCells(metaclass=InteropMeta):
    @cell("mid-data-drop", "out")
    def _cut_out(self, peer):
        """The session to the peer breaks after 100 KB of a 312 KB message: Ferry
        keeps it queued (deferred), and after a flush the peer has it exactly once."""
        s = self.uniq("cut")
        rcpt = f"bob@cut.{peer.domain}"
        state["cut"].arm((peer.address, 25), CUT_AFTER)
        cuts = state["cut"].cuts
        self.via_ferry([rcpt], msg(s, rcpt, body=CUT_BODY))
        line = wait_for(lambda: re.search(rf"(\w+): to=<{re.escape(rcpt)}> status=deferred .*", self.ferry.read_log()),
                        30)
        self.assertTrue(line, self.ferry.read_log()[-3000:])
        self.assertEqual(state["cut"].cuts, cuts + 1)
        self.assertEqual(self.peer_copies(peer, rcpt, s), [])           # nothing half-accepted there
        self.assertEqual(self.ferry.ferryctl("queue", "flush", line.group(1)).returncode, 0)
        self.peer_message(peer, rcpt, s)
        self.wait_log(rf"{line.group(1)}: to=<{re.escape(rcpt)}> status=sent")
        time.sleep(1)
        self.assertEqual(len(self.peer_copies(peer, rcpt, s)), 1)       # no duplicate
        # The peer saw its client vanish in the middle of the message.
        self.assertTrue(wait_for(lambda: self.peer_saw_cut(peer), 10), peer.log()[-3000:])

    def peer_saw_cut(self, peer):
        log = peer.log()
        if peer.name == "opensmtpd":
            # A session from Ferry that ended without QUIT.
            ids = re.findall(r"(\w+) smtp connected address=127\.0\.0\.22 ", log)
            return any(re.search(rf"{i} smtp disconnected reason=(disconnect|\"io-error)", log) for i in ids)
        return re.search({"exim": r"\[127\.0\.0\.22\]\S* lost while reading message data",
                          "postfix": r"lost connection after (DATA|BDAT) \(\d+ bytes\) from \S+\[127\.0\.0\.22\]"
                          }[peer.name], log)

    @cell("mid-data-drop", "in")
    def _cut_in(self, peer):
        """The peer's session to Ferry breaks after 100 KB of a 312 KB message:
        Ferry accepts nothing of it, the peer retries, the message arrives once."""
        s = self.uniq("cut-in")
        state["cut"].arm((FERRY_ADDR, 25), CUT_AFTER)
        cuts = state["cut"].cuts
        self.via_peer(peer, ["bob@cut.ferry.test"], msg(s, "bob@cut.ferry.test", frm=f"sender@{peer.domain}",
                                                        body=CUT_BODY))
        lost = rf"lost connection from \[{re.escape(peer.address)}\] during (DATA|BDAT)"
        self.assertTrue(wait_for(lambda: re.search(lost, self.ferry.read_log()), 30),
                        self.ferry.read_log()[-3000:] + peer.log()[-2000:])
        self.assertEqual(state["cut"].cuts, cuts + 1)
        self.ferry_message("bob", s, timeout=40)        # the peer's retry (kicked where it waits minutes)
        time.sleep(1)
        self.assertEqual(len(self.ferry_copies("bob", s)), 1)
        self.assertRegex(self.ferry.read_log(), rf"session \S+ end=lost-in-data client=\[{re.escape(peer.address)}\]")

    @cell("mid-data-drop", "out", peers=("dovecot",))
    def _cut_lmtp(self, dovecot):
        """Ferry's LMTP session to Dovecot breaks after 100 KB of a 312 KB message
        (cut-lmtp.ferry.test goes to Dovecot through the cut proxy): the local
        delivery is deferred, and after a flush Dovecot has it exactly once."""
        s = self.uniq("cut-lmtp")
        rcpt = "dave@cut-lmtp.ferry.test"
        proxy = state["cut_lmtp"]
        proxy.arm((AUX_ADDR, LMTP_PORT), CUT_AFTER)
        cuts = proxy.cuts
        self.via_ferry([rcpt], msg(s, rcpt, body=CUT_BODY))
        line = wait_for(lambda: re.search(rf"(\w+): to=<{re.escape(rcpt)}> status=deferred .*", self.ferry.read_log()),
                        30)
        self.assertTrue(line, self.ferry.read_log()[-3000:])
        self.assertEqual(proxy.cuts, cuts + 1)
        self.assertEqual(dovecot.mailbox_files(rcpt), [])
        self.assertEqual(self.ferry.ferryctl("queue", "flush", line.group(1)).returncode, 0)
        got = dovecot.wait_for_messages(rcpt, 1, 30)
        self.assertIn(s.encode(), got[0])
        self.wait_log(rf"{line.group(1)}: to=<{re.escape(rcpt)}> status=sent")
        time.sleep(1)
        self.assertEqual(len(dovecot.mailbox_files(rcpt)), 1)
        self.assertRegex(dovecot.log(), r"Disconnect from [\d.]+: .*DATA")

    @cell("smarthost-auth", "out")
    def _smart_out(self, peer):
        """Ferry's relayhost is the peer's submission port with Ferry's credentials;
        the peer relays (only because Ferry logged in) to OpenSMTPD's domain."""
        if peer.name == "opensmtpd":
            # EXCEPTIONS: its 587 has AUTH, offered only after STARTTLS, whose handshake fails.
            with smtplib.SMTP(peer.address, 587, timeout=10) as c:
                c.ehlo("x")
                self.assertFalse(c.has_extn("auth"))
                self.assertTrue(c.has_extn("starttls"))
                ctx = ssl.create_default_context(cafile=state["ca"])
                with self.assertRaises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError)):
                    c.starttls(context=ctx)
                    c.ehlo("x")
            return
        final = state["peers"]["opensmtpd"]
        rcpt = f"bob@{final.domain}"
        # Without AUTH the peer refuses to relay for Ferry's address.
        with smtplib.SMTP(peer.address, 587, timeout=10, source_address=(FERRY_ADDR, 0)) as c:
            c.ehlo("mx.ferry.test")
            c.starttls()
            c.ehlo("mx.ferry.test")
            self.assertIn("PLAIN", c.esmtp_features.get("auth", "").upper())
            code, _ = c.mail("alice@ferry.test")
            code, reply = c.rcpt(rcpt)
            self.assertGreaterEqual(code, 500, reply)
        s = self.uniq("smart")
        self.reload_ferry(f"relayhost = [mx.{peer.domain}]:587\nrelayhost_auth_file = {state['smart_auth_file']}\n")
        try:
            self.via_ferry([rcpt], msg(s, rcpt))
            data = self.peer_message(final, rcpt, s)
            self.assertRegex(self.ferry.read_log(), rf"to=<{rcpt}> status=sent .*relay=mx\.{peer.domain}"
                                                    rf"\[{re.escape(peer.address)}\] tls=\"TLS=TLSv1\.[23] .*verified")
        finally:
            self.reload_ferry("")
        # The smart host's own trace of the login, and its Received in the delivered copy.
        authed = {"exim": rf"<= alice@ferry\.test H=\S+ \[{FERRY_ADDR}\].* A=plain:ferry ",
                  "postfix": r"client=\S+\[127\.0\.0\.22\], sasl_method=PLAIN, sasl_username=ferry"}[peer.name]
        self.assertRegex(peer.log(), authed)
        self.assertRegex(data, rf"Received: from \S+ \(\S+ \[127\.0\.0\.22\]\)[\s\S]*by mx\.{peer.domain}".encode()
                         if peer.name == "postfix" else rf"by mx\.{peer.domain}".encode())

    @cell("smarthost-auth", "in")
    def _smart_in(self, peer):
        """The peer sends mail from relay@<its domain> through Ferry's submission
        port (STARTTLS, AUTH as Ferry's user relayer, who owns that address);
        Ferry relays it on by MX to another peer."""
        final = state["peers"]["opensmtpd" if peer.name == "exim" else "exim"]
        rcpt = f"bob@{final.domain}"
        s = self.uniq("smart-in")
        sender = f"relay@{peer.domain}"
        self.via_peer(peer, [rcpt], msg(s, rcpt, frm=sender), sender=sender)
        got = final.wait_message(rcpt, s, 40)
        self.assertTrue(got, f"{final.name} has no {s}; {peer.name}'s log:\n{peer.log()[-3000:]}\n"
                             f"ferry's:\n{self.ferry.read_log()[-3000:]}")
        log = self.ferry.read_log()
        self.assertRegex(log, rf"AUTH \S+ succeeded for \[{re.escape(peer.address)}\] user=relayer")
        self.assertRegex(log, rf"from=<{sender}> .*client=\[{re.escape(peer.address)}\] .*proto=ESMTPSA ")
        self.wait_log(rf"to=<{rcpt}> status=sent .*relay=mx\.{final.domain}")

    @cell("lmtp", "out", peers=("dovecot",))
    def _lmtp_out(self, dovecot):
        """Ferry's virtual_map sends lmtp.ferry.test to Dovecot's LMTP (TCP); the
        message is in the recipient's Dovecot Maildir, once."""
        s = self.uniq("lmtp")
        rcpt = "dave@lmtp.ferry.test"
        self.via_ferry([rcpt, "erin@lmtp.ferry.test"], msg(s, rcpt))
        for user in (rcpt, "erin@lmtp.ferry.test"):
            got = dovecot.wait_for_messages(user, 1, 30)
            self.assertEqual(len(got), 1)
            self.assertIn(s.encode(), got[0])
            self.assertRegex(got[0], rb"^Return-Path: <alice@ferry\.test>\r?\nReceived: from mx\.ferry\.test "
                                     rb"\(\[127\.0\.0\.\d+\]\)\s+by lmtp\.peer\.test with LMTP")
        self.wait_log(rf"to=<{re.escape(rcpt)}> status=sent")
        self.assertRegex(dovecot.log(), rf"lmtp\({re.escape(rcpt)}\)<\d+><[^>]+>: Info: msgid=<{re.escape(s)}\.[^>]*>: "
                                        r"saved mail to INBOX")
