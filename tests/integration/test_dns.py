"""The asynchronous DNS client against a real nsd serving a zone the test writes:
every record type Ferry uses, CNAME chains, negative answers, the cache, TCP after
truncation, timeouts and server failover."""
import os
import re
import socket
import subprocess
import time
import unittest

from dnsserver import DnsServer
from ferrytest import BIN, ROOT

PROBE = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "dns_probe")
FERRYCTL = os.path.join(BIN, "ferryctl")

BIG_TXT = "".join(f'big IN TXT "record-{i:03d}-{"x" * 60}"\n' for i in range(40))

ZONE = f"""$ORIGIN example.test.
$TTL 300
@       IN SOA ns.example.test. hostmaster.example.test. 1 3600 900 604800 60
@       IN NS  ns
ns      IN A   127.0.0.1
@       IN A   192.0.2.1
@       IN A   192.0.2.2
@       IN AAAA 2001:db8::25
@       IN MX  10 mx1
@       IN MX  20 mx2.example.test.
mx1     IN A   192.0.2.10
@       IN TXT "v=spf1 ip4:192.0.2.0/24 " "-all"
multi   IN TXT "one"
multi   IN TXT "two"
alias   IN CNAME chain
chain   IN CNAME @
_25._tcp.mx1 IN TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
shortttl 5 IN A 192.0.2.99
{BIG_TXT}"""

REVERSE = """$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@  IN SOA ns.example.test. hostmaster.example.test. 1 3600 900 604800 60
@  IN NS  ns.example.test.
10 IN PTR mx1.example.test.
"""


def probe(port_list, *queries, timeout_ms=1000, rounds=2):
    args = [PROBE]
    for p in port_list:
        args += ["--resolver", p]
    args += ["--timeout-ms", str(timeout_ms), "--rounds", str(rounds)] + list(queries)
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"dns_probe failed ({r.returncode}): {r.stderr}\n{r.stdout}")
    return r.stdout


def answers(out, round_no):
    """Parse the probe's output of one round into {query: (header, [records])}."""
    block = out.split(f"round {round_no}\n", 1)[1].split("round ", 1)[0]
    res = {}
    cur = None
    for line in block.splitlines():
        if not line.startswith("  "):
            q = " ".join(line.split(" ")[:2])
            cur = res[q] = (line, [])
        else:
            cur[1].append(line.strip())
    return res


class DnsClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ns = DnsServer({"example.test": ZONE, "2.0.192.in-addr.arpa": REVERSE}).start()
        cls.server = f"127.0.0.1:{cls.ns.port}"

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()

    def test_record_types_and_cache(self):
        out = probe([self.server], "A:example.test", "AAAA:example.test", "MX:example.test",
                    "TXT:example.test", "TXT:multi.example.test", "PTR:10.2.0.192.in-addr.arpa",
                    "TLSA:_25._tcp.mx1.example.test", "A:alias.example.test", "A:nope.example.test",
                    "MX:mx1.example.test")
        first, second = answers(out, 1), answers(out, 2)
        self.assertIn("status=ok cache=0", first["A example.test"][0])
        self.assertEqual(sorted(first["A example.test"][1]), ["A 192.0.2.1", "A 192.0.2.2"])
        self.assertEqual(first["AAAA example.test"][1], ["AAAA 2001:db8::25"])
        self.assertEqual(sorted(first["MX example.test"][1]), ["MX 10 mx1.example.test", "MX 20 mx2.example.test"])
        # character-strings of one record are joined (RFC 7208 3.3)
        self.assertEqual(first["TXT example.test"][1], ['TXT "v=spf1 ip4:192.0.2.0/24 -all" len=28'])
        self.assertEqual(sorted(first["TXT multi.example.test"][1]), ['TXT "one" len=3', 'TXT "two" len=3'])
        self.assertEqual(first["PTR 10.2.0.192.in-addr.arpa"][1], ["PTR mx1.example.test"])
        self.assertEqual(first["TLSA _25._tcp.mx1.example.test"][1],
                         ["TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"])
        self.assertEqual(sorted(first["A alias.example.test"][1]), ["A 192.0.2.1", "A 192.0.2.2"])
        self.assertIn("status=nxdomain", first["A nope.example.test"][0])
        self.assertIn("status=nodata", first["MX mx1.example.test"][0])
        # the second round comes from the cache, negative answers included
        for q, (head, recs) in second.items():
            self.assertIn("cache=1", head, q)
            self.assertEqual(sorted(recs), sorted(first[q][1]), q)

    def test_truncated_udp_answer_is_completed_over_tcp(self):
        out = probe([self.server], "TXT:big.example.test")
        head, recs = answers(out, 1)["TXT big.example.test"]
        self.assertIn("status=ok", head)
        # ~3.2 KB of records cannot fit the 1232-octet EDNS payload: all 40 arriving
        # means the truncated UDP answer was replaced by the TCP one.
        self.assertEqual(len(recs), 40)
        self.assertEqual(sorted(recs)[0], f'TXT "record-000-{"x" * 60}" len=71')

    def test_timeout_against_silent_server(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            port = silent.getsockname()[1]
            t0 = time.time()
            out = probe([f"127.0.0.1:{port}"], "A:example.test", timeout_ms=300, rounds=2)
            elapsed = time.time() - t0
        head = answers(out, 1)["A example.test"][0]
        self.assertIn("status=timeout", head)
        self.assertGreaterEqual(elapsed, 0.6 * 2 * 0.9)   # two rounds of 300 ms each, twice (2 probe rounds)
        self.assertIn("timed out after 2 rounds over 1 server", out)

    def test_failover_to_second_server(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            dead = f"127.0.0.1:{silent.getsockname()[1]}"
            out = probe([dead, self.server], "MX:example.test", timeout_ms=300, rounds=1)
        head, recs = answers(out, 1)["MX example.test"]
        self.assertIn("status=ok", head)
        self.assertEqual(len(recs), 2)

    def test_refused_zone_is_an_error_not_an_answer(self):
        out = probe([self.server], "A:example.org", timeout_ms=500, rounds=1)
        head = answers(out, 1)["A example.org"][0]
        self.assertIn("status=error", head)
        self.assertIn("REFUSED", out)

    def test_ferryctl_dns(self):
        r = subprocess.run([FERRYCTL, "--resolver", self.server, "dns", "MX", "example.test"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "status=ok ad=0 count=2")
        self.assertEqual(sorted(lines[1:]), ["300 MX 10 mx1.example.test", "300 MX 20 mx2.example.test"])
        r = subprocess.run([FERRYCTL, "--resolver", self.server, "dns", "A", "nope.example.test"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("status=nxdomain"), r.stdout)
        r = subprocess.run([FERRYCTL, "--resolver", self.server, "dns", "BOGUS", "x"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)

    def test_short_ttl_expires_from_cache(self):
        # shortttl has TTL 5: after 6 s the probe's own second round would still hit
        # the cache, so check the TTL is carried through instead of waiting.
        r = subprocess.run([FERRYCTL, "--resolver", self.server, "dns", "A", "shortttl.example.test"],
                           capture_output=True, text=True)
        self.assertRegex(r.stdout, r"\n5 A 192\.0\.2\.99\n")


if __name__ == "__main__":
    unittest.main()
