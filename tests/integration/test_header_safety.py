"""The header fields Ferry writes stay Ferry's (security review #9, #10, #11):
a stranger's text inside Authentication-Results is quoted so it cannot end a
value, a message whose first line starts with white space does not continue
our Received: field, and forged Authentication-Results carrying our
authserv-id are removed in every spelling a reader would accept."""
import email
import email.policy
import unittest

from ferrytest import Ferry, SmtpLines


def deliver(f, user, message):
    c = SmtpLines(f.port)
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<someone@sender.example>")[0] == 250
    assert c.cmd(f"RCPT TO:<{user}@localhost>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(message.replace("\n", "\r\n").encode() + b".\r\n")
    code, text = c.reply()
    c.cmd("QUIT")
    c.close()
    assert code == 250, text
    files = f.wait_mail(user, 1)
    assert files, f.read_log()
    with open(files[0], "rb") as fh:
        return fh.read()


def fields(raw):
    """The header fields of raw as (name, unfolded value) pairs, in order."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [(k, " ".join(v.split())) for k, v in msg.items()], msg



class HeaderSafety(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry(extra="dkim_verify = yes\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def test_leading_white_space_does_not_join_our_received(self):
        raw = deliver(self.f, "ws", " X-Injected: evil\nSubject: s\n\nbody\n")
        hdrs, msg = fields(raw)
        received = [v for k, v in hdrs if k == "Received"]
        self.assertTrue(received)
        for v in received:
            self.assertNotIn("X-Injected", v)
        # the line is kept, as the first line of the body, after an empty line
        # (Maildir files have LF line ends)
        self.assertIn(b"\n\n X-Injected: evil\nSubject: s\n", raw)
        self.assertNotIn("Subject", [k for k, _ in hdrs])

    def test_forged_results_removed_in_every_spelling(self):
        forged = ("Authentication-Results : mx.example.test; dkim=pass\n"
                  "Authentication-Results: \"mx.example.test\"; spf=pass\n"
                  "authentication-results:\n (x) \"MX.EXAMPLE.TEST\" 1; dmarc=pass\n"
                  "Authentication-Results: other.example; dkim=pass\n"
                  "From: a@sender.example\nSubject: forged\n\nbody\n")
        raw = deliver(self.f, "forged", forged)
        hdrs, _ = fields(raw)
        ar = [v for k, v in hdrs if k.strip().lower() == "authentication-results"]
        ours = [v for v in ar if v.startswith("mx.example.test;")]
        self.assertEqual(len(ours), 1, ar)                 # the one Ferry wrote
        self.assertNotIn("dmarc=pass", " ".join(ar))
        self.assertNotIn("spf=pass", " ".join(ar))
        self.assertIn("other.example; dkim=pass", ar)      # someone else's stays
        self.assertIn("removed 3 Authentication-Results", self.f.read_log())

    def test_signature_text_is_quoted_in_results(self):
        sig = ("DKIM-Signature: v=1; a=rsa-sha256; d=sender.example; s=sel; h=from;\n"
               " bh=AAAA; b=AB\"; x=\\(y\n")
        raw = deliver(self.f, "bq", sig + "From: a@sender.example\nSubject: q\n\nbody\n")
        hdrs, _ = fields(raw)
        ours = [v for k, v in hdrs if k == "Authentication-Results" and v.startswith("mx.example.test;")]
        self.assertEqual(len(ours), 1, hdrs)
        self.assertIn('header.b="AB\\""', ours[0])
        self.assertNotIn('header.b="AB""', ours[0])


if __name__ == "__main__":
    unittest.main()
