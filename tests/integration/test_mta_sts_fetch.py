"""MTA-STS policy fetching (RFC 8461 §3.3) through lib/https_fetch (libcurl multi on
a libevent loop), against nginx from Debian on 127.0.0.40:443 with a test CA's
certificate for mta-sts.example.test: a valid policy is fetched and parsed; a
redirect is refused, not followed; a body over 64 KB is cut off as too large; a
certificate from another CA and a certificate for another name are refused; a 404
is an HTTP error; a slow answer does not block the loop (its timer keeps ticking
while another fetch completes) and the time bound stops it."""
import os
import shutil
import subprocess
import tempfile
import unittest

from ferrytest import ROOT
from httpsserver import NginxServer
from tlscerts import make_ca_and_server

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "https_fetch")
ADDR, PORT = "127.0.0.40", 443
HOST = "mta-sts.example.test"
URL = f"https://{HOST}/.well-known/mta-sts.txt"
POLICY = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmx: *.mx.example.test\r\nmax_age: 86400\r\n"


class MtaStsFetch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-sts-")
        cls.ca, cert, key = make_ca_and_server(cls.tmp, name="sts", cn=HOST, ip=ADDR)
        other = os.path.join(cls.tmp, "other")
        os.makedirs(other)
        cls.other_ca, _, _ = make_ca_and_server(other, name="x", cn="x.example.test", ip=ADDR)
        locs = """
        location = /redirect.txt { return 301 https://mta-sts.example.test/.well-known/mta-sts.txt; }
        location = /slow.txt { limit_rate 16k; limit_rate_after 0; }
        """
        cls.srv = NginxServer(cls.tmp, ADDR, PORT, cert, key, locs)
        cls.srv.put(".well-known/mta-sts.txt", POLICY)
        cls.srv.put("big.txt", "version: STSv1\n" + "x: " + "a" * 70000 + "\n")
        cls.srv.put("slow.txt", "a" * 48000)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def fetch(self, *args, ca=None, host=HOST):
        cmd = [TOOL, "--ca", ca or self.ca, "--resolve", f"{host}:{PORT}:{ADDR}"] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout

    def test_policy_fetched_and_parsed(self):
        out = self.fetch("--policy", URL)
        self.assertIn(f"{URL} status=ok http=200 len={len(POLICY)} type=text/plain", out)
        self.assertIn("policy mode=enforce max_age=86400 mx=mx.example.test,*.mx.example.test", out)

    def policy_gets(self):
        with open(os.path.join(self.tmp, "access.log")) as f:
            return f.read().count("GET /.well-known/mta-sts.txt ")

    def test_redirect_refused(self):
        before = self.policy_gets()
        out = self.fetch(f"https://{HOST}/redirect.txt")
        self.assertIn("status=redirect http=301", out)
        self.assertIn("redirects are not followed", out)
        # the redirect's target was never asked for
        self.assertEqual(self.policy_gets(), before)
        self.fetch(URL)
        self.assertEqual(self.policy_gets(), before + 1)     # and the count does see a GET

    def test_too_large(self):
        out = self.fetch(f"https://{HOST}/big.txt")
        self.assertIn("status=too-large", out)
        self.assertIn("response longer than 65536 octets", out)

    def test_untrusted_ca(self):
        out = self.fetch(URL, ca=self.other_ca)
        self.assertIn("status=tls", out)

    def test_wrong_name(self):
        url = "https://mta-sts.other.test/.well-known/mta-sts.txt"
        out = self.fetch(url, host="mta-sts.other.test")
        self.assertIn(f"{url} status=tls", out)

    def test_not_found(self):
        out = self.fetch(f"https://{HOST}/none.txt")
        self.assertIn("status=http-error http=404", out)

    def test_http_scheme_refused(self):
        out = self.fetch(f"http://{HOST}/.well-known/mta-sts.txt")
        self.assertIn("refused", out)

    def test_slow_answer_does_not_block_and_is_bounded(self):
        slow = f"https://{HOST}/slow.txt"
        out = self.fetch("--timeout", "1500", slow, URL).splitlines()
        # the quick one finishes first; the slow one hits the time bound, and the
        # loop's 20 ms timer ran meanwhile
        self.assertTrue(out[0].startswith(f"{URL} status=ok"), out)
        slow_line = [l for l in out if l.startswith(slow)][0]
        self.assertIn("status=timeout", slow_line)
        ticks = int(slow_line.rsplit("ticks=", 1)[1])
        self.assertGreater(ticks, 30)


if __name__ == "__main__":
    unittest.main()
