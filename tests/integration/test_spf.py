"""ferryctl spf check (RFC 7208 check_host()) against a real nsd serving zones
written here: every mechanism, include, redirect, exp, the void-lookup and
10-term limits, DNS failures and timeouts, several records; then an oracle
comparison with Debian's python3-spf on generated (record, ip, sender) cases."""
import json
import os
import random
import socket
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import BIN

FERRYCTL = os.path.join(BIN, "ferryctl")
ORACLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spf_oracle.py")
SYSTEM_PYTHON = "/usr/bin/python3"

HEAD = """$ORIGIN spf.test.
$TTL 300
@        IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 900 604800 60
@        IN NS  ns
ns       IN A   127.0.0.1
host1    IN A   192.0.2.10
host1    IN AAAA 2001:db8::10
host2    IN A   192.0.2.20
host2    IN AAAA 2001:db8:1::20
mx1      IN A   192.0.2.30
mx1      IN AAAA 2001:db8::30
mx2      IN A   198.51.100.7
mx2      IN AAAA 2001:db8:2::7
mxd      IN MX  10 mx1
mxd      IN MX  20 mx2
ptrhost  IN A   192.0.2.77
user.users IN A 127.0.0.2
192.0.2.10.ex IN A 127.0.0.2
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.ex2 IN A 127.0.0.2
77.2.0.192.in-addr.ex2 IN A 127.0.0.2
inc-pass IN TXT "v=spf1 ip4:192.0.2.0/26 ip6:2001:db8::/64 -all"
inc-fail IN TXT "v=spf1 -all"
inc-ip6  IN TXT "v=spf1 ip6:2001:db8:1::/48 ~all"
inc-soft IN TXT "v=spf1 a:host2.spf.test ~all"
red      IN TXT "v=spf1 ip4:198.51.100.0/24 mx:mxd.spf.test -all"
explain  IN TXT "%{i} may not send for %{d} (sender %{s}, helo %{h})"
"""

SPECIFIC = """
all-pass    IN TXT "v=spf1 +all"
all-fail    IN TXT "v=spf1 -all"
all-soft    IN TXT "v=spf1 ~all"
all-neutral IN TXT "v=spf1 ?all"
nothing     IN TXT "v=spf1"
ip4         IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
ip6         IN TXT "v=spf1 ip6:2001:db8::/32 -all"
a           IN TXT "v=spf1 a -all"
a           IN A   192.0.2.50
acidr       IN TXT "v=spf1 a:host1.spf.test/24//64 -all"
mx          IN TXT "v=spf1 mx:mxd.spf.test -all"
mxcidr      IN TXT "v=spf1 mx:mxd.spf.test/24 -all"
ptr         IN TXT "v=spf1 ptr:spf.test -all"
exists      IN TXT "v=spf1 exists:%{i}.ex.spf.test -all"
existsr     IN TXT "v=spf1 exists:%{ir}.%{v}.ex2.spf.test -all"
include     IN TXT "v=spf1 include:inc-pass.spf.test -all"
incfail     IN TXT "v=spf1 include:inc-fail.spf.test ?all"
incnone     IN TXT "v=spf1 include:nowhere.spf.test -all"
redirect    IN TXT "v=spf1 ip4:203.0.113.1 redirect=red.spf.test"
rednone     IN TXT "v=spf1 redirect=nowhere.spf.test"
exp         IN TXT "v=spf1 ip4:203.0.113.1 -all exp=explain.spf.test"
two         IN TXT "v=spf1 -all"
two         IN TXT "v=spf1 +all"
other       IN TXT "not spf" 
other       IN TXT "v=spf1 ip4:192.0.2.1 -all"
void3       IN TXT "v=spf1 a:n1.spf.test a:n2.spf.test a:n3.spf.test +all"
void2       IN TXT "v=spf1 a:n1.spf.test a:n2.spf.test +all"
terms11     IN TXT "v=spf1 a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test +all"
terms10     IN TXT "v=spf1 a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test a:host1.spf.test +all"
syntax      IN TXT "v=spf1 ip4:192.0.2.300 -all"
unknownmech IN TXT "v=spf1 foo:bar -all"
unknownmod  IN TXT "v=spf1 foo=%{d}.bar +all"
broken-inc  IN TXT "v=spf1 include:x.broken.test -all"
heloname    IN TXT "v=spf1 ip4:192.0.2.99 -all"
Case        IN TXT "V=SPF1 IP4:192.0.2.0/24 -ALL"
manymx      IN TXT "v=spf1 mx -all"
emptylabel  IN TXT "v=spf1 a:foo..spf.test ip4:192.0.2.9 -all"
longlabel   IN TXT "v=spf1 a:%{l}.spf.test ip4:192.0.2.9 -all"
toolong     IN TXT "v=spf1 exists:%{l}%{l}%{l}%{l}.spf.test ip4:192.0.2.9 -all"
spacey      IN TXT "v=spf1 exists:%{l}%_x.sp.spf.test -all"
percent     IN TXT "v=spf1 exists:%{l}%%.pc.spf.test -all"
user\\032x.sp IN A 127.0.0.2
user%.pc    IN A 127.0.0.2
"""
MANYMX = "".join(f"manymx IN MX {i} mx1\n" if i == 0 else f"manymx IN MX {i} m{i}\nm{i} IN A 192.0.2.{100 + i}\n"
                 for i in range(11))

