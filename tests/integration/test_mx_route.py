"""delivery/mx against a real nsd: MX preference order and random order among
equal preferences, implicit MX, null MX, NXDOMAIN, SERVFAIL (a scripted server),
timeout, address families, ourselves among the MX hosts, address literals."""
import os
import socket
import struct
import subprocess
import threading
import unittest

from dnsserver import DnsServer
from ferrytest import ROOT

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "mx_route")

ZONE = """$ORIGIN example.test.
$TTL 300
@        IN SOA ns.example.test. hostmaster.example.test. 1 3600 900 604800 60
@        IN NS  ns
ns       IN A   127.0.0.1
@        IN MX  20 mx2
@        IN MX  10 mx1
@        IN MX  30 mx3
mx1      IN A   192.0.2.10
mx1      IN AAAA 2001:db8::10
mx2      IN A   192.0.2.20
mx2      IN A   192.0.2.21
mx3      IN AAAA 2001:db8::30
equal    IN MX  10 e1
equal    IN MX  10 e2
equal    IN MX  10 e3
e1       IN A   192.0.2.101
e2       IN A   192.0.2.102
e3       IN A   192.0.2.103
implicit IN A   192.0.2.50
implicit IN AAAA 2001:db8::50
nullmx   IN MX  0 .
nullmx   IN A   192.0.2.60
noaddr   IN MX  10 nothing
nothing  IN TXT "no address here"
bare     IN TXT "neither MX nor address"
"""


def route(resolver, *domains, family="any", port=25, self_name=None, timeout_ms=1000, rounds=1):
    args = [TOOL, "--resolver", resolver, "--timeout-ms", str(timeout_ms), "--rounds", str(rounds),
            "--family", family, "--port", str(port)]
    if self_name:
        args += ["--self", self_name]
    r = subprocess.run(args + list(domains), capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"mx_route failed ({r.returncode}): {r.stderr}\n{r.stdout}")
    res = {}
    cur = None
    for line in r.stdout.splitlines():
        if line.startswith("  "):
            cur[1].append(line.strip())
        else:
            cur = res[line.split(" ", 1)[0]] = (line, [])
    return res


class ServfailServer:
    """Answers every UDP query with SERVFAIL."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop_flag = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop_flag:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) < 12:
                continue
            qid, flags = struct.unpack(">HH", data[:4])
            # the question only (no EDNS): QDCOUNT 1, the rest 0
            q = data[12:]
            end = q.index(b"\0") + 5
            resp = struct.pack(">HHHHHH", qid, 0x8000 | (flags & 0x0100) | 0x0080 | 2, 1, 0, 0, 0) + q[:end]
            self.sock.sendto(resp, peer)

    def stop(self):
        self.stop_flag = True
        self.thread.join()
        self.sock.close()


class MxRoute(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ns = DnsServer({"example.test": ZONE}).start()
        cls.server = f"127.0.0.1:{cls.ns.port}"

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()

    def test_preference_order_ipv4_first(self):
        r = route(self.server, "example.test", family="ipv4", port=2525)
        head, addrs = r["example.test"]
        self.assertIn("result=ok implicit=0", head)
        self.assertEqual(addrs[0], "mx1.example.test 192.0.2.10 2525")
        self.assertEqual(addrs[1], "mx1.example.test 2001:db8::10 2525")
        self.assertEqual(sorted(addrs[2:4]), ["mx2.example.test 192.0.2.20 2525", "mx2.example.test 192.0.2.21 2525"])
        self.assertEqual(addrs[4:], ["mx3.example.test 2001:db8::30 2525"])

    def test_ipv6_first(self):
        head, addrs = route(self.server, "example.test", family="ipv6")["example.test"]
        self.assertEqual(addrs[:2], ["mx1.example.test 2001:db8::10 25", "mx1.example.test 192.0.2.10 25"])

    def test_equal_preferences_vary(self):
        firsts = set()
        for _ in range(30):
            head, addrs = route(self.server, "equal.example.test")["equal.example.test"]
            self.assertEqual(sorted(a.split()[0] for a in addrs),
                             ["e1.example.test", "e2.example.test", "e3.example.test"])
            firsts.add(addrs[0].split()[0])
        self.assertGreater(len(firsts), 1, "equal-preference MX hosts always came in the same order")

    def test_implicit_mx(self):
        head, addrs = route(self.server, "implicit.example.test", family="ipv4")["implicit.example.test"]
        self.assertIn("result=ok implicit=1", head)
        self.assertEqual(addrs, ["implicit.example.test 192.0.2.50 25", "implicit.example.test 2001:db8::50 25"])

    def test_failures(self):
        r = route(self.server, "nullmx.example.test", "nosuch.example.test", "noaddr.example.test",
                  "bare.example.test")
        self.assertIn("result=fail", r["nullmx.example.test"][0])
        self.assertIn("(5.1.10 ", r["nullmx.example.test"][0])
        self.assertIn("result=fail", r["nosuch.example.test"][0])
        self.assertIn("(5.1.2 ", r["nosuch.example.test"][0])
        self.assertIn("(5.4.4 ", r["noaddr.example.test"][0])
        self.assertIn("(5.1.2 ", r["bare.example.test"][0])
        self.assertIn("implicit=1", r["bare.example.test"][0])
        for _, addrs in r.values():
            self.assertEqual(addrs, [])

    def test_self_among_mx(self):
        r = route(self.server, "example.test", self_name="mx2.example.test")
        self.assertEqual([a.split()[0] for a in r["example.test"][1]], ["mx1.example.test"] * 2)
        r = route(self.server, "example.test", self_name="MX1.example.test")
        self.assertIn("(5.4.6 ", r["example.test"][0])

    def test_literal(self):
        r = route(self.server, "[192.0.2.77]", "[IPv6:2001:db8::77]", "[300.1.1.1]", port=26)
        self.assertEqual(r["[192.0.2.77]"][1], ["[192.0.2.77] 192.0.2.77 26"])
        self.assertEqual(r["[IPv6:2001:db8::77]"][1], ["[IPv6:2001:db8::77] 2001:db8::77 26"])
        self.assertIn("result=fail", r["[300.1.1.1]"][0])

    def test_servfail_defers(self):
        s = ServfailServer()
        try:
            head, addrs = route(f"127.0.0.1:{s.port}", "example.test")["example.test"]
        finally:
            s.stop()
        self.assertIn("result=defer", head)
        self.assertIn("(4.4.3 ", head)

    def test_timeout_defers(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            head, addrs = route(f"127.0.0.1:{silent.getsockname()[1]}", "example.test",
                                timeout_ms=200)["example.test"]
        self.assertIn("result=defer", head)
        self.assertIn("(4.4.3 ", head)


if __name__ == "__main__":
    unittest.main()
