"""Delivered messages' files reused (queue/spool_spare.h), checked on the running
daemon relaying through a smart host (test_smtp_client's scripted server):

- once relayed, each message's file leaves queue/ and is kept in spare/, emptied
  (no delivered text stays on disk under a new name);
- the next messages are received into those very inodes: after a second round
  spare/ holds the same inodes again, none was created, and every message
  reached the smart host byte for byte, each its own;
- a message file someone holds open is not reused: its inode is not in spare/
  after the next message took a spare, and the reader still reads nothing else;
- a restart empties spare/."""
import os
import unittest

from ferrytest import Ferry, wait_for
from test_spool_format import send, sink


def body(i):
    return (f"From: a@client.example\r\nTo: b@remote.example\r\nSubject: spare {i}\r\n\r\n"
            f"message number {i}\r\n" + f"line of {i}\r\n" * (i + 1)).encode()


class SpoolSpare(unittest.TestCase):
    def setUp(self):
        self.sk = sink()
        self.addCleanup(self.sk.stop)
        self.f = Ferry(relay_networks="127.0.0.0/8",
                       extra=f"relayhost = [127.0.0.1]:{self.sk.port}\nrelayhost_tls = none\n")
        self.f.start()
        self.addCleanup(self.f.cleanup)
        self.spare = os.path.join(self.f.spool, "spare")

    def spares(self):
        """{inode: size} of spare/'s published files."""
        out = {}
        for n in os.listdir(self.spare):
            if not n.startswith("."):
                st = os.stat(os.path.join(self.spare, n))
                out[st.st_ino] = st.st_size
        return out

    def relay_round(self, first, count):
        before = len(self.sk.messages)
        for i in range(first, first + count):
            send(self.f, "a@client.example", ["b@remote.example"], body(i))
        self.assertTrue(wait_for(lambda: len(self.sk.messages) >= before + count, 20), self.f.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: self.f.queue_files() == [] or None, 10), self.f.queue_files())
        # Several sessions may relay at once: any order, but each message whole.
        got = self.sk.messages[before:]
        for i in range(first, first + count):
            self.assertEqual(sum(m.endswith(body(i) + b".\r\n") for m in got), 1, i)

    def test_files_are_reused(self):
        self.relay_round(0, 4)
        self.assertTrue(wait_for(lambda: len(self.spares()) == 4, 10), os.listdir(self.spare))
        first = self.spares()
        self.assertEqual(set(first.values()), {0})
        self.relay_round(4, 3)
        self.assertTrue(wait_for(lambda: len(self.spares()) == 4, 10), os.listdir(self.spare))
        self.assertEqual(self.spares(), first)      # the same inodes, all empty again

    def test_file_held_open_is_not_reused(self):
        self.relay_round(0, 1)
        self.assertTrue(wait_for(lambda: len(self.spares()) == 1, 10))
        (ino,) = self.spares()
        name = next(n for n in os.listdir(self.spare) if not n.startswith("."))
        with open(os.path.join(self.spare, name), "rb") as reader:
            self.relay_round(1, 1)
            self.assertTrue(wait_for(lambda: len(self.spares()) == 1, 10))
            self.assertNotIn(ino, self.spares())    # refused and unlinked; the new file came from a create
            self.assertEqual(os.fstat(reader.fileno()).st_nlink, 0)
            self.assertEqual(reader.read(), b"")
        self.assertIn("removed", self.f.read_log())

    def test_restart_empties_spare(self):
        self.relay_round(0, 2)
        self.assertTrue(wait_for(lambda: len(self.spares()) == 2, 10))
        self.f.stop()
        self.f.start()
        self.assertEqual(os.listdir(self.spare), [])


if __name__ == "__main__":
    unittest.main()
