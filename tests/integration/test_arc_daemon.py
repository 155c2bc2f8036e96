"""ARC (RFC 8617) in the daemon, over a real nsd: mail sealed by dkimpy and sent to
ferryd on port 25 gets arc=pass (with header.oldest-pass and smtp.remote-ip) in the
Authentication-Results Ferry adds, and on the message's log line; a body changed
or a header after the seal gives arc=fail, a message without a chain arc=none, and
a body of many chunks is hashed as it streams past."""
import base64
import email
import email.policy
import os
import shutil
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import Ferry, SmtpLines
from test_arc import ORACLE, run

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 900 604800 60
@ IN NS ns.test.
ns IN A 127.0.0.1
{keys}
"""

MSG = (b"From: Alice <alice@origin.test>\r\n"
       b"To: r@localhost\r\n"
       b"Subject: ARC through the daemon\r\n"
       b"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n"
       b"Message-ID: <arcd-1@origin.test>\r\n"
       b"\r\n"
       b"Hello,\r\nforwarded once.\r\n")


def smtp_send(port, sender, rcpt, message):
    c = SmtpLines(port)
    c.cmd("EHLO client.example")
    assert c.cmd(f"MAIL FROM:<{sender}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(message.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    code, text = c.reply()
    c.cmd("QUIT")
    c.close()
    return code, " ".join(text)


def key_record(path):
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    text = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    return " ".join(f'"{text[i:i + 200]}"' for i in range(0, len(text), 200))


class ArcDaemon(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ferry-arcd-")
        os.chmod(cls.dir, 0o755)
        cls.key = os.path.join(cls.dir, "fwd.pem")
        keys = f"hop._domainkey.fwd IN TXT {key_record(cls.key)}\n"
        cls.ns = DnsServer({"test": ZONE.format(keys=keys)}).start()
        cls.f = Ferry(extra=f"resolver = 127.0.0.1:{cls.ns.port}\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        cls.ns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def seal(self, msg, ar="spf=pass smtp.mailfrom=origin.test"):
        head = f"Authentication-Results: mx.fwd.test; {ar}\r\n".encode()
        return run(ORACLE + ["arcsign", "hop", "fwd.test", self.key, "mx.fwd.test"], head + msg).stdout

    def deliver(self, user, msg, port=None):
        """Send msg to user over port 25; our Authentication-Results (unfolded) and the log line."""
        code, text = smtp_send(port or self.f.port, f"list-{user}@fwd.test", f"{user}@localhost", msg)
        self.assertEqual(code, 250, text)
        files = self.f.wait_mail(user)
        self.assertTrue(files, self.f.read_log())
        with open(files[0], "rb") as fh:
            m = email.message_from_binary_file(fh, policy=email.policy.compat32)
        ours = [v for k, v in m.items() if k == "Authentication-Results" and v.strip().startswith("mx.example.test;")]
        self.assertEqual(len(ours), 1, m.items())
        lines = [l for l in self.f.read_log().splitlines() if f"from=<list-{user}@fwd.test> size=" in l]
        self.assertEqual(len(lines), 1, self.f.read_log())
        return " ".join(ours[0].split()), lines[0]

    def test_sealed_message_passes(self):
        msg = self.seal(MSG)
        self.assertIn(b"ARC-Seal: i=1", msg)
        ar, line = self.deliver("pass1", msg)
        self.assertIn("arc=pass", ar)
        self.assertIn("header.oldest-pass=0", ar)
        self.assertIn("smtp.remote-ip=127.0.0.1", ar)
        self.assertIn("arc=pass arc.oldest-pass=0 arc.sealer=fwd.test", line)

    def test_tampered_body_fails(self):
        msg = self.seal(MSG).replace(b"forwarded once.", b"forwarded twice.")
        ar, line = self.deliver("fail1", msg)
        self.assertIn("arc=fail", ar)
        self.assertTrue(line.endswith(" arc=fail"), line)
        self.assertIn("body hash", ar)
        self.assertNotIn("oldest-pass", ar)
        self.assertIn("smtp.remote-ip=127.0.0.1", ar)

    def test_tampered_header_fails(self):
        msg = self.seal(MSG).replace(b"Subject: ARC through", b"Subject: ARC thru")
        ar, _ = self.deliver("fail2", msg)
        self.assertIn("arc=fail", ar)

    def test_no_chain_is_none(self):
        ar, _ = self.deliver("none1", MSG.replace(b"arcd-1", b"arcd-none"))
        self.assertIn("arc=none", ar)

    def test_large_body_streams(self):
        # A body of many chunks: the verifier hashes it as it streams past.
        big = MSG.replace(b"forwarded once.\r\n", b"".join(b"line %d of a long body\r\n" % i for i in range(20000)))
        ar, _ = self.deliver("big1", self.seal(big))
        self.assertIn("arc=pass", ar)


if __name__ == "__main__":
    unittest.main()