REVERSE = """$ORIGIN 2.0.192.in-addr.arpa.
$TTL 300
@  IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 900 604800 60
@  IN NS  ns.spf.test.
10 IN PTR host1.spf.test.
77 IN PTR ptrhost.spf.test.
77 IN PTR forged.spf.test.
"""
BROKEN = "$ORIGIN broken.test.\n@ IN SOA this is not a zone\n"


def empty_zone(origin):
    """A reverse zone with no PTR records: lookups there get NXDOMAIN, not REFUSED."""
    return (f"$ORIGIN {origin}.\n$TTL 300\n@ IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 900 604800 60\n"
            "@ IN NS ns.spf.test.\n")


EMPTY_REVERSE = ["100.51.198.in-addr.arpa", "113.0.203.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa"]


# --- generated oracle cases ---------------------------------------------------
TERMS = [
    "ip4:192.0.2.0/24", "ip4:192.0.2.10", "ip4:198.51.100.0/25", "-ip4:192.0.2.77", "ip6:2001:db8::/64",
    "~ip6:2001:db8:1::/48", "a", "a/24", "a:host1.spf.test", "a:host2.spf.test//48", "a:nohost.spf.test",
    "-a:host1.spf.test/30", "mx", "mx:mxd.spf.test", "mx/24", "?mx:mxd.spf.test//64", "ptr", "ptr:spf.test",
    "~ptr:host1.spf.test", "exists:%{i}.ex.spf.test", "exists:%{ir}.%{v}.ex2.spf.test",
    "exists:%{l}.users.spf.test", "-exists:%{d2}.x.spf.test", "include:inc-pass.spf.test",
    "include:inc-fail.spf.test", "?include:inc-ip6.spf.test", "~include:inc-soft.spf.test",
    "a:%{o}", "ip4:0.0.0.0/0", "-ip6:::/0", "mx:%{d}", "exists:%{h}", "ip4:192.0.2.64/26",
    "A:HOST1.SPF.TEST", "+ip4:198.51.100.7/32", "bogus:term", "ip4:192.0.2.1/33", "a:host1",
]
ENDS = ["-all", "~all", "?all", "+all", "", "redirect=red.spf.test", "exp=explain.spf.test -all",
        "redirect=inc-pass.spf.test"]
IPS = ["192.0.2.10", "192.0.2.20", "192.0.2.30", "192.0.2.77", "192.0.2.200", "198.51.100.7", "198.51.100.200",
       "203.0.113.9", "2001:db8::10", "2001:db8:1::20", "2001:db8:2::7", "2001:db8:ffff::1"]
SENDERS = ["user@{d}", "alice@{d}", "", "postmaster@{d}"]


def generate(n=150, seed=7208):
    rnd = random.Random(seed)
    zone, cases = [], []
    for k in range(n):
        name = f"c{k}"
        terms = rnd.sample(TERMS[:-3] if k % 10 else TERMS, rnd.randint(1, 5))
        rec = " ".join(["v=spf1"] + terms + [rnd.choice(ENDS)]).strip()
        zone.append(f'{name} IN TXT "{rec}"')
        if k % 2 == 0:
            zone.append(f"{name} IN A 192.0.2.{20 if k % 4 == 0 else 200}")
            zone.append(f"{name} IN AAAA 2001:db8:1::20")
            zone.append(f"{name} IN MX 10 mx{1 + k % 2}")
        d = f"{name}.spf.test"
        for _ in range(2):
            sender = rnd.choice(SENDERS).format(d=d)
            helo = d if not sender else rnd.choice(["host1.spf.test", d])
            cases.append((rnd.choice(IPS), sender, helo, rec))
    return "\n".join(zone) + "\n", cases


def ferryctl_spf(port, ip, sender, helo, *extra, config=None):
    args = [FERRYCTL]
    if config:
        args += ["-c", config]
    args += ["--resolver", f"127.0.0.1:{port}", "spf", "check", "--ip", ip, "--helo", helo, "--sender", sender]
    r = subprocess.run(args + list(extra), capture_output=True, text=True, timeout=60)
    return r


