"""CHUNKING/BDAT (RFC 3030) against a real ferryd: exact bytes in the spool and the
Maildir, pipelining, every sequence error with its data consumed, size limits, and
the DATA line rules applied to BDAT content."""
import os
import re
import unittest

from envfile import message_bytes
from ferrytest import Ferry, SmtpLines, wait_for


def held_mailbox(f, user):
    """A Maildir the queue cannot write (mode 0500): delivery defers, the message
    stays in queue/ where the test can read it."""
    os.makedirs(f.maildir, exist_ok=True)
    os.mkdir(os.path.join(f.maildir, user), 0o500)


class Chunking(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry(extra="message_size_limit = 4k").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def session(self, rcpt=None):
        s = SmtpLines(self.f.port)
        self.assertEqual(s.cmd("EHLO c.example")[0], 250)
        if rcpt:
            self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<%s>" % rcpt)[0], 250)
        return s

    def bdat(self, s, data, last=False):
        s.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
        return s.reply()

    def queued_id(self, lines):
        m = re.match(r"250 2\.0\.0 Ok: queued as ([0-9A-V]{16})$", lines[0])
        self.assertTrue(m, lines)
        return m.group(1)

    def spool_msg(self, qid):
        path = os.path.join(self.f.spool, "queue", qid + ".msg")
        self.assertTrue(wait_for(lambda: os.path.exists(path), 5), self.f.queue_files())
        data = message_bytes(path)      # without the envelope stored behind it
        m = re.match(rb"Authentication-Results: mx\.example\.test;\r\n\tdkim=none;\r\n"
                     rb"\tarc=none \(no ARC sets\) smtp\.remote-ip=127\.0\.0\.1\r\n"
                     rb"Received: from c\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.example\.test \(Ferry\) "
                     rb"with ESMTP id " + qid.encode() + rb"\r\n\tfor <[^>]+>; [^\r\n]+\r\n", data)
        self.assertTrue(m, data[:300])
        return data[m.end():]

    def test_ehlo(self):
        s = SmtpLines(self.f.port)
        code, lines = s.cmd("EHLO c.example")
        kw = [l[4:].split()[0] for l in lines[1:]]
        self.assertIn("CHUNKING", kw)
        self.assertNotIn("BINARYMIME", kw)
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org> BODY=BINARYMIME")[1][0][:9], "504 5.5.4")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org> BODY=8BITMIME")[0], 250)
        s.close()

    def test_single_chunk_exact_bytes_in_maildir(self):
        s = self.session("chunk1@localhost")
        body = b"From: a@example.org\r\nSubject: one chunk\r\n\r\nHello.\r\n.\r\n..dots stay\r\n"
        code, lines = self.bdat(s, body, last=True)
        self.assertEqual(code, 250, lines)
        qid = self.queued_id(lines)
        self.assertEqual(s.cmd("QUIT")[0], 221)
        files = self.f.wait_mail("chunk1")
        self.assertTrue(files, self.f.read_log())
        with open(files[-1], "rb") as fh:
            data = fh.read()
        # Return-Path, Delivered-To, our Received: (three lines), then the body as sent
        m = re.match(rb"Return-Path: <a@example.org>\nDelivered-To: chunk1@localhost\n"
                     rb"Authentication-Results: mx\.example\.test;\n\tdkim=none;\n"
                     rb"\tarc=none \(no ARC sets\) smtp\.remote-ip=127\.0\.0\.1\n"
                     rb"Received: from c\.example \(\[127\.0\.0\.1\]\)\n\tby mx\.example\.test \(Ferry\) with ESMTP id "
                     + qid.encode() + rb"\n\tfor <chunk1@localhost>; [^\n]+\n", data)
        self.assertTrue(m, data)
        self.assertEqual(data[m.end():], body.replace(b"\r\n", b"\n"))

    def test_multi_chunk_binary_looking_exact_bytes(self):
        held_mailbox(self.f, "heldchunk")
        s = self.session("heldchunk@localhost")
        # Every octet but NUL, CR and LF, lines with CRLF, SMTP commands and
        # end-of-data forms inside: all of it is content. (NUL: see the next test.)
        octets = bytes(b for b in range(256) if b not in (0, 13, 10))
        body = (b"Subject: binary-looking\r\n\r\n" + octets[:200] + b"\r\n" + octets[200:] + b"\r\n"
                b".\r\nQUIT\r\nBDAT 5 LAST\r\n\r\n.\r\n\x01\x02\r\n")
        chunks = [body[:7], body[7:100], body[100:101], body[101:260], body[260:]]
        for c in chunks[:-1]:
            code, lines = self.bdat(s, c)
            self.assertEqual(lines[0], "250 2.0.0 %d octets received" % len(c))
        code, lines = self.bdat(s, chunks[-1], last=True)
        self.assertEqual(code, 250, lines)
        qid = self.queued_id(lines)
        s.close()
        self.assertEqual(self.spool_msg(qid), body)

    def test_nul_refused_without_binarymime(self):
        # RFC 6152 3 / RFC 3030 3: only BINARYMIME (not offered) may carry NUL.
        s = self.session("nulchunk@localhost")
        self.assertEqual(self.bdat(s, b"Subject: nul\r\n\r\na\x00b\r\n")[0], 250)
        code, lines = self.bdat(s, b"", last=True)
        self.assertEqual(lines[0], "550 5.6.0 Message contains a NUL octet, which SMTP cannot carry")
        s.close()

    def test_crlf_split_across_chunks(self):
        held_mailbox(self.f, "heldsplit")
        s = self.session("heldsplit@localhost")
        self.assertEqual(self.bdat(s, b"Subject: split\r")[0], 250)
        self.assertEqual(self.bdat(s, b"\n\r\nbody\r")[0], 250)
        self.assertEqual(self.bdat(s, b"\n")[0], 250)
        code, lines = self.bdat(s, b"", last=True)      # BDAT 0 LAST ends it
        self.assertEqual(code, 250, lines)
        self.assertEqual(self.spool_msg(self.queued_id(lines)), b"Subject: split\r\n\r\nbody\r\n")

    def test_bdat_0_last_alone(self):
        held_mailbox(self.f, "heldempty")
        s = self.session("heldempty@localhost")
        code, lines = self.bdat(s, b"", last=True)
        self.assertEqual(code, 250, lines)
        self.assertEqual(self.spool_msg(self.queued_id(lines)), b"")
        # the next transaction in the same session, by DATA
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<heldempty@localhost>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: x\r\n\r\ny\r\n.\r\n")
        self.assertEqual(s.reply()[0], 250)
        s.close()

    def test_pipelined_in_one_write(self):
        s = self.session()
        part1 = b"Subject: piped\r\n\r\nline one\r\n"
        part2 = b"line two\r\nNOOP\r\n"
        s.send(b"MAIL FROM:<p@example.org>\r\nRCPT TO:<bdatpipe@localhost>\r\n"
               b"BDAT %d\r\n%sBDAT %d LAST\r\n%sNOOP\r\nQUIT\r\n" % (len(part1), part1, len(part2), part2))
        replies = [s.reply() for _ in range(6)]
        self.assertEqual([r[0] for r in replies], [250, 250, 250, 250, 250, 221], replies)
        self.assertEqual(replies[2][1][0], "250 2.0.0 %d octets received" % len(part1))
        self.queued_id(replies[3][1])
        self.assertTrue(s.closed())
        files = self.f.wait_mail("bdatpipe")
        self.assertTrue(files)
        self.assertTrue(open(files[-1], "rb").read().endswith(b"\n\nline one\nline two\nNOOP\n"))

    def test_data_after_bdat(self):
        s = self.session("mixed@localhost")
        self.assertEqual(self.bdat(s, b"Subject: x\r\n")[0], 250)
        self.assertEqual(s.cmd("DATA")[1][0][:9], "503 5.5.1")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[1][0][:9], "503 5.5.1")
        self.assertEqual(s.cmd("RSET")[0], 250)
        # RSET dropped the chunk; a fresh transaction by DATA works
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<mixed@localhost>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: by data\r\n\r\nz\r\n.\r\n")
        self.assertEqual(s.reply()[0], 250)
        s.close()
        files = self.f.wait_mail("mixed")
        self.assertEqual(len(files), 1)
        self.assertNotIn(b"Subject: x\n", open(files[0], "rb").read())

    def test_bdat_without_rcpt_consumes_its_data(self):
        s = self.session()
        # before MAIL: the chunk looks like commands and must not run as such
        code, lines = self.bdat(s, b"MAIL FROM:<evil@example.org>\r\n")
        self.assertEqual(lines[0][:9], "503 5.5.1")
        self.assertEqual(s.cmd("NOOP")[0], 250)
        # MAIL accepted, every RCPT refused
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<x@example.com>")[0], 554)
        chunk = b"RCPT TO:<victim@localhost>\r\nDATA\r\n"
        s.send(b"BDAT %d\r\n%sBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n" % (len(chunk), chunk))
        self.assertEqual(s.reply()[1][0][:9], "503 5.5.1")
        self.assertEqual(s.reply()[1][0][:9], "503 5.5.1")     # pipelined chunk, discarded
        self.assertEqual(s.reply()[0], 250)                     # NOOP, the next real command
        # the LAST chunk ended the failed transaction
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        s.close()
        self.assertEqual(self.f.mailbox_files("victim"), [])

    def test_before_ehlo(self):
        s = SmtpLines(self.f.port)
        s.send(b"BDAT 6 LAST\r\nQUIT\r\nNOOP\r\n")
        self.assertEqual(s.reply()[1][0][:9], "503 5.5.1")
        self.assertEqual(s.reply()[0], 250)
        s.close()

    def test_oversize_chunk_consumed_and_refused(self):
        s = self.session("big@localhost")
        chunk = (b"NOOP\r\n" * 1000)[:5000]            # above message_size_limit (4k)
        s.send(b"BDAT %d\r\n%sBDAT 10\r\n0123456789BDAT 4 LAST\r\nQUITNOOP\r\n" % (len(chunk), chunk))
        self.assertEqual(s.reply()[1][0][:9], "552 5.3.4")
        self.assertEqual(s.reply()[1][0][:9], "503 5.5.1")     # pipelined after the failure
        self.assertEqual(s.reply()[1][0][:9], "503 5.5.1")
        self.assertEqual(s.reply()[0], 250)                     # the NOOP after the chunks
        # the failed transaction is over: a new one may start
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<big@localhost>")[0], 250)
        # the total across chunks is bounded too
        self.assertEqual(self.bdat(s, b"x" * 998 + b"\r\n")[0], 250)
        self.assertEqual(self.bdat(s, b"y" * 998 + b"\r\n")[0], 250)
        self.assertEqual(self.bdat(s, b"z" * 998 + b"\r\n")[0], 250)
        self.assertEqual(self.bdat(s, b"w" * 998 + b"\r\n", last=True)[1][0][:9], "552 5.3.4")
        self.assertEqual(s.cmd("RSET")[0], 250)
        s.close()
        self.assertEqual(self.f.mailbox_files("big"), [])

    def test_chunk_size_syntax(self):
        s = self.session("syntax@localhost")
        for bad in ("BDAT", "BDAT x", "BDAT -1", "BDAT 1 LASTX", "BDAT 1 LAST extra", "BDAT 1  LAST",
                    "BDAT " + "9" * 21):
            self.assertEqual(s.cmd(bad)[1][0][:9], "501 5.5.4", bad)
        code, lines = self.bdat(s, b"a\r\n")
        self.assertEqual(code, 250)
        s.send(b"bdat 3 last\r\nb\r\n")
        self.assertEqual(s.reply()[0], 250)      # verb and LAST in any case
        s.close()

    def test_bare_lf_and_long_lines_refused(self):
        s = self.session("bdatlf@localhost")
        self.assertEqual(self.bdat(s, b"Subject: x\r\n\r\nhello\n.\n")[0], 250)
        self.assertEqual(self.bdat(s, b"more\r\n", last=True)[1][0][:9], "550 5.6.0")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<bdatlf@localhost>")[0], 250)
        self.assertEqual(self.bdat(s, b"Subject: x\r\n\r\nbare cr\rhere\r\n", last=True)[1][0][:9], "550 5.6.0")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<bdatlf@localhost>")[0], 250)
        self.assertEqual(self.bdat(s, b"Subject: x\r\n\r\n" + b"a" * 1001 + b"\r\n", last=True)[1][0][:9],
                         "550 5.6.0")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<bdatlf@localhost>")[0], 250)
        self.assertEqual(self.bdat(s, b"Subject: x\r\n\r\nends in CR\r", last=True)[1][0][:9], "550 5.6.0")
        s.close()
        self.assertEqual(self.f.mailbox_files("bdatlf"), [])


if __name__ == "__main__":
    unittest.main()
