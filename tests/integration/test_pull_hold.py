"""The DMTP hold (issue 14, item 6) off the queue process's event loop: the copy
into spool/held/ and its fsyncs run in a forked child under held/.lock, and the
MSID goes out only when the copy is durable. The test holds held/.lock itself to
stop the child at a known point:

- the queue loop still answers a control request while the hold waits, and no
  MSID goes out before the copy exists (before: the copy ran inside the loop and
  ignored the lock, so the expiry sweep's stray cleanup could remove a half-made
  copy);
- a session that breaks while its hold is being written withdraws the copy;
- kill -9 of the whole daemon while the hold is written, or between the MSID and
  its reply: the message is still queued or held (here: still queued, and held
  once the MSID was out), never lost; after the restart it is held and offered
  again, and the offered copy serves GTML byte-identical.

And the end of a hold (item 7): an expired held message is removed by the
sweep, silently by default; with pull_notify_unpulled = yes its sender gets a
DSN naming exactly the recipients that never pulled.

Addresses: A 127.0.0.6, b.test's MX 127.0.0.7 (test_pull_send's)."""
import fcntl
import os
import signal
import threading
import time
import unittest

from ferrytest import wait_for
from test_pull_send import B_ADDR, MSG, GtmlClient, PullBase

WRITING = "writing the held copy of "


class HoldOffLoop(PullBase):
    def lock_held(self, f):
        """Take held/.lock as the test; returns a function that lets it go."""
        fd = os.open(os.path.join(f.spool, "held", ".lock"), os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        state = {"held": True}

        def release():
            if state["held"]:
                state["held"] = False
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self.addCleanup(release)
        return release

    def queued(self, f, qid):
        return qid + ".msg" in f.queue_files()

    def held_bytes(self, f, hid):
        with open(os.path.join(f.spool, "held", hid + ".msg"), "rb") as fh:
            return fh.read()

    def test_loop_answers_and_msid_waits_while_the_hold_is_written(self):
        r = self.rmta()
        f = self.sender()
        release = self.lock_held(f)
        body = MSG.format(to="bob@b.test", subj="locked")
        qid = f.inject("alice@a.test", ["bob@b.test"], body)
        self.assertTrue(wait_for(lambda: WRITING + qid in f.read_log(), 15), f.read_log()[-3000:])
        # The queue process's loop answers (a flush is its own control verb) ...
        out = f.ferryctl("queue", "flush")
        self.assertEqual(out.returncode, 0, out.stderr)
        # ... and nothing was offered: the copy is not written yet.
        self.assertEqual(r.msid_lines(), [])
        self.assertEqual(self.held(f), [])
        self.assertTrue(self.queued(f, qid))
        release()
        self.assertTrue(wait_for(lambda: r.msid_lines(), 15), f.read_log()[-3000:])
        hid = wait_for(lambda: self.held(f), 5)
        self.assertTrue(hid, f.read_log()[-3000:])
        self.assertTrue(r.msid_lines()[0].split(" ")[1].startswith(hid[0] + "-"))
        self.assertEqual(self.held_bytes(f, hid[0]), body.encode())
        self.assertTrue(wait_for(lambda: not self.queued(f, qid), 10), f.read_log()[-3000:])

    def test_session_lost_during_the_hold_withdraws_the_copy(self):
        r = self.rmta(drop_after_rcpt=True)
        f = self.sender()
        release = self.lock_held(f)
        qid = f.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="dropped"))
        self.assertTrue(wait_for(lambda: WRITING + qid in f.read_log(), 15), f.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: f"{qid}: to=<bob@b.test> status=deferred" in f.read_log(), 10),
                        f.read_log()[-3000:])
        release()
        self.assertTrue(wait_for(lambda: "held copy withdrawn: the session ended before the MSID went out"
                                 in f.read_log(), 10), f.read_log()[-3000:])
        self.assertEqual(self.held(f), [])
        self.assertEqual([n for n in f.queue_files("held") if n.endswith(".msg")], [])
        self.assertEqual(r.msid_lines(), [])
        self.assertTrue(self.queued(f, qid))        # deferred, still to do

    def test_kill9_while_the_hold_is_written_loses_nothing(self):
        r = self.rmta()
        f = self.sender()
        release = self.lock_held(f)
        body = MSG.format(to="bob@b.test", subj="crash-in-hold")
        qid = f.inject("alice@a.test", ["bob@b.test"], body)
        self.assertTrue(wait_for(lambda: WRITING + qid in f.read_log(), 15), f.read_log()[-3000:])
        f.kill9_all()
        self.assertTrue(self.queued(f, qid))        # still queued: nothing was offered
        self.assertEqual(r.msid_lines(), [])
        release()                                   # the orphaned writer may finish now
        f.start()
        f.ferryctl("queue", "flush")
        self.assertTrue(wait_for(lambda: r.msid_lines(), 20), f.read_log()[-3000:])
        msid = r.msid_lines()[-1].split(" ")[1]
        hid = msid.split("-")[0]
        self.assertTrue(wait_for(lambda: hid in self.held(f), 5), f.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: not self.queued(f, qid), 10), f.read_log()[-3000:])
        self.assert_gtml_serves(f, msid, body)

    def test_kill9_of_the_queue_process_in_the_hold_loses_nothing(self):
        """Only the queue process dies (the parent restarts it); its writer child,
        orphaned, finishes its copy once the lock is free: that copy was offered
        to nobody, and the restarted queue process holds the message again."""
        r = self.rmta()
        f = self.sender()
        release = self.lock_held(f)
        body = MSG.format(to="bob@b.test", subj="queue-killed")
        qid = f.inject("alice@a.test", ["bob@b.test"], body)
        self.assertTrue(wait_for(lambda: WRITING + qid in f.read_log(), 15), f.read_log()[-3000:])
        pid = f.child_by_role("queue")
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: f.child_by_role("queue") not in (None, pid), 20), f.read_log()[-3000:])
        self.assertTrue(self.queued(f, qid))
        self.assertEqual(r.msid_lines(), [])
        # The orphaned writer still holds the spool's queue lock (it shares the
        # dead process's descriptor), so the new queue process starts only once
        # the writer is done: the two never work on the spool at once.
        release()
        self.assertTrue(wait_for(lambda: f.read_log().count("queue process ready") >= 2, 20), f.read_log()[-3000:])
        f.ferryctl("queue", "flush")
        self.assertTrue(wait_for(lambda: r.msid_lines(), 20), f.read_log()[-3000:])
        msid = r.msid_lines()[-1].split(" ")[1]
        self.assertTrue(wait_for(lambda: not self.queued(f, qid), 10), f.read_log()[-3000:])
        self.assertIn(msid.split("-")[0], self.held(f))
        self.assert_gtml_serves(f, msid, body)

    def test_kill9_between_msid_and_its_reply_loses_nothing(self):
        gate = threading.Event()
        self.addCleanup(gate.set)
        r = self.rmta(msid_gate=gate)
        f = self.sender()
        body = MSG.format(to="bob@b.test", subj="crash-at-msid")
        qid = f.inject("alice@a.test", ["bob@b.test"], body)
        self.assertTrue(wait_for(lambda: r.msid_lines(), 15), f.read_log()[-3000:])
        first = r.msid_lines()[0].split(" ")[1]
        f.kill9_all()
        # The copy was durable before the MSID went out; the original is still queued.
        hid = first.split("-")[0]
        self.assertEqual(self.held(f), [hid])
        self.assertEqual(self.held_bytes(f, hid), body.encode())
        self.assertTrue(self.queued(f, qid))
        gate.set()
        f.start()
        f.ferryctl("queue", "flush")
        self.assertTrue(wait_for(lambda: len(r.msid_lines()) >= 2, 20), f.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: not self.queued(f, qid), 10), f.read_log()[-3000:])
        # Both msids are pullable until expiry (the first may have been taken).
        self.assert_gtml_serves(f, first, body)
        self.assert_gtml_serves(f, r.msid_lines()[-1].split(" ")[1], body)

    def assert_gtml_serves(self, f, msid, body):
        g = GtmlClient(B_ADDR)
        g.cmd("EHLO mx.b.test")
        code, got = g.gtml(msid, "bob@b.test")
        g.cmd("QUIT")
        g.close()
        self.assertEqual(code, 250, f.read_log()[-3000:])
        self.assertEqual(got, body.encode())


