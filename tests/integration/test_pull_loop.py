"""The queue process's event loop stays responsive while DMTP disk work runs
(issue 14; DESIGN.md: the loop never blocks). A control request (`ferryctl
queue flush`, answered by the queue process's loop itself, unlike `queue list`,
which reads the spool) is timed:

- while the held/ expiry sweep cannot get held/.lock (the test holds it): the
  sweep waits in its forked child, the loop answers. Before the sweep moved off
  the loop, the queue process blocked in flock and the request timed out.
- while B stores a pulled multi-megabyte message (a forked child writes and
  fsyncs it): every request in that window is answered within a second, and the
  message arrives whole.

Addresses: A 127.0.0.6, B 127.0.0.7 (test_pull_send's)."""
import fcntl
import os
import time
import unittest

from ferrytest import Ferry, wait_for
import test_pull_recv
from test_pull_send import PullBase, ScriptedRmta

BIG = 12 * 1024 * 1024


def control_time(f, limit=5):
    """Seconds `ferryctl queue flush` took (limit + 1 when it did not answer)."""
    t = time.monotonic()
    try:
        r = f.ferryctl_timeout(limit, "queue", "flush")
    except Exception:
        return limit + 1
    if r.returncode != 0:
        return limit + 1
    return time.monotonic() - t


def ferryctl_timeout(self, limit, *args):
    import subprocess
    from ferrytest import FERRYCTL
    return subprocess.run([FERRYCTL, "-c", self.conf] + list(args), capture_output=True, text=True,
                          timeout=limit)


Ferry.ferryctl_timeout = ferryctl_timeout


class HeldSweepOffLoop(unittest.TestCase):
    def test_control_answered_while_the_sweep_waits_for_the_held_lock(self):
        f = Ferry()
        self.addCleanup(f.cleanup)
        f.start()
        f.stop()
        fd = os.open(os.path.join(f.spool, "held", ".lock"), os.O_RDWR)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.addCleanup(fcntl.flock, fd, fcntl.LOCK_UN)     # runs before f.cleanup
        f.start()                       # the queue process sweeps held/ at once
        time.sleep(0.5)
        took = [control_time(f) for _ in range(3)]
        self.assertLess(max(took), 1.0, f"control request times {took}\n" + f.read_log()[-2000:])


class BigPullOffLoop(PullBase):
    receiver = test_pull_recv.PullRecv.receiver
    add_notice = test_pull_recv.PullRecv.add_notice

    @staticmethod
    def quiet_log(f):
        return "\n".join(l for l in f.read_log().splitlines() if "flushed by the administrator" not in l)[-3000:]

    def test_control_answered_while_a_big_pull_is_stored(self):
        r = ScriptedRmta()
        try:
            a = self.sender()
            line = b"x" * 998 + b"\r\n"
            body = line * (BIG // len(line))
            msg = (b"From: alice@a.test\r\nTo: bob@b.test\r\nSubject: big\r\nMessage-ID: <big@a.test>\r\n\r\n"
                   + body)
            a.inject("alice@a.test", ["bob@b.test"], msg)
            self.assertTrue(wait_for(lambda: r.msid_lines(), 30), a.read_log()[-3000:])
            hid = wait_for(lambda: self.held(a), 10)
            self.assertTrue(hid, a.read_log()[-3000:])
            msid = r.msid_lines()[-1].split(" ")[1]
        finally:
            r.close()
        b = self.receiver()
        nid = self.add_notice(b, msid)
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        took = []
        deadline = time.monotonic() + 60
        arrived = None
        while time.monotonic() < deadline and not arrived:
            took.append(control_time(b))
            arrived = [p for p in b.mailbox_files("bob") if os.path.getsize(p) > BIG * 9 // 10]
            time.sleep(0.05)
        self.assertTrue(arrived, self.quiet_log(b) + a.read_log()[-2000:])
        self.assertIn("pulled from [", b.read_log())
        self.assertLess(max(took), 1.0, f"control request times {took}")
        print(f"\n  big pull: {len(took)} control requests, slowest {max(took):.3f}s", end=" ")

    def test_expired_notice_dropped_by_the_sweep_child(self):
        """The notice expiry sweep, now a forked child with its own database
        handle, still drops a pending notice past pull_expiry (at start)."""
        b = self.receiver(start=False, extra="pull_expiry = 1s\n")
        b.start()
        b.stop()
        nid = self.add_notice(b, "1LH69TG1FGQ00D37-006B259CB0-6REALDRVIFB9P1M9V2RFRVK3C6")
        time.sleep(2)
        b.start()
        self.assertTrue(wait_for(lambda: "DMTP: 1 pending notices expired" in b.read_log(), 10),
                        self.quiet_log(b))
        self.assertNotIn(nid, b.ferryctl("pull", "list", "bob").stdout)


if __name__ == "__main__":
    unittest.main()
