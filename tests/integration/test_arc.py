"""ARC (RFC 8617) against dkimpy as the oracle, both ways: chains of 1 to 3 sets
sealed by `ferryctl arc sign` (rsa-sha256 and ed25519-sha256), alone or mixed with
dkimpy's sets, verify with dkimpy and with Ferry; chains sealed by dkimpy verify with `ferryctl --resolver ... arc verify` (keys served by a real nsd),
and each tampering case makes Ferry say fail for the reason expected: a body change,
a change to a signed header, a removed set, a wrong instance number, and a hop that
propagates cv=fail. A body change made between two hops leaves the chain passing
with header.oldest-pass naming the first intact set."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import BIN

FERRYCTL = os.path.join(BIN, "ferryctl")
ORACLE = ["/usr/bin/python3", os.path.join(os.path.dirname(os.path.abspath(__file__)), "dkimpy_oracle.py")]
DOMAIN = "arc.test"

MSG = (b"From: Alice <alice@origin.test>\r\n"
       b"To: list@arc.test\r\n"
       b"Subject: ARC oracle\r\n"
       b"Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n"
       b"Message-ID: <arc-1@origin.test>\r\n"
       b"\r\n"
       b"Hello,\r\nforwarded twice.\r\n")


def run(args, data=None, check=True):
    r = subprocess.run(args, input=data, capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r


class Arc(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ferry-arc-")
        cls.key = os.path.join(cls.dir, "py.pem")
        run(["openssl", "genrsa", "-traditional", "-out", cls.key, "2048"])
        pub = run(["openssl", "rsa", "-in", cls.key, "-pubout", "-outform", "DER"]).stdout
        p = base64.b64encode(pub).decode()
        text = "v=DKIM1; k=rsa; p=" + p
        chunks = " ".join(f'"{text[i:i + 200]}"' for i in range(0, len(text), 200))
        records = {f"hop._domainkey.{DOMAIN}": text}
        extra = ""
        cls.fkeys = {}
        for algo, sel in (("rsa-sha256", "frsa"), ("ed25519-sha256", "fed")):
            path = os.path.join(cls.dir, sel + ".key")
            line = run([FERRYCTL, "dkim", "keygen", "--domain", DOMAIN, "--selector", sel, "--out", path,
                        "--algo", algo]).stdout.decode().strip()
            records[f"{sel}._domainkey.{DOMAIN}"] = "".join(re.findall(r'"([^"]*)"', line))
            extra += f"{sel}._domainkey IN TXT " + line.split(" IN TXT ", 1)[1] + "\n"
            cls.fkeys[algo] = (sel, path)
        with open(os.path.join(cls.dir, "records.json"), "w") as f:
            json.dump(records, f)
        zone = (f"$ORIGIN {DOMAIN}.\n$TTL 300\n"
                f"@ IN SOA ns.{DOMAIN}. hostmaster.{DOMAIN}. 1 3600 900 604800 60\n"
                f"@ IN NS ns\nns IN A 127.0.0.1\nhop._domainkey IN TXT {chunks}\n" + extra)
        cls.ns = DnsServer({DOMAIN: zone}).start()

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def seal(self, msg, hop, arc=None):
        """One dkimpy hop: its Authentication-Results (with the arc= it saw), then its set."""
        srv = f"mx{hop}.{DOMAIN}"
        ar = f"Authentication-Results: {srv}; spf=pass smtp.mailfrom=origin.test"
        if arc:
            ar += f"; arc={arc}"
        return run(ORACLE + ["arcsign", "hop", DOMAIN, self.key, srv], ar.encode() + b"\r\n" + msg).stdout

    def ferry_seal(self, msg, hop, cv="none", algo="rsa-sha256"):
        sel, path = self.fkeys[algo]
        return run([FERRYCTL, "arc", "sign", "--domain", DOMAIN, "--selector", sel, "--key", path,
                    "--ar", f"ferry{hop}.{DOMAIN}; spf=pass smtp.mailfrom=origin.test", "--cv", cv], msg).stdout

    def chain(self, n, between=None, sealers="ppp"):
        msg = MSG
        for hop in range(1, n + 1):
            who = sealers[hop - 1]
            if who == "p":
                msg = self.seal(msg, hop, None if hop == 1 else "pass")
            else:
                msg = self.ferry_seal(msg, hop, "none" if hop == 1 else "pass",
                                      "ed25519-sha256" if who == "e" else "rsa-sha256")
            if between and hop < n:
                msg = between(hop, msg)
        return msg

    def ferry(self, msg):
        r = run([FERRYCTL, "--resolver", f"127.0.0.1:{self.ns.port}", "arc", "verify"], msg, check=False)
        out = r.stdout.decode()
        self.assertIn(r.returncode, (0, 1), r.stderr.decode())
        last = out.strip().splitlines()[-1]
        self.assertEqual(r.returncode, 1 if last.startswith("arc=fail") else 0)
        return last, out

    def dkimpy(self, msg):
        return run(ORACLE + ["arcverify", os.path.join(self.dir, "records.json")], msg).stdout.decode().split()[0]

    def test_chains_of_1_to_3_sets_pass(self):
        for n in (1, 2, 3):
            with self.subTest(sets=n):
                msg = self.chain(n)
                self.assertEqual(self.dkimpy(msg), "pass")
                last, out = self.ferry(msg)
                self.assertTrue(last.startswith("arc=pass"), out)
                self.assertIn("header.oldest-pass=0", last)
                self.assertEqual(len(re.findall(r"^set i=\d+:", out, re.M)), n, out)

    def test_ferry_seals_verify_with_dkimpy_and_ferry(self):
        for n in (1, 2, 3):
            for sealers in ("fff", "pfp", "fpf"):
                with self.subTest(sets=n, sealers=sealers[:n]):
                    msg = self.chain(n, sealers=sealers)
                    self.assertEqual(self.dkimpy(msg), "pass")
                    last, out = self.ferry(msg)
                    self.assertTrue(last.startswith("arc=pass"), out)
                    self.assertIn("header.oldest-pass=0", last)
                    tampered = msg.replace(b"forwarded twice.", b"forwarded twice?")
                    self.assertEqual(self.dkimpy(tampered), "fail")
                    self.assertTrue(self.ferry(tampered)[0].startswith("arc=fail"))

    def test_ferry_ed25519_seals_verify_with_ferry(self):
        msg = self.chain(3, sealers="epe")
        last, out = self.ferry(msg)
        self.assertTrue(last.startswith("arc=pass"), out)
        self.assertIn("ed25519-sha256", out)
        self.assertTrue(self.ferry(msg.replace(b"Subject: ARC", b"Subject: arc"))[0].startswith("arc=fail"))

    def test_ferry_seals_cv_fail_over_a_broken_chain(self):
        broken = self.chain(2).replace(b"forwarded twice.", b"changed")
        msg = self.ferry_seal(broken, 3, "fail")
        self.assertIn(b"cv=fail", msg)
        self.assertEqual(self.dkimpy(msg), "fail")
        last, _ = self.ferry(msg)
        self.assertIn("i=3 says cv=fail", last)

    def test_no_chain_is_none(self):
        last, _ = self.ferry(MSG)
        self.assertTrue(last.startswith("arc=none"), last)

    def test_body_change_fails(self):
        msg = self.chain(2).replace(b"forwarded twice.", b"forwarded twice!")
        self.assertEqual(self.dkimpy(msg), "fail")
        last, out = self.ferry(msg)
        self.assertTrue(last.startswith("arc=fail"), out)
        self.assertIn("body hash", last)

    def test_header_change_fails(self):
        msg = self.chain(3).replace(b"Subject: ARC oracle", b"Subject: ARC 0racle")
        self.assertEqual(self.dkimpy(msg), "fail")
        last, out = self.ferry(msg)
        self.assertTrue(last.startswith("arc=fail"), out)
        self.assertIn("AMS i=3", last)

    def test_removed_set_fails(self):
        msg = self.chain(3)
        lines = re.split(rb"\r\n(?![ \t])", msg)
        kept = [l for l in lines if not (re.match(rb"ARC-", l) and re.search(rb"\bi=2;", l))]
        stripped = b"\r\n".join(kept)
        self.assertNotEqual(stripped, msg)
        self.assertEqual(self.dkimpy(stripped), "fail")
        last, out = self.ferry(stripped)
        self.assertTrue(last.startswith("arc=fail"), out)
        self.assertIn("i=2 is missing", last)

    def test_wrong_instance_fails(self):
        msg = self.chain(2)
        # the newest AAR claims instance 3: set 2 incomplete, set 3 incomplete
        bad = msg.replace(b"ARC-Authentication-Results: i=2;", b"ARC-Authentication-Results: i=3;", 1)
        self.assertNotEqual(bad, msg)
        last, out = self.ferry(bad)
        self.assertTrue(last.startswith("arc=fail"), out)
        self.assertIn("i=2 is incomplete", last)

    def test_cv_fail_propagated(self):
        msg = self.seal(self.chain(2), 3, "fail")
        self.assertIn(b"cv=fail", msg)
        self.assertEqual(self.dkimpy(msg), "fail")
        last, out = self.ferry(msg)
        self.assertTrue(last.startswith("arc=fail"), out)
        self.assertIn("i=3 says cv=fail", last)

    def test_body_changed_between_hops_sets_oldest_pass(self):
        def edit(hop, m):
            return m.replace(b"forwarded twice.", b"forwarded twice.\r\n-- \r\nlist footer") if hop == 1 else m
        msg = self.chain(3, edit)
        self.assertEqual(self.dkimpy(msg), "pass")
        last, out = self.ferry(msg)
        self.assertTrue(last.startswith("arc=pass"), out)
        self.assertIn("header.oldest-pass=2", last)
        self.assertRegex(out, r"set i=1: ams=fail")


if __name__ == "__main__":
    unittest.main()
