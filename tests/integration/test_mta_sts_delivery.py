"""MTA-STS applied in remote delivery (RFC 8461 §4, §5): a sending Ferry (source
127.0.0.42) delivers by MX through the test DNS server (nsd) to a receiving Ferry
on 127.0.0.41:25 whose certificate names mx.sts.test; the policies come from nginx
on 127.0.0.40:443 (one certificate for every mta-sts.DOMAIN, from the test CA).
Proves: enforce with a matching MX and a valid certificate delivers, verified,
and the delivery line says mta-sts=enforce; enforce whose policy names no MX of
the domain defers (4.7.5) without connecting; enforce with a certificate not
valid for the MX name defers; testing mode with the same faults delivers and logs
what enforce would have refused; a TLS policy table entry overrides the policy."""
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import Ferry, wait_for
from httpsserver import NginxServer
from test_remote_delivery import delivery_line, wait_status, zone
from tlscerts import make_ca_and_server

WWW, MX, SRC = "127.0.0.40", "127.0.0.41", "127.0.0.42"
MSG = "From: alice@a.test\r\nTo: {to}\r\nSubject: {subj}\r\nMessage-ID: <{subj}@a.test>\r\n\r\nhello {subj}\r\n"
POLICIES = {
    "sts.test": ("enforce", "mx.sts.test"),
    "stsbadmx.test": ("enforce", "mail.stsbadmx.test"),
    "stsbadcert.test": ("enforce", "mx.stsbadcert.test"),
    "ststesting.test": ("testing", "other.ststesting.test"),
    "stsoverride.test": ("enforce", "nothing.stsoverride.test"),
}


def policy(mode, mx):
    return f"version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: 86400\r\n"


def multi_san_cert(d, names):
    """A certificate for every name, signed by the CA make_ca_and_server left in d."""
    key, csr, cert, ext = (os.path.join(d, f"www.{e}") for e in ("key", "csr", "pem", "ext"))
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join(f"DNS:{n}" for n in names) + "\n")
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", f"/CN={names[0]}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(d, "ca.pem"), "-CAkey",
                    os.path.join(d, "ca.key"), "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext],
                   check=True, capture_output=True)
    return cert, key


class MtaStsDelivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-stsdel-")
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d, cn="mx.sts.test", ip=MX)
        wcert, wkey = multi_san_cert(cls.d, [f"mta-sts.{dom}" for dom in POLICIES])
        os.makedirs(os.path.join(cls.d, "nginx"))
        cls.www = NginxServer(os.path.join(cls.d, "nginx"), WWW, 443, wcert, wkey,
                              f"location / {{ root {cls.d}/nginx/www/$host; }}")
        for dom, (mode, mx) in POLICIES.items():
            cls.www.put(f"mta-sts.{dom}/.well-known/mta-sts.txt", policy(mode, mx))
        zones = {}
        for dom in POLICIES:
            mx = "mx.sts.test." if dom == "stsbadmx.test" else "mx"
            zones[dom] = zone(dom, f"@ IN MX 10 {mx}\nmx IN A {MX}\n_mta-sts IN TXT \"v=STSv1; id=1\"\n")
        cls.dns = DnsServer(zones).start()
        cls.b = Ferry(extra=f"listen = smtp {MX}:25\ntls_cert = {cls.cert}\ntls_key = {cls.key}\n"
                            "hostname = mx.sts.test\n", domains=" ".join(POLICIES))
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()
        cls.dns.stop()
        cls.www.stop()
        shutil.rmtree(cls.d, ignore_errors=True)

    def sender(self, extra=""):
        f = Ferry(extra=f"hostname = a.test\nresolver = 127.0.0.1:{self.dns.port}\nsmtp_source_ipv4 = {SRC}\n"
                        f"relay_networks = 127.0.0.0/8\nretry_min = 1h\nretry_max = 2h\n"
                        f"smtp_tls_ca_file = {self.ca}\nmta_sts_test_policy_addr = {WWW}\n" + extra,
                  domains="a.test")
        f.start()
        self.addCleanup(f.cleanup)
        return f

    def send(self, f, rcpt, subj):
        before = set(re.findall(r"(\w{16}): to=<", f.read_log()))
        with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as s:
            s.sendmail("alice@a.test", [rcpt], MSG.format(to=rcpt, subj=subj))
        ids = wait_for(lambda: set(re.findall(r"(\w{16}): to=<", f.read_log())) - before or None, 30)
        self.assertTrue(ids, f.read_log()[-3000:])
        return sorted(ids)[0]

    def received(self, user, subj):
        def find():
            for p in self.b.mailbox_files(user):
                if f"Subject: {subj}".encode() in open(p, "rb").read():
                    return True
            return None
        return wait_for(find, 20)

    def test_enforce_match_delivers_verified(self):
        f = self.sender()
        qid = self.send(f, "bob@sts.test", "sts-ok")
        st = wait_status(f, qid, "bob@sts.test")
        self.assertEqual(st[0], "sent", (st, f.read_log()[-3000:]))
        self.assertTrue(self.received("bob", "sts-ok"))
        line = delivery_line(f, qid, "bob@sts.test")
        self.assertIn("mta-sts=enforce", line)
        self.assertIn("verified", line)
        self.assertIn("mta-sts: sts.test: policy mode=enforce id=1 source=fetched", f.read_log())

    def test_enforce_no_matching_mx_defers(self):
        f = self.sender()
        qid = self.send(f, "bob@stsbadmx.test", "sts-badmx")
        st = wait_status(f, qid, "bob@stsbadmx.test")
        self.assertEqual(st[0], "deferred", st)
        self.assertTrue(st[1].startswith("4.7.5 no MX host of stsbadmx.test matches its MTA-STS policy"), st)
        self.assertIn("MX host mx.sts.test is not in the enforce policy (id 1), skipped", f.read_log())

    def test_enforce_bad_certificate_defers(self):
        f = self.sender()
        qid = self.send(f, "bob@stsbadcert.test", "sts-badcert")
        st = wait_status(f, qid, "bob@stsbadcert.test")
        self.assertEqual(st[0], "deferred", (st, f.read_log()[-3000:]))
        self.assertTrue(st[1].startswith("4."), st)
        self.assertIn("mx.stsbadcert.test", st[1])
        self.assertIn("certificate verify failed", st[1])

    def test_testing_mode_delivers_and_logs(self):
        f = self.sender()
        qid = self.send(f, "bob@ststesting.test", "sts-testing")
        st = wait_status(f, qid, "bob@ststesting.test")
        self.assertEqual(st[0], "sent", (st, f.read_log()[-3000:]))
        self.assertTrue(self.received("bob", "sts-testing"))
        self.assertIn("MX host mx.ststesting.test is not in the testing policy (id 1)", f.read_log())
        self.assertIn("mta-sts=testing", delivery_line(f, qid, "bob@ststesting.test"))

    def test_tls_policy_table_overrides(self):
        pol = os.path.join(self.d, "tls_policy")
        with open(pol, "w") as fp:
            fp.write("stsoverride.test may\n")
        f = self.sender(f"smtp_tls_policy = {pol}\n")
        qid = self.send(f, "bob@stsoverride.test", "sts-override")
        st = wait_status(f, qid, "bob@stsoverride.test")
        self.assertEqual(st[0], "sent", (st, f.read_log()[-3000:]))


if __name__ == "__main__":
    unittest.main()
