"""The matrix's first case groups, each cell Ferry -> peer ("out") and peer ->
Ferry ("in") for every MTA peer: plain delivery, STARTTLS, 8BITMIME, SMTPUTF8,
CHUNKING, DSN, one refused recipient among three, 4xx then accept, oversize,
DKIM both ways, SPF/DMARC verdicts. A peer's own limit is asserted as it is
(EXCEPTIONS in interop_matrix.py)."""
import email
import re
import smtplib
import subprocess
import time

from ferrytest import FERRYCTL, wait_for
from interop_matrix import DNS_ADDR, InteropMeta, cell, kick, msg


class CoreCells(metaclass=InteropMeta):
    @cell("plain", "out")
    def _plain_out(self, peer):
        s = self.uniq("plain")
        self.via_ferry([f"bob@{peer.domain}"], msg(s, f"bob@{peer.domain}"))
        data = self.peer_message(peer, f"bob@{peer.domain}", s)
        self.assertIn(b"hello", data)
        self.assertRegex(self.ferry.read_log(), rf"to=<bob@{peer.domain}> status=sent .*relay=mx\.{peer.domain}")

    @cell("plain", "in")
    def _plain_in(self, peer):
        s = self.uniq("plain-in")
        self.via_peer(peer, ["alice@ferry.test"], msg(s, "alice@ferry.test", frm=f"sender@{peer.domain}"))
        data = self.ferry_message("alice", s)
        self.assertIn(b"hello", data)
        self.assertIn(f"connect from [{peer.address}]", self.ferry.read_log())

    @cell("starttls", "out")
    def _tls_out(self, peer):
        if peer.name == "opensmtpd":
            self.assert_lacks(peer, "starttls")
            return
        s = self.uniq("tls")
        self.via_ferry([f"tls@{peer.domain}"], msg(s, f"tls@{peer.domain}"))
        self.peer_message(peer, f"tls@{peer.domain}", s)
        line = [l for l in self.ferry.read_log().splitlines() if f"to=<tls@{peer.domain}> status=sent" in l][-1]
        self.assertRegex(line, r'tls="TLS=TLSv1\.[23] ')
        if peer.name == "exim":
            self.assertRegex(peer.log(), r"<= alice@ferry.test H=\S+ \[127\.0\.0\.22\] P=esmtps X=TLS1\.[23]:\S+")
        else:
            self.assertRegex(peer.log(), r"TLS connection established from \S+\[127\.0\.0\.22\]: TLSv1\.[23] "
                                         r"with cipher \S+")

    @cell("starttls", "in")
    def _tls_in(self, peer):
        s = self.uniq("tls-in")
        self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}"))
        data = self.ferry_message("bob", s)
        self.assertIn(b"ESMTPS", data)          # the session it came in was TLS (peers reuse sessions)
        self.assertRegex(self.ferry.read_log(), rf"TLS established with \[{peer.address}\]: TLSv1\.[23] \S+")
        if peer.name == "exim":
            self.assertRegex(peer.log(), r"=> alice@ferry.test|=> bob@ferry.test.*X=TLS1\.[23]:\S+ CV=yes")
        elif peer.name == "postfix":
            self.assertRegex(peer.log(), r"(Trusted|Verified) TLS connection established to mx\.ferry\.test"
                                         r"\[127\.0\.0\.22\]:25: TLSv1\.[23] with cipher \S+")
        else:
            self.assertRegex(peer.log(), r"mta tls ciphers=TLSv1\.[23]")

    @cell("8bitmime", "out")
    def _8bit_out(self, peer):
        s = self.uniq("eight")
        body = "Grüße aus Köln – ça va?"
        self.via_ferry([f"eight@{peer.domain}"],
                       msg(s, f"eight@{peer.domain}", body=body,
                           extra="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Transfer-Encoding: 8bit\r\n").encode("utf-8"),
                       mail_options=["BODY=8BITMIME"])
        self.assertIn(body.encode("utf-8"), self.peer_message(peer, f"eight@{peer.domain}", s))

    @cell("8bitmime", "in")
    def _8bit_in(self, peer):
        s = self.uniq("eight-in")
        body = "Grüße aus Köln – ça va?"
        self.via_peer(peer, ["carol@ferry.test"],
                      msg(s, "carol@ferry.test", frm=f"sender@{peer.domain}", body=body,
                          extra="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                "Content-Transfer-Encoding: 8bit\r\n").encode("utf-8"),
                      mail_options=["BODY=8BITMIME"])
        self.assertIn(body.encode("utf-8"), self.ferry_message("carol", s))

    @cell("smtputf8", "out")
    def _utf8_out(self, peer):
        s = self.uniq("utf8")
        rcpt = f"bøb@{peer.domain}"
        self.via_ferry([rcpt], msg(s, rcpt, extra="MIME-Version: 1.0\r\n").encode("utf-8"),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        if peer.name != "opensmtpd":
            self.assertIn(b"hello", self.peer_message(peer, rcpt, s))
            return
        # The peer lacks SMTPUTF8: Ferry bounces (RFC 6531 §3.4) to the sender,
        # with an RFC 6533 report since the message is an SMTPUTF8 one.
        dsn = self.ferry_message("alice", s)
        per_msg, rcpts = self.report(dsn, "global-delivery-status")
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertTrue(rcpts[0]["status"].startswith("5."), rcpts[0])
        self.assertEqual(peer.mailbox_files(rcpt), [])

    @cell("smtputf8", "in")
    def _utf8_in(self, peer):
        s = self.uniq("utf8-in")
        sender = f"sender@{peer.domain}"
        data = msg(s, "bob@ferry.test", frm=f"Sénder <{sender}>", extra="MIME-Version: 1.0\r\n").encode("utf-8")
        if peer.name == "opensmtpd":
            with self.assertRaises(smtplib.SMTPNotSupportedError):
                self.via_peer(peer, ["bob@ferry.test"], data, mail_options=["SMTPUTF8"])
            return
        self.via_peer(peer, ["bob@ferry.test"], data, mail_options=["SMTPUTF8", "BODY=8BITMIME"],
                      sender=f"sënder@{peer.domain}")
        got = self.ferry_message("bob", s)
        self.assertIn(f"sënder@{peer.domain}".encode("utf-8"), got)
        self.assertIn(b"UTF8SMTP", got)

    @cell("chunking", "out")
    def _chunk_out(self, peer):
        if peer.name == "opensmtpd":
            self.assert_lacks(peer, "chunking")
            return
        s = self.uniq("chunk")
        self.via_ferry([f"chunk@{peer.domain}"], msg(s, f"chunk@{peer.domain}"))
        self.peer_message(peer, f"chunk@{peer.domain}", s)
        if peer.name == "exim":
            # Exim's log marks a message received with BDAT with K.
            self.assertRegex(peer.log(), r"<= alice@ferry.test H=\S+ \[127\.0\.0\.22\] .*\bK S=")
        else:
            # Postfix counts the commands of a session in its disconnect line
            # (which comes when Ferry closes its cached connection).
            self.assertTrue(wait_for(lambda: re.search(r"disconnect from \S+\[127\.0\.0\.22\] .*bdat=[1-9]",
                                                        peer.log()), 30), peer.log()[-3000:])

    @cell("chunking", "in")
    def _chunk_in(self, peer):
        if peer.name == "opensmtpd":
            self.assert_lacks(peer, "chunking")
            return
        s = self.uniq("chunk-in")
        self.via_peer(peer, ["carol@ferry.test"], msg(s, "carol@ferry.test", frm=f"sender@{peer.domain}"))
        self.ferry_message("carol", s)
        if peer.name == "exim":
            self.assertRegex(peer.log(), r"=> carol@ferry.test .*\bK C=")
            return
        # EXCEPTIONS: Postfix's client sends DATA even to a server with CHUNKING;
        # Ferry's transcript of the session that brought the message says so.
        trace = self.ferry_trace(s)
        self.assertRegex(trace, r"(?m)^\S+ \S+ DATA$")
        self.assertNotRegex(trace, r"(?m)^\S+ \S+ BDAT ")

    @cell("dsn", "out")
    def _dsn_out(self, peer):
        s = self.uniq("dsn")
        envid = s.replace("-", "")
        self.via_ferry([f"dsn@{peer.domain}"], msg(s, f"dsn@{peer.domain}"),
                       mail_options=[f"ENVID={envid}", "RET=HDRS"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;dsn@{peer.domain}"])
        self.peer_message(peer, f"dsn@{peer.domain}", s)
        # The peer reports the delivery to alice@ferry.test, through Ferry.
        per_msg, rcpts = self.report(self.ferry_message("alice", envid, timeout=40))
        self.assertEqual(per_msg.get("original-envelope-id"), envid)
        self.assertEqual(len(rcpts), 1)
        self.assertEqual(rcpts[0]["action"], "delivered")
        self.assertTrue(rcpts[0]["status"].startswith("2."), rcpts[0])
        self.assertIn(f"dsn@{peer.domain}", rcpts[0]["final-recipient"])
        self.assertRegex(rcpts[0].get("original-recipient", ""), rf"rfc822; ?dsn@{peer.domain}")

    @cell("dsn", "in")
    def _dsn_in(self, peer):
        s = self.uniq("dsn-in")
        envid = s.replace("-", "")
        self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"dsn@{peer.domain}"),
                      mail_options=[f"ENVID={envid}", "RET=HDRS"],
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@ferry.test"],
                      sender=f"dsn@{peer.domain}")
        self.ferry_message("bob", s)
        per_msg, rcpts = self.report(self.peer_message(peer, f"dsn@{peer.domain}", envid, timeout=40))
        self.assertEqual(per_msg.get("original-envelope-id"), envid)
        self.assertEqual(rcpts[0]["action"], "delivered")
        self.assertTrue(rcpts[0]["status"].startswith("2."), rcpts[0])
        self.assertIn("bob@ferry.test", rcpts[0]["final-recipient"])

    @cell("refused-1-of-3", "out")
    def _refused_out(self, peer):
        s = self.uniq("refused")
        rcpts = [f"bob@{peer.domain}", f"nosuch@{peer.domain}", f"carol@{peer.domain}"]
        self.via_ferry(rcpts, msg(s, ", ".join(rcpts)))
        self.peer_message(peer, f"bob@{peer.domain}", s)
        self.peer_message(peer, f"carol@{peer.domain}", s)
        per_msg, r = self.report(self.ferry_message("alice", s))
        self.assertEqual([x["final-recipient"] for x in r], [f"rfc822; nosuch@{peer.domain}"])
        self.assertEqual(r[0]["action"], "failed")
        self.assertRegex(r[0]["diagnostic-code"], r"^smtp; 5\d\d ")

    @cell("refused-1-of-3", "in")
    def _refused_in(self, peer):
        s = self.uniq("refused-in")
        rcpts = ["bob@ferry.test", "nosuch@ferry.test", "carol@ferry.test"]
        self.via_peer(peer, rcpts, msg(s, ", ".join(rcpts), frm=f"sender@{peer.domain}"))
        self.ferry_message("bob", s)
        self.ferry_message("carol", s)
        bounce = self.peer_message(peer, f"sender@{peer.domain}", "nosuch@ferry.test", timeout=40)
        if peer.name == "opensmtpd":
            # Its bounce is multipart/mixed text, not an RFC 3464 report (EXCEPTIONS).
            m = email.message_from_bytes(bounce)
            self.assertEqual(m.get_content_type(), "multipart/mixed")
            text = m.get_payload(0).get_payload(decode=True).decode("utf-8", "replace")
            self.assertRegex(text, r"nosuch@ferry\.test[\s\S]*550 5\.1\.1")
            self.assertNotIn("bob@ferry.test", text.split("nosuch@ferry.test")[0][-200:])
            return
        per_msg, r = self.report(bounce)
        self.assertEqual(len(r), 1)
        self.assertIn("nosuch@ferry.test", r[0]["final-recipient"])
        self.assertEqual(r[0]["action"], "failed")
        self.assertIn("550", r[0].get("diagnostic-code", ""))

    @cell("4xx-then-accept", "out")
    def _retry_out(self, peer):
        s = self.uniq("retry")
        rcpt = f"retry-me@{peer.domain}"
        self.via_ferry([rcpt], msg(s, rcpt))
        line = wait_for(lambda: re.search(rf"(\w+): to=<{rcpt}> status=deferred .*451", self.ferry.read_log()), 30)
        self.assertTrue(line, self.ferry.read_log()[-3000:])
        peer.release_retry()
        self.assertEqual(self.ferry.ferryctl("queue", "flush", line.group(1)).returncode, 0)
        self.peer_message(peer, rcpt, s)
        self.assertRegex(self.ferry.read_log(), rf"{line.group(1)}: to=<{rcpt}> status=sent")

    @cell("4xx-then-accept", "in")
    def _retry_in(self, peer):
        """Ferry greylists the peer once (pull_mode = on: a sender that is not classified
        gets 451 4.7.1 on RCPT); the peer retries and the message arrives exactly once."""
        s = self.uniq("retry-in")
        self.reload_ferry("pull_mode = on\npull_greylist_delay = 2s\n")
        try:
            self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}"))
            greylisted = rf"dmtp greylisted RCPT <bob@ferry\.test> from=<sender@{peer.domain}> \[{peer.address}\]"
            self.assertTrue(wait_for(lambda: re.search(greylisted, self.ferry.read_log()), 30),
                            self.ferry.read_log()[-3000:])

            def arrived():
                kick(peer)      # its own backoff: minutes for OpenSMTPD
                return [p for p in self.ferry.mailbox_files("bob") if s.encode() in open(p, "rb").read()]
            self.assertTrue(wait_for(arrived, 40, 1), self.ferry.read_log()[-3000:] + peer.log()[-2000:])
            time.sleep(2)
            self.assertEqual(len(arrived()), 1)     # no duplicate
            self.assertRegex(self.ferry.read_log(), rf"dmtp greylist pass <bob@ferry\.test> from=<sender@{peer.domain}>")
        finally:
            self.reload_ferry("")

    @cell("oversize", "out")
    def _big_out(self, peer):
        s = self.uniq("big")
        body = ("x" * 76 + "\r\n") * 16000      # 1.2 MB: above the peer's 1 MB, below Ferry's 2 MB
        self.via_ferry([f"big@{peer.domain}"], msg(s, f"big@{peer.domain}", body=body))
        per_msg, r = self.report(self.ferry_message("alice", s, timeout=40))
        self.assertEqual(r[0]["action"], "failed")
        # Either the peer refused it (552 to SIZE= or after DATA), or Ferry did not
        # send it at all because the peer's EHLO SIZE is smaller (RFC 1870 §6.1).
        self.assertTrue(r[0]["status"].startswith("5."), r[0])
        self.assertRegex(r[0].get("diagnostic-code", ""), r"^smtp; 552 |5\.3\.4 .* exceeds the limit\s+of host "
                         rf"mx\.{peer.domain}\S* \(SIZE 1048576\)")
        self.assertEqual(peer.mailbox_files(f"big@{peer.domain}"), [])

    @cell("dkim", "out")
    def _dkim_out(self, peer):
        s = self.uniq("dkim")
        self.via_ferry([f"dkim@{peer.domain}"], msg(s, f"dkim@{peer.domain}"))
        data = self.peer_message(peer, f"dkim@{peer.domain}", s)
        self.assertIn(b"DKIM-Signature:", data)
        if peer.name != "opensmtpd":
            # Exim's own verifier, or OpenDKIM as Postfix's milter ("dkim=pass (2048-bit key...) header.d=").
            self.assertRegex(data, rf"Authentication-Results: mx\.{peer.domain};\s+dkim=pass (\([^)]*\)\s+)?"
                                   rf"header\.d=ferry\.test".encode())
        # Independently: the copy the peer delivered still verifies.
        r = subprocess.run([FERRYCTL, "--resolver", f"{DNS_ADDR}:53", "dkim", "verify"], input=data,
                           capture_output=True)
        self.assertRegex(r.stdout.decode(), r"^dkim=pass header\.d=ferry\.test")

    @cell("dkim", "in")
    def _dkim_in(self, peer):
        s = self.uniq("dkim-in")
        self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}"))
        head, ar = self.ferry_verdicts("bob", s)
        if peer.name != "opensmtpd":
            self.assertIn("DKIM-Signature:", head)
            selector = {"exim": "exim1", "postfix": "pf1"}[peer.name]
            self.assertRegex(ar, rf"dkim=pass header\.d={peer.domain} header\.s={selector}")
        else:
            self.assertNotIn("DKIM-Signature:", head)       # EXCEPTIONS: it cannot sign
            self.assertRegex(ar, r"dkim=none")

    @cell("spf-dmarc", "in")
    def _spf_dmarc_in(self, peer):
        """The test's DNS publishes each peer's address as its domain's only SPF sender
        and a DMARC record; Ferry's verdicts are in the Authentication-Results it adds."""
        s = self.uniq("spf-in")
        self.via_peer(peer, ["carol@ferry.test"], msg(s, "carol@ferry.test", frm=f"sender@{peer.domain}"))
        _, ar = self.ferry_verdicts("carol", s)
        self.assertRegex(ar, rf"spf=pass smtp\.mailfrom=sender@{peer.domain}")
        self.assertRegex(ar, rf"dmarc=pass (\(p=none[^)]*\) )?header\.from={peer.domain}")

    @cell("oversize", "in")
    def _big_in(self, peer):
        s = self.uniq("big-in")
        body = ("y" * 76 + "\r\n") * 32000      # 2.5 MB: above Ferry's 2 MB
        data = msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}", body=body)
        if peer.name == "opensmtpd":
            with self.assertRaises(smtplib.SMTPException) as e:   # EXCEPTIONS: its own 1M limit
                self.via_peer(peer, ["bob@ferry.test"], data)
            self.assertIn("5.3.4", str(e.exception))
            return
        self.via_peer(peer, ["bob@ferry.test"], data)
        # The bounce returns the headers, so it carries the subject.
        bounce = self.peer_message(peer, f"sender@{peer.domain}", s, timeout=40)
        per_msg, r = self.report(bounce)
        self.assertEqual(r[0]["action"], "failed")
        self.assertTrue(r[0]["status"].startswith("5."), r[0])
        self.assertIn("bob@ferry.test", r[0]["final-recipient"])
        self.assertFalse(any(s.encode() in open(p, "rb").read() for p in self.ferry.mailbox_files("bob")))

