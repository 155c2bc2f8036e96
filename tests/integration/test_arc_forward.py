"""ARC sealing on forward, end to end (RFC 8617 §5.1, §7.2.1): two real ferryd
instances on 127.0.0.52-59 and a real nsd serving the zones.

origin.test publishes SPF for 127.0.0.54 only and DMARC p=reject. Its mail reaches
Ferry A (a.test) from 127.0.0.54, where SPF and DMARC pass, and an alias forwards
it to bob at a second Ferry: from A's address (127.0.0.52) SPF fails there and
DMARC fails with it. A seals the forward (i=1, cv=none, its AAR saying dmarc=pass)
with a.test's key through its key process. B (t.test, 127.0.0.53) lists a.test in
arc_trusted_sealers and delivers it with the local_policy override in its
Authentication-Results; B2 (u.test, 127.0.0.55) does not, and refuses it with 550.
dkimpy's arcverify verifies what B received, for a chain of 1 (A's seal alone) and
of 2 (a message dkimpy sealed as list.test before A); with A's key process stopped
the forward is deferred (451), never sent unsealed; an ed25519 seal (a second A
with arc_seal_algorithm = ed25519-sha256) is verified by B alone, as dkimpy's ARC
knows only rsa-sha256. The same forward from an A with
arc_seal = no is refused even by B. Mail A keeps for a local user
only is not sealed; mixed local and remote recipients are (every copy); mail relayed
to a relay_domains domain is sealed."""
import base64
import json
import os
import shutil
import signal
import time
import socket
import subprocess
import tempfile
import unittest

from dnsserver import DnsServer
from ferrytest import DKIMPY_ORACLE, FERRYCTL, Ferry, make_signing_key, wait_for

