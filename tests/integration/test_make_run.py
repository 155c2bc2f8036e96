"""The newcomer's path: the shipped etc/ferry-local.conf (the `make run` config)
with swaks as the client, exactly as the README tells it — only the ports are
moved so the test cannot collide with a `make run` in progress."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from ferrytest import FERRYD, ROOT, free_port, wait_for


class MakeRunConfig(unittest.TestCase):
    @staticmethod
    def log(d):
        with open(os.path.join(d, "ferryd.log"), errors="replace") as f:
            return f.read()

    def test_swaks_to_alice_lands_in_var_mail(self):
        d = tempfile.mkdtemp(prefix="ferry-run-")
        os.chmod(d, 0o755)
        conf = os.path.join(d, "ferry-local.conf")
        with open(os.path.join(ROOT, "etc", "ferry-local.conf")) as f:
            text = f.read()
        ports = {}
        for old in sorted(set(re.findall(r"127\.0\.0\.1:(\d+)", text))):
            new = str(free_port())
            while new in ports.values():         # a port just freed can come back at once
                new = str(free_port())
            ports[old] = new
        # one pass, so a new port equal to a later old one is never replaced again
        text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:" + ports[m.group(1)], text)
        with open(conf, "w") as f:
            f.write(text)
        smtp_port = ports["2525"]
        # what `make run` does before starting: a certificate and DKIM keys under ./var
        r = subprocess.run(["sh", os.path.join(ROOT, "etc", "make-run-setup.sh")], cwd=d, capture_output=True,
                           text=True, env=dict(os.environ, FERRYCTL=os.path.join(os.path.dirname(FERRYD), "ferryctl")))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        log = open(os.path.join(d, "ferryd.log"), "wb")
        proc = subprocess.Popen([FERRYD, "-c", conf, "-f"], cwd=d, stdout=log, stderr=log)
        try:
            def ready():
                r = subprocess.run(["swaks", "--server", f"127.0.0.1:{smtp_port}", "--quit-after", "CONNECT"],
                                   capture_output=True)
                return r.returncode == 0
            self.assertTrue(wait_for(ready, 10), self.log(d))
            t0 = time.monotonic()
            r = subprocess.run(["swaks", "--server", f"127.0.0.1:{smtp_port}", "--to", "alice@localhost",
                                "--from", "newcomer@example.org", "--header", "Subject: first message"],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"<- +250 2\.0\.0 Ok: queued as [0-9A-V]{16}")
            for ext in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES",
                        "STARTTLS", "AUTH PLAIN LOGIN SCRAM-SHA-256"):
                self.assertRegex(r.stdout, r"<- +250[- ]" + ext, ext)
            new = os.path.join(d, "var", "mail", "alice", "new")
            files = wait_for(lambda: os.path.isdir(new) and os.listdir(new), 10)
            elapsed = time.monotonic() - t0
            self.assertTrue(files, self.log(d))
            with open(os.path.join(new, files[0]), "rb") as f:
                data = f.read()
            self.assertIn(b"\nReceived: from ", data)
            self.assertIn(b"Subject: first message\n", data)
            print(f"\n    (swaks to Maildir file: {elapsed * 1000:.0f} ms)", end="")
            # A user, and a message through the submission port with AUTH: it arrives signed.
            ctl = os.path.join(os.path.dirname(FERRYD), "ferryctl")
            r = subprocess.run([ctl, "-c", conf, "user", "add", "newcomer"], input="secret\n", cwd=d,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = subprocess.run(["swaks", "--server", f"127.0.0.1:{ports['2587']}", "--tls", "--auth", "PLAIN",
                                "--auth-user", "newcomer", "--auth-password", "secret",
                                "--from", "newcomer@localhost", "--header", "From: newcomer@localhost",
                                "--to", "bob@localhost"], capture_output=True, text=True, cwd=d, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            new = os.path.join(d, "var", "mail", "bob", "new")
            files = wait_for(lambda: os.path.isdir(new) and os.listdir(new), 10)
            self.assertTrue(files, self.log(d))
            with open(os.path.join(new, files[0]), "rb") as f:
                signed = f.read()
            self.assertEqual(signed.count(b"DKIM-Signature:"), 2, signed[:800])
            self.assertIn(b" with ESMTPSA id ", signed)
            # The queue view the README shows.
            q = subprocess.run([os.path.join(os.path.dirname(FERRYD), "ferryctl"), "-c", conf, "queue", "list"],
                               cwd=d, capture_output=True, text=True)
            self.assertEqual(q.returncode, 0, q.stderr)
        finally:
            proc.terminate()
            proc.wait(15)
            log.close()
            shutil.rmtree(d, ignore_errors=True)
        self.assertEqual(proc.returncode, 0)

    def test_setup_keeps_private_keys_private(self):
        # Security review #12: run as root, the setup made every key 0644. The TLS
        # key is read by the parent only, the DKIM keys by the key process only
        # (both root's, 0600). The swaks test above shows ferryd still uses both
        # (STARTTLS works, mail arrives signed).
        if os.getuid() != 0:
            self.skipTest("the key modes matter when the setup runs as root")
        d = tempfile.mkdtemp(prefix="ferry-run-")
        try:
            r = subprocess.run(["sh", os.path.join(ROOT, "etc", "make-run-setup.sh")], cwd=d, capture_output=True,
                               text=True,
                               env=dict(os.environ, FERRYCTL=os.path.join(os.path.dirname(FERRYD), "ferryctl")))
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            st = os.stat(os.path.join(d, "var", "tls", "key.pem"))
            self.assertEqual((oct(st.st_mode & 0o777), st.st_uid), ("0o600", 0))
            for name in ("rsa1.key", "ed1.key"):
                st = os.stat(os.path.join(d, "var", "dkim", "localhost", name))
                self.assertEqual((oct(st.st_mode & 0o777), st.st_uid), ("0o600", 0), name)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
