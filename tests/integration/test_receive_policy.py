"""Receive-time policy in the daemon, over a real nsd: SPF and DMP at MAIL FROM
(refusals, exemptions, Received-SPF and spf= in Authentication-Results), DKIM
verification on port 25 with Authentication-Results (dkimpy signs, Ferry judges),
forged Authentication-Results removed, and DKIM signing for trusted clients
(Ferry signs, dkimpy and Ferry's own verifier judge)."""
import json
import os
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import BIN, FERRYCTL, Ferry, SmtpLines, dkimpy_verifies_delivered

ORACLE = [os.environ.get("FERRY_SYSTEM_PYTHON", "/usr/bin/python3"),
          os.path.join(os.path.dirname(os.path.abspath(__file__)), "dkimpy_oracle.py")]

ZONE = """$ORIGIN pol.test.
$TTL 300
@        IN SOA ns.pol.test. hostmaster.pol.test. 1 3600 900 604800 60
@        IN NS  ns
ns       IN A   127.0.0.1
pass     IN TXT "v=spf1 ip4:127.0.0.1 -all"
fail     IN TXT "v=spf1 ip4:192.0.2.1 -all"
soft     IN TXT "v=spf1 ~all"
broken   IN TXT "v=spf1 ip4:not-an-ip -all"
badhelo  IN TXT "v=spf1 -all"
goodhelo IN TXT "v=spf1 ip4:127.0.0.1 -all"
two      IN TXT "v=spf1 -all"
two      IN TXT "v=spf1 +all"
_smtp-client.dmpdeny IN TXT "dmp="
*._smtp-client.dmpdeny IN TXT "dmp=deny"
_smtp-client.dmpok IN TXT "dmp="
1.0.0.127.in-addr._smtp-client.dmpok IN TXT "dmp=allow"
"""


def sign_with_dkimpy(msg, selector, domain, keyfile, length=False):
    r = subprocess.run(ORACLE + ["sign", selector, domain, keyfile, "rsa-sha256", "relaxed", "relaxed"] +
                       (["length"] if length else []), input=msg, capture_output=True, check=True)
    return r.stdout + msg


class ReceivePolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-pol-")
        os.chmod(cls.tmp, 0o755)
        # One RSA key for dkimpy to sign inbound mail with, and one key directory
        # for Ferry to sign outbound mail with.
        cls.inkey = os.path.join(cls.tmp, "in.key")
        r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", "pol.test", "--selector", "in",
                            "--out", cls.inkey], capture_output=True, text=True, check=True)
        in_txt = r.stdout.split(" IN TXT ", 1)[1].strip()
        cls.keydir = os.path.join(cls.tmp, "keys")
        os.makedirs(os.path.join(cls.keydir, "pol.test"))
        records = {}
        for sel, algo in (("r1", "rsa-sha256"), ("e1", "ed25519-sha256")):
            path = os.path.join(cls.keydir, "pol.test", sel + ".key")
            r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", "pol.test", "--selector", sel,
                                "--out", path, "--algo", algo], capture_output=True, text=True, check=True)
            records[sel] = r.stdout.split(" IN TXT ", 1)[1].strip()
            os.chmod(path, 0o644)       # the daemon's user (nobody) reads it in the test
        with open(os.path.join(cls.keydir, "pol.test", "active"), "w") as f:
            f.write("r1\ne1\n")
        os.chmod(cls.keydir, 0o755)
        os.chmod(os.path.join(cls.keydir, "pol.test"), 0o755)
        # A domain in the middle of a rotation: "old" signs, `rotate` made the next
        # key, and its record is already published.
        rot = os.path.join(cls.keydir, "rot.pol.test")
        os.makedirs(rot)
        r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", "rot.pol.test", "--selector", "old",
                            "--out", os.path.join(rot, "old.key")], capture_output=True, text=True, check=True)
        old_txt = r.stdout.split(" IN TXT ", 1)[1].strip()
        with open(os.path.join(rot, "active"), "w") as fh:
            fh.write("old\n")
        r = subprocess.run([FERRYCTL, "dkim", "rotate", "--domain", "rot.pol.test", "--keydir", cls.keydir],
                           capture_output=True, text=True, check=True)
        cls.next_sel = open(os.path.join(rot, "next")).read().strip()
        next_txt = r.stdout.split(" IN TXT ", 1)[1].strip()
        for name in os.listdir(rot):
            os.chmod(os.path.join(rot, name), 0o644)
        # Root's and closed to the daemon's user: the key process rewrites
        # `active` when it switches (the smtp user could otherwise remove keys).
        os.chmod(rot, 0o755)
        zone = ZONE + f"in._domainkey IN TXT {in_txt}\n"
        zone += f"old._domainkey.rot IN TXT {old_txt}\n{cls.next_sel}._domainkey.rot IN TXT {next_txt}\n"
        for sel, txt in records.items():
            zone += f"{sel}._domainkey IN TXT {txt}\n"
        cls.records = {f"{sel}._domainkey.pol.test": "".join(p.strip('"') for p in txt.split('" "'))
                       for sel, txt in records.items()}
        cls.ns = DnsServer({"pol.test": zone}).start()

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()
        subprocess.run(["rm", "-rf", cls.tmp])

    def ferry(self, extra="", relay_networks="192.0.2.1/32"):
        return Ferry(relay_networks=relay_networks,
                     extra=f"resolver = 127.0.0.1:{self.ns.port}\nspf_check = yes\ndmp_check = fallback\n"
                           f"dkim_key_dir = {self.keydir}\n" + extra)

    def mail_from(self, f, sender, helo="client.pol.test"):
        s = SmtpLines(f.port)
        s.cmd(f"EHLO {helo}")
        return s, s.cmd(f"MAIL FROM:<{sender}>")

    def send(self, f, sender, rcpt, msg):
        s, (code, lines) = self.mail_from(f, sender)
        self.assertEqual(code, 250, lines)
        self.assertEqual(s.cmd(f"RCPT TO:<{rcpt}>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        code, lines = s.reply()
        s.cmd("QUIT")
        return code, lines

    def test_spf_verdicts_at_mail_from(self):
        with self.ferry() as f:
            for sender, want in (("a@pass.pol.test", "250 2.1.0"),
                                 ("a@fail.pol.test", "550 5.7.23"),
                                 ("a@soft.pol.test", "250 2.1.0"),
                                 ("a@broken.pol.test", "250 2.1.0"),       # permerror accepted by default
                                 ("a@two.pol.test", "250 2.1.0"),
                                 ("a@dmpdeny.pol.test", "550 5.7.1"),      # no SPF: DMP decides
                                 ("a@dmpok.pol.test", "250 2.1.0")):
                s, (code, lines) = self.mail_from(f, sender)
                self.assertTrue(lines[0].startswith(want), (sender, lines))
                s.close()
            log = f.read_log()
            self.assertIn('spf=fail domain=fail.pol.test client=127.0.0.1 mechanism="-all"', log)
            self.assertIn("dmp=deny name=dmpdeny.pol.test", log)

    def test_helo_identity(self):
        with self.ferry() as f:
            s, (code, lines) = self.mail_from(f, "a@pass.pol.test", helo="badhelo.pol.test")
            self.assertTrue(lines[0].startswith("550 5.7.23 SPF: 127.0.0.1 is not allowed to send mail for "
                                                "badhelo.pol.test"), lines)
            s.close()
            s, (code, lines) = self.mail_from(f, "a@pass.pol.test", helo="goodhelo.pol.test")
            self.assertEqual(code, 250, lines)
            s.cmd("RCPT TO:<h@localhost>")
            s.cmd("DATA")
            self.assertEqual(s.cmd("Subject: helo\r\n\r\nx\r\n.")[0], 250)
            data = open(f.wait_mail("h")[0], "rb").read().decode()
            self.assertIn("\tspf=pass smtp.helo=goodhelo.pol.test;\n\tspf=pass smtp.mailfrom=a@pass.pol.test\n", data)
            self.assertIn("spf=fail identity=helo domain=badhelo.pol.test", f.read_log())

    def test_permerror_and_fail_actions_are_configurable(self):
        with self.ferry("spf_permerror_action = reject\nspf_fail_action = data\n") as f:
            s, (code, lines) = self.mail_from(f, "a@broken.pol.test")
            self.assertTrue(lines[0].startswith("550 5.7.24"), lines)
            s.close()
            code, lines = self.send(f, "a@fail.pol.test", "x@localhost", b"Subject: late\r\n\r\nbody\r\n")
            self.assertTrue(lines[0].startswith("550 5.7.23"), lines)
            self.assertEqual(f.queue_files(), [])

    def test_trusted_network_is_exempt(self):
        with self.ferry(relay_networks="127.0.0.0/8") as f:
            s, (code, lines) = self.mail_from(f, "a@fail.pol.test")
            self.assertEqual(code, 250, lines)

    def test_headers_on_accepted_mail(self):
        with self.ferry() as f:
            msg = b"From: a@pass.pol.test\r\nTo: y@localhost\r\nSubject: hdr\r\n\r\nbody\r\n"
            code, lines = self.send(f, "a@pass.pol.test", "y@localhost", msg)
            self.assertEqual(code, 250, lines)
            data = open(f.wait_mail("y")[0], "rb").read().decode()
            self.assertIn("Authentication-Results: mx.example.test;\n\tdkim=none;\n"
                          "\tarc=none (no ARC sets) smtp.remote-ip=127.0.0.1;\n"
                          "\tspf=pass smtp.mailfrom=a@pass.pol.test\n", data)
            self.assertIn("Received-SPF: pass (mx.example.test: domain of a@pass.pol.test designates "
                          "127.0.0.1 as permitted sender)", data)

    def test_dkim_verified_on_port_25(self):
        with self.ferry() as f:
            msg = (b"From: Author <author@pol.test>\r\nTo: z@localhost\r\nSubject: signed\r\n"
                   b"Date: Mon, 23 Nov 2026 00:00:00 +0000\r\n\r\nSigned body.\r\n")
            signed = sign_with_dkimpy(msg, "in", "pol.test", self.inkey)
            code, lines = self.send(f, "author@pass.pol.test", "z@localhost", signed)
            self.assertEqual(code, 250, lines)
            tampered = signed.replace(b"Signed body.", b"Signed bodY.")
            code, lines = self.send(f, "author@pass.pol.test", "z@localhost", tampered)
            self.assertEqual(code, 250, lines)
            files = f.wait_mail("z", 2)
            texts = sorted(open(p, "rb").read().decode() for p in files)
            results = sorted(t.split("Authentication-Results: mx.example.test;\n\t", 1)[1].split(";", 1)[0]
                             for t in texts)
            self.assertTrue(results[0].startswith("dkim=fail header.d=pol.test header.s=in"), results)
            self.assertTrue(results[1].startswith("dkim=pass header.d=pol.test header.s=in header.b="), results)

    def test_body_length_policy(self):
        msg = (b"From: Author <author@pol.test>\r\nTo: l@localhost\r\nSubject: l=\r\n\r\nSigned part.\r\n")
        appended = sign_with_dkimpy(msg, "in", "pol.test", self.inkey, length=True) + b"Appended by someone.\r\n"
        self.assertIn(b"l=", appended.split(b"\r\n\r\n")[0])
        for setting, want in (("accept", "dkim=pass"), ("policy", "dkim=policy")):
            with self.ferry(f"dkim_body_length = {setting}\n") as f:
                user = "l" + setting
                code, lines = self.send(f, "author@pass.pol.test", f"{user}@localhost", appended)
                self.assertEqual(code, 250, lines)
                data = open(f.wait_mail(user)[0], "rb").read().decode()
                result = data.split("Authentication-Results: mx.example.test;\n\t", 1)[1].split("\n", 1)[0]
                self.assertTrue(result.startswith(want + " header.d=pol.test"), (setting, result))

    def test_forged_authentication_results_removed(self):
        with self.ferry() as f:
            msg = (b"Authentication-Results: mx.example.test; dkim=pass header.d=bank.example\r\n"
                   b"Authentication-Results: MX.EXAMPLE.TEST (forged);\r\n spf=pass\r\n"
                   b"Authentication-Results: other.example; spf=fail\r\n"
                   b"From: a@pass.pol.test\r\nSubject: forged\r\n\r\nbody\r\n")
            code, lines = self.send(f, "a@pass.pol.test", "w@localhost", msg)
            self.assertEqual(code, 250, lines)
            data = open(f.wait_mail("w")[0], "rb").read().decode()
            self.assertEqual(data.count("Authentication-Results: mx.example.test;"), 1)   # ours only
            self.assertNotIn("bank.example", data)
            self.assertNotIn("(forged)", data)
            self.assertIn("Authentication-Results: other.example; spf=fail\n", data)
            self.assertIn("removed 2 Authentication-Results fields claiming to be ours", f.read_log())

    def test_trusted_client_mail_is_dual_signed(self):
        with self.ferry(relay_networks="127.0.0.0/8") as f:
            msg = (b"From: Sender <sender@pol.test>\r\nTo: out@localhost\r\nSubject: sign me\r\n"
                   b"Date: Mon, 23 Nov 2026 00:00:00 +0000\r\nMessage-ID: <m@pol.test>\r\n\r\nhello\r\n")
            code, lines = self.send(f, "sender@pol.test", "out@localhost", msg)
            self.assertEqual(code, 250, lines)
            qid = lines[0].split()[-1]
            data = open(f.wait_mail("out")[0], "rb").read()
            self.assertEqual(data.count(b"DKIM-Signature:"), 2, data)
            self.assertIn(b"a=rsa-sha256", data)
            self.assertIn(b"a=ed25519-sha256", data)
            # The delivered copy, less the lines local delivery adds, verifies with dkimpy.
            body = data.split(b"\n", 2)[2].replace(b"\n", b"\r\n")
            recs = os.path.join(self.tmp, "recs.json")
            with open(recs, "w") as fh:
                json.dump(self.records, fh)
            r = subprocess.run(ORACLE + ["verify", recs], input=body, capture_output=True)
            self.assertEqual(r.stdout.strip(), b"pass", r.stderr)
            self.assertIn(f"{qid}: dkim: signed", f.read_log())
            # ... and with ferryctl through the real DNS server.
            r = subprocess.run([FERRYCTL, "--resolver", f"127.0.0.1:{self.ns.port}", "dkim", "verify"],
                               input=body, capture_output=True)
            lines = r.stdout.decode().splitlines()
            self.assertEqual(len(lines), 2, r.stdout)
            self.assertTrue(all(l.startswith("dkim=pass header.d=pol.test") for l in lines), r.stdout)

    def test_rotation_switches_once_the_record_is_visible(self):
        with self.ferry(relay_networks="127.0.0.0/8") as f:
            def send(user):
                msg = f"From: a@rot.pol.test\r\nTo: {user}@localhost\r\nSubject: rot\r\n\r\nx\r\n".encode()
                code, lines = self.send(f, "a@rot.pol.test", f"{user}@localhost", msg)
                self.assertEqual(code, 250, lines)
                return open(f.wait_mail(user)[0], "rb").read()
            first = send("rot1")
            self.assertIn(b"s=old;", first)
            from ferrytest import wait_for
            self.assertTrue(wait_for(lambda: "now signs with selector " + self.next_sel in f.read_log(), 10),
                            f.read_log())
            second = send("rot2")
            self.assertIn(f"s={self.next_sel};".encode(), second)
            rot = os.path.join(self.keydir, "rot.pol.test")
            self.assertEqual(open(os.path.join(rot, "active")).read(), self.next_sel + "\n")
            self.assertFalse(os.path.exists(os.path.join(rot, "next")))

    def test_rotation_refused_when_active_is_not_roots(self):
        """An `active` the key process cannot trust (left owned by the smtp user by
        an upgrade, say) is not taken for an empty list: rewriting it would drop
        the other algorithm's selector. The switch is refused and logged, and the
        old selector goes on signing."""
        rot = os.path.join(self.keydir, "rot.pol.test")
        active = os.path.join(rot, "active")
        with open(active) as fh:
            before = fh.read()
        st = os.stat(active)
        os.chown(active, 65534, 65534)
        self.addCleanup(os.chown, active, st.st_uid, st.st_gid)     # the key directory is the class's
        with self.ferry(relay_networks="127.0.0.0/8") as f:
            msg = b"From: a@rot.pol.test\r\nTo: rot3@localhost\r\nSubject: rot\r\n\r\nx\r\n"
            code, lines = self.send(f, "a@rot.pol.test", "rot3@localhost", msg)
            self.assertEqual(code, 250, lines)
            from ferrytest import wait_for
            self.assertTrue(wait_for(lambda: "rot.pol.test/active cannot be used" in f.read_log(), 10),
                            f.read_log()[-3000:])
            with open(active) as fh:
                self.assertEqual(fh.read(), before)
            self.assertTrue(os.path.exists(os.path.join(rot, "next")))
            self.assertNotIn("now signs with selector", f.read_log())

    def dkimpy_verifies(self, delivered):
        return dkimpy_verifies_delivered(delivered, self.records, self.tmp)

    def test_local_submission_is_signed(self):
        with self.ferry() as f:
            r = subprocess.run([os.path.join(BIN, "ferry-sendmail"), "-c", f.conf, "-f", "me@pol.test",
                                "local@localhost"], input=b"From: me@pol.test\nSubject: local\n\nsigned?\n",
                               capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            data = open(f.wait_mail("local")[0], "rb").read()
            self.assertEqual(data.count(b"DKIM-Signature:"), 2, data)
            self.assertTrue(self.dkimpy_verifies(data))
            # Mail from a stranger on port 25 is verified, never signed.
            msg = b"From: me@pol.test\r\nSubject: stranger\r\n\r\nbody\r\n"
            code, lines = self.send(f, "a@pass.pol.test", "stranger@localhost", msg)
            self.assertEqual(code, 250, lines)
            self.assertNotIn(b"DKIM-Signature:", open(f.wait_mail("stranger")[0], "rb").read())


if __name__ == "__main__":
    unittest.main()
