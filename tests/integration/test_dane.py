"""Outbound STARTTLS with DANE (RFC 7672) end to end: tests/tools/tls_probe looks
up TLSA records through Ferry's DNS client behind a validating unbound
(dnssec.DnssecResolver) and runs EHLO + STARTTLS against a real ferryd with a
test CA's certificate. Matching DANE-EE → verified dane-ee; a wrong digest →
unacceptable; all-unusable records → mandatory unauthenticated TLS; no TLSA, or
TLSA in an unsigned zone → plain opportunistic TLS; a bogus signature → defer;
DANE-TA on the test CA with the right and wrong MX name; verify with the CA."""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from dnssec import DnssecResolver
from ferrytest import ROOT, Ferry
from tlscerts import make_ca_and_server

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "tls_probe")


def der_digest(path, what):
    """SHA-256 of the certificate's DER (what='cert') or of its SubjectPublicKeyInfo ('spki')."""
    if what == "cert":
        der = subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], check=True,
                             capture_output=True).stdout
    else:
        pem = subprocess.run(["openssl", "x509", "-in", path, "-pubkey", "-noout"], check=True,
                             capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem, check=True,
                             capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


def zone(origin, port, tlsa_lines):
    text = f"""$ORIGIN {origin}.
$TTL 60
@  IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 900 604800 5
@  IN NS  ns
ns IN A   127.0.0.1
mx IN A   127.0.0.1
"""
    for rd in tlsa_lines:
        text += f"_{port}._tcp.mx IN TLSA {rd}\n"
    return text


class Dane(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-dane-")
        os.chmod(cls.d, 0o755)
        # One certificate naming every MX host of the matching zones.
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d, cn="mx.dane.test")
        # The chain carries the CA: DANE-TA 2 0 1 matches a certificate the server presents.
        cls.chain = os.path.join(cls.d, "chain.pem")
        with open(cls.chain, "w") as out:
            out.write(open(cls.cert).read() + open(cls.ca).read())
        cls.f = Ferry(extra=f"tls_cert = {cls.chain}\ntls_key = {cls.key}\n").start()
        p = cls.f.port
        spki = der_digest(cls.cert, "spki")
        wrong = hashlib.sha256(b"not the key").hexdigest()
        ca_digest = der_digest(cls.ca, "cert")
        bogus_zone = zone("bogus.test", p, [f"3 1 1 {spki}"])
        cls.dns = DnssecResolver(
            signed={
                "dane.test": zone("dane.test", p, [f"3 1 1 {spki}", "1 1 1 " + wrong]),
                "wrong.test": zone("wrong.test", p, [f"3 1 1 {wrong}"]),
                "unusable.test": zone("unusable.test", p, [f"1 1 1 {spki}", f"0 0 1 {ca_digest}"]),
                "nodane.test": zone("nodane.test", p, []),
                "ta.test": zone("ta.test", p, [f"2 0 1 {ca_digest}"]),
            },
            unsigned={"plain.test": zone("plain.test", p, [f"3 1 1 {wrong}"])},
            # Changed after signing: the validator sees a bad signature.
            bogus={"bogus.test": (bogus_zone, lambda s: s.replace(spki, wrong))},
        ).start()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.f.cleanup()
        shutil.rmtree(cls.d, ignore_errors=True)

    def probe(self, host, *args):
        r = subprocess.run([TOOL, "--resolver", self.dns.resolver, *args, host, str(self.f.port)],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 2, r.stderr)
        return r.returncode, r.stdout

    def test_matching_dane_ee(self):
        rc, out = self.probe("mx.dane.test")
        self.assertIn("tlsa status=secure usable=1 total=2", out)
        self.assertIn("level=dane effective=dane", out)
        self.assertRegex(out, r"TLS=TLSv1\.[23] cipher=\S+ peer=mx\.dane\.test auth=dane-ee verified\n")
        self.assertIn("acceptable=yes\nehlo=250", out)
        self.assertEqual(rc, 0, out)

    def test_mismatching_digest_is_not_acceptable(self):
        rc, out = self.probe("mx.wrong.test")
        self.assertIn("effective=dane", out)
        self.assertIn("unverified", out)
        self.assertIn("acceptable=no", out)
        self.assertNotIn("ehlo=", out)
        self.assertEqual(rc, 1, out)

    def test_all_unusable_means_unauthenticated_tls(self):
        rc, out = self.probe("mx.unusable.test")
        self.assertIn("tlsa status=secure usable=0 total=2", out)
        self.assertIn("effective=encrypt", out)
        self.assertIn("auth=none unverified", out)
        self.assertIn("acceptable=yes", out)
        self.assertEqual(rc, 0, out)

    def test_no_tlsa_is_opportunistic(self):
        rc, out = self.probe("mx.nodane.test")
        self.assertIn("tlsa status=none", out)
        self.assertIn("effective=may", out)
        self.assertIn("auth=none unverified", out)
        self.assertIn("acceptable=yes", out)

    def test_unsigned_zone_gets_no_dane(self):
        # Its TLSA record would not match: not being validated, it must not be used at all.
        rc, out = self.probe("mx.plain.test")
        self.assertIn("tlsa status=insecure usable=0 total=0", out)
        self.assertIn("effective=may", out)
        self.assertIn("acceptable=yes", out)
        self.assertEqual(rc, 0, out)

    def test_bogus_signature_defers(self):
        rc, out = self.probe("mx.bogus.test")
        self.assertIn("tlsa status=failed", out)
        self.assertIn("SERVFAIL", out)
        self.assertIn("defer (", out)
        self.assertNotIn("TLS=", out)
        self.assertEqual(rc, 1, out)

    def test_dane_ta_names(self):
        # The certificate names mx.dane.test: wrong for mx.ta.test, unless the
        # next-hop domain given (after a secure MX lookup) is that name.
        rc, out = self.probe("mx.ta.test")
        self.assertIn("effective=dane", out)
        self.assertIn("acceptable=no", out)
        rc, out = self.probe("mx.ta.test", "--nexthop", "mx.dane.test")
        self.assertIn("auth=dane-ta verified", out)
        self.assertIn("acceptable=yes", out)

    def test_verify_with_the_ca(self):
        rc, out = self.probe("mx.dane.test", "--level", "verify", "--ca", self.ca)
        self.assertIn("auth=pkix verified", out)
        self.assertEqual(rc, 0, out)
        rc, out = self.probe("mx.nodane.test", "--level", "verify", "--ca", self.ca)
        self.assertIn("acceptable=no", out)
        self.assertIn("mismatch", out)

    def test_requiretls_without_dane_needs_pkix(self):
        rc, out = self.probe("mx.nodane.test", "--requiretls", "--level", "may")
        self.assertIn("effective=verify", out)
        self.assertIn("acceptable=no", out)
        rc, out = self.probe("mx.dane.test", "--requiretls", "--level", "may")
        self.assertIn("effective=dane", out)
        self.assertIn("acceptable=yes", out)


if __name__ == "__main__":
    unittest.main()
