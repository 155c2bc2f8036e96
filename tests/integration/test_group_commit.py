"""The group commit runs its fsyncs off the smtp process's event loop (issue 16,
queue/spool_flusher.h), and the promise is unchanged: a client gets 250 only
once its message, envelope and directory entries are on stable storage; when an
fsync fails it gets 452 and nothing is queued or lost.

ferryd runs with tests/shim/fsync_shim.so preloaded, which lets the test hold
every fsync of a file in the spool's incoming/ (a slow disk, as long as the test
likes) or make it fail with ENOSPC (a full disk found at fsync time, which a
small tmpfs cannot produce: tmpfs fsync never fails). Clients connect from
127.0.0.60-.62."""
import os
import re
import socket
import unittest

from ferrytest import ROOT, Ferry, SmtpLines, wait_for

SHIM = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "shim", "fsync_shim.so")
REMOTE = "bob@remote.invalid"      # no remote delivery here: such mail stays queued (4.4.3)


class Client(SmtpLines):
    """SmtpLines from a chosen loopback source address."""

    def __init__(self, port, src, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(src, 0))
        self.buf = b""
        self.greeting = self.reply()

    def send_message(self, n):
        """A whole transaction up to and including the end-of-data dot; the
        final reply is left unread."""
        for c in ("EHLO c.example", "MAIL FROM:<a@example.org>", f"RCPT TO:<{REMOTE}>"):
            code, lines = self.cmd(c)
            assert code == 250, lines
        code, lines = self.cmd("DATA")
        assert code == 354, lines
        self.send(f"Subject: group commit {n}\r\n\r\n" + "body line\r\n" * 200 + ".\r\n")

    def no_reply_yet(self, seconds=1.5):
        """True when nothing has arrived within seconds (the server owes a reply)."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(30)
        self.buf += data
        return False


class GroupCommit(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(SHIM):
            self.fail(f"{SHIM} is missing: run make")
        self.f = Ferry(relay_networks="127.0.0.60/30", extra="retry_min = 1h\nretry_max = 2h\n")
        self.flags = self.f.spool      # the shim reads its flag files here (ferryd may stat it)
        saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "FERRY_FSYNC_SHIM_DIR")}
        os.environ["LD_PRELOAD"] = SHIM
        os.environ["FERRY_FSYNC_SHIM_DIR"] = self.flags
        try:
            self.f.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def tearDown(self):
        for name in ("fsync-hold", "fsync-fail"):
            self.flag(name, False)
        self.f.stop()
        self.f.cleanup()

    def flag(self, name, on):
        path = os.path.join(self.flags, name)
        if on:
            open(path, "w").close()
        elif os.path.exists(path):
            os.unlink(path)

    def queued(self):
        return sorted(x[:-4] for x in self.f.queue_files() if x.endswith(".msg"))

    def incoming(self):
        return os.listdir(os.path.join(self.f.spool, "incoming"))

    def test_250_only_after_the_batch_is_durable_and_the_loop_goes_on(self):
        self.flag("fsync-hold", True)
        a = Client(self.f.port, "127.0.0.60")
        a.send_message(1)
        self.assertTrue(wait_for(lambda: "fsync-shim: holding" in self.f.read_log(), 30),
                        "the commit's fsync was never reached")
        # The event loop is not waiting for that fsync: a new client is greeted
        # and served, and its own message forms the next batch.
        b = Client(self.f.port, "127.0.0.61")
        self.assertTrue(b.greeting[0] == 220, b.greeting)
        self.assertEqual(b.cmd("EHLO d.example")[0], 250)
        b.send_message(2)
        self.assertTrue(wait_for(lambda: len(set(re.findall(r"fsync-shim: holding (\S+)\.(?:msg|env)",
                                                            self.f.read_log()))) >= 2, 30),
                        "the second message's commit did not start while the first was held")
        # Neither may hear 250 while its files are not on disk, and neither is
        # in queue/ yet: names go there only after the data is durable.
        self.assertTrue(a.no_reply_yet())
        self.assertTrue(b.no_reply_yet(0.2))
        self.assertEqual(self.queued(), [])
        self.flag("fsync-hold", False)
        ids = []
        for c in (a, b):
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            ids.append(re.search(r"queued as (\S+)", lines[0]).group(1))
            self.assertEqual(c.cmd("QUIT")[0], 221)
            c.sock.close()
        self.assertEqual(self.queued(), sorted(ids))
        for qid in ids:
            self.assertTrue(os.path.exists(os.path.join(self.f.spool, "queue", qid + ".msg")))
        self.assertEqual(self.incoming(), [])
        self.assertIn("fsync-shim: released", self.f.read_log())

    def test_fsync_failure_gives_452_and_loses_nothing(self):
        kept = []
        for n in range(2):
            c = Client(self.f.port, "127.0.0.60")
            c.send_message(n)
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            kept.append(re.search(r"queued as (\S+)", lines[0]).group(1))
            c.cmd("QUIT")
            c.sock.close()
        self.assertEqual(self.queued(), sorted(kept))
        self.flag("fsync-fail", True)
        c = Client(self.f.port, "127.0.0.61")
        c.send_message(2)
        code, lines = c.reply()
        self.assertEqual(code, 452, lines)
        self.assertTrue(lines[0].startswith("452 4.3.1"), lines)
        self.assertIn("fsync-shim: failing", self.f.read_log())
        self.assertIn("commit failed", self.f.read_log())
        # The session goes on, what was accepted before is still queued, and the
        # refused message left nothing behind.
        self.assertEqual(c.cmd("RSET")[0], 250)
        self.assertEqual(self.queued(), sorted(kept))
        self.assertEqual(self.incoming(), [])
        self.flag("fsync-fail", False)
        c.send_message(3)
        code, lines = c.reply()
        self.assertEqual(code, 250, lines)
        self.assertEqual(len(self.queued()), 3)
        self.assertIsNone(self.f.proc.poll())
        c.sock.close()

    def test_client_gone_during_the_commit(self):
        """A client that hangs up while its batch is on a flusher thread: the
        session is freed only once the batch is settled, and the message is kept
        (never lost; the client may send it again: at-least-once)."""
        self.flag("fsync-hold", True)
        a = Client(self.f.port, "127.0.0.62")
        a.send_message(1)
        self.assertTrue(wait_for(lambda: "fsync-shim: holding" in self.f.read_log(), 30))
        a.sock.close()
        # The smtp process sees the hang-up while the fsync is still held.
        self.assertTrue(wait_for(lambda: "client went away while its message is being committed" in
                                 self.f.read_log(), 30), self.f.read_log()[-2000:])
        self.assertEqual(self.queued(), [])
        self.flag("fsync-hold", False)
        self.assertTrue(wait_for(lambda: len(self.queued()) == 1, 30))
        self.assertTrue(wait_for(lambda: re.search(r"session \S+ end=\S+ client=\[127\.0\.0\.62\].*messages=1",
                                                   self.f.read_log()), 30), self.f.read_log()[-2000:])
        # Still serving.
        c = Client(self.f.port, "127.0.0.60")
        c.send_message(2)
        self.assertEqual(c.reply()[0], 250)
        c.sock.close()
        self.assertEqual(len(self.queued()), 2)
        self.assertIsNone(self.f.proc.poll())


if __name__ == "__main__":
    unittest.main()