A_OUT, B_ADDR, B2_ADDR, CLIENT, NS_ADDR = "127.0.0.52", "127.0.0.53", "127.0.0.55", "127.0.0.54", "127.0.0.56"
NOSEAL_OUT, ED_OUT = "127.0.0.57", "127.0.0.58"

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 900 604800 60
@ IN NS ns.test.
ns IN A {ns}
origin IN TXT "v=spf1 ip4:{client} -all"
_dmarc.origin IN TXT "v=DMARC1; p=reject"
relaxed IN TXT "v=spf1 ip4:{client} -all"
_dmarc.relaxed IN TXT "v=DMARC1; p=none"
list IN TXT "v=spf1 ip4:{client} -all"
t IN MX 10 mx.t
r IN MX 10 mx.t
mx.t IN A {b}
u IN MX 10 mx.u
mx.u IN A {b2}
seal._domainkey.a IN TXT {a_key}
sealed._domainkey.a IN TXT {a_ed}
hop._domainkey.list IN TXT {list_key}
"""

MSG = ("From: Alice <alice@{dom}>\r\n"
       "To: {to}\r\n"
       "Subject: {subj}\r\n"
       "Date: Mon, 02 Jun 2025 10:00:00 +0000\r\n"
       "Message-ID: <{subj}@{dom}>\r\n"
       "\r\n"
       "Hello,\r\nthis is {subj}, forwarded.\r\n")


def send(port, sender, rcpts, data):
    """SMTP from the origin's address (SPF passes there); returns (code, text)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(CLIENT, 0))
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            line = f.readline().decode()
            lines.append(line.strip())
            if len(line) < 4 or line[3] != "-":
                return int(line[:3]), " ".join(lines)

    def cmd(c):
        s.sendall(c.encode() + b"\r\n")
        return reply()

    try:
        reply()
        cmd("EHLO mail.origin.test")
        assert cmd(f"MAIL FROM:<{sender}>")[0] == 250
        for r in rcpts:
            code, text = cmd(f"RCPT TO:<{r}>")
            assert code == 250, text
        assert cmd("DATA")[0] == 354
        s.sendall(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        res = reply()
        cmd("QUIT")
        return res
    finally:
        s.close()


def rsa_record(path):
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", path, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def quoted(text):
    return " ".join(f'"{text[i:i + 200]}"' for i in range(0, len(text), 200))


def header_of(data):
    return data.split(b"\n\n", 1)[0].decode(errors="replace")


class ArcForward(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="ferry-arcfwd-")
        os.chmod(cls.dir, 0o755)
        cls.keydir, _, a_text = make_signing_key(cls.dir, "a.test", "seal")
        # an ed25519 key beside it, active too: arc_seal_algorithm picks one of the two
        ed = os.path.join(cls.keydir, "a.test", "sealed.key")
        line = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", "a.test", "--selector", "sealed", "--out", ed,
                               "--algo", "ed25519-sha256"], capture_output=True, text=True, check=True).stdout
        ed_quoted = line.split(" IN TXT ", 1)[1].strip()
        os.chmod(ed, 0o644)
        with open(os.path.join(cls.keydir, "a.test", "active"), "a") as fh:
            fh.write("sealed\n")
        cls.list_key = os.path.join(cls.dir, "list.pem")
        list_text = rsa_record(cls.list_key)
        cls.records = {"seal._domainkey.a.test": a_text, "hop._domainkey.list.test": list_text,
                       "sealed._domainkey.a.test": "".join(p.strip('"') for p in ed_quoted.split('" "'))}
        cls.ns = DnsServer({"test": ZONE.format(ns=NS_ADDR, client=CLIENT, b=B_ADDR, b2=B2_ADDR,
                                                a_key=quoted(a_text), list_key=quoted(list_text),
                                                a_ed=ed_quoted)},
                           address=NS_ADDR).start()
        resolver = f"resolver = {NS_ADDR}:{cls.ns.port}\n"
        checks = "spf_check = yes\nspf_fail_action = data\ndmarc_check = yes\n"
        aliases = os.path.join(cls.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write("fwdt: bob@t.test\nfwdu: bob@u.test\nfwdt2: bob2@t.test\nboth: \\both, both@t.test\n"
                     "lfwd: carol\n")
        os.chmod(aliases, 0o644)
        cls.b = Ferry(extra=resolver + checks + f"listen = smtp {B_ADDR}:25\nhostname = mx.t.test\n"
                      "arc_trusted_sealers = a.test\n", domains="t.test r.test").start()
        cls.b2 = Ferry(extra=resolver + checks + f"listen = smtp {B2_ADDR}:25\nhostname = mx.u.test\n",
                       domains="u.test").start()
        cls.a = Ferry(extra=resolver + checks + f"hostname = mx.a.test\nsmtp_source_ipv4 = {A_OUT}\n"
                      f"dkim_key_dir = {cls.keydir}\nalias_file = {aliases}\nrelay_domains = r.test\n"
                      "retry_min = 1h\nretry_max = 2h\n", domains="a.test").start()
        # the same forwarder with arc_seal = no, for the case the seal is what B trusts
        cls.a0 = Ferry(extra=resolver + checks + f"hostname = mx.a.test\nsmtp_source_ipv4 = {NOSEAL_OUT}\n"
                       f"dkim_key_dir = {cls.keydir}\nalias_file = {aliases}\narc_seal = no\n"
                       "retry_min = 1h\nretry_max = 2h\n", domains="a.test").start()
        # and with arc_seal_algorithm = ed25519-sha256
        cls.ae = Ferry(extra=resolver + checks + f"hostname = mx.a.test\nsmtp_source_ipv4 = {ED_OUT}\n"
                       f"dkim_key_dir = {cls.keydir}\nalias_file = {aliases}\n"
                       "arc_seal_algorithm = ed25519-sha256\nretry_min = 1h\nretry_max = 2h\n",
                       domains="a.test").start()

    @classmethod
    def tearDownClass(cls):
        for f in (cls.a, cls.a0, cls.ae, cls.b, cls.b2):
            f.cleanup()
        cls.ns.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def mail(self, f, user, subj, timeout=40):
        """The message with this subject in user's Maildir at f (bytes), or fail."""
        def find():
            for p in f.mailbox_files(user):
                with open(p, "rb") as fh:
                    data = fh.read()
                if f"Subject: {subj}\n".encode() in data:
                    return data
            return None
        data = wait_for(find, timeout)
        self.assertTrue(data, f"no {subj} for {user}\nA:\n{self.a.read_log()[-4000:]}\nB:\n{f.read_log()[-3000:]}")
        return data

    def dkimpy_arc(self, delivered):
        """dkimpy's arc_verify over a message as local delivery wrote it (less
        Return-Path and Delivered-To, LF line ends)."""
        body = delivered.split(b"\n", 2)[2].replace(b"\n", b"\r\n")
        recs = os.path.join(self.dir, "records.json")
        with open(recs, "w") as fh:
            json.dump(self.records, fh)
        r = subprocess.run(DKIMPY_ORACLE + ["arcverify", recs], input=body, capture_output=True)
        return r.stdout.decode().strip()

    def bounced(self, sender, addr, receiver):
        """The forwarder's delivery line saying addr bounced (the receiver refused it)."""
        lines = wait_for(lambda: [l for l in sender.read_log().splitlines()
                                  if f"to=<{addr}>" in l and "status=bounced" in l], 40)
        self.assertTrue(lines, sender.read_log()[-4000:] + receiver.read_log()[-3000:])
        return lines[0]

    def our_ar(self, data, authserv):
        """The Authentication-Results field authserv wrote, unfolded."""
        h = header_of(data).replace("\n\t", " ").replace("\n ", " ")
        found = [l for l in h.split("\n") if l.startswith(f"Authentication-Results: {authserv};")]
        self.assertEqual(len(found), 1, h)
        return " ".join(found[0].split())

    def test_trusted_sealer_delivers(self):
        code, text = send(self.a.port, "alice@origin.test", ["fwdt@a.test"],
                          MSG.format(dom="origin.test", to="fwdt@a.test", subj="trusted-fwd").encode())
        self.assertEqual(code, 250, text)
        data = self.mail(self.b, "bob", "trusted-fwd")
        h = header_of(data)
        self.assertIn("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=a.test; s=seal;", h)
        self.assertIn("ARC-Authentication-Results: i=1; mx.a.test;", h)
        self.assertRegex(h.replace("\n\t", " "), r"ARC-Authentication-Results: i=1; mx\.a\.test;.*dmarc=pass")
        ar = self.our_ar(data, "mx.t.test")
        self.assertIn("spf=fail", ar)
        self.assertIn("arc=pass", ar)
        self.assertIn("dmarc=fail", ar)
        self.assertIn("dis=none", ar)
        self.assertIn("(override=local_policy: arc sealer a.test (dmarc=pass))", ar)
        log = self.b.read_log()
        self.assertIn("policy=reject disposition=none override=local_policy (arc sealer a.test (dmarc=pass))", log)
        self.assertIn("SPF fail not enforced: arc sealer a.test (dmarc=pass)", log)
        self.assertRegex(self.a.read_log(), r"arc: sealed for forwarding d=a\.test s=seal cv=none")
        # the oracle: dkimpy verifies the chain of one set A added
        self.assertTrue(self.dkimpy_arc(data).startswith("pass"), self.dkimpy_arc(data))

    def test_untrusted_receiver_rejects(self):
        code, text = send(self.a.port, "alice@origin.test", ["fwdu@a.test"],
                          MSG.format(dom="origin.test", to="fwdu@a.test", subj="untrusted-fwd").encode())
        self.assertEqual(code, 250, text)
        line = self.bounced(self.a, "bob@u.test", self.b2)
        self.assertIn("550", line)
        self.assertIn("DMARC policy of origin.test is reject", line)
        self.assertIn("dmarc=fail header.from=origin.test policy=reject disposition=reject", self.b2.read_log())
        self.assertEqual(self.b2.mailbox_files("bob"), [])

    def test_unsealed_forward_rejected_by_trusting_receiver(self):
        # arc_seal = no: the same forward reaches B with no chain, and B's trust in
        # a.test has nothing to act on
        code, text = send(self.a0.port, "alice@origin.test", ["fwdt@a.test"],
                          MSG.format(dom="origin.test", to="fwdt@a.test", subj="unsealed").encode())
        self.assertEqual(code, 250, text)
        self.assertIn("DMARC policy of origin.test is reject", self.bounced(self.a0, "bob@t.test", self.b))
        self.assertNotIn("arc: sealed", self.a0.read_log())

    def test_ed25519_seal(self):
        code, text = send(self.ae.port, "alice@origin.test", ["fwdt@a.test"],
                          MSG.format(dom="origin.test", to="fwdt@a.test", subj="ed-fwd").encode())
        self.assertEqual(code, 250, text)
        data = self.mail(self.b, "bob", "ed-fwd")
        self.assertIn("ARC-Seal: i=1; a=ed25519-sha256; cv=none; d=a.test; s=sealed;", header_of(data))
        ar = self.our_ar(data, "mx.t.test")
        self.assertIn("arc=pass", ar)
        self.assertIn("override=local_policy: arc sealer a.test (dmarc=pass)", ar)
        # B (Ferry) is the verifier here: dkimpy's ARC code knows rsa-sha256 only
        # (test_arc.py checks ed25519 seals with Ferry for the same reason).

    def test_stopped_key_process_defers_the_forward(self):
        # a seal the key process cannot make now: 451, never forwarded unsealed
        keys = self.ae.child_by_role("keys")
        os.kill(keys, signal.SIGSTOP)
        try:
            code, text = send(self.ae.port, "alice@origin.test", ["fwdt@a.test"],
                              MSG.format(dom="origin.test", to="fwdt@a.test", subj="stalled").encode())
        finally:
            os.kill(keys, signal.SIGCONT)
        self.assertEqual(code, 451, text)
        self.assertIn("arc: not sealed", self.ae.read_log())
        # The smtp process does not ask a key process that timed out again for
        # KEYPROC_BACKOFF_SECONDS (5 s: smtpd/keyproc.h, the circuit breaker).
        time.sleep(6)
        code, text = send(self.ae.port, "alice@origin.test", ["fwdt@a.test"],
                          MSG.format(dom="origin.test", to="fwdt@a.test", subj="resumed").encode())
        self.assertEqual(code, 250, text)
        self.assertIn("ARC-Seal: i=1; a=ed25519-sha256;", header_of(self.mail(self.b, "bob", "resumed")))
        for path in self.b.mailbox_files("bob"):
            with open(path, "rb") as fh:
                self.assertNotIn(b"Subject: stalled\n", fh.read())

    def test_chain_of_two(self):
        # dkimpy seals first as list.test (its AAR: SPF passed there); the list sends
        # to A, whose own verification finds that chain passing: A adds i=2, cv=pass.
        msg = MSG.format(dom="relaxed.test", to="fwdt2@a.test", subj="chain-two").encode()
        head = b"Authentication-Results: mx.list.test; spf=pass smtp.mailfrom=relaxed.test\r\n"
        sealed = subprocess.run(DKIMPY_ORACLE + ["arcsign", "hop", "list.test", self.list_key, "mx.list.test"],
                                input=head + msg, capture_output=True, check=True).stdout
        code, text = send(self.a.port, "bounces@list.test", ["fwdt2@a.test"], sealed)
        self.assertEqual(code, 250, text)
        data = self.mail(self.b, "bob2", "chain-two")
        h = header_of(data)
        self.assertIn("ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=a.test; s=seal;", h)
        self.assertIn("ARC-Seal: i=1;", h)
        self.assertIn("arc=pass", self.our_ar(data, "mx.t.test"))
        self.assertRegex(self.a.read_log(), r"arc: sealed for forwarding d=a\.test s=seal cv=pass")
        self.assertTrue(self.dkimpy_arc(data).startswith("pass"), self.dkimpy_arc(data))

    def test_local_only_not_sealed(self):
        # an alias to a local mailbox, and a plain local user: nothing forwarded
        code, text = send(self.a.port, "alice@origin.test", ["lfwd@a.test", "dave@a.test"],
                          MSG.format(dom="origin.test", to="lfwd@a.test", subj="local-only").encode())
        self.assertEqual(code, 250, text)
        for user in ("carol", "dave"):
            h = header_of(self.mail(self.a, user, "local-only"))
            self.assertNotIn("ARC-", h)
            self.assertIn("arc=none", h)

    def test_mixed_recipients_sealed_every_copy(self):
        code, text = send(self.a.port, "alice@origin.test", ["both@a.test"],
                          MSG.format(dom="origin.test", to="both@a.test", subj="mixed").encode())
        self.assertEqual(code, 250, text)
        local = header_of(self.mail(self.a, "both", "mixed"))
        remote = self.mail(self.b, "both", "mixed")
        self.assertIn("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=a.test;", local)
        self.assertIn("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=a.test;", header_of(remote))
        self.assertTrue(self.dkimpy_arc(remote).startswith("pass"))

    def test_relay_domain_sealed(self):
        # relay_domains: A takes mail for r.test on port 25 and relays it to its MX (B)
        code, text = send(self.a.port, "alice@origin.test", ["rel@r.test"],
                          MSG.format(dom="origin.test", to="rel@r.test", subj="relayed").encode())
        self.assertEqual(code, 250, text)
        data = self.mail(self.b, "rel", "relayed")
        self.assertIn("ARC-Seal: i=1; a=rsa-sha256; cv=none; d=a.test;", header_of(data))
        self.assertIn("override=local_policy: arc sealer a.test (dmarc=pass)", self.our_ar(data, "mx.t.test"))


if __name__ == "__main__":
    unittest.main()
