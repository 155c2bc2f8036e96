"""AUTH (RFC 4954) against the running daemon: users made with ferryctl, PLAIN and
LOGIN with swaks and smtplib, SCRAM-SHA-256 with a client written here from RFC
5802, failures delayed and locked out, AUTH only under TLS, secrets masked in
traces, relaying and submission rules for authenticated users, the ESMTPSA
Received: clause, and the DKIM signature on submitted mail."""
import base64
import glob
import hashlib
import hmac
import os
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import time
import unittest

from ferrytest import FERRYCTL, Ferry, SmtpLines, free_port, wait_for
from tlscerts import make_ca_and_server


def scram_client(user, password, server_first_cb):
    """An RFC 5802 SCRAM-SHA-256 client; server_first_cb sends a message, returns the reply."""
    cnonce = base64.b64encode(os.urandom(12)).decode()
    first_bare = f"n={user},r={cnonce}"
    server_first = server_first_cb("n,," + first_bare)
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    final_wo = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_wo}".encode()
    sig = hmac.new(stored, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expect = base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
    return final_wo + ",p=" + base64.b64encode(proof).decode(), "v=" + expect


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-auth-")
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d)
        cls.traces = os.path.join(cls.d, "traces")
        os.mkdir(cls.traces)
        os.chmod(cls.traces, 0o777)
        # a signing key for the local domain, so submitted mail is signed
        cls.keydir = os.path.join(cls.d, "keys")
        os.makedirs(os.path.join(cls.keydir, "localhost"))
        r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", "localhost", "--selector", "sub",
                            "--out", os.path.join(cls.keydir, "localhost", "sub.key")],
                           capture_output=True, text=True, check=True)
        cls.record = "".join(p.strip('"') for p in r.stdout.split(" IN TXT ", 1)[1].strip().split('" "'))
        os.chmod(os.path.join(cls.keydir, "localhost", "sub.key"), 0o644)
        with open(os.path.join(cls.keydir, "localhost", "active"), "w") as fh:
            fh.write("sub\n")
        for p in (cls.keydir, os.path.join(cls.keydir, "localhost")):
            os.chmod(p, 0o755)
        cls.f = Ferry(extra=f"tls_cert = {cls.cert}\ntls_key = {cls.key}\nauth_failure_delay = 1s\n"
                            f"auth_max_failures = 3\ndkim_key_dir = {cls.keydir}\n")
        text = open(cls.f.conf).read().replace(f"listen = submission 127.0.0.1:{cls.f.sub_port}\n",
                                               f"listen = submission 127.0.0.1:{cls.f.sub_port} trace={cls.traces}\n")
        open(cls.f.conf, "w").write(text)
        for user, pw in (("alice", "correct horse"), ("bob", "b0b-pass"), ("carol", "c4rol")):
            r = subprocess.run([FERRYCTL, "-c", cls.f.conf, "user", "add", user], input=pw + "\n",
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        subprocess.run([FERRYCTL, "-c", cls.f.conf, "user", "addr", "bob", "add", "@bob.example"], check=True)
        cls.f.start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        shutil.rmtree(cls.d, ignore_errors=True)

    def ctx(self):
        return ssl.create_default_context(cafile=self.ca)

    def tls_session(self, port=None):
        c = smtplib.SMTP("127.0.0.1", port or self.f.sub_port, timeout=20)
        c.ehlo("client.example")
        c.starttls(context=self.ctx())
        c.ehlo("client.example")
        return c

    def test_users_command(self):
        r = subprocess.run([FERRYCTL, "-c", self.f.conf, "user", "list"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("alice\n", r.stdout)
        self.assertIn("bob @bob.example\n", r.stdout)
        r = subprocess.run([FERRYCTL, "-c", self.f.conf, "user", "add", "alice"], input="x\n", capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("user alice already exists", r.stderr)
        r = subprocess.run([FERRYCTL, "-c", self.f.conf, "user", "add", "bad name"], input="x\n",
                           capture_output=True, text=True)
        self.assertIn("may hold only letters", r.stderr)
        r = subprocess.run([FERRYCTL, "-c", self.f.conf, "user", "add", "empty"], input="\n", capture_output=True,
                           text=True)
        self.assertIn("the password is empty", r.stderr)
        # the password is stored nowhere in the clear
        # (Berkeley DB may drop a region or log file while we look: skip those)
        for path in glob.glob(os.path.join(self.f.dir, "db", "*")):
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except (FileNotFoundError, IsADirectoryError):
                continue
            self.assertNotIn(b"correct horse", data, path)

    def test_auth_only_under_tls(self):
        c = smtplib.SMTP("127.0.0.1", self.f.sub_port, timeout=10)
        c.ehlo("client.example")
        self.assertNotIn("auth", c.esmtp_features)
        code, msg = c.docmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0correct horse").decode())
        self.assertEqual(code, 538, msg)
        c.close()
        c = self.tls_session()
        self.assertEqual(c.esmtp_features["auth"].split(), ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
        c.close()

    def test_plain_and_login_with_smtplib(self):
        for mech in ("PLAIN", "LOGIN"):
            c = self.tls_session()
            c.user, c.password = "alice", "correct horse"
            code, msg = c.auth(mech, getattr(c, "auth_" + mech.lower()), initial_response_ok=(mech == "PLAIN"))
            self.assertEqual(code, 235, msg)
            c.sendmail("alice@localhost", ["rcpt-" + mech.lower() + "@localhost"],
                       b"From: alice@localhost\r\nSubject: sub\r\n\r\nhi\r\n")
            c.quit()
        data = open(self.f.wait_mail("rcpt-plain")[0]).read()
        self.assertIn(" with ESMTPSA id ", data)
        self.assertIn("\nDate: ", data)                  # added for submitted mail
        self.assertIn("\nMessage-ID: <", data)
        self.assertTrue(wait_for(lambda: "auth=alice" in self.f.read_log(), 5))

    def test_submitted_mail_arrives_signed(self):
        import json
        c = self.tls_session()
        c.login("alice", "correct horse")
        c.sendmail("alice@localhost", ["signed-sub@localhost"],
                   b"From: Alice <alice@localhost>\r\nTo: signed-sub@localhost\r\nSubject: signed\r\n\r\nhello\r\n")
        c.quit()
        data = open(self.f.wait_mail("signed-sub")[0], "rb").read()
        self.assertIn(b"DKIM-Signature:", data)
        self.assertIn(b"d=localhost", data)
        recs = os.path.join(self.d, "recs.json")
        with open(recs, "w") as fh:
            json.dump({"sub._domainkey.localhost": self.record}, fh)
        oracle = [os.environ.get("FERRY_SYSTEM_PYTHON", "/usr/bin/python3"),
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "dkimpy_oracle.py")]
        body = data.split(b"\n", 2)[2].replace(b"\n", b"\r\n")      # less Return-Path, Delivered-To
        r = subprocess.run(oracle + ["verify", recs], input=body, capture_output=True)
        self.assertEqual(r.stdout.strip(), b"pass", r.stderr)

    def test_plain_with_swaks(self):
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{self.f.sub_port}", "--tls", "--tls-ca-path", self.ca,
                            "--auth", "PLAIN", "--auth-user", "bob", "--auth-password", "b0b-pass",
                            "--from", "anything@bob.example", "--header", "From: b@bob.example",
                            "--to", "swaks-auth@localhost"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("235 2.7.0 Authentication successful", r.stdout)
        self.assertTrue(self.f.wait_mail("swaks-auth"))

    def test_scram_sha_256(self):
        s = SmtpLines(self.f.sub_port)
        s.cmd("EHLO client.example")
        s.send("STARTTLS\r\n")
        self.assertEqual(s.reply()[0], 220)
        s.sock = self.ctx().wrap_socket(s.sock, server_hostname="mx.example.test")
        s.cmd("EHLO client.example")

        def exchange(first):
            code, lines = s.cmd("AUTH SCRAM-SHA-256 " + base64.b64encode(first.encode()).decode())
            self.assertEqual(code, 334, lines)
            return base64.b64decode(lines[0][4:]).decode()
        final, expect = scram_client("carol", "c4rol", exchange)
        code, lines = s.cmd(base64.b64encode(final.encode()).decode())
        self.assertEqual(code, 334, lines)
        self.assertEqual(base64.b64decode(lines[0][4:]).decode(), expect)     # the server proves itself too
        code, lines = s.cmd("")
        self.assertEqual(lines, ["235 2.7.0 Authentication successful"])
        s.close()

    def test_wrong_password_is_delayed_then_locked_out(self):
        f = Ferry(extra=f"tls_cert = {self.cert}\ntls_key = {self.key}\nauth_failure_delay = 1s\n"
                        "auth_max_failures = 2\nauth_lockout = 1h\n")
        subprocess.run([FERRYCTL, "-c", f.conf, "user", "add", "dave"], input="pw1\n", text=True, check=True,
                       capture_output=True)
        f.start()
        try:
            def attempt(pw):
                c = self.tls_session(f.sub_port)
                t0 = time.monotonic()
                code, msg = c.docmd("AUTH PLAIN " + base64.b64encode(b"\0dave\0" + pw).decode())
                took = time.monotonic() - t0
                c.close()
                return code, msg, took
            for _ in range(2):
                code, msg, took = attempt(b"wrong")
                self.assertEqual(code, 535, msg)
                self.assertGreaterEqual(took, 0.9)              # auth_failure_delay
            code, msg, _ = attempt(b"pw1")                       # even the right password now
            self.assertEqual(code, 454, msg)
            self.assertIn(b"Too many failed authentications", msg)
            self.assertIn("locked out after repeated failures", f.read_log())
        finally:
            f.cleanup()

    def test_timeout_while_a_failure_is_delayed(self):
        f = Ferry(extra=f"tls_cert = {self.cert}\ntls_key = {self.key}\nauth_failure_delay = 3s\n"
                        "smtp_timeout = 1s\nauth_plaintext_loopback = yes\n")
        subprocess.run([FERRYCTL, "-c", f.conf, "user", "add", "erin"], input="pw\n", text=True, check=True,
                       capture_output=True)
        f.start()
        try:
            s = SmtpLines(f.sub_port)
            s.cmd("EHLO c.example")
            s.send("AUTH PLAIN " + base64.b64encode(b"\0erin\0wrong").decode() + "\r\n")
            code, lines = s.reply()
            self.assertEqual(lines[0][:9], "421 4.4.2", lines)      # the idle timeout came first
            self.assertTrue(s.closed(5))
            time.sleep(2.5)                                         # the delayed 535 must not fire into it
            s2 = SmtpLines(f.sub_port)
            self.assertEqual(s2.cmd("NOOP")[0], 250)                # and the daemon is well
            self.assertIsNone(f.proc.poll())
        finally:
            f.cleanup()

    def test_oversize_and_malformed_exchanges(self):
        c = self.tls_session()
        code, msg = c.docmd("AUTH PLAIN")
        self.assertEqual(code, 334)
        code, msg = c.docmd("A" * 13000)
        self.assertEqual(code, 500, msg)
        self.assertEqual(c.docmd("NOOP")[0], 250)               # back to commands
        code, _ = c.docmd("AUTH LOGIN")
        self.assertEqual(code, 334)
        self.assertEqual(c.docmd("*")[0], 501)                  # cancelled
        code, msg = c.docmd("AUTH CRAM-MD5")
        self.assertEqual(code, 504, msg)
        c.close()

    def test_secrets_never_in_the_trace(self):
        c = self.tls_session()
        c.user, c.password = "alice", "correct horse"
        c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        c.quit()
        time.sleep(0.5)
        for path in glob.glob(os.path.join(self.traces, "*.trace")):
            text = open(path).read()
            self.assertNotIn(base64.b64encode(b"correct horse").decode(), text)
            self.assertNotIn("correct horse", text)
        self.assertTrue(any("C: ***" in open(p).read() for p in glob.glob(os.path.join(self.traces, "*.trace"))))

    def test_sender_ownership_and_relay(self):
        c = self.tls_session()
        c.login("alice", "correct horse")
        code, msg = c.docmd("MAIL FROM:<bob@bob.example>")
        self.assertEqual(code, 553, msg)
        self.assertIn(b"not owned by user alice", msg)
        c.rset()
        # her own address, relaying to a remote domain: accepted (queued)
        c.docmd("MAIL FROM:<alice@localhost>")
        self.assertEqual(c.docmd("RCPT TO:<x@remote.invalid>")[0], 250)
        c.rset()
        # a From: header that is not hers is refused at the end of data
        c.docmd("MAIL FROM:<alice@localhost>")
        c.docmd("RCPT TO:<own@localhost>")
        c.docmd("DATA")
        c.send("From: ceo@bank.example\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
        code, msg = c.getreply()
        self.assertEqual(code, 553, msg)
        self.assertIn(b"From: header address <ceo@bank.example> is not owned", msg)
        c.close()
        # bob owns a whole domain
        c = self.tls_session()
        c.login("bob", "b0b-pass")
        self.assertEqual(c.docmd("MAIL FROM:<any.one@bob.example>")[0], 250)
        c.close()

    def test_port_25_authenticated_user_held_to_own_addresses(self):
        # Security review #2: on port 25 an authenticated session could send as
        # anyone, and the mail was signed for the forged domain.
        c = self.tls_session(self.f.port)
        c.login("alice", "correct horse")
        code, msg = c.docmd("MAIL FROM:<bob@localhost>")
        self.assertEqual(code, 553, msg)
        self.assertIn(b"not owned by user alice", msg)
        c.rset()
        c.docmd("MAIL FROM:<alice@localhost>")
        self.assertEqual(c.docmd("RCPT TO:<x@remote.invalid>")[0], 250)
        self.assertEqual(c.docmd("RCPT TO:<victim25@localhost>")[0], 250)
        c.docmd("DATA")
        c.send("From: Bob <bob@localhost>\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
        code, msg = c.getreply()
        self.assertEqual(code, 553, msg)
        self.assertIn(b"<bob@localhost> is not owned by user alice", msg)
        # the null path is allowed, but its From: is still hers or refused
        c.docmd("MAIL FROM:<>")
        c.docmd("RCPT TO:<victim25@localhost>")
        c.docmd("DATA")
        c.send("From: bob@localhost\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(c.getreply()[0], 553)
        # her own mail on port 25 goes through, signed for her domain
        c.docmd("MAIL FROM:<alice@localhost>")
        c.docmd("RCPT TO:<victim25@localhost>")
        c.docmd("DATA")
        c.send("From: Alice <alice@localhost>\r\nSubject: mine\r\n\r\nbody\r\n.\r\n")
        self.assertEqual(c.getreply()[0], 250)
        c.quit()
        files = self.f.wait_mail("victim25", 1)
        self.assertTrue(files)
        self.assertEqual(len(self.f.mailbox_files("victim25")), 1)
        text = open(files[0], encoding="latin-1").read()
        self.assertIn("Subject: mine", text)
        self.assertIn("d=localhost", text)

    def test_authenticated_sessions_keep_the_content_rules(self):
        # The From: check for authenticated sessions once replaced the size, bare
        # LF, NUL and line length checks instead of running after them.
        c = self.tls_session()
        c.login("alice", "correct horse")
        cases = [("Subject: long\r\n\r\n" + "x" * 1200 + "\r\n", b"longer than 1000"),
                 ("Subject: nul\r\n\r\na\0b\r\n", b"NUL"),
                 ("Subject: lf\r\n\r\na\nb\r\n", b"bare CR or LF")]
        for body, why in cases:
            c.docmd("MAIL FROM:<alice@localhost>")
            c.docmd("RCPT TO:<rules@localhost>")
            c.docmd("DATA")
            c.send("From: alice@localhost\r\n" + body + ".\r\n")
            code, msg = c.getreply()
            self.assertEqual(code, 550, (body[:20], msg))
            self.assertIn(why, msg)
        c.quit()
        time.sleep(0.5)
        self.assertEqual(self.f.mailbox_files("rules"), [])


if __name__ == "__main__":
    unittest.main()
