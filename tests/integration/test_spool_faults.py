"""The spool's file system full or read-only (issue: queue, crash and fault safety):
new mail gets 452 4.3.1, what was accepted stays queued and is not lost, and the
service recovers when space (or write access) returns. The spool is a small tmpfs
mounted for the test (root only: CI and make test run as root)."""
import os
import smtplib
import subprocess
import unittest

from ferrytest import Ferry, SmtpLines, wait_for

REMOTE = "bob@remote.invalid"      # no remote delivery: such mail stays queued (4.4.3)


def try_mail(f):
    s = SmtpLines(f.port)
    s.cmd("EHLO c.example")
    code, lines = s.cmd("MAIL FROM:<a@example.org>")
    s.close()
    return lines[0]


class SpoolFaults(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.fail("this test mounts a small tmpfs for the spool and needs root (CI runs as root)")
        self.f = Ferry(relay_networks="127.0.0.0/8", extra="retry_min = 1h\nretry_max = 2h\n")
        os.makedirs(self.f.spool)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", self.f.spool], check=True)
        self.f.start()

    def tearDown(self):
        self.f.stop()
        subprocess.run(["umount", "-l", self.f.spool])
        self.f.cleanup()

    def queue_one(self, n):
        with smtplib.SMTP("127.0.0.1", self.f.port, timeout=10) as c:
            c.sendmail("a@example.org", [REMOTE], f"Subject: kept {n}\r\n\r\nbody {n}\r\n".encode())
        return n

    def queued(self):
        return sorted(x for x in self.f.queue_files() if x.endswith(".msg"))

    def test_full_then_recovers(self):
        for n in range(3):
            self.queue_one(n)
        before = self.queued()
        self.assertEqual(len(before), 3)
        filler = os.path.join(self.f.spool, "filler")
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=20"], capture_output=True)
        self.assertTrue(try_mail(self.f).startswith("452 4.3.1"))
        self.assertIn("short of space", self.f.read_log())
        self.assertEqual(self.queued(), before)                 # nothing accepted was lost
        os.unlink(filler)
        self.assertTrue(try_mail(self.f).startswith("250 "))   # recovered
        self.queue_one(3)
        self.assertEqual(len(self.queued()), 4)

    def test_read_only_then_recovers(self):
        self.queue_one(0)
        before = self.queued()
        # A read-only bind mount over the spool (a plain remount is refused while
        # the daemon holds files open, as it always does).
        subprocess.run(["mount", "--bind", self.f.spool, self.f.spool], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", self.f.spool], check=True)
            self.assertTrue(try_mail(self.f).startswith("452 4.3.1"))
        finally:
            subprocess.run(["umount", self.f.spool], check=True)
        self.assertEqual(self.queued(), before)
        self.queue_one(1)
        self.assertEqual(len(self.queued()), 2)
        self.assertIsNone(self.f.proc.poll())


if __name__ == "__main__":
    unittest.main()
