"""bin/ferry-sendmail: sendmail-compatible injection into a running ferryd."""
import os
import subprocess
import unittest

from ferrytest import BIN, Ferry

SENDMAIL = os.path.join(BIN, "ferry-sendmail")


class Sendmail(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry().start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def run_sendmail(self, args, text):
        return subprocess.run([SENDMAIL, "-c", self.f.conf] + args, input=text.encode(), capture_output=True)

    def test_recipients_from_arguments(self):
        r = self.run_sendmail(["-f", "me@example.org", "kim@localhost"],
                              "Subject: via sendmail\n\n.leading dot\nbody\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        files = self.f.wait_mail("kim")
        self.assertTrue(files)
        data = open(files[0], "rb").read()
        self.assertTrue(data.startswith(b"Return-Path: <me@example.org>\n"), data)
        self.assertTrue(data.endswith(b"Subject: via sendmail\n\n.leading dot\nbody\n"), data)

    def test_dot_line_ends_input_unless_i(self):
        r = self.run_sendmail(["lee@localhost"], "Subject: dot\n\nbefore\n.\nafter\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("lee")[0], "rb").read()
        self.assertTrue(data.endswith(b"before\n"), data)
        r = self.run_sendmail(["-i", "mia@localhost"], "Subject: dot\n\nbefore\n.\nafter\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        data = open(self.f.wait_mail("mia")[0], "rb").read()
        self.assertTrue(data.endswith(b"before\n.\nafter\n"), data)

    def test_t_reads_headers_and_drops_bcc(self):
        r = self.run_sendmail(["-t"], 'To: "Doe, Ned" <ned@localhost>, olga@localhost\n'
                                      "Cc: team: pam@localhost;\nBcc: quinn@localhost\nSubject: t\n\nhi\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        for user in ("ned", "olga", "pam", "quinn"):
            files = self.f.wait_mail(user)
            self.assertTrue(files, user)
            self.assertNotIn(b"Bcc:", open(files[0], "rb").read())

    def test_refused_recipient_is_reported(self):
        r = self.run_sendmail(["someone@example.com"], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"554 5.7.1", r.stderr)

    def test_no_recipients_is_usage_error(self):
        r = self.run_sendmail([], "Subject: x\n\nx\n")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
