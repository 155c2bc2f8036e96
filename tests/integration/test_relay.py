"""Relay control: the open-relay matrix (client network × recipient domain ×
address tricks) against the running daemon. The AUTH dimension is in test_auth.py."""
import unittest

from ferrytest import Ferry, SmtpLines

LOCAL = 250
DENY = 554

# (recipient, expected code for a stranger, expected code for a trusted network)
MATRIX = [
    ("alice@localhost", LOCAL, LOCAL),
    ("ALICE@LocalHost", LOCAL, LOCAL),
    ("bob@backup.test", LOCAL, LOCAL),                     # relay_domains: accepted from anyone
    ("carol@remote.example", DENY, LOCAL),                 # another domain: trusted networks only
    ("carol@localhost.remote.example", DENY, LOCAL),
    ("carol@[192.0.2.10]", DENY, LOCAL),                   # address literals are never local
    ("carol@[127.0.0.1]", DENY, LOCAL),
    ("carol@[IPv6:::1]", DENY, LOCAL),
    ("@localhost:carol@remote.example", DENY, LOCAL),      # source route: the final mailbox decides
    ("@remote.example:alice@localhost", LOCAL, LOCAL),
    ("carol%remote.example@localhost", DENY, DENY),        # percent hack
    ("remote.example!carol@localhost", DENY, DENY),        # bang path
    ('"carol@remote.example"@localhost', DENY, DENY),      # quoted @
    ('"carol%remote.example"@backup.test', DENY, DENY),
    ("carol%remote.example@remote.example", DENY, LOCAL),  # for a remote domain, its own business
]


class RelayMatrix(unittest.TestCase):
    def run_matrix(self, relay_networks, column):
        with Ferry(relay_networks=relay_networks, extra="relay_domains = backup.test") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO client.example")
            failures = []
            for rcpt, stranger, trusted in MATRIX:
                want = stranger if column == 0 else trusted
                s.cmd("RSET")
                self.assertEqual(s.cmd("MAIL FROM:<x@client.example>")[0], 250)
                code, lines = s.cmd(f"RCPT TO:<{rcpt}>")
                if code != want:
                    failures.append(f"<{rcpt}>: got {lines}, want {want}")
                elif code == DENY:
                    self.assertTrue(lines[0].startswith("554 5.7.1 "), lines)
            s.cmd("QUIT")
            self.assertEqual(failures, [])

    def test_stranger(self):
        self.run_matrix("192.0.2.1/32", 0)

    def test_trusted_network(self):
        self.run_matrix("127.0.0.0/8", 1)

    def test_syntax_tricks_are_syntax_errors(self):
        with Ferry() as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO client.example")
            s.cmd("MAIL FROM:<x@client.example>")
            for rcpt in ("carol@remote.example@localhost", "carol@remote.example,alice@localhost",
                         "carol", "<carol@remote.example>", "alice@localhost."):
                code, lines = s.cmd(f"RCPT TO:<{rcpt}>")
                self.assertEqual(code, 501, (rcpt, lines))

    def test_relayed_message_is_queued_for_a_trusted_client(self):
        with Ferry(relay_networks="127.0.0.0/8") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO client.example")
            s.cmd("MAIL FROM:<x@client.example>")
            self.assertEqual(s.cmd("RCPT TO:<carol@remote.example>")[0], 250)
            self.assertEqual(s.cmd("DATA")[0], 354)
            code, lines = s.cmd("Subject: out\r\n\r\nbody\r\n.")
            self.assertEqual(code, 250, lines)
            qid = lines[0].split()[-1]
            self.assertIn(f"{qid}.msg", f.queue_files())



class Submission(unittest.TestCase):
    def test_submission_requires_auth(self):
        with Ferry() as f:
            s = SmtpLines(f.sub_port)
            s.cmd("EHLO client.example")
            code, lines = s.cmd("MAIL FROM:<alice@localhost>")
            self.assertEqual(lines, ["530 5.7.0 Authentication required"])


if __name__ == "__main__":
    unittest.main()
