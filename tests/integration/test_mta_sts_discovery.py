"""MTA-STS discovery and its cache (RFC 8461 §3, §5.1) through delivery/mta_sts.c as
the queue process runs it (tests/tools/mta_sts_probe): the _mta-sts TXT record
from the real test DNS server (nsd), the policy from nginx on 127.0.0.40:443 with
the test CA, the cache in a Berkeley DB environment. Proves: a first lookup
fetches and caches; the next uses the cache without an HTTPS request; a new TXT
id makes it refetch; a failed fetch keeps the cached policy (and names
sts-policy-fetch-error); near expiry a lookup refreshes in the background; no
TXT record and nothing cached means no policy; a policy host with a certificate
from an unknown CA is sts-webpki-invalid; a policy served as text/html is
sts-policy-invalid."""
import os
import shutil
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import ROOT
from httpsserver import NginxServer
from tlscerts import make_ca_and_server

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "mta_sts_probe")
ADDR = "127.0.0.40"
T0 = 1_800_000_000
ENFORCE = "version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n"
TESTING = "version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 86400\n"


def zone(txt):
    rec = f'_mta-sts IN TXT "{txt}"\n' if txt else ""
    return ("$TTL 60\n@ IN SOA ns.example.test. host.example.test. 1 3600 600 86400 60\n"
            "@ IN NS ns.example.test.\nns IN A 127.0.0.1\n" + rec)


class MtaStsDiscovery(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ferry-stsd-")
        self.ca, cert, key = make_ca_and_server(self.tmp, name="sts", cn="mta-sts.example.test", ip=ADDR)
        other = os.path.join(self.tmp, "other")
        os.makedirs(other)
        self.other_ca, _, _ = make_ca_and_server(other, name="x", cn="x.example.test", ip=ADDR)
        self.data = os.path.join(self.tmp, "data")
        os.makedirs(self.data)
        os.makedirs(os.path.join(self.tmp, "nginx"))
        self.cert, self.key = cert, key
        self.www = NginxServer(os.path.join(self.tmp, "nginx"), ADDR, 443, cert, key)
        self.dns = None
        self.set_txt("v=STSv1; id=one")

    def tearDown(self):
        self.www.stop()
        if self.dns:
            self.dns.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def set_txt(self, txt):
        port = self.dns.port if self.dns else None
        if self.dns:
            self.dns.stop()
        self.dns = DnsServer({"example.test": zone(txt)}, port=port)
        self.dns.start()

    def gets(self):
        with open(os.path.join(self.www.dir, "access.log")) as f:
            return f.read().count("GET /.well-known/mta-sts.txt ")

    def probe(self, now, ca=None, linger=None):
        cmd = [TOOL, "--dns", f"127.0.0.1:{self.dns.port}", "--data", self.data, "--ca", ca or self.ca,
               "--addr", ADDR, "--now", str(now)]
        if linger:
            cmd += ["--linger", str(linger)]
        out = subprocess.run(cmd + ["example.test"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def test_cache_refetch_fallback(self):
        self.www.put(".well-known/mta-sts.txt", ENFORCE)
        out = self.probe(T0)
        self.assertTrue(out.startswith("example.test applies=1 source=fetched mode=enforce id=one mx=mx.example.test "
                                       "failure=-"), out)
        self.assertEqual(self.gets(), 1)
        # the same id an hour later: the cache, no request
        out = self.probe(T0 + 3600)
        self.assertIn("applies=1 source=cached mode=enforce id=one", out)
        self.assertEqual(self.gets(), 1)
        # the TXT record gone: the cached policy still applies
        self.set_txt(None)
        self.assertIn("source=cached mode=enforce id=one", self.probe(T0 + 3700))
        self.assertEqual(self.gets(), 1)
        # a new id: refetched, the new policy replaces the old
        self.set_txt("v=STSv1; id=two")
        self.www.put(".well-known/mta-sts.txt", TESTING)
        out = self.probe(T0 + 7200)
        self.assertIn("applies=1 source=fetched mode=testing id=two mx=*.example.test failure=-", out)
        self.assertEqual(self.gets(), 2)
        # another id, and the policy host answers 404: the cached policy is kept
        self.set_txt("v=STSv1; id=three")
        os.unlink(os.path.join(self.www.root, ".well-known/mta-sts.txt"))
        out = self.probe(T0 + 7300)
        self.assertIn("applies=1 source=fallback mode=testing id=two mx=*.example.test "
                      "failure=sts-policy-fetch-error detail=HTTP status 404", out)
        self.assertEqual(self.gets(), 3)
        # past the cached policy's expiry, with the fetch still failing: no policy
        out = self.probe(T0 + 7200 + 86400)
        self.assertIn("applies=0 source=none", out)
        self.assertIn("failure=sts-policy-fetch-error", out)

    def test_proactive_refresh(self):
        self.www.put(".well-known/mta-sts.txt", ENFORCE)
        self.assertIn("source=fetched", self.probe(T0))
        # less than a quarter of max_age left: answered from the cache, refreshed behind
        out = self.probe(T0 + 70000, linger=1500)
        self.assertIn("source=cached mode=enforce id=one", out)
        self.assertEqual(self.gets(), 2)
        # the refresh restarted max_age: after the first fetch's expiry it is still cached
        out = self.probe(T0 + 90000)
        self.assertIn("source=cached mode=enforce id=one", out)
        self.assertEqual(self.gets(), 2)

    def test_no_record_no_policy(self):
        self.set_txt(None)
        self.www.put(".well-known/mta-sts.txt", ENFORCE)
        self.assertIn("applies=0 source=none mode=- id=- mx= failure=-", self.probe(T0))
        self.assertEqual(self.gets(), 0)
        # a malformed record is no record either
        self.set_txt("v=STSv1; id=bad-id")
        self.assertIn("applies=0 source=none", self.probe(T0))
        self.assertEqual(self.gets(), 0)

    def test_untrusted_policy_host(self):
        self.www.put(".well-known/mta-sts.txt", ENFORCE)
        out = self.probe(T0, ca=self.other_ca)
        self.assertIn("applies=0 source=none", out)
        self.assertIn("failure=sts-webpki-invalid", out)

    def test_not_text_plain(self):
        # the same policy served as text/html is refused (RFC 8461 §3.2's media type check)
        self.www.stop()
        self.www = NginxServer(os.path.join(self.tmp, "nginx"), ADDR, 443, self.cert, self.key,
                               "location = /.well-known/mta-sts.txt { types { } default_type text/html; }")
        self.www.put(".well-known/mta-sts.txt", ENFORCE)
        out = self.probe(T0)
        self.assertIn("applies=0 source=none", out)
        self.assertIn("failure=sts-policy-invalid detail=policy served as text/html", out)
        self.assertEqual(self.gets(), 1)


if __name__ == "__main__":
    unittest.main()
