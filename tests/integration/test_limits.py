"""Hostile and broken input, and the per-client limits: early talkers, connection
counts and rates, idle and data timeouts, too many recipients, NUL octets, the
bare_newlines=normalize option, traces and the session summary line."""
import glob
import os
import re
import socket
import time
import unittest

from ferrytest import Ferry, SmtpLines, wait_for


def raw_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def read_all(sock, timeout=5):
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


class EarlyTalker(unittest.TestCase):
    def test_client_that_talks_first_is_refused(self):
        with Ferry(extra="greeting_delay = 2s") as f:
            s = raw_connect(f.port)
            s.sendall(b"EHLO impatient.example\r\n")
            data = read_all(s, 8)
            s.close()
            self.assertTrue(data.startswith(b"554 5.5.1 mx.example.test Protocol error: you talked before the greeting"),
                            data)
            self.assertNotIn(b"220", data)
            self.assertTrue(wait_for(lambda: "end=early-talker" in f.read_log(), 5), f.read_log())

    def test_patient_client_is_greeted_after_the_delay(self):
        with Ferry(extra="greeting_delay = 1s") as f:
            t0 = time.monotonic()
            s = SmtpLines(f.port)
            waited = time.monotonic() - t0
            self.assertEqual(s.greeting[0], 220)
            self.assertGreaterEqual(waited, 0.9)
            self.assertEqual(s.cmd("EHLO patient.example")[0], 250)
            s.cmd("QUIT")


class ConnectionLimits(unittest.TestCase):
    def test_connection_rate_per_ip(self):
        with Ferry(extra="max_connection_rate = 5") as f:
            # start() probed the port once; keep connecting until refused.
            replies = []
            for _ in range(8):
                s = raw_connect(f.port)
                line = s.recv(512)
                replies.append(line)
                s.close()
            accepted = [r for r in replies if r.startswith(b"220")]
            refused = [r for r in replies if r.startswith(b"421 4.7.0")]
            self.assertLessEqual(len(accepted), 4, replies)      # 5 per minute, one used by start()
            self.assertGreaterEqual(len(refused), 4, replies)
            self.assertIn(b"per minute", refused[0])
            self.assertIn("over max_connection_rate", f.read_log())

    def test_concurrent_connections_per_ip(self):
        with Ferry(extra="max_connections_per_ip = 2") as f:
            a, b = SmtpLines(f.port), SmtpLines(f.port)
            self.assertEqual((a.greeting[0], b.greeting[0]), (220, 220))
            c = raw_connect(f.port)
            self.assertTrue(c.recv(512).startswith(b"421 4.7.0"))
            c.close()
            a.cmd("QUIT")
            a.close()
            time.sleep(0.3)
            d = SmtpLines(f.port)
            self.assertEqual(d.greeting[0], 220)


class Timeouts(unittest.TestCase):
    def test_idle_command_timeout(self):
        with Ferry(extra="smtp_timeout = 1s") as f:
            s = raw_connect(f.port)
            data = read_all(s, 6)
            self.assertIn(b"421 4.4.2 mx.example.test Timeout", data)

    def test_data_timeout(self):
        with Ferry(extra="data_timeout = 1s") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            s.cmd("MAIL FROM:<a@example.org>")
            s.cmd("RCPT TO:<slow@localhost>")
            self.assertEqual(s.cmd("DATA")[0], 354)
            s.send("Subject: half a message\r\n")
            self.assertTrue(s.line().startswith("421 4.4.2"))
            self.assertEqual(f.queue_files(), [])


