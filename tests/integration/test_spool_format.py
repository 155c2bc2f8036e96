"""One file per queued message (queue/spool.h, lib/msgfile.h): the spool commits
queue/ID.msg holding the message, its envelope and a trailer, and no reader may
pass on more than the message. Checked from the outside on the running daemon:

- a message held in the queue (queue process stopped) is exactly one file, whose
  trailer names the envelope right after the message's octets;
- `ferryctl queue show` of it, for a message without a blank line (the header
  section runs to the message's end), prints no envelope text;
- relayed through a smart host (test_smtp_client's scripted server) with DATA
  and with BDAT, it receives the message byte for byte, nothing after it;
- delivered into a Maildir, the mailbox file is the message (LF line ends);
- a DSN returning a refused message carries the message and no envelope text;
- a deferred message's envelope update (ID.env written, ID.msg cut back to the
  message) happens under privilege separation too, where the queue user cuts a
  file the smtp user created (test_privsep runs the daemon as ferry/ferryq)."""
import os
import signal
import socket
import unittest

from envfile import split_msg
from ferrytest import Ferry, SmtpLines, wait_for
from test_smtp_client import FULL_EHLO, Script, Server

CLOSED_ADDR = "127.0.0.70"
MARK = b"FERRY-ENV"


def sink(chunking=False):
    """A smart host keeping each message's octets (DATA: dot-stuffed, with its
    final dot; BDAT: as sent); RCPT to reject@remote.example gets a 550."""
    return Server(Script(ehlo=FULL_EHLO + (["CHUNKING"] if chunking else []),
                         rcpt={"reject@remote.example": "550 5.1.1 no such user here"}))


def send(f, sender, rcpts, body):
    s = SmtpLines(f.port)
    s.cmd("EHLO client.example")
    assert s.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    for r in rcpts:
        code, lines = s.cmd(f"RCPT TO:<{r}>")
        assert code == 250, lines
    assert s.cmd("DATA")[0] == 354
    s.send(body + b".\r\n")
    code, lines = s.reply()
    assert code == 250, lines
    s.cmd("QUIT")
    return lines[0].split()[-1]


BODY = (b"From: a@client.example\r\nTo: b@remote.example\r\nSubject: one file\r\n\r\n"
        b"first line\r\n..a dot-stuffed line\r\nlast line\r\n")


