"""DMTP classification when a list's Berkeley DB cannot be read (issue 14, item 1):
a lookup error is a temporary failure, never "on no list". Before, the peer went
unclassified: a denied peer could send DMTP notices, an allowed one was made to
pull. Now MAIL from a peer whose class cannot be known gets 451 4.3.0 (tried
again at each MAIL, so the session recovers once the list is readable), a RCPT
whose user's sender lists cannot be read gets 451 4.3.0, both logged. An
authenticated client never needs the lists.

The list is made unreadable by mode 000 (the smtp process runs as nobody) or
replaced by junk (not a database). Peers: 127.0.0.30 (denied), 127.0.0.31
(allowed), 127.0.0.32 (on no list)."""
import base64
import os
import subprocess
import unittest

from ferrytest import FERRYCTL, Ferry, wait_for
from test_pull_receive import PULL_CONF, Peer

DENIED = "127.0.0.30"
ALLOWED = "127.0.0.31"
STRANGER = "127.0.0.32"


class Unreadable(unittest.TestCase):
    def ferry(self):
        f = Ferry(extra=PULL_CONF)
        self.addCleanup(f.cleanup)
        r = subprocess.run([FERRYCTL, "-c", f.conf, "user", "add", "dave"], input="dave-pw\n",
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        f.start()
        for args in (("deny", DENIED), ("allow", ALLOWED), ("deny", "dave", "pest@far.example")):
            r = f.ferryctl("pull", *args)
            self.assertEqual(r.returncode, 0, r.stderr)
        f.stop()
        return f

    def db(self, f, name):
        return os.path.join(f.dir, "db", name)

    def mail(self, f, source, sender="a@far.example", dmtp=True, auth=False):
        """(greeting code, MAIL reply) from source; the session is left open."""
        c = Peer(f.port, source)
        self.addCleanup(c.close)
        c.cmd("EHLO smta.example")
        if auth:
            token = base64.b64encode(b"\0dave\0dave-pw").decode()
            self.assertEqual(c.cmd("AUTH PLAIN " + token)[0], 235)
        reply = c.cmd("MAIL FROM:<%s>%s" % (sender, " DMTP" if dmtp else ""))
        return c, reply

    def test_peer_list_unreadable_defers_mail_then_recovers(self):
        f = self.ferry()
        path = self.db(f, "pull_peers.db")
        mode = os.stat(path).st_mode & 0o7777
        os.chmod(path, 0)
        f.start()
        self.assertIn("classification fails (451 4.3.0) until it can be opened", f.read_log())
        for source in (DENIED, ALLOWED, STRANGER):
            c, (code, lines) = self.mail(f, source)
            self.assertEqual(c.greeting[0], 220)        # greeted: GTML does not need the class
            self.assertEqual(code, 451, lines)
            self.assertEqual(lines[0], "451 4.3.0 cannot classify your host now (local database error), "
                                       "try again later")
            self.assertTrue(wait_for(lambda: f"cannot read the DMTP peer list to classify [{source}]"
                                     in f.read_log(), 5), f.read_log()[-2000:])
        # a temporary refusal: not counted as the client's error, MAIL may be tried again
        self.assertEqual(c.cmd("MAIL FROM:<a@far.example>")[0], 451)
        # an authenticated client does not depend on the lists
        a, (code, lines) = self.mail(f, DENIED, sender="dave@example.test", auth=True)
        self.assertEqual(code, 250, lines)
        # readable again: the open session's next MAIL classifies it (denied), and a
        # new session from the allowed peer is allowed (no MSID asked of it)
        d, (code, _) = self.mail(f, DENIED)
        self.assertEqual(code, 451)
        os.chmod(path, mode)
        # polled slowly: each 451 counts toward smtp_junk_command_limit (100), and the
        # lists are opened again at most every 5 s
        self.assertTrue(wait_for(lambda: d.cmd("MAIL FROM:<a@far.example> DMTP")[0] == 550, 15, 0.5),
                        f.read_log()[-2000:])
        self.assertIn("the lists could be read again", f.read_log())
        c = Peer(f.port, ALLOWED)
        self.addCleanup(c.close)
        code, lines = c.cmd("EHLO smta.example")
        self.assertNotIn("250-MSID", lines)
        self.assertEqual(c.cmd("MAIL FROM:<a@far.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<dave@example.test>")[0], 250)

    def test_corrupt_peer_list_defers_mail(self):
        f = self.ferry()
        with open(self.db(f, "pull_peers.db"), "wb") as fh:
            fh.write(b"not a Berkeley DB file " * 400)
        f.start()
        for source in (DENIED, STRANGER):
            c, (code, lines) = self.mail(f, source, dmtp=False)
            self.assertEqual(code, 451, lines)
            self.assertIn("4.3.0 cannot classify your host now", lines[0])

    def test_sender_list_unreadable_defers_rcpt(self):
        f = self.ferry()
        path = self.db(f, "pull_users.db")
        os.chmod(path, 0)
        f.start()
        # the peer list reads fine: the stranger is unclassified, MAIL accepted
        c, (code, _) = self.mail(f, STRANGER, sender="pest@far.example")
        self.assertEqual(code, 250)
        # dave's own list (which denies this sender) cannot be read: deferred, not
        # taken for "no entry" (which would give pest a notice in dave's mailbox)
        code, lines = c.cmd("RCPT TO:<dave@example.test>")
        self.assertEqual(code, 451, lines)
        self.assertEqual(lines[0], "451 4.3.0 cannot read the recipient's sender lists now (local database "
                                   "error), try again later")
        self.assertTrue(wait_for(lambda: "cannot read the DMTP sender list of dave; RCPT deferred"
                                 in f.read_log(), 5), f.read_log()[-2000:])
        self.assertEqual(f.ferryctl("pull", "list", "dave").stdout.strip(), "")

    def test_correspondents_unreadable_defers_rcpt(self):
        f = self.ferry()
        os.chmod(self.db(f, "pull_correspondents.db"), 0)
        f.start()
        c, (code, _) = self.mail(f, STRANGER, sender="pal@far.example")
        self.assertEqual(code, 250)
        code, lines = c.cmd("RCPT TO:<dave@example.test>")
        self.assertEqual(code, 451, lines)
        self.assertTrue(wait_for(lambda: "cannot read the DMTP correspondents of dave; RCPT deferred"
                                 in f.read_log(), 5), f.read_log()[-2000:])


if __name__ == "__main__":
    unittest.main()
