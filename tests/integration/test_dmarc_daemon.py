"""DMARC (RFC 9989) in the daemon, over a real nsd serving the zones written
here: the Domain Owner's reject is refused at the end of DATA with 550 5.7.1,
quarantine is delivered into the mailbox's .Junk folder with an
X-Ferry-Quarantine field, pass and none go to the inbox; every result is in
Authentication-Results and in the message's log line; local policy
(dmarc_enforce, dmarc_trusted_forwarders) overrides with its reason logged; a
DNS failure gives temperror and never refuses; an aligned DKIM pass lets
through what spf_fail_action = data would have refused; our own users are not
evaluated."""
import email
import email.policy
import os
import shutil
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import FERRYCTL, Ferry, SmtpLines, wait_for

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 900 604800 60
@ IN NS ns.test.
ns IN A 127.0.0.1
reject IN TXT "v=spf1 ~all"
_dmarc.reject IN TXT "v=DMARC1; p=reject; rua=mailto:agg@reject.test"
quar IN TXT "v=spf1 ~all"
_dmarc.quar IN TXT "v=DMARC1; p=quarantine"
pass IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.pass IN TXT "v=DMARC1; p=reject"
none IN TXT "v=spf1 ~all"
_dmarc.none IN TXT "v=DMARC1; p=none"
sub.org IN A 192.0.2.1
_dmarc.org IN TXT "v=DMARC1; p=none; sp=reject; aspf=s"
signed IN TXT "v=spf1 -all"
badhelo IN TXT "v=spf1 -all"
_dmarc.signed IN TXT "v=DMARC1; p=reject; adkim=s"
{dkim}
"""


def smtp_send(port, sender, rcpt, message, helo="client.example"):
    """One transaction; returns (code, text) of the reply to the end of data."""
    c = SmtpLines(port)
    c.cmd(f"EHLO {helo}")
    code, text = c.cmd(f"MAIL FROM:<{sender}>")
    if code != 250:
        c.close()
        return code, " ".join(text)
    assert c.cmd(f"RCPT TO:<{rcpt}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    if isinstance(message, str):
        message = message.replace("\n", "\r\n").encode()
    c.send(message + b".\r\n")
    code, text = c.reply()
    c.cmd("QUIT")
    c.close()
    return code, " ".join(text)


def headers(path):
    with open(path, "rb") as fh:
        msg = email.message_from_binary_file(fh, policy=email.policy.compat32)
    return msg


class DmarcDaemon(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-dmarcd-")
        os.chmod(cls.d, 0o755)
        cls.key = os.path.join(cls.d, "signed.key")
        r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", "signed.test", "--selector", "s1",
                            "--out", cls.key], capture_output=True, text=True, check=True)
        txt = r.stdout.split(" IN TXT ", 1)[1].strip()
        cls.ns = DnsServer({"test": ZONE.format(dkim=f"s1._domainkey.signed IN TXT {txt}")}).start()
        resolver = f"127.0.0.1:{cls.ns.port}"
        base = f"resolver = {resolver}\nspf_check = yes\nspf_fail_action = data\ndmarc_check = yes\n"
        cls.f = Ferry(extra=base).start()
        cls.qonly = Ferry(extra=base + "dmarc_enforce = quarantine-only\n").start()
        cls.fwd = Ferry(extra=base + "dmarc_trusted_forwarders = 127.0.0.0/8\n").start()
        cls.nodns = Ferry(extra="spf_check = no\ndmarc_check = yes\n").start()      # every lookup SERVFAILs

    @classmethod
    def tearDownClass(cls):
        for f in (cls.f, cls.qonly, cls.fwd, cls.nodns):
            f.cleanup()
        cls.ns.stop()
        shutil.rmtree(cls.d, ignore_errors=True)

    def results(self, msg):
        return " ".join(v for k, v in msg.items() if k == "Authentication-Results"
                        and v.strip().startswith("mx.example.test;"))

    def junk_files(self, f, user):
        d = os.path.join(f.maildir, user, ".Junk", "new")
        return sorted(os.path.join(d, n) for n in os.listdir(d)) if os.path.isdir(d) else []

    def test_reject_is_refused_with_the_domain_named(self):
        code, text = smtp_send(self.f.port, "a@reject.test", "r1@localhost",
                               "From: a@reject.test\nSubject: forged\n\nbody\n")
        self.assertEqual(code, 550, text)
        self.assertIn("5.7.1", text)
        self.assertIn("reject.test", text)
        self.assertEqual(self.f.mailbox_files("r1"), [])
        self.assertIn("dmarc=fail header.from=reject.test policy=reject disposition=reject", self.f.read_log())

    def test_quarantine_goes_to_junk_with_its_reason(self):
        code, text = smtp_send(self.f.port, "a@quar.test", "q1@localhost",
                               "From: a@quar.test\nSubject: suspicious\n\nbody\n")
        self.assertEqual(code, 250, text)
        self.assertTrue(wait_for(lambda: self.junk_files(self.f, "q1"), 10), self.f.read_log())
        self.assertEqual(self.f.mailbox_files("q1"), [])
        msg = headers(self.junk_files(self.f, "q1")[0])
        self.assertIn("dmarc=fail", msg["X-Ferry-Quarantine"])
        self.assertIn("header.from=quar.test", msg["X-Ferry-Quarantine"])
        self.assertIn("dmarc=fail", self.results(msg))
        self.assertIn("dis=quarantine", self.results(msg))
        self.assertTrue(os.path.exists(os.path.join(self.f.maildir, "q1", ".Junk", "maildirfolder")))

    def test_aligned_spf_pass_goes_to_the_inbox(self):
        code, text = smtp_send(self.f.port, "a@pass.test", "p1@localhost",
                               "From: Someone <someone@pass.test>\nSubject: fine\n\nbody\n")
        self.assertEqual(code, 250, text)
        files = self.f.wait_mail("p1")
        self.assertTrue(files, self.f.read_log())
        msg = headers(files[0])
        self.assertIn("dmarc=pass", self.results(msg))
        self.assertIn("header.from=pass.test", self.results(msg))
        self.assertIsNone(msg["X-Ferry-Quarantine"])
        log = self.f.read_log()
        line = [l for l in log.splitlines() if "from=<a@pass.test>" in l and "size=" in l]
        self.assertTrue(line and "dmarc=pass header.from=pass.test" in line[-1], line)

    def test_helo_fail_still_checks_mail_from_for_dmarc(self):
        # The HELO name's SPF fails; with spf_fail_action = data the MAIL FROM
        # identity must still be checked, or DMARC sees no SPF and rejects mail
        # whose aligned MAIL FROM passes.
        code, text = smtp_send(self.f.port, "a@pass.test", "h1@localhost",
                               "From: someone@pass.test\nSubject: helo fails\n\nbody\n", helo="badhelo.test")
        self.assertEqual(code, 250, text)
        files = self.f.wait_mail("h1")
        self.assertTrue(files, self.f.read_log())
        res = self.results(headers(files[0]))
        self.assertIn("spf=fail", res)
        self.assertIn("smtp.helo=badhelo.test", res)
        self.assertIn("spf=pass", res)
        self.assertIn("spf=pass smtp.mailfrom=a@pass.test", res)
        self.assertIn("dmarc=pass", res)
        self.assertIn("SPF fail not enforced: DMARC passed for pass.test", self.f.read_log())

    def test_p_none_and_subdomain_policy(self):
        code, text = smtp_send(self.f.port, "a@none.test", "n1@localhost", "From: a@none.test\nSubject: n\n\nb\n")
        self.assertEqual(code, 250, text)
        self.assertIn("dmarc=fail", self.results(headers(self.f.wait_mail("n1")[0])))
        # sub.org.test exists; the org's sp=reject applies to it
        code, text = smtp_send(self.f.port, "a@sub.org.test", "n2@localhost",
                               "From: a@sub.org.test\nSubject: n\n\nb\n")
        self.assertEqual(code, 550, text)
        self.assertIn("sub.org.test", text)

    def test_aligned_dkim_pass_overrides_an_spf_fail_at_data(self):
        msg = b"From: a@signed.test\r\nSubject: signed\r\n\r\nsigned body\r\n"
        r = subprocess.run([FERRYCTL, "dkim", "sign", "--domain", "signed.test", "--selector", "s1",
                            "--key", self.key], input=msg, capture_output=True, check=True)
        code, text = smtp_send(self.f.port, "a@signed.test", "s1@localhost", r.stdout)
        self.assertEqual(code, 250, text)
        m = headers(self.f.wait_mail("s1")[0])
        self.assertIn("dkim=pass", self.results(m))
        self.assertIn("dmarc=pass", self.results(m))
        self.assertIn("spf=fail", self.results(m))
        self.assertIn("SPF fail not enforced: DMARC passed for signed.test", self.f.read_log())
        # the same message unsigned: the SPF fail is enforced at the end of DATA
        code, text = smtp_send(self.f.port, "a@signed.test", "s2@localhost", msg)
        self.assertEqual(code, 550, text)

    def test_quarantine_only_turns_reject_into_quarantine(self):
        code, text = smtp_send(self.qonly.port, "a@reject.test", "o1@localhost",
                               "From: a@reject.test\nSubject: x\n\nbody\n")
        self.assertEqual(code, 250, text)
        self.assertTrue(wait_for(lambda: self.junk_files(self.qonly, "o1"), 10), self.qonly.read_log())
        self.assertIn("policy=reject disposition=quarantine override=local_policy", self.qonly.read_log())

    def test_trusted_forwarder_is_recorded_not_enforced(self):
        code, text = smtp_send(self.fwd.port, "a@reject.test", "t1@localhost",
                               "From: a@reject.test\nSubject: x\n\nbody\n")
        self.assertEqual(code, 250, text)
        files = self.fwd.wait_mail("t1")
        self.assertTrue(files)
        self.assertIn("dis=none", self.results(headers(files[0])))
        self.assertIn("disposition=none override=trusted_forwarder", self.fwd.read_log())

    def test_dns_failure_is_temperror_and_accepted(self):
        code, text = smtp_send(self.nodns.port, "a@reject.test", "d1@localhost",
                               "From: a@reject.test\nSubject: x\n\nbody\n")
        self.assertEqual(code, 250, text)
        files = self.nodns.wait_mail("d1")
        self.assertTrue(files, self.nodns.read_log())
        self.assertIn("dmarc=temperror", self.results(headers(files[0])))

    def test_no_from_and_several_domains(self):
        code, text = smtp_send(self.f.port, "a@pass.test", "m1@localhost", "Subject: no from\n\nbody\n")
        self.assertEqual(code, 250, text)
        self.assertIn("dmarc=none", self.results(headers(self.f.wait_mail("m1")[0])))
        # two author domains: no single policy can be honoured, refused (RFC 9989 11.5)
        code, text = smtp_send(self.f.port, "a@pass.test", "m2@localhost",
                               "From: a@pass.test, b@reject.test\nSubject: two\n\nbody\n")
        self.assertEqual(code, 550, text)

    def test_trusted_clients_are_not_evaluated(self):
        # relay_networks: not a stranger, no DMARC verdict
        f = Ferry(extra=f"resolver = 127.0.0.1:{self.ns.port}\ndmarc_check = yes\n",
                  relay_networks="127.0.0.0/8").start()
        try:
            code, text = smtp_send(f.port, "a@reject.test", "u1@localhost",
                                   "From: a@reject.test\nSubject: ours\n\nbody\n")
            self.assertEqual(code, 250, text)
            files = f.wait_mail("u1")
            self.assertTrue(files)
            self.assertNotIn("dmarc=", open(files[0], encoding="latin-1").read())
        finally:
            f.cleanup()


if __name__ == "__main__":
    unittest.main()
