"""bin/ferry-sendmail: sendmail-compatible local submission through the spool's
maildrop/ (no network), picked up by the smtp process."""
import os
import re
import subprocess
import unittest

from ferrytest import BIN, Ferry, wait_for

SENDMAIL = os.path.join(BIN, "ferry-sendmail")


class Sendmail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry().start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def run_sendmail(self, args, text):
        return subprocess.run([SENDMAIL, "-c", self.f.conf] + args, input=text.encode(), capture_output=True)

    def test_recipients_from_arguments(self):
        r = self.run_sendmail(["-f", "me@example.org", "kim@localhost"],
                              "Subject: via sendmail\n\n.leading dot\nbody\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        files = self.f.wait_mail("kim")
        self.assertTrue(files)
        data = open(files[0], "rb").read()
        self.assertTrue(data.startswith(b"Return-Path: <me@example.org>\n"), data)
        self.assertTrue(data.endswith(b"Subject: via sendmail\n\n.leading dot\nbody\n"), data)

    def test_dot_line_ends_input_unless_i(self):
        r = self.run_sendmail(["lee@localhost"], "Subject: dot\n\nbefore\n.\nafter\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("lee")[0], "rb").read()
        self.assertTrue(data.endswith(b"before\n"), data)
        r = self.run_sendmail(["-i", "mia@localhost"], "Subject: dot\n\nbefore\n.\nafter\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("mia")[0], "rb").read()
        self.assertTrue(data.endswith(b"before\n.\nafter\n"), data)

    def test_t_reads_headers_and_drops_bcc(self):
        r = self.run_sendmail(["-t"], 'To: "Doe, Ned" <ned@localhost>, olga@localhost\n'
                                      "Cc: team: pam@localhost;\nBcc: quinn@localhost\nSubject: t\n\nhi\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        for user in ("ned", "olga", "pam", "quinn"):
            files = self.f.wait_mail(user)
            self.assertTrue(files, user)
            self.assertNotIn(b"Bcc:", open(files[0], "rb").read())

    def test_bad_recipient_is_reported(self):
        r = self.run_sendmail(["not an address"], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"<not an address> is not a valid mailbox", r.stderr)
        self.assertEqual(self.f.queue_files("maildrop"), [])

    def test_missing_headers_added_and_user_recorded(self):
        r = self.run_sendmail(["-F", 'Rex "T" Rex', "-f", "rex@localhost", "rex@localhost"], "Subject: bare\n\nhi\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("rex")[0], "rb").read().decode()
        head = data.split("\n\n", 1)[0]
        self.assertRegex(head, r"Received: by mx\.example\.test \(Ferry, from userid %d [^)]+\);\n\t\w{3}, "
                         % os.getuid())
        self.assertIn('From: "Rex \\"T\\" Rex" <rex@localhost>\n', head)
        self.assertRegex(head, r"\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n")
        self.assertRegex(head, r"\nMessage-ID: <\d+\.[0-9a-f]{16}@mx\.example\.test>\n")
        # Present fields are left alone.
        r = self.run_sendmail(["sam@localhost"], "From: me@x.example\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n"
                                                 "Message-ID: <a@b>\n\nhi\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("sam")[0], "rb").read().decode()
        self.assertEqual(data.count("From: "), 1)
        self.assertEqual(data.count("Message-ID: "), 1)
        self.assertIn("Date: Thu, 1 Jan 2026 00:00:00 +0000\n", data)

    def test_another_local_user_can_submit(self):
        # The spool is 0711 and maildrop/ 1733: a user who is neither root nor the
        # daemon's user can drop mail, and cannot list what others dropped.
        if os.getuid() != 0:
            self.fail("this test needs root to act as another user (CI and make test run as root)")
        r = subprocess.run(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", SENDMAIL, "-c", self.f.conf,
                            "uma@localhost"], input=b"Subject: from uid 1\n\nhi\n", capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("uma")[0], "rb").read().decode()
        self.assertIn("(Ferry, from userid 1 ", data)
        ls = subprocess.run(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", "ls",
                             os.path.join(self.f.spool, "maildrop")], capture_output=True)
        self.assertNotEqual(ls.returncode, 0)
        self.assertEqual(oct(os.stat(os.path.join(self.f.spool, "maildrop")).st_mode & 0o7777), "0o1733")

    def test_bad_drop_file_is_quarantined(self):
        path = os.path.join(self.f.spool, "maildrop", "d.handmade")
        with open(path, "w") as fh:
            fh.write("FERRY-DROP 1\nsender a@localhost\nrcpt not-an-address\n\nSubject: x\n\nx\n")
        reason = os.path.join(self.f.spool, "corrupt", "drop.d.handmade.reason")
        self.assertTrue(wait_for(lambda: os.path.exists(reason), 5), self.f.read_log())
        self.assertIn("line 3: the recipient is not a valid mailbox", open(reason).read())
        # The reason is written before the copy and the unlink of the drop file.
        self.assertTrue(wait_for(lambda: not os.path.exists(path), 5), self.f.read_log())
        self.assertIn("maildrop/d.handmade: moved to corrupt/", self.f.read_log())

    def assert_refused(self, text, words):
        # Security review #4: such a message used to exit 0, and the pickup then
        # quarantined it where nobody looks. Now: 65 (EX_DATAERR), one sentence, no drop.
        before = self.f.queue_files("corrupt")
        r = self.run_sendmail(["vic@localhost"], text)
        self.assertEqual(r.returncode, 65, r.stderr)
        err = r.stderr.decode()
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(words, err)
        self.assertEqual(self.f.queue_files("maildrop"), [])
        self.assertEqual(self.f.queue_files("corrupt"), before)

    def test_long_line_is_refused(self):
        self.assert_refused("Subject: long\n\nshort\n" + "x" * 1500 + "\n",
                            "line 4 of the message is longer than 998 octets")

    def test_nul_is_refused(self):
        self.assert_refused("Subject: nul\n\nab\0c\n", "line 3 of the message contains a NUL octet")

    def test_no_recipients_is_usage_error(self):
        r = self.run_sendmail([], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, 2)


def as_uid(uid, *cmd, stdin=b""):
    """Run cmd as uid (group the same), the way a local user would."""
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + list(cmd),
                          input=stdin, capture_output=True)


class MaildropLinks(unittest.TestCase):
    """Security review #3: a local user (here uid 1, neither root nor the daemon's
    user) plants links in maildrop/; nothing the daemon writes may follow them."""

    def setUp(self):
        if os.getuid() != 0:
            self.fail("this test needs root to act as another user (CI and make test run as root)")
        self.f = Ferry().start()
        self.addCleanup(self.f.cleanup)

    def test_planted_reason_link_does_not_overwrite_the_daemons_files(self):
        f = self.f
        drop = os.path.join(f.spool, "maildrop")
        corrupt = os.path.join(f.spool, "corrupt")
        # The victim: a file of the daemon's user that uid 1 cannot write (as a
        # queued message is).
        victim = os.path.join(f.spool, "queue", "0000000000000000.msg")
        with open(victim, "wb") as fh:
            fh.write(b"the daemon's own bytes\r\n")
        st = os.stat(os.path.join(f.spool, "queue"))
        os.chown(victim, st.st_uid, st.st_gid)
        os.chmod(victim, 0o600)
        r = as_uid(1, "ln", "-s", victim, os.path.join(drop, "d.zz.reason"))
        self.assertEqual(r.returncode, 0, r.stderr)
        # The pickup deals with the link first (as the attacker arranges it) ...
        self.assertTrue(wait_for(lambda: "d.zz.reason" not in os.listdir(drop), 5), f.read_log())
        # ... then a bad drop whose reason file would be written through it.
        r = as_uid(1, "sh", "-c", "printf 'garbage\\n' > %s" % os.path.join(drop, "d.zz"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_for(lambda: "d.zz" not in os.listdir(drop), 5), f.read_log())
        with open(victim, "rb") as fh:
            self.assertEqual(fh.read(), b"the daemon's own bytes\r\n")
        # The bad drop is in corrupt/ with its reason; the link left only a reason.
        with open(os.path.join(corrupt, "drop.d.zz"), "rb") as fh:
            self.assertEqual(fh.read(), b"garbage\n")
        reason = os.path.join(corrupt, "drop.d.zz.reason")
        self.assertFalse(os.path.islink(reason))
        with open(reason) as fh:
            self.assertIn("not a maildrop file", fh.read())
        for name in os.listdir(corrupt):
            self.assertFalse(os.path.islink(os.path.join(corrupt, name)), name)
        with open(os.path.join(corrupt, "drop.d.zz.reason.reason")) as fh:
            self.assertIn("a symbolic link", fh.read())
        self.assertEqual(os.listdir(drop), [])

    def test_sendmail_as_root_refuses_a_maildrop_link(self):
        # The spool's owner swaps maildrop/ for a link to a directory of root's:
        # root's ferry-sendmail (cron mail) must not create its files there.
        f = self.f
        f.stop()
        target = os.path.join(f.dir, "root-only")
        os.mkdir(target, 0o700)
        drop = os.path.join(f.spool, "maildrop")
        os.rename(drop, drop + ".bak")
        os.symlink(target, drop)
        r = subprocess.run([SENDMAIL, "-c", f.conf, "root@localhost"], input=b"Subject: cron\n\nhi\n",
                           capture_output=True)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(b"maildrop", r.stderr)
        self.assertEqual(os.listdir(target), [])


class LargeDrops(unittest.TestCase):
    """Security review #8: ten 20 MB drops picked up in one go froze the smtp
    process's loop (greetings waited 5 s). The pickup now takes one file per turn
    of the loop, so sessions are served between two drops."""

    def test_sessions_are_served_between_large_drops(self):
        import threading
        import time
        from ferrytest import SmtpLines
        f = Ferry(extra="message_size_limit = 40M\nmax_connection_rate = 0")
        f.start()
        self.addCleanup(f.cleanup)
        drop = os.path.join(f.spool, "maildrop")
        line = b"x" * 76 + b"\n"
        body = line * (16 * 1024 * 1024 // len(line))      # 16 MB
        count = 6
        for i in range(count):
            with open(os.path.join(drop, "t.big%d" % i), "wb") as fh:
                fh.write(b"FERRY-DROP 1\nsender big@localhost\nrcpt big%d@localhost\n\nSubject: big %d\n\n" % (i, i))
                fh.write(body)
        latencies, stop = [], threading.Event()

        def greet():
            while not stop.is_set():
                t0 = time.monotonic()
                s = SmtpLines(f.port, timeout=30)
                latencies.append((time.monotonic() - t0, s.greeting[0]))
                s.sock.close()
                time.sleep(0.01)

        t = threading.Thread(target=greet)
        t.start()
        try:
            for i in range(count):
                os.rename(os.path.join(drop, "t.big%d" % i), os.path.join(drop, "d.big%d" % i))
            for i in range(count):
                self.assertTrue(f.wait_mail("big%d" % i, timeout=120), f.read_log()[-3000:])
        finally:
            stop.set()
            t.join()
        self.assertTrue(latencies)
        self.assertTrue(all(code == 220 for _, code in latencies), latencies)
        # Observable without a clock: the smtp process accepted sessions between
        # two pickups. Taking all files in one turn, it could not.
        events = re.findall(r"smtp info: (?:\S+: from=<big@localhost>.*proto=local|session \S+ connect from)",
                            f.read_log())
        kinds = ["drop" if "proto=local" in e else "session" for e in events]
        first, last = kinds.index("drop"), len(kinds) - 1 - kinds[::-1].index("drop")
        self.assertEqual(kinds.count("drop"), count)
        self.assertIn("session", kinds[first:last], kinds)
        print("\n    (%d greetings during %d x 16 MB drops; slowest %.0f ms)"
              % (len(latencies), count, max(l for l, _ in latencies) * 1000), end="")


class SendmailWithoutDaemon(unittest.TestCase):
    def test_message_waits_in_maildrop_until_the_daemon_starts(self):
        f = Ferry()
        try:
            f.start()       # prepares the spool
            f.stop()
            r = subprocess.run([SENDMAIL, "-c", f.conf, "tom@localhost"], input=b"Subject: later\n\nwaited\n",
                               capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            drops = f.queue_files("maildrop")
            self.assertEqual(len(drops), 1)
            self.assertTrue(re.fullmatch(r"d\.[0-9a-f]{24}", drops[0]), drops)
            f.start()
            files = f.wait_mail("tom")
            self.assertTrue(files)
            self.assertTrue(open(files[0], "rb").read().endswith(b"Subject: later\n\nwaited\n"))
            self.assertEqual(f.queue_files("maildrop"), [])
        finally:
            f.cleanup()



if __name__ == "__main__":
    unittest.main()
