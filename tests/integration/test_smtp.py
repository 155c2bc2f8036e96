"""The first mail path over real SMTP: a real ferryd on loopback, mail sent with
Python's smtplib and with raw bytes, and the exact bytes checked in the Maildir."""
import email.utils
import os
import re
import smtplib
import unittest

from ferrytest import Ferry, SmtpLines


class MailPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry().start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def session(self):
        s = SmtpLines(self.f.port)
        self.assertEqual(s.greeting[0], 220)
        self.assertIn("mx.example.test", s.greeting[1][0])
        return s

    def test_delivers_exact_bytes_to_maildir(self):
        body = ("From: Sender <sender@example.org>\r\nTo: alice@localhost\r\nSubject: first\r\n"
                "\r\nHello Alice.\r\n.dot line\r\nlast line\r\n")
        with smtplib.SMTP("127.0.0.1", self.f.port, local_hostname="client.example.org") as c:
            c.ehlo("client.example.org")
            c.mail("sender@example.org")
            c.rcpt("alice@localhost")
            code, msg = c.data(body.encode())
        self.assertEqual(code, 250)
        m = re.match(rb"2\.0\.0 Ok: queued as ([0-9A-V]{16})$", msg)
        self.assertTrue(m, msg)
        qid = m.group(1).decode()
        files = self.f.wait_mail("alice")
        self.assertTrue(files, "no file in alice/new\n" + self.f.read_log())
        data = open(files[-1], "rb").read()
        m = re.match(rb"Return-Path: <sender@example.org>\n"
                     rb"Delivered-To: alice@localhost\n"
                     rb"Authentication-Results: mx\.example\.test;\n\tdkim=none;\n"
                     rb"\tarc=none \(no ARC sets\) smtp\.remote-ip=127\.0\.0\.1\n"
                     rb"Received: from client.example.org \(\[127.0.0.1\]\)\n"
                     rb"\tby mx.example.test \(Ferry\) with ESMTP id " + qid.encode() + rb"\n"
                     rb"\tfor <alice@localhost>; (.+)\n", data)
        self.assertTrue(m, data)
        self.assertIsNotNone(email.utils.parsedate_tz(m.group(1).decode()), m.group(1))
        self.assertEqual(data[m.end():], body.replace("\r\n", "\n").encode())
        # The queue is empty once the only recipient is delivered.
        self.assertTrue(self._wait_queue_empty(), self.f.queue_files())
        self.assertEqual(os.listdir(os.path.join(self.f.maildir, "alice", "tmp")), [])

    def _wait_queue_empty(self):
        from ferrytest import wait_for
        return wait_for(lambda: self.f.queue_files() == [], 10) is not None or self.f.queue_files() == []

    def test_several_recipients_and_null_sender(self):
        s = self.session()
        self.assertEqual(s.cmd("EHLO c.example")[0], 250)
        self.assertEqual(s.cmd("MAIL FROM:<>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<Bob@LocalHost>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<carol@example.test>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: two\r\n\r\nbody\r\n.\r\n")
        code, lines = s.reply()
        self.assertEqual(code, 250, lines)
        self.assertEqual(s.cmd("QUIT")[0], 221)
        self.assertTrue(self.f.wait_mail("bob"))
        self.assertTrue(self.f.wait_mail("carol"))
        data = open(self.f.mailbox_files("bob")[-1], "rb").read()
        self.assertTrue(data.startswith(b"Return-Path: <>\nDelivered-To: Bob@LocalHost\n"), data)
        self.assertNotIn(b"\tfor <", data)   # several recipients: no "for" clause

    def test_ehlo_advertises_extensions(self):
        s = self.session()
        code, lines = s.cmd("EHLO client.example")
        self.assertEqual(code, 250)
        kw = [l[4:].split()[0] for l in lines[1:]]
        for k in ("PIPELINING", "SIZE", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "CHUNKING", "DSN"):
            self.assertIn(k, kw)
        self.assertIn("SIZE 26214400", [l[4:] for l in lines])
        s.close()

    def test_relay_denied(self):
        s = self.session()
        s.cmd("EHLO c.example")
        s.cmd("MAIL FROM:<a@example.org>")
        code, lines = s.cmd("RCPT TO:<someone@example.com>")
        self.assertEqual(code, 554)
        self.assertTrue(lines[0].startswith("554 5.7.1 "), lines)
        self.assertIn("Relay access denied", lines[0])
        code, lines = s.cmd("RCPT TO:<x@[127.0.0.1]>")
        self.assertEqual((code, lines[0][:9]), (554, "554 5.7.1"))
        s.close()

    def test_sequence_errors(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example>")[1][0][:9], "503 5.5.1")
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("RCPT TO:<alice@localhost>")[1][0][:9], "503 5.5.1")
        self.assertEqual(s.cmd("DATA")[1][0][:9], "503 5.5.1")
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example>")[0], 250)
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example>")[1][0][:9], "503 5.5.1")
        self.assertEqual(s.cmd("DATA")[1][0][:9], "554 5.5.1")   # no valid recipients
        self.assertEqual(s.cmd("RSET")[1][0][:9], "250 2.0.0")
        self.assertEqual(s.cmd("RCPT TO:<alice@localhost>")[1][0][:9], "503 5.5.1")
        s.close()

    def test_malformed_commands(self):
        s = self.session()
        self.assertEqual(s.cmd("FOO bar")[1][0][:9], "500 5.5.2")
        self.assertEqual(s.cmd("EHLO")[1][0][:9], "501 5.5.4")
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("MAIL FROM:<broken")[1][0][:9], "501 5.1.7")
        self.assertEqual(s.cmd("MAIL TO:<a@b.example>")[1][0][:9], "501 5.5.2")
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example> FOO=BAR")[1][0][:9], "555 5.5.4")
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example> BODY=9BIT")[1][0][:9], "501 5.5.4")
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example> SIZE=999999999")[1][0][:9], "552 5.3.4")
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example> BODY=8BITMIME SIZE=100")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<>")[1][0][:9], "501 5.1.3")
        self.assertEqual(s.cmd("RCPT TO:<a b@localhost>")[1][0][:9], "501 5.1.3")
        self.assertEqual(s.cmd("RCPT TO:<.hidden@localhost>")[1][0][:9], "501 5.1.3")    # not a dot-string
        self.assertEqual(s.cmd('RCPT TO:<".hidden"@localhost>')[1][0][:9], "550 5.1.1")  # a control name (SECURITY.md)
        self.assertEqual(s.cmd("RCPT TO:<a/b@localhost>")[1][0][:9], "550 5.1.3")
        self.assertEqual(s.cmd("RCPT TO:<alice@localhost> X-NOTIFY=NEVER")[1][0][:9], "555 5.5.4")
        s.close()

    def test_overlong_command_line(self):
        s = self.session()
        s.cmd("EHLO c.example")
        code, lines = s.cmd("NOOP " + "x" * 600)
        self.assertEqual(lines[0][:9], "500 5.5.2", lines)
        # a line of exactly 512 octets with CRLF is still fine
        self.assertEqual(s.cmd("NOOP " + "x" * (512 - 7))[0], 250)
        self.assertEqual(s.cmd("NOOP " + "x" * (512 - 6))[1][0][:9], "500 5.5.2")
        # a huge line is skipped without buffering it, and the session goes on
        code, lines = s.cmd("NOOP " + "y" * 200000)
        self.assertEqual(lines[0][:9], "500 5.5.2")
        self.assertEqual(s.cmd("NOOP")[0], 250)
        s.close()

    def test_bare_lf_command_rejected(self):
        s = self.session()
        s.send("EHLO c.example\n")
        self.assertEqual(s.reply()[1][0][:9], "500 5.5.2")
        self.assertEqual(s.cmd("NOOP")[0], 250)
        s.close()

    def _transaction(self, s, rcpt="alice@localhost"):
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<%s>" % rcpt)[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)

    def test_overlong_text_line_rejected(self):
        s = self.session()
        self._transaction(s, "longline@localhost")
        s.send("Subject: x\r\n\r\n" + "a" * 1200 + "\r\n.\r\n")
        code, lines = s.reply()
        self.assertEqual(lines[0][:9], "550 5.6.0", lines)
        self.assertEqual(s.cmd("NOOP")[0], 250)    # the session survives
        s.close()
        self.assertEqual(self.f.mailbox_files("longline"), [])

    def test_text_line_of_1000_octets_accepted(self):
        s = self.session()
        self._transaction(s, "line1000@localhost")
        s.send("Subject: x\r\n\r\n" + "b" * 998 + "\r\n.\r\n")
        self.assertEqual(s.reply()[0], 250)
        s.close()
        self.assertTrue(self.f.wait_mail("line1000"))

    def test_smuggling_forms_do_not_end_data(self):
        # "\n.\n" and "\r\n.\n" are not the end of data; the real end comes later,
        # and the message is refused because of the bare LFs.
        s = self.session()
        self._transaction(s, "smuggle@localhost")
        s.send("Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@example.org>\r\n"
               "RCPT TO:<victim@localhost>\r\nDATA\r\nevil\r\n.\n"
               "more\r\n.\r\n")
        code, lines = s.reply()
        self.assertEqual(lines[0][:9], "550 5.6.0", lines)
        self.assertEqual(s.cmd("NOOP")[0], 250)
        s.close()
        self.assertEqual(self.f.mailbox_files("victim"), [])
        self.assertEqual(self.f.mailbox_files("smuggle"), [])

    def test_bare_cr_rejected(self):
        s = self.session()
        self._transaction(s, "barecr@localhost")
        s.send("Subject: x\r\n\r\nhello\r.\r\nstill data\r\n.\r\n")
        self.assertEqual(s.reply()[1][0][:9], "550 5.6.0")
        s.close()

    def test_message_too_big(self):
        with Ferry(extra="message_size_limit = 2k") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            self.assertEqual(s.cmd("MAIL FROM:<a@example.org> SIZE=5000")[1][0][:9], "552 5.3.4")
            self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<big@localhost>")[0], 250)
            self.assertEqual(s.cmd("DATA")[0], 354)
            s.send(("x" * 70 + "\r\n") * 100 + ".\r\n")
            self.assertEqual(s.reply()[1][0][:9], "552 5.3.4")
            self.assertEqual(s.cmd("QUIT")[0], 221)
            self.assertEqual(f.mailbox_files("big"), [])
            self.assertEqual(f.queue_files(), [])
            self.assertEqual(f.queue_files("incoming"), [])

    def test_pipelining(self):
        s = self.session()
        s.cmd("EHLO c.example")
        s.send("MAIL FROM:<p@example.org>\r\nRCPT TO:<pipe@localhost>\r\nRCPT TO:<nobody@example.com>\r\n"
               "DATA\r\nSubject: piped\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n")
        codes = [s.reply()[0] for _ in range(7)]
        self.assertEqual(codes, [250, 250, 554, 354, 250, 250, 221])
        self.assertTrue(s.closed())
        self.assertTrue(self.f.wait_mail("pipe"))

    def test_other_commands(self):
        s = self.session()
        self.assertEqual(s.cmd("HELO c.example")[0], 250)
        self.assertEqual(s.cmd("MAIL FROM:<a@b.example> SIZE=10")[1][0][:9], "555 5.5.4")  # no EHLO
        self.assertEqual(s.cmd("VRFY alice")[1][0][:9], "252 2.5.0")
        self.assertEqual(s.cmd("HELP")[1][0][:9], "214 2.0.0")
        self.assertEqual(s.cmd("NOOP")[1][0][:9], "250 2.0.0")
        self.assertEqual(s.cmd("STARTTLS")[1], ["454 4.7.0 TLS not available"])     # no certificate configured
        code, lines = s.cmd("QUIT")
        self.assertEqual(lines[0][:9], "221 2.0.0")
        self.assertTrue(s.closed())

    def test_too_many_errors_disconnects(self):
        s = self.session()
        last = None
        for _ in range(25):
            last = s.cmd("BOGUS")
            if last[0] == 421:
                break
        self.assertEqual(last[1][-1][:9], "421 4.7.0", last)
        self.assertTrue(s.closed())

    def test_postmaster_without_domain(self):
        s = self.session()
        s.cmd("EHLO c.example")
        s.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(s.cmd("RCPT TO:<Postmaster>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: to the postmaster\r\n\r\nhi\r\n.\r\n")
        self.assertEqual(s.reply()[0], 250)
        s.close()
        self.assertTrue(self.f.wait_mail("postmaster"))

    def test_smtputf8_address(self):
        s = self.session()
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("MAIL FROM:<jörg@example.org> SMTPUTF8")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<josé@localhost>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: utf8\r\n\r\nolá\r\n.\r\n")
        self.assertEqual(s.reply()[0], 250)
        s.close()
        self.assertTrue(self.f.wait_mail("josé"))
        # without SMTPUTF8 an 8-bit address is refused
        s = self.session()
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("MAIL FROM:<jörg@example.org>")[1][0][:9], "501 5.1.7")
        s.close()

    def test_envelope_without_angle_brackets(self):
        """What printers and cron scripts send: accepted, delivered, and noted in the log."""
        s = self.session()
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("MAIL FROM:scanner@example.org SIZE=100")[0], 250)
        self.assertEqual(s.cmd("RCPT TO: bare@localhost")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:bare2@localhost")[0], 250)
        self.assertEqual(s.cmd('RCPT TO:"q r"@localhost')[1][0][:9], "501 5.1.3")   # ambiguous: refused
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: scan\r\n\r\npage 1\r\n.\r\n")
        self.assertEqual(s.reply()[0], 250)
        s.close()
        files = self.f.wait_mail("bare")
        self.assertTrue(files, self.f.read_log())
        self.assertTrue(open(files[-1], "rb").read().startswith(b"Return-Path: <scanner@example.org>\n"))
        log = self.f.read_log()
        self.assertIn("note: MAIL FROM without angle brackets accepted", log)
        # noted once per session, however many bare commands follow (no log amplification)
        self.assertEqual(log.count("without angle brackets accepted"), 1, log)


class StrictEnvelopes(unittest.TestCase):
    def test_strict_envelopes_refuses_bare_paths(self):
        with Ferry(extra="strict_envelopes = yes") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            self.assertEqual(s.cmd("MAIL FROM:a@example.org")[1][0][:9], "501 5.1.7")
            self.assertEqual(s.cmd("MAIL FROM: <a@example.org>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:alice@localhost")[1][0][:9], "501 5.1.3")
            self.assertEqual(s.cmd("RCPT TO:<alice@localhost>")[0], 250)
            s.close()


class KnownRecipients(unittest.TestCase):
    def test_unknown_user_rejected(self):
        with Ferry(local_recipients="known") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            s.cmd("MAIL FROM:<a@example.org>")
            self.assertEqual(s.cmd("RCPT TO:<no-such-user-xyz@localhost>")[1][0][:9], "550 5.1.1")
            self.assertEqual(s.cmd("RCPT TO:<root@localhost>")[0], 250)        # a system account
            self.assertEqual(s.cmd("RCPT TO:<postmaster@localhost>")[0], 250)
            s.close()


if __name__ == "__main__":
    unittest.main()