class SpoolFormat(unittest.TestCase):
    def ferry(self, extra=""):
        f = Ferry(relay_networks="127.0.0.0/8", extra=extra)
        f.start()
        self.addCleanup(f.cleanup)
        return f

    def relay(self, chunking):
        sk = sink(chunking)
        self.addCleanup(sk.stop)
        f = self.ferry(f"relayhost = [127.0.0.1]:{sk.port}\nrelayhost_tls = none\n")
        qid = send(f, "a@client.example", ["b@remote.example"], BODY)
        self.assertTrue(wait_for(lambda: sk.messages, 20), f.read_log()[-3000:])
        got = sk.messages[0]
        # Ferry's own trace fields first, then the message exactly as sent
        # (on the wire again: dot-stuffed and ended by a dot with DATA).
        sent = BODY if not chunking else BODY.replace(b"\r\n..a", b"\r\n.a")
        self.assertTrue(got.endswith(sent + (b"" if chunking else b".\r\n")), got[-400:])
        self.assertEqual(b"BDAT" in sk.received, chunking)
        self.assertNotIn(MARK, got)
        self.assertIn(b"with ESMTP id " + qid.encode(), got)
        self.assertTrue(wait_for(lambda: f.queue_files() == [] or None, 10), f.queue_files())

    def test_relayed_with_data_is_the_message_only(self):
        self.relay(False)

    def test_relayed_with_bdat_is_the_message_only(self):
        self.relay(True)

    def test_queued_message_is_one_file_and_queue_show_stops_at_its_end(self):
        f = self.ferry()
        queue_pid = wait_for(lambda: f.child_by_role("queue"))
        self.assertTrue(queue_pid, f.read_log())
        os.kill(queue_pid, signal.SIGSTOP)           # nothing is delivered or rewritten meanwhile
        try:
            # No blank line: the header section runs to the message's end.
            qid = send(f, "a@client.example", ["dave@localhost"], b"Subject: no body at all\r\n")
            self.assertEqual(f.queue_files(), [qid + ".msg"])
            with open(os.path.join(f.spool, "queue", qid + ".msg"), "rb") as fh:
                data = fh.read()
            msg, env = split_msg(data)
            self.assertIsNotNone(env, data[-200:])
            self.assertTrue(env.startswith(b"FERRY-ENV 1\nid " + qid.encode() + b"\n"), env[:100])
            self.assertIn(b"\nsize %d\n" % len(msg), env)
            self.assertTrue(msg.endswith(b"Subject: no body at all\r\n"), msg)
            r = f.ferryctl("queue", "show", qid)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Subject: no body at all", r.stdout)
            self.assertNotIn("FERRY-ENV", r.stdout)
            self.assertNotIn("rcpt pending", r.stdout)
        finally:
            os.kill(queue_pid, signal.SIGCONT)
        files = f.wait_mail("dave")
        self.assertTrue(files, f.read_log()[-3000:])
        with open(files[0], "rb") as fh:
            delivered = fh.read()
        self.assertTrue(delivered.endswith(b"\nSubject: no body at all\n"), delivered)
        self.assertNotIn(MARK, delivered)

    def test_maildir_delivery_is_the_message_only(self):
        f = self.ferry()
        send(f, "a@client.example", ["erin@localhost"], BODY)
        files = f.wait_mail("erin")
        self.assertTrue(files, f.read_log()[-3000:])
        with open(files[0], "rb") as fh:
            delivered = fh.read()
        want = BODY.replace(b"\r\n..a", b"\r\n.a").replace(b"\r\n", b"\n")
        self.assertTrue(delivered.endswith(want), delivered)
        self.assertNotIn(MARK, delivered)

    def test_dsn_returns_the_message_only(self):
        sk = sink()
        self.addCleanup(sk.stop)
        f = self.ferry(f"relayhost = [127.0.0.1]:{sk.port}\nrelayhost_tls = none\n")
        send(f, "fran@localhost", ["reject@remote.example"], BODY)
        files = f.wait_mail("fran", timeout=20)
        self.assertTrue(files, f.read_log()[-3000:])
        with open(files[0], "rb") as fh:
            dsn = fh.read()
        self.assertIn(b"550 5.1.1 no such user here", dsn)
        self.assertIn(b"first line\n", dsn)         # the returned message
        self.assertNotIn(MARK, dsn)
        self.assertNotIn(b"rcpt pending", dsn)

    def test_envelope_update_cuts_the_file_back(self):
        # The smart host is a closed port: every attempt defers and rewrites
        # the envelope.
        closed = socket.socket()
        closed.bind((CLOSED_ADDR, 0))
        port = closed.getsockname()[1]
        closed.close()
        f = self.ferry(f"relayhost = [{CLOSED_ADDR}]:{port}\nrelayhost_tls = none\nretry_min = 1h\nretry_max = 2h\n")
        qid = send(f, "a@client.example", ["b@remote.example"], BODY)
        env = os.path.join(f.spool, "queue", qid + ".env")
        path = os.path.join(f.spool, "queue", qid + ".msg")

        def cut():
            if not os.path.exists(env):
                return None
            with open(path, "rb") as fh:
                data = fh.read()
            return data if split_msg(data)[1] is None else None     # format 1 now: the message alone
        data = wait_for(cut, 20)
        self.assertTrue(data, f.read_log()[-3000:])
        with open(env, "rb") as fh:
            self.assertIn(b"\nsize %d\n" % len(data), fh.read())
        self.assertNotIn("cannot update the envelope", f.read_log())


if __name__ == "__main__":
    unittest.main()
