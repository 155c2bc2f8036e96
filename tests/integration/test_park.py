"""Idle sessions parked in the connection holder (smtpd/smtp_park.h): above
smtp_park_above active sessions, the smtp process hands the sockets of sessions
idle between commands to a holder process, and takes each back when its client
speaks. Checked: the smtp process really lets go of the sockets (counted in
/proc), the holder holds them, and every kind of session goes on afterwards as
if nothing happened (plain, in the middle of a transaction, after STARTTLS, on
smtps), messages included; the command timeout and smtp_idle_session_limit
still answer 421 while parked; a killed holder ends only its sessions; a stop
with parked sessions is clean."""
import os
import re
import shutil
import signal
import smtplib
import ssl
import tempfile
import time
import unittest

from ferrytest import Ferry, SmtpLines, free_port, sockets_of, wait_for
from tlscerts import make_ca_and_server


def holder_of(smtp_pid):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == smtp_pid and "(ferryd-holder)" in stat:
            return int(pid)
    return None


MSG = "From: a@client.example\r\nTo: {to}\r\nSubject: {subj}\r\n\r\nparked and back\r\n"


class Park(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-park-")
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.d, ignore_errors=True)

    def ferry(self, extra="", above=4):
        self.smtps_port = free_port()
        f = Ferry(extra=f"tls_cert = {self.cert}\ntls_key = {self.key}\nlisten = smtps 127.0.0.1:{self.smtps_port}\n"
                        f"smtp_park_above = {above}\nmax_connections_per_ip = 500\n" + extra)
        f.start()
        self.addCleanup(f.cleanup)
        return f

    def ctx(self):
        return ssl.create_default_context(cafile=self.ca)

    def test_parked_sessions_go_on_as_before(self):
        f = self.ferry()
        smtp = f.child_by_role("smtp")
        base = sockets_of(smtp)
        plain = [SmtpLines(f.port) for _ in range(20)]
        for s in plain[:10]:
            self.assertEqual(s.cmd("EHLO plain.example")[0], 250)
        mid = plain[:3]                 # parked in the middle of a transaction
        for i, s in enumerate(mid):
            self.assertEqual(s.cmd("MAIL FROM:<a@client.example>")[0], 250)
            self.assertEqual(s.cmd(f"RCPT TO:<mid{i}@localhost>")[0], 250)
        starttls = []
        for _ in range(3):
            c = smtplib.SMTP("127.0.0.1", f.port, timeout=20)
            c.ehlo("tls.example")
            c.starttls(context=self.ctx())
            c.ehlo("tls.example")
            starttls.append(c)
        smtps = []
        for _ in range(3):
            c = smtplib.SMTP_SSL("127.0.0.1", self.smtps_port, timeout=20, context=self.ctx())
            c.ehlo("smtps.example")
            smtps.append(c)
        total = len(plain) + len(starttls) + len(smtps)
        # Idle for a second, then parked down to 3/4 of the threshold: the smtp
        # process holds at most 3 of the 26 connections (and its link to the holder).
        self.assertTrue(wait_for(lambda: sockets_of(smtp) - base <= 3 + 1 or None, 10),
                        (sockets_of(smtp), base, f.read_log()[-3000:]))
        holder = holder_of(smtp)
        self.assertIsNotNone(holder)
        self.assertGreaterEqual(sockets_of(holder), total - 3)
        # Every one goes on where it was.
        for s in plain[10:]:
            self.assertEqual(s.cmd("EHLO late.example")[0], 250)
        for s in plain[3:10]:
            self.assertEqual(s.cmd("NOOP")[0], 250)
        for i, s in enumerate(mid):
            self.assertEqual(s.cmd("DATA")[0], 354)
            s.send(MSG.format(to=f"mid{i}@localhost", subj=f"mid {i}") + ".\r\n")
            self.assertEqual(s.reply()[0], 250)
        for i, c in enumerate(starttls):
            c.sendmail("a@client.example", [f"tls{i}@localhost"], MSG.format(to=f"tls{i}@localhost", subj=f"tls {i}"))
        for c in smtps:                 # submission: AUTH first, which the TLS session still offers
            code, text = c.ehlo("smtps.example")
            self.assertEqual(code, 250)
            self.assertIn(b"AUTH PLAIN", text)
            self.assertEqual(c.mail("a@client.example")[0], 530)
        for i in range(len(mid)):
            files = f.wait_mail(f"mid{i}", 1, 10)
            self.assertTrue(files, f.read_log()[-3000:])
            self.assertIn("parked and back", open(files[0]).read())
        for i in range(len(starttls)):
            files = f.wait_mail(f"tls{i}", 1, 10)
            self.assertTrue(files, f.read_log()[-3000:])
            text = open(files[0]).read()
            self.assertIn(f"Subject: tls {i}", text)
            self.assertRegex(text, r"with ESMTPS")       # still the TLS session it was
        for s in plain:
            self.assertEqual(s.cmd("QUIT")[0], 221)
        for c in starttls + smtps:
            c.quit()
        log = f.read_log()
        self.assertIn("connection holder started", log)
        self.assertGreaterEqual(log.count("connection back from the holder (input)"), total - 3)
        self.assertNotIn("reply while its connection is parked", log)
        self.assertNotIn("lost-while-parked", log)

    def assert_421_while_parked(self, extra, commands, text, wake):
        """Four sessions that said commands, parked, each answered 421 with text
        by the timer that fires while it is parked (wake: the log's reason)."""
        f = self.ferry(extra, above=1)
        smtp = f.child_by_role("smtp")
        sessions = [SmtpLines(f.port) for _ in range(4)]
        for s in sessions:
            for c in commands:
                self.assertEqual(s.cmd(c)[0], 250)
        self.assertTrue(wait_for(lambda: holder_of(smtp) and sockets_of(holder_of(smtp)) >= 3 or None, 5),
                        f.read_log()[-2000:])
        for s in sessions:
            code, lines = s.reply()
            self.assertEqual(code, 421, lines)
            self.assertIn(text, lines[0])
            self.assertTrue(s.closed())
        self.assertGreaterEqual(f.read_log().count(f"connection back from the holder ({wake})"), 3)

    def test_idle_limit_answers_while_parked(self):
        self.assert_421_while_parked("smtp_idle_session_limit = 3s\n", ["EHLO idle.example"],
                                     "No mail transaction completed within 3 seconds", "limits")

    def test_command_timeout_answers_while_parked(self):
        self.assert_421_while_parked("smtp_timeout = 3s\n", ["EHLO busy.example", "MAIL FROM:<a@client.example>"],
                                     "Timeout", "timeout")

    def test_killed_holder_ends_only_its_sessions_and_stop_is_clean(self):
        f = self.ferry()
        smtp = f.child_by_role("smtp")
        sessions = [SmtpLines(f.port) for _ in range(12)]
        self.assertTrue(wait_for(lambda: holder_of(smtp) and sockets_of(holder_of(smtp)) >= 8 or None, 10))
        os.kill(holder_of(smtp), signal.SIGKILL)
        self.assertTrue(wait_for(lambda: "parked sessions lost" in f.read_log() or None, 5), f.read_log()[-2000:])
        closed = sum(1 for s in sessions if s.closed(timeout=2))
        self.assertGreaterEqual(closed, 8)
        self.assertEqual(f.child_by_role("smtp"), smtp)        # the smtp process itself goes on
        c = SmtpLines(f.port)
        self.assertEqual(c.cmd("EHLO after.example")[0], 250)
        c.cmd("QUIT")
        # A stop while sessions are parked (a new holder after its restart delay).
        more = [SmtpLines(f.port) for _ in range(8)]
        self.assertTrue(wait_for(lambda: holder_of(smtp) and sockets_of(holder_of(smtp)) >= 4 or None, 15),
                        f.read_log()[-2000:])
        t0 = time.monotonic()
        self.assertEqual(f.stop(), 0)
        self.assertLess(time.monotonic() - t0, 8)
        self.assertIn("smtp process stopped", f.read_log())
        self.assertTrue(all(s.closed(timeout=2) for s in more))

    def test_small_descriptor_limit(self):
        """Under a hard RLIMIT_NOFILE of 160 (soft 40): ferryd raises the soft
        limit to 160 and says so, warns that the session limits exceed what it
        can hold, parks from 80 sessions on, and when even that is full, pauses
        accepting (clients wait in the backlog) rather than spinning; parked
        clients that speak then still get their connections back (none lost);
        and the backlog is served once connections close."""
        import resource
        f = Ferry(extra="smtp_max_sessions = 1000\nmax_connections_per_ip = 1000\nmax_connection_rate = 0\n")
        f.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (40, 160))
        f.start()
        self.addCleanup(f.cleanup)
        log = f.read_log()
        self.assertIn("descriptor limit 160 per process", log)
        self.assertIn("smtp_max_sessions + submission_max_sessions = 1100, more than this descriptor limit", log)
        self.assertIn("idle sessions are parked above 80 connections", log)
        smtp = f.child_by_role("smtp")
        sessions = []
        for _ in range(120):
            sessions.append(SmtpLines(f.port))
        time.sleep(1.5)
        self.assertTrue(wait_for(lambda: sockets_of(holder_of(smtp)) >= 30 or None, 5), f.read_log()[-2000:])
        # The holder has about 144 places, the smtp process 160: 300 connections
        # cannot all be held. The rest wait in the backlog, then get in.
        import socket
        waiting = []
        for _ in range(180):
            c = socket.create_connection(("127.0.0.1", f.port), timeout=10)
            waiting.append(c)
        self.assertTrue(wait_for(lambda: "cannot accept connections for now: Too many open files" in f.read_log()
                                 or None, 15), f.read_log()[-2000:])
        # Parked clients speak while the process is full: their connections come
        # back first (a reserve of descriptors; accepting waits), none is lost.
        time.sleep(2)
        for s in reversed(sessions):
            self.assertEqual(s.cmd("NOOP")[0], 250)
        self.assertNotIn("lost while parked", f.read_log())
        for s in sessions:
            s.cmd("QUIT")
        greeted = 0
        for c in waiting:
            c.settimeout(15)
            try:
                if c.recv(512).startswith(b"220"):
                    greeted += 1
            except OSError:
                pass
            c.close()
        self.assertGreaterEqual(greeted, 170)
        self.assertEqual(f.child_by_role("smtp"), smtp)
        # Not a loop at full CPU while out of descriptors: one warning per pause.
        self.assertLess(f.read_log().count("cannot accept connections for now"), 300)


if __name__ == "__main__":
    unittest.main()