class HoldExpiry(PullBase):
    def expire(self, notify):
        r = self.rmta()
        f = self.sender("pull_expiry = 4s\n" + ("pull_notify_unpulled = yes\n" if notify else ""))
        qid, hid, msid = self.send_held(f, r, rcpts=("bob@b.test", "carol@b.test"), subj="expiring")
        g = GtmlClient(B_ADDR)                      # bob pulls; carol never does
        g.cmd("EHLO mx.b.test")
        self.assertEqual(g.gtml(msid, "bob@b.test")[0], 250, f.read_log()[-2000:])
        g.cmd("QUIT")
        g.close()
        self.assertTrue(wait_for(lambda: "<bob@b.test> pulled by" in f.read_log(), 5), f.read_log()[-2000:])
        time.sleep(4.5)                             # past the hold's end
        f.stop()
        f.start()                                   # the queue process sweeps held/ at start
        self.assertTrue(wait_for(lambda: self.held(f) == [], 10), f.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: "held message expired" in f.read_log(), 5))
        self.assertIn("not pulled by 1 of 2 recipients", f.read_log())
        self.assertEqual([n for n in f.queue_files("held") if not n.startswith(".")], [])
        return f, hid

    def test_expired_hold_removed_silently_by_default(self):
        f, _ = self.expire(False)
        time.sleep(1)
        self.assertEqual(f.mailbox_files("alice"), [])
        self.assertNotIn("never pulled", f.read_log())

    def test_expired_hold_tells_the_sender_who_never_pulled(self):
        f, hid = self.expire(True)
        files = f.wait_mail("alice", 1, 15)
        self.assertTrue(files, f.read_log()[-3000:])
        with open(files[0], encoding="utf-8", errors="replace") as fh:
            dsn = fh.read()
        self.assertIn("Final-Recipient: rfc822; carol@b.test", dsn)
        self.assertNotIn("bob@b.test;", dsn.split("Final-Recipient", 1)[1])
        self.assertIn("Action: failed", dsn)
        self.assertIn("Status: 5.4.7", dsn)
        self.assertIn("did not fetch it before the hold expired", dsn)
        self.assertIn("Subject: expiring", dsn)         # the original comes back with it
        self.assertRegex(f.read_log(), hid + r": sender <alice@a.test> told that 1 recipient never pulled")


if __name__ == "__main__":
    unittest.main()
