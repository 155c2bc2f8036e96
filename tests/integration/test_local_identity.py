"""Local submissions (ferry-sendmail) are held to the sender rules of the SMTP
listeners (security review #7): an account that is not trusted may set a
sender it does not own, but then it is named in an X-Authentication-Warning and
nothing is DKIM-signed; root, the daemon's user and `trusted_users` may set any
sender and are signed; forged Authentication-Results are removed, and a leading
continuation line cannot join Ferry's Received: field, on this path too."""
import os
import shutil
import subprocess
import tempfile
import unittest

from ferrytest import BIN, Ferry, make_signing_key

SENDMAIL = os.path.join(BIN, "ferry-sendmail")


class LocalIdentity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.getuid() != 0:
            raise AssertionError("these tests act as other users: run them as root (make test does)")
        cls.d = tempfile.mkdtemp(prefix="ferry-ident-")
        os.chmod(cls.d, 0o755)
        keys, _, _ = make_signing_key(cls.d, "localhost", "loc")
        # uid 1 (daemon) is an ordinary local user here; uid 2 (bin) is trusted
        cls.f = Ferry(extra=f"dkim_key_dir = {keys}\ntrusted_users = bin\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        shutil.rmtree(cls.d, ignore_errors=True)

    def submit(self, uid, args, text, user):
        cmd = [SENDMAIL, "-c", self.f.conf] + args
        if uid:
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"] + cmd
        r = subprocess.run(cmd, input=text.encode(), capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        files = self.f.wait_mail(user)
        self.assertTrue(files, self.f.read_log())
        with open(files[0], "rb") as fh:
            data = fh.read().decode("latin-1")
        return data.split("\n\n", 1)[0], data

    def test_untrusted_user_forging_a_sender_is_named_and_not_signed(self):
        head, _ = self.submit(1, ["-f", "alice@localhost", "v1@localhost"],
                              "From: alice@localhost\nSubject: forged\n\nhi\n", "v1")
        self.assertNotIn("DKIM-Signature", head)
        self.assertIn("X-Authentication-Warning: mx.example.test: daemon set sender to alice@localhost using -f",
                      head)
        self.assertIn("user daemon (uid 1) is not trusted and set sender <alice@localhost>", self.f.read_log())

    def test_untrusted_user_forging_only_the_from_is_not_signed(self):
        head, _ = self.submit(1, ["-f", "daemon@localhost", "v2@localhost"],
                              "From: Alice <alice@localhost>\nSubject: forged from\n\nhi\n", "v2")
        self.assertNotIn("DKIM-Signature", head)
        self.assertNotIn("X-Authentication-Warning", head)

    def test_untrusted_user_sending_as_itself_is_signed(self):
        head, _ = self.submit(1, ["-f", "daemon@localhost", "v3@localhost"],
                              "From: daemon@localhost\nSubject: mine\n\nhi\n", "v3")
        self.assertIn("DKIM-Signature", head)
        self.assertIn("d=localhost", head)
        self.assertNotIn("X-Authentication-Warning", head)

    def test_trusted_accounts_may_set_any_sender(self):
        for uid, user in ((0, "v4"), (2, "v5")):
            head, _ = self.submit(uid, ["-f", "alice@localhost", f"{user}@localhost"],
                                  "From: alice@localhost\nSubject: on behalf\n\nhi\n", user)
            self.assertIn("DKIM-Signature", head, uid)
            self.assertNotIn("X-Authentication-Warning", head)

    def test_forged_results_removed_and_leading_space_starts_the_body(self):
        head, data = self.submit(1, ["v6@localhost"],
                                 "Authentication-Results : mx.example.test; dkim=pass\n"
                                 "Authentication-Results: \"mx.example.test\"; dmarc=pass\n"
                                 "Subject: results\n\nhi\n", "v6")
        self.assertNotIn("Authentication-Results", head)
        self.assertIn("Subject: results", head)
        head, data = self.submit(1, ["v7@localhost"], " X-Injected: yes\nSubject: s\n\nhi\n", "v7")
        self.assertNotIn("X-Injected", head)
        self.assertIn("\n\n X-Injected: yes\nSubject: s\n", data)


if __name__ == "__main__":
    unittest.main()
