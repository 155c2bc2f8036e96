"""ferryctl dmp check / dmp record against a real nsd: each worked example of
draft-fecyk-dmp-02 §5.2-5.12 with the draft's outcome, the wildcard pitfall of
§4 (NXDOMAIN below an existing node), IPv6 nibble names, and the record output."""
import os
import subprocess
import unittest

from dnsserver import DnsServer
from ferrytest import BIN

FERRYCTL = os.path.join(BIN, "ferryctl")

# example.com: participant, wildcard deny, 192.0.2.1 allowed (§4.1);
# sender.example.com: participant host designating 192.0.2.1 (§4.1), wildcard deny.
EXAMPLE_COM = """$ORIGIN example.com.
$TTL 300
@ IN SOA ns.example.com. hostmaster.example.com. 1 3600 900 604800 60
@ IN NS ns
ns IN A 127.0.0.1
_smtp-client TXT "dmp="
*._smtp-client TXT "dmp=deny"
1.2.0.192.in-addr._smtp-client TXT "dmp=allow"
; the wildcard cannot answer below 2.0.192.in-addr._smtp-client (which exists):
; the examples' "dmp=deny" for .5 and .7 are explicit records
5.2.0.192.in-addr._smtp-client TXT "dmp=deny"
7.2.0.192.in-addr._smtp-client TXT "dmp=deny"
_smtp-client.sender TXT "dmp="
*._smtp-client.sender TXT "dmp=deny"
1.2.0.192.in-addr._smtp-client.sender TXT "dmp=allow"
0.F.E.D.C.B.A.9.8.7.6.5.4.3.2.1.1.0.0.0.1.1.A.C.1.C.0.0.5.4.3.2.ip6._smtp-client TXT "DMP=ALLOW"
"""
# othersender.example.org designates 192.0.2.5 only (example 5.3); no wildcard, so
# 192.0.2.7 gets NXDOMAIN there (5.11, 5.12).
EXAMPLE_ORG = """$ORIGIN example.org.
$TTL 300
@ IN SOA ns.example.com. hostmaster.example.com. 1 3600 900 604800 60
@ IN NS ns.example.com.
_smtp-client.othersender TXT "dmp="
5.2.0.192.in-addr._smtp-client.othersender TXT "dmp=allow"
"""
# example.net: a participant without wildcard (5.12: NXDOMAIN plus "dmp=");
# nodmp.net takes no part at all (5.7, 5.8).
EXAMPLE_NET = """$ORIGIN example.net.
$TTL 300
@ IN SOA ns.example.com. hostmaster.example.com. 1 3600 900 604800 60
@ IN NS ns.example.com.
_smtp-client TXT "dmp="
1.2.0.192.in-addr._smtp-client TXT "dmp=allow"
_smtp-client.sender TXT "dmp="
*._smtp-client.sender TXT "dmp=deny"
conflict._smtp-client TXT "x"
7.2.0.192.in-addr._smtp-client.conflict TXT "dmp=allow"
7.2.0.192.in-addr._smtp-client.conflict TXT "dmp=deny"
_smtp-client.conflict TXT "dmp="
"""
NODMP = """$ORIGIN nodmp.test.
$TTL 300
@ IN SOA ns.example.com. hostmaster.example.com. 1 3600 900 604800 60
@ IN NS ns.example.com.
@ IN TXT "v=spf1 -all"
"""
BROKEN = "$ORIGIN broken.test.\n@ IN SOA not a zone\n"


