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
import time
import unittest

from dnsserver import DnsServer
from ferrytest import FERRYCTL, Ferry, SmtpLines
from test_arc import ORACLE, run
from test_dmarc_report_e2e import DATEFUDGE

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 900 604800 60
@ IN NS ns.test.
ns IN A 127.0.0.1
origin IN TXT "v=spf1 -all"
_dmarc.origin IN TXT "v=DMARC1; p=reject; rua=mailto:agg@origin.test"
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
        rec = key_record(cls.key)
        keys = f"hop._domainkey.fwd IN TXT {rec}\nhop._domainkey.other IN TXT {rec}\n"
        cls.ns = DnsServer({"test": ZONE.format(keys=keys)}).start()
        cls.f = Ferry(extra=f"resolver = 127.0.0.1:{cls.ns.port}\n").start()
        # DMARC on, fwd.test trusted as a sealer, aggregate reports for origin.test kept.
        cls.p = Ferry(extra=f"resolver = 127.0.0.1:{cls.ns.port}\ndmarc_check = yes\n"
                            "arc_trusted_sealers = fwd.test\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        cls.p.cleanup()
        cls.ns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def seal(self, msg, ar="spf=pass smtp.mailfrom=origin.test", domain="fwd.test"):
        srv = f"mx.{domain}"
        head = f"Authentication-Results: {srv}; {ar}\r\n".encode()
        return run(ORACLE + ["arcsign", "hop", domain, self.key, srv], head + msg).stdout

    def deliver(self, user, msg, f=None):
        """Send msg to user over port 25; our Authentication-Results (unfolded) and the log line."""
        f = f or self.f
        code, text = smtp_send(f.port, f"list-{user}@fwd.test", f"{user}@localhost", msg)
        self.assertEqual(code, 250, text)
        files = f.wait_mail(user)
        self.assertTrue(files, f.read_log())
        with open(files[0], "rb") as fh:
            m = email.message_from_binary_file(fh, policy=email.policy.compat32)
        ours = [v for k, v in m.items() if k == "Authentication-Results" and v.strip().startswith("mx.example.test;")]
        self.assertEqual(len(ours), 1, m.items())
        lines = [l for l in f.read_log().splitlines() if f"from=<list-{user}@fwd.test> size=" in l]
        self.assertEqual(len(lines), 1, f.read_log())
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

    # Local policy (RFC 8617 7.2.1): origin.test publishes p=reject and the message
    # fails DMARC here (SPF checks fwd.test, the body was changed so no DKIM), but the
    # trusted sealer fwd.test says in its AAR that DMARC passed when it received it.
    DMARC_OK = "spf=pass smtp.mailfrom=origin.test; dmarc=pass header.from=origin.test"

    def test_trusted_sealer_overrides_dmarc_reject(self):
        ar, line = self.deliver("trusted1", self.seal(MSG, self.DMARC_OK), f=self.p)
        self.assertIn("arc=pass", ar)
        self.assertIn("dmarc=fail", ar)
        self.assertIn("dis=none", ar)
        self.assertIn("(override=local_policy: arc sealer fwd.test (dmarc=pass))", ar)
        self.assertIn("policy=reject disposition=none override=local_policy (arc sealer fwd.test (dmarc=pass))",
                      line)
        self.assertIn("arc.sealer=fwd.test", line)
        # the aggregate report's record for origin.test carries the reason and the sealer
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 2 * 86400))
        out = subprocess.run([DATEFUDGE, when, FERRYCTL, "-c", self.p.conf, "dmarc", "report", "--dry-run",
                              "--domain", "origin.test"], capture_output=True, text=True, env=dict(os.environ, TZ="UTC"))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("<type>local_policy</type>", out.stdout)
        self.assertIn("<comment>arc sealer fwd.test (dmarc=pass)</comment>", out.stdout)

    def test_untrusted_sealer_is_refused(self):
        msg = self.seal(MSG, self.DMARC_OK, domain="other.test")
        code, text = smtp_send(self.p.port, "list-untrusted@fwd.test", "untrusted1@localhost", msg)
        self.assertEqual(code, 550, text)
        self.assertIn("origin.test", text)
        self.assertIn("dmarc=fail header.from=origin.test policy=reject disposition=reject", self.p.read_log())

    def test_trusted_sealer_without_a_pass_is_refused(self):
        msg = self.seal(MSG, "spf=fail smtp.mailfrom=origin.test; dmarc=fail header.from=origin.test")
        code, text = smtp_send(self.p.port, "list-nopass@fwd.test", "nopass1@localhost", msg)
        self.assertEqual(code, 550, text)

    def test_broken_chain_from_trusted_sealer_is_refused(self):
        msg = self.seal(MSG, self.DMARC_OK).replace(b"forwarded once.", b"forwarded twice.")
        code, text = smtp_send(self.p.port, "list-broken@fwd.test", "broken1@localhost", msg)
        self.assertEqual(code, 550, text)


if __name__ == "__main__":
    unittest.main()
