"""Delivery workers (queue/delivery_pool.h): local deliveries run in worker
processes, so a slow pipe command holds up neither remote delivery, nor another
local delivery, nor the queue's control socket; a worker killed mid-delivery
leaves its recipient deferred and delivered later; a worker past its time limit
is killed and its recipient deferred."""
import os
import re
import signal
import subprocess
import smtplib
import sys
import time
import unittest

from ferrytest import FERRYCTL, Ferry, wait_for


def send(port, rcpts, body="Subject: t\r\n\r\nhello\r\n", sender="s@example.org"):
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail(sender, rcpts, body)


def read(path):
    with open(path) as f:
        return f.read()


def worker_of(pid):
    """The delivery worker running pid: its nearest ancestor that is a ferryd."""
    while pid > 1:
        try:
            if read(f"/proc/{pid}/comm").strip() == "ferryd":
                return pid
            pid = int(read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
    return None


def gone(pid):
    """The process has exited (reaped, or a zombie); it may vanish while we look."""
    try:
        return "Z" in read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()[0]
    except OSError:
        return True


def kill_group(pid_file):
    """The pipe command runs in its own process group: end it, sleep and all."""
    try:
        os.killpg(int(read(pid_file)), signal.SIGKILL)
    except (OSError, ValueError):
        pass


class WorkersTest(unittest.TestCase):
    def setUp(self):
        f = self.f = Ferry()
        self.pub = os.path.join(f.dir, "pub")       # writable by the dropped queue user
        os.mkdir(self.pub)
        os.chmod(self.pub, 0o777)
        # The first run of slow.sh sleeps 60 s; once PUB/fast exists it delivers.
        script = os.path.join(f.dir, "slow.sh")
        with open(script, "w") as fh:
            fh.write(f"echo $$ > {self.pub}/$1.pid\n"
                     f"if [ -e {self.pub}/fast ]; then cat > {self.pub}/$1.out; exit 0; fi\n"
                     "sleep 60\n"
                     f"cat > {self.pub}/$1.out\n")
        aliases = os.path.join(f.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write(f'slow: "|/bin/sh {script} slow"\nkilled: "|/bin/sh {script} killed"\n')
        with open(f.conf, "a") as fh:
            fh.write(f"alias_file = {aliases}\n")
        f.start()

    def tearDown(self):
        for name in ("slow", "killed"):
            kill_group(os.path.join(self.pub, name + ".pid"))
        self.f.cleanup()

    def test_slow_pipe_holds_up_nothing_else(self):
        f = self.f
        send(f.port, ["slow@example.test"], "Subject: slow\r\n\r\nx\r\n")
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(self.pub, "slow.pid")), 10))
        timings = {}
        # A remote delivery: injected, announced through the queue's control
        # socket (ferryctl queue flush), tried and deferred (the resolver answers
        # SERVFAIL): the queue process handled it.
        t0 = time.monotonic()
        qid = f.inject("s@example.org", ["r@remote.example"], "Subject: remote\r\n\r\nx\r\n")
        self.assertTrue(wait_for(lambda: re.search(qid + r": to=<r@remote\.example> status=deferred",
                                                   f.read_log()), 10))
        timings["remote"] = time.monotonic() - t0
        # A second local delivery, into a Maildir.
        t0 = time.monotonic()
        send(f.port, ["bob@localhost"], "Subject: second\r\n\r\nx\r\n")
        self.assertTrue(f.wait_mail("bob", timeout=10))
        timings["maildir"] = time.monotonic() - t0
        # The queue listing.
        t0 = time.monotonic()
        r = f.ferryctl("queue", "list")
        timings["queue list"] = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("slow@example.test", r.stdout)
        # All while the command still runs: its recipient has no result yet.
        self.assertNotIn("to=<slow@example.test>", f.read_log())
        print("\n  measured while a pipe sleeps: " +
              ", ".join("%s %.3f s" % kv for kv in timings.items()), file=sys.stderr)
        # A generous bound: before delivery workers each waited for the command (60 s).
        for what, secs in timings.items():
            self.assertLess(secs, 5.0, what)

    def test_killed_worker_defers_then_delivers(self):
        f = self.f
        send(f.port, ["killed@example.test"], "Subject: killme\r\n\r\nbody\r\n")
        pid_file = os.path.join(self.pub, "killed.pid")
        self.assertTrue(wait_for(lambda: os.path.exists(pid_file) and read(pid_file).strip(), 10))
        worker = worker_of(int(read(pid_file)))
        self.assertIsNotNone(worker)
        self.assertNotIn(worker, [f.proc.pid, f.child_by_role("queue"), f.child_by_role("smtp")])
        os.kill(worker, signal.SIGKILL)
        m = wait_for(lambda: re.search(r"(\w+): to=<killed@example\.test> status=deferred attempts=1 "
                                       r"\(4\.3\.0 delivery agent died\)", f.read_log()), 10)
        self.assertTrue(m)
        qid = m.group(1)
        self.assertIn(qid + ".msg", f.queue_files())        # still queued: not lost
        kill_group(pid_file)
        # The next attempt (asked for now rather than after the back-off) delivers.
        open(os.path.join(self.pub, "fast"), "w").close()
        r = f.ferryctl("queue", "flush", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = os.path.join(self.pub, "killed.out")
        self.assertTrue(wait_for(lambda: os.path.exists(out) and "Subject: killme" in read(out), 10))
        self.assertTrue(wait_for(lambda: qid + ".msg" not in f.queue_files(), 10))
        self.assertRegex(f.read_log(), qid + r": to=<killed@example\.test> status=sent attempts=2")

    def test_stop_does_not_wait_for_ever_on_a_worker(self):
        # Seen once: the queue process blocked in waitpid() on an idle worker that
        # had not died of its SIGTERM (a SIGTERM sent right after fork() went to
        # the handler the worker inherited from the queue's event loop, and was
        # lost: lib/proc_fork.h), so ferryd never stopped. A stopped worker is the
        # same to its parent: it neither dies of SIGTERM nor reads its channel's end.
        f = self.f
        open(os.path.join(self.pub, "fast"), "w").close()
        send(f.port, ["slow@example.test"])
        out = os.path.join(self.pub, "slow.out")
        self.assertTrue(wait_for(lambda: os.path.exists(out), 10), f.read_log())
        pids = re.findall(r"delivery worker started, pid (\d+)", f.read_log())
        self.assertTrue(pids)
        worker = int(pids[-1])
        self.assertFalse(gone(worker))
        os.kill(worker, signal.SIGSTOP)
        try:
            f.stop()
            self.assertEqual(f.proc.returncode, 0, f.read_log())    # stopped by itself, not killed by the test
            self.assertTrue(gone(worker), "the worker outlived ferryd")
            self.assertIn(f"delivery worker {worker} did not stop within", f.read_log())
        finally:
            try:
                os.kill(worker, signal.SIGKILL)
            except OSError:
                pass


class KilledWorkerLeavesTheDatabaseAlone(unittest.TestCase):
    def test_auth_still_works_after_a_worker_is_killed(self):
        # Review: a worker killed while inside the Berkeley DB environment made the
        # next opener (ferryctl here) run recovery, and every handle the smtp
        # process held (AUTH's users.db) then failed until restart. Workers open
        # users.db only for a lookup (local_recipients = known asks it), never
        # while they wait on a delivery.
        import smtplib
        f = Ferry(local_recipients="known", extra="auth_plaintext_loopback = yes\n")
        pub = os.path.join(f.dir, "pub")
        os.mkdir(pub)
        os.chmod(pub, 0o777)
        aliases = os.path.join(f.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write(f'hang: "|echo $$ > {pub}/hang.pid; sleep 60"\n')
        with open(f.conf, "a") as fh:
            fh.write(f"alias_file = {aliases}\n")
        r = subprocess.run([FERRYCTL, "-c", f.conf, "user", "add", "dora"], input="pw-dora\n", capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        f.start()
        try:
            send(f.port, ["dora@example.test", "hang@example.test"], "Subject: x\r\n\r\nbody\r\n")
            pid_file = os.path.join(pub, "hang.pid")
            self.assertTrue(wait_for(lambda: os.path.exists(pid_file) and read(pid_file).strip(), 10))
            worker = worker_of(int(read(pid_file)))
            self.assertIsNotNone(worker)
            os.kill(worker, signal.SIGKILL)
            self.assertTrue(wait_for(lambda: "delivery agent died" in f.read_log(), 10))
            r = f.ferryctl("user", "list")          # opens the environment after the death
            self.assertEqual(r.returncode, 0, r.stderr)
            c = smtplib.SMTP("127.0.0.1", f.sub_port, timeout=10)
            c.ehlo("client.example")
            c.login("dora", "pw-dora")
            c.quit()
        finally:
            kill_group(os.path.join(pub, "hang.pid"))
            f.cleanup()


class TimeLimitTest(unittest.TestCase):
    def test_worker_past_its_limit_is_killed_and_the_recipient_deferred(self):
        # pipe_timeout 1 s, lmtp_timeout 1 s: the job's limit is 10 + 1 + 4 = 15 s.
        # A stopped worker cannot kill its own command; the queue kills the worker.
        f = Ferry(extra="pipe_timeout = 1s\nlmtp_timeout = 1s\n")
        pub = os.path.join(f.dir, "pub")
        os.mkdir(pub)
        os.chmod(pub, 0o777)
        aliases = os.path.join(f.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write(f'stuck: "|echo $$ > {pub}/stuck.pid; sleep 30"\n')
        with open(f.conf, "a") as fh:
            fh.write(f"alias_file = {aliases}\n")
        f.start()
        pid_file = os.path.join(pub, "stuck.pid")
        try:
            send(f.port, ["stuck@example.test"])
            self.assertTrue(wait_for(lambda: os.path.exists(pid_file) and read(pid_file).strip(), 10))
            worker = worker_of(int(read(pid_file)))
            self.assertIsNotNone(worker)
            os.kill(worker, signal.SIGSTOP)
            m = wait_for(lambda: re.search(r"(\w+): to=<stuck@example\.test> status=deferred attempts=1 "
                                           r"\(4\.4\.7 delivery agent timed out and was killed\)",
                                           f.read_log()), 30)
            self.assertTrue(m)
            self.assertIn(m.group(1) + ".msg", f.queue_files())
            self.assertTrue(wait_for(lambda: gone(worker), 5))
        finally:
            kill_group(pid_file)
            f.cleanup()


if __name__ == "__main__":
    unittest.main()