class Dmp(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ns = DnsServer({"example.com": EXAMPLE_COM, "example.org": EXAMPLE_ORG, "example.net": EXAMPLE_NET,
                            "nodmp.test": NODMP, "broken.test": BROKEN}).start()

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()

    def dmp(self, ip, sender, helo, *extra):
        args = [FERRYCTL, "--resolver", f"127.0.0.1:{self.ns.port}", "dmp", "check", "--ip", ip,
                "--sender", sender, "--helo", helo] + list(extra)
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        fields = dict(line.split(": ", 1) for line in lines[1:])
        return lines[0], fields, r.stdout

    def expect(self, ip, sender, helo, word, code, *extra):
        got, fields, out = self.dmp(ip, sender, helo, *extra)
        self.assertEqual((got, fields["smtp"]), (word, str(code)), out)
        return fields

    def test_5_2_participating_domain_user_and_client(self):
        f = self.expect("192.0.2.1", "user@example.com", "sender.example.com", "pass", 250)
        self.assertEqual(f["tier"], "domain")
        self.assertIn("verified as authorized sender for example.com", f["reason"])

    def test_5_3_forwarder_on_participating_host(self):
        f = self.expect("192.0.2.5", "user@example.com", "othersender.example.org", "pass", 250)
        self.assertEqual(f["tier"], "helo")
        self.assertIn("5.2.0.192.in-addr._smtp-client.example.com: deny", f["lookups"])

    def test_5_4_null_reverse_path_participating_host(self):
        f = self.expect("192.0.2.1", "<>", "sender.example.com", "pass", 250)
        self.assertEqual(f["name"], "sender.example.com")

    def test_5_5_null_reverse_path_deny(self):
        f = self.expect("192.0.2.7", "<>", "sender.example.com", "deny", 550)
        self.assertIn("not permitted to send for sender.example.com", f["reason"])

    def test_5_6_null_reverse_path_nxdomain_participant(self):
        # sender.example.net has a wildcard deny, so use a participant without a
        # record for 192.0.2.7 and no wildcard: othersender.example.org
        f = self.expect("192.0.2.7", "<>", "othersender.example.org", "deny", 550)
        self.assertIn("_smtp-client.othersender.example.org: participant", f["lookups"])

    def test_5_7_non_participating_domain_accepted(self):
        f = self.expect("192.0.2.1", "user@nodmp.test", "sender.example.com", "none", 250)
        self.assertIn("not verified", f["reason"])
        # the same with "accept non-DMP domains" off goes on to the HELO tier
        self.expect("192.0.2.1", "user@nodmp.test", "sender.example.com", "pass", 250, "--strict")
        self.expect("192.0.2.9", "user@nodmp.test", "sender.example.com", "deny", 550, "--strict")

    def test_5_8_null_reverse_path_non_participating_host(self):
        f = self.expect("192.0.2.1", "<>", "host.nodmp.test", "none", 250)
        self.assertEqual(f["tier"], "helo")
        self.expect("192.0.2.1", "<>", "host.nodmp.test", "deny", 550, "--strict")

    def test_5_9_servfail_is_temporary(self):
        f = self.expect("192.0.2.1", "user@broken.test", "sender.example.com", "temperror", 451)
        self.assertIn("after 2 tries", f["lookups"])   # tried more than once (§5.9 NOTE)

    def test_5_10_domain_deny_helo_servfail(self):
        f = self.expect("192.0.2.7", "user@example.com", "host.broken.test", "temperror", 451)
        self.assertIn("host.broken.test", f["name"])

    def test_5_11_domain_deny_helo_nxdomain(self):
        f = self.expect("192.0.2.7", "user@example.com", "othersender.example.org", "deny", 550)
        self.assertIn("may not send for example.com", f["reason"])

    def test_5_12_domain_participant_nxdomain_helo_nxdomain(self):
        f = self.expect("192.0.2.7", "user@example.net", "othersender.example.org", "deny", 550)
        self.assertIn("_smtp-client.example.net: participant", f["lookups"])
        self.assertIn("may not send for example.net", f["reason"])

    def test_wildcard_does_not_cover_below_existing_nodes(self):
        # 1.2.0.192.in-addr._smtp-client.example.com exists, so a query for
        # 5.2.0.192... gets NXDOMAIN, not the *._smtp-client "deny" (RFC 1034 4.3.2):
        # only the participant lookup tells the domain takes part.
        # once any in-addr record exists, in-addr._smtp-client is an existing node and
        # the wildcard answers nothing below it, for any network
        f = self.expect("198.51.100.1", "user@example.com", "x.nodmp.test", "deny", 550)
        self.assertIn("1.100.51.198.in-addr._smtp-client.example.com: NXDOMAIN", f["lookups"])
        f = self.expect("192.0.2.9", "user@example.com", "x.nodmp.test", "deny", 550)
        self.assertIn("9.2.0.192.in-addr._smtp-client.example.com: NXDOMAIN", f["lookups"])
        self.assertIn("_smtp-client.example.com: participant", f["lookups"])

    def test_ipv6_nibbles_and_case(self):
        f = self.expect("2345:c1:ca11:1:1234:5678:9abc:def0", "user@example.com", "x.nodmp.test", "pass", 250)
        self.assertEqual(f["tier"], "domain")
        self.expect("2345:c1:ca11:1:1234:5678:9abc:def1", "user@example.com", "x.nodmp.test", "deny", 550)

    def test_conflicting_records_are_invalid(self):
        f = self.expect("192.0.2.7", "<>", "conflict.example.net", "deny", 550)
        self.assertIn("no valid DMP record", f["lookups"])

    def test_local_sender_and_no_helo_tier(self):
        f = self.expect("192.0.2.7", "root@localhost", "x.nodmp.test", "none", 250)
        self.assertEqual(f["tier"], "local")
        self.expect("192.0.2.5", "user@example.com", "othersender.example.org", "deny", 550, "--no-helo")

    def test_record_output(self):
        r = subprocess.run([FERRYCTL, "dmp", "record", "--domain", "example.com", "--ip", "192.0.2.1", "--ip",
                            "2345:00C1:CA11:0001:1234:5678:9ABC:DEF0"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), [
            '_smtp-client.example.com. IN TXT "dmp="',
            '*._smtp-client.example.com. IN TXT "dmp=deny"',
            '1.2.0.192.in-addr._smtp-client.example.com. IN TXT "dmp=allow"',
            '0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.1.0.0.0.1.1.a.c.1.c.0.0.5.4.3.2.ip6._smtp-client.example.com. '
            'IN TXT "dmp=allow"',
        ])
        r = subprocess.run([FERRYCTL, "dmp", "record", "--domain", "example.com", "--ip", "nope"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([FERRYCTL, "dmp", "check", "--ip", "192.0.2.1"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
