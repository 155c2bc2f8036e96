"""`ferryctl mta-sts policy` (the receiving side of RFC 8461/8460): with the test
DNS server (nsd) publishing two MX records for pub.test, it prints a policy naming
both MX hosts (lower case, no final dot, one each) in the requested mode and
max_age with CRLF lines, and the _mta-sts and _smtp._tls TXT records; bad
options are usage errors and a domain without MX records an operational one."""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import FERRYCTL

ZONE = ("$TTL 60\n@ IN SOA ns.pub.test. h.pub.test. 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\n"
        "@ IN MX 10 MX1.pub.test.\n@ IN MX 20 mx2.backup.test.\n")
NOMX = "$TTL 60\n@ IN SOA ns.nomx.test. h.nomx.test. 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\n"


class MtaStsCtl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer({"pub.test": ZONE, "nomx.test": NOMX}).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def ctl(self, *args):
        r = subprocess.run([FERRYCTL, "--resolver", f"127.0.0.1:{self.dns.port}", "mta-sts", "policy"] + list(args),
                           capture_output=True, timeout=30)
        # bytes decoded by hand: text mode would turn the policy's CRLF into LF
        return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())

    def test_policy_and_records(self):
        r = self.ctl("--domain", "pub.test", "--mode", "enforce", "--max-age", "1209600")
        self.assertEqual(r.returncode, 0, r.stderr)
        body = r.stdout.split("\n", 1)[1].split("# DNS")[0]
        self.assertEqual(body, "version: STSv1\r\nmode: enforce\r\nmx: mx1.pub.test\r\nmx: mx2.backup.test\r\n"
                               "max_age: 1209600\r\n")
        self.assertRegex(r.stdout, r'\n_mta-sts\.pub\.test\. IN TXT "v=STSv1; id=\d{14}Z"\n')
        self.assertIn('_smtp._tls.pub.test. IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@pub.test"\n', r.stdout)

    def test_defaults_testing_one_week(self):
        r = self.ctl("--domain", "pub.test.")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("mode: testing\r\n", r.stdout)
        self.assertIn("max_age: 604800\r\n", r.stdout)
        self.assertIn("https://mta-sts.pub.test/.well-known/mta-sts.txt", r.stdout)

    def test_errors(self):
        self.assertEqual(self.ctl("--domain", "pub.test", "--mode", "none").returncode, 2)
        self.assertEqual(self.ctl("--domain", "pub.test", "--max-age", "31557601").returncode, 2)
        self.assertEqual(self.ctl("--mode", "enforce").returncode, 2)
        r = self.ctl("--domain", "nomx.test")
        self.assertEqual(r.returncode, 1)
        self.assertIn("nomx.test has no MX host to name", r.stderr)


if __name__ == "__main__":
    unittest.main()