class Spf(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gen_zone, cls.cases = generate()
        zone = HEAD + SPECIFIC + MANYMX + cls.gen_zone
        zones = {"spf.test": zone, "2.0.192.in-addr.arpa": REVERSE, "broken.test": BROKEN}
        zones.update({z: empty_zone(z) for z in EMPTY_REVERSE})
        cls.ns = DnsServer(zones).start()

    @classmethod
    def tearDownClass(cls):
        cls.ns.stop()

    def check(self, ip, domain, expect, sender=None, helo="helo.spf.test", *extra):
        r = ferryctl_spf(self.ns.port, ip, sender if sender is not None else f"user@{domain}.spf.test", helo, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], expect, f"{domain} {ip}:\n{r.stdout}")
        return r.stdout

    def test_all_qualifiers(self):
        self.check("192.0.2.1", "all-pass", "pass")
        self.check("192.0.2.1", "all-fail", "fail")
        self.check("192.0.2.1", "all-soft", "softfail")
        self.check("192.0.2.1", "all-neutral", "neutral")
        self.check("192.0.2.1", "nothing", "neutral")
        self.check("192.0.2.1", "nosuch", "none")

    def test_ip_mechanisms(self):
        self.check("192.0.2.44", "ip4", "pass")
        self.check("192.0.3.1", "ip4", "fail")
        self.check("::ffff:192.0.2.44", "ip4", "pass")   # IPv4-mapped is IPv4
        self.check("2001:db8:5::1", "ip6", "pass")
        self.check("2001:db9::1", "ip6", "fail")
        self.check("192.0.2.44", "ip6", "fail")

    def test_a_mx_ptr_exists(self):
        out = self.check("192.0.2.50", "a", "pass")
        self.assertIn("mechanism: a\n", out)
        self.check("192.0.2.51", "a", "fail")
        self.check("192.0.2.200", "acidr", "pass")
        self.check("2001:db8::ffff", "acidr", "pass")
        self.check("2001:db8:0:1::1", "acidr", "fail")
        self.check("198.51.100.7", "mx", "pass")
        self.check("192.0.2.31", "mx", "fail")
        self.check("192.0.2.31", "mxcidr", "pass")
        self.check("192.0.2.10", "ptr", "pass")
        self.check("192.0.2.77", "ptr", "pass")       # ptrhost validates, forged does not
        self.check("192.0.2.11", "ptr", "fail")
        self.check("192.0.2.10", "exists", "pass")
        self.check("192.0.2.11", "exists", "fail")
        self.check("192.0.2.77", "existsr", "pass")
        self.check("2001:db8::1", "existsr", "pass")

    def test_include_redirect_exp(self):
        self.check("192.0.2.5", "include", "pass")
        self.check("192.0.2.100", "include", "fail")
        self.check("192.0.2.5", "incfail", "neutral")     # a fail inside include is "no match"
        self.check("192.0.2.5", "incnone", "permerror")
        out = self.check("198.51.100.9", "redirect", "pass")
        self.assertIn("record: v=spf1 ip4:198.51.100.0/24", out)
        self.check("192.0.2.30", "redirect", "pass")
        self.check("192.0.2.31", "redirect", "fail")
        self.check("192.0.2.1", "rednone", "permerror")
        out = self.check("192.0.2.9", "exp", "fail", "bob@exp.spf.test", "mail.example.org")
        self.assertIn("explanation: 192.0.2.9 may not send for exp.spf.test (sender bob@exp.spf.test, "
                      "helo mail.example.org)\n", out)
        out = self.check("192.0.2.9", "all-fail", "fail")
        self.assertIn("explanation: 192.0.2.9 is not a designated sender for all-fail.spf.test\n", out)

    def test_record_selection_and_syntax(self):
        out = self.check("192.0.2.1", "two", "permerror")
        self.assertIn("more than one", out)
        self.check("192.0.2.1", "other", "pass")
        self.check("192.0.2.2", "other", "fail")
        out = self.check("192.0.2.1", "syntax", "permerror")
        self.assertIn("ip4:192.0.2.300", out)
        out = self.check("192.0.2.1", "unknownmech", "permerror")
        self.assertIn("foo:bar", out)
        self.check("192.0.2.1", "unknownmod", "pass")
        self.check("192.0.2.1", "case", "pass", "user@CASE.SPF.TEST.")

    def test_limits(self):
        out = self.check("192.0.2.1", "void3", "permerror")
        self.assertIn("void", out)
        self.check("192.0.2.1", "void2", "pass")
        out = self.check("192.0.2.1", "terms11", "permerror")
        self.assertIn("more than 10 DNS-querying terms", out)
        self.check("192.0.2.1", "terms10", "pass")
        out = self.check("192.0.2.101", "manymx", "permerror")
        self.assertIn("more than 10 MX", out)

    def test_helo_identity_and_null_sender(self):
        self.check("192.0.2.99", "heloname", "pass", "", "heloname.spf.test")
        self.check("192.0.2.98", "heloname", "fail", "", "heloname.spf.test")
        out = self.check("192.0.2.99", "x", "pass", "user@elsewhere.spf.test", "heloname.spf.test",
                         "--identity", "helo")
        self.assertIn("smtp.helo=heloname.spf.test", out)
        out = self.check("192.0.2.98", "x", "fail", "<>", "heloname.spf.test")
        self.assertIn("envelope-from=\"postmaster@heloname.spf.test\"", out)

    def test_dns_failures_are_temperror(self):
        out = self.check("192.0.2.1", "broken-inc", "temperror")
        self.assertIn("servfail", out)
        # a resolver that never answers: the record lookup times out
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent, \
                tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
            silent.bind(("127.0.0.1", 0))
            conf.write("dns_timeout = 1s\ndns_rounds = 1\n")
            conf.flush()
            r = ferryctl_spf(silent.getsockname()[1], "192.0.2.1", "a@all-pass.spf.test", "h.spf.test",
                             config=conf.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[0], "temperror")
        self.assertIn("timeout", r.stdout)

    def test_usage(self):
        r = subprocess.run([FERRYCTL, "spf", "check", "--ip", "192.0.2.1"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([FERRYCTL, "spf", "check", "--ip", "nope", "--helo", "h", "--sender", "a@b"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)

    def test_unqueryable_targets_do_not_exist(self):
        """RFC 7208 4.3, 4.8, 5: a target that cannot be a DNS name (an empty label, a
        label over 63 octets, a name over 253 after expansion) matches nothing, where it
        was a temperror; a space or '%' in a label is queried as it is. pyspf agrees."""
        long_local = "u" * 64
        cases = [("192.0.2.9", "user@emptylabel.spf.test", "pass"),
                 ("192.0.2.10", "user@emptylabel.spf.test", "fail"),
                 ("192.0.2.9", f"{long_local}@longlabel.spf.test", "pass"),
                 ("192.0.2.10", f"{long_local}@longlabel.spf.test", "fail"),
                 ("192.0.2.9", f"{long_local}@toolong.spf.test", "pass"),
                 ("192.0.2.10", f"{long_local}@toolong.spf.test", "fail"),
                 ("192.0.2.10", "user@spacey.spf.test", "pass"),
                 ("192.0.2.10", "other@spacey.spf.test", "fail"),
                 ("192.0.2.10", "user@percent.spf.test", "pass")]
        for ip, sender, want in cases:
            self.check(ip, None, want, sender)
        req = {"port": self.ns.port, "cases": [[ip, s, "helo.spf.test"] for ip, s, _ in cases]}
        r = subprocess.run([SYSTEM_PYTHON, ORACLE], input=json.dumps(req), capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        theirs = json.loads(r.stdout)
        # Where pyspf 2.0.14 differs, RFC-NOTES.md ("SPF: names that cannot be queried") says why.
        known = {}
        for (ip, s, want), py in zip(cases, theirs):
            if py != want:
                self.assertEqual(known.get((ip, s)), py, f"pyspf says {py} for {ip} <{s}>, Ferry {want}")

    def test_oracle_pyspf(self):
        self.assertTrue(os.path.exists(SYSTEM_PYTHON), "Debian's python3 is needed for python3-spf")
        self.assertGreaterEqual(len(self.cases), 100)
        req = {"port": self.ns.port, "cases": [[ip, s, h] for ip, s, h, _ in self.cases]}
        r = subprocess.run([SYSTEM_PYTHON, ORACLE], input=json.dumps(req), capture_output=True, text=True,
                           timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr)
        theirs = json.loads(r.stdout)
        disagreements = []
        for (ip, s, h, rec), want in zip(self.cases, theirs):
            got = ferryctl_spf(self.ns.port, ip, s, h)
            self.assertEqual(got.returncode, 0, got.stderr)
            word = got.stdout.splitlines()[0]
            if word != want:
                disagreements.append(f"{ip} <{s}> {h} [{rec}]: ferry={word} pyspf={want}\n{got.stdout}")
        self.assertEqual(disagreements, [], "\n".join(disagreements))


if __name__ == "__main__":
    unittest.main()