class Content(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry().start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def test_too_many_recipients(self):
        s = SmtpLines(self.f.port)
        s.cmd("EHLO c.example")
        s.cmd("MAIL FROM:<a@example.org>")
        s.send("".join(f"RCPT TO:<r{i}@localhost>\r\n" for i in range(1001)))
        codes = [s.reply()[0] for _ in range(1001)]
        self.assertEqual(codes[:1000], [250] * 1000)
        self.assertEqual(codes[1000], 452)
        s.close()

    def test_nul_in_data_refused(self):
        s = SmtpLines(self.f.port)
        s.cmd("EHLO c.example")
        s.cmd("MAIL FROM:<a@example.org>")
        s.cmd("RCPT TO:<nul@localhost>")
        s.cmd("DATA")
        code, lines = s.cmd("Subject: x\r\n\r\na\x00b\r\n.")
        self.assertEqual(lines[0], "550 5.6.0 Message contains a NUL octet, which SMTP cannot carry")
        self.assertEqual(s.cmd("NOOP")[0], 250)      # the session goes on

    def test_nul_in_command_refused(self):
        s = SmtpLines(self.f.port)
        code, lines = s.cmd("EHLO c.exa\x00mple")
        self.assertEqual(lines, ["500 5.5.2 NUL, CR or LF inside a command line"])


class AcceptedMessageSurvivesAbuse(unittest.TestCase):
    def test_message_accepted_before_the_abuse_is_delivered(self):
        with Ferry(extra="max_errors = 5") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            s.cmd("MAIL FROM:<a@example.org>")
            s.cmd("RCPT TO:<keep@localhost>")
            s.cmd("DATA")
            code, lines = s.cmd("Subject: keep me\r\n\r\nfirst\r\n.")
            self.assertEqual(code, 250, lines)
            # Then everything at once: an over-long line, NUL, garbage, errors until 421.
            s.send("X" * 5000 + "\r\n")
            s.send("MAIL FROM:<a\x00b@example.org>\r\n")
            for _ in range(6):
                s.send("BOGUS\r\n")
            self.assertTrue(s.closed(10))
            data = open(f.wait_mail("keep")[0], "rb").read()
            self.assertTrue(data.endswith(b"Subject: keep me\n\nfirst\n"), data)
            self.assertIn("end=errors", f.read_log())


class Normalize(unittest.TestCase):
    def test_bare_newlines_normalized_when_configured(self):
        with Ferry(extra="bare_newlines = normalize") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            s.cmd("MAIL FROM:<a@example.org>")
            s.cmd("RCPT TO:<norm@localhost>")
            s.cmd("DATA")
            # "\n.\r\n" is content, not the end: the message ends only at CRLF.CRLF.
            s.send("Subject: n\r\n\r\nline one\nline two\rthree\n.\r\nfour\r\n.\r\n")
            code, lines = s.reply()
            self.assertEqual(code, 250, lines)
            data = open(f.wait_mail("norm")[0], "rb").read()
            self.assertTrue(data.endswith(b"Subject: n\n\nline one\nline two\nthree\n.\nfour\n"), data)


class TraceAndSummary(unittest.TestCase):
    def test_trace_file_and_summary_line(self):
        with Ferry() as f:
            tdir = os.path.join(f.dir, "traces")
            os.mkdir(tdir)
            os.chmod(tdir, 0o777)
            port = f.port
            f.stop()
            # The trace option goes on the existing smtp listener.
            text = open(f.conf).read().replace(f"listen = smtp 127.0.0.1:{port}\n",
                                               f"listen = smtp 127.0.0.1:{port} trace={tdir}\n", 1)
            open(f.conf, "w").write(text)
            f.start()
            s = SmtpLines(f.port)
            s.cmd("EHLO tracer.example")
            s.cmd("MAIL FROM:<t@example.org>")
            s.cmd("RCPT TO:<traced@localhost>")
            s.cmd("DATA")
            code, lines = s.cmd("Subject: traced\r\n\r\nbare\nlf\r\n.")
            self.assertEqual(code, 550)
            s.cmd("QUIT")
            s.close()
            self.assertTrue(wait_for(lambda: "end=quit" in f.read_log(), 5))
            # start() probes the port too; that session has its own trace.
            files = [p for p in glob.glob(os.path.join(tdir, "*.trace")) if "tracer.example" in open(p).read()]
            self.assertEqual(len(files), 1, files)
            sid = os.path.basename(files[0])[:-len(".trace")]
            self.assertRegex(sid, r"^[0-9A-V]{16}$")
            text = open(files[0]).read()
            body = [l.split(" ", 1)[1] for l in text.splitlines()]
            self.assertIn("S: 220 mx.example.test ESMTP Ferry", body)
            self.assertIn("C: EHLO tracer.example", body)
            self.assertIn("D: Subject: traced", body)
            self.assertIn("D: bare\\x0a", body)
            self.assertIn("C: QUIT", body)
            self.assertIn("*: session ends: quit", body)
            m = re.search(r"session %s end=quit client=\[127\.0\.0\.1\] kind=smtp helo=tracer\.example tls=no "
                          r"auth=no messages=0 rcpts=0 octets=0" % sid, f.read_log())
            self.assertTrue(m, f.read_log())


if __name__ == "__main__":
    unittest.main()
