"""Ferry against Exim 4 and OpenSMTPD, both directions (issue 17, items 1, 2, 5).

One nsd (127.0.0.23:53) serves exim.test, opensmtpd.test and ferry.test (MX, A,
DKIM keys); Exim runs on 127.0.0.20, OpenSMTPD on 127.0.0.21, Ferry on
127.0.0.22, each on port 25 (interop_peers.py). A cell is one test method,
test_<case>_<peer>_<direction>; "out" is Ferry -> peer, "in" is peer -> Ferry.
A cell that a peer's own limit makes impossible asserts that limit instead (so
it still fails if the peer changes) and is reported as an exception with its
reason (RFC-NOTES.md "Interop"). Every run rewrites tests/interop/RESULTS.md."""
import email
import email.policy
import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from dnsserver import DnsServer                                     # noqa: E402
from ferrytest import FERRYCTL, Ferry, make_signing_key, wait_for   # noqa: E402
from interop_peers import EximPeer, OpenSmtpdPeer, package_versions, peers_missing  # noqa: E402
from tlscerts import make_ca_and_server                             # noqa: E402

DNS_ADDR, FERRY_ADDR = "127.0.0.23", "127.0.0.22"
PEER_ADDR = {"exim": "127.0.0.20", "opensmtpd": "127.0.0.21"}
USERS = ["bob", "carol", "sender", "big", "dsn", "dkim", "tls", "eight", "chunk", "bøb"]
FERRY_USERS = ["alice", "bob", "carol", "postmaster"]
RESULTS = os.path.join(HERE, "RESULTS.md")

# Peer limits: (case, peer, direction) -> why the cell cannot pass as written.
EXCEPTIONS = {
    ("starttls", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 (Debian, OpenSSL 3) fails every server-side TLS "
                                      "handshake; STARTTLS is not offered (RFC-NOTES.md Interop)",
    ("smtputf8", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 has no SMTPUTF8: it refuses the MAIL parameter",
    ("chunking", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 has no CHUNKING (BDAT)",
    ("chunking", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 has no CHUNKING (BDAT)",
    ("refused-1-of-3", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 bounces as multipart/mixed text, not an RFC 3464 "
                                           "report: checked as text",
    ("dkim", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 has no DKIM verifier: verified by Ferry's own verifier "
                                  "on the copy OpenSMTPD delivered",
    ("dkim", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 cannot sign with DKIM: Ferry's verdict on its mail is "
                                 "dkim=none",
    ("oversize", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 has one max-message-size for every listener (1M here, "
                                     "for the out cell), below Ferry's 2M: it refuses the message at submission",
}

_state = {}
_results = []       # (peer, case, direction, status, reason)


def zone(origin, body):
    return (f"$ORIGIN {origin}.\n$TTL 60\n@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 900 604800 5\n"
            f"@ IN NS ns\nns IN A {DNS_ADDR}\n" + body)


def txt(value):
    return " ".join('"%s"' % value[i:i + 200] for i in range(0, len(value), 200))


def setUpModule():
    why = peers_missing()
    if why:
        raise RuntimeError("interop peers unavailable: " + why)
    d = _state["dir"] = tempfile.mkdtemp(prefix="ferry-interop-")
    os.chmod(d, 0o755)
    ca, fcert, fkey = make_ca_and_server(d, name="ferry", cn="mx.ferry.test", ip=FERRY_ADDR)
    _, ecert, ekey = make_ca_and_server(d, name="exim", cn="mx.exim.test", ip=PEER_ADDR["exim"])
    _, ocert, okey = make_ca_and_server(d, name="opensmtpd", cn="mx.opensmtpd.test", ip=PEER_ADDR["opensmtpd"],
                                        ec=True)
    _state["ca"] = ca
    keydir, _, ferry_txt = make_signing_key(d, "ferry.test", "ferry1")
    exim = EximPeer(PEER_ADDR["exim"], DNS_ADDR, USERS, ecert, ekey, ca,
                    size_limit="${if eq{$sender_host_address}{127.0.0.1}{4M}{1M}}")
    osmtpd = OpenSmtpdPeer(PEER_ADDR["opensmtpd"], DNS_ADDR, USERS, ocert, okey, ca, size_limit=1048576)
    zones = {
        "ferry.test": zone("ferry.test", f"@ IN MX 10 mx\nmx IN A {FERRY_ADDR}\n"
                                         f"ferry1._domainkey IN TXT {txt(ferry_txt)}\n"),
        "exim.test": zone("exim.test", f"@ IN MX 10 mx\nmx IN A {PEER_ADDR['exim']}\n"
                                       f"exim1._domainkey IN TXT {txt(exim.dkim_txt)}\n"
                                       f"@ IN TXT \"v=spf1 ip4:{PEER_ADDR['exim']} -all\"\n"
                                       "_dmarc IN TXT \"v=DMARC1; p=none\"\n"),
        "opensmtpd.test": zone("opensmtpd.test", f"@ IN MX 10 mx\nmx IN A {PEER_ADDR['opensmtpd']}\n"
                                                 f"@ IN TXT \"v=spf1 ip4:{PEER_ADDR['opensmtpd']} -all\"\n"
                                                 "_dmarc IN TXT \"v=DMARC1; p=none\"\n"),
    }
    _state["dns"] = DnsServer(zones, address=DNS_ADDR, port=53).start()
    f = Ferry(extra=f"hostname = mx.ferry.test\nlisten = smtp {FERRY_ADDR}:25\nresolver = {DNS_ADDR}:53\n"
                    f"smtp_source_ipv4 = {FERRY_ADDR}\ntls_cert = {fcert}\ntls_key = {fkey}\n"
                    f"dkim_key_dir = {keydir}\nmessage_size_limit = 2M\nretry_min = 1h\nretry_max = 2h\n"
                    f"smtp_tls_ca_file = {ca}\nspf_check = yes\ndmarc_check = yes\n",
              domains="ferry.test", local_recipients="known", relay_networks="127.0.0.1/32")
    os.chmod(f.dir, 0o755)
    os.makedirs(f.maildir, exist_ok=True)
    os.chmod(f.maildir, 0o777)
    for u in FERRY_USERS:
        for sub in ("", "new", "cur", "tmp"):
            p = os.path.join(f.maildir, u, sub)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o777)
    _state["ferry"] = f.start()
    _state["peers"] = {"exim": exim.start(), "opensmtpd": osmtpd.start()}
    _state["versions"] = {k: p.version() for k, p in _state["peers"].items()}


def tearDownModule():
    for p in _state.get("peers", {}).values():
        p.cleanup()
    if "ferry" in _state:
        _state["ferry"].cleanup()
    if "dns" in _state:
        _state["dns"].stop()
    if "dir" in _state:
        shutil.rmtree(_state["dir"], ignore_errors=True)
    write_results()


def write_results():
    versions = _state.get("versions", {})
    pkgs = package_versions()
    lines = ["# Interop results", "",
             "Written by `make interop` (tests/interop/test_interop.py); do not edit by hand.",
             "out: Ferry → peer; in: peer → Ferry. exception: the peer's own limit (RFC-NOTES.md \"Interop\"),",
             "asserted by the cell.", "",
             "Peers: " + ", ".join(f"{v} (Debian {pkgs.get('exim4-daemon-light' if k == 'exim' else k, '?')})"
                                   for k, v in sorted(versions.items())) + ".", "",
             "| peer | case | direction | result | reason |", "|---|---|---|---|---|"]
    for peer, case, direction, status, reason in sorted(_results):
        lines.append(f"| {versions.get(peer, peer)} | {case} | {direction} | {status} | {reason.replace('|', '/')} |")
    with open(RESULTS, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def cell(case, direction):
    """Decorate a test(self, peer) into one cell per peer; record its outcome."""
    def wrap(fn):
        def make(peer):
            def test(self):
                key = (case, peer, direction)
                try:
                    fn(self, _state["peers"][peer])
                except Exception as e:
                    _results.append((peer, case, direction, "FAIL",
                                     (str(e).splitlines() or [type(e).__name__])[0][:200]))
                    raise
                _results.append((peer, case, direction, "exception" if key in EXCEPTIONS else "pass",
                                 EXCEPTIONS.get(key, "")))
            test.__name__ = f"test_{case}_{peer}_{direction}"
            return test
        return [make(p) for p in PEER_ADDR]
    return wrap


class InteropMeta(type):
    def __new__(mcs, name, bases, ns):
        for attr, val in list(ns.items()):
            if isinstance(val, list) and val and callable(val[0]) and val[0].__name__.startswith("test_"):
                del ns[attr]
                for t in val:
                    ns[t.__name__] = t
        return super().__new__(mcs, name, bases, ns)


def msg(subj, to, frm="alice@ferry.test", body="hello", extra=""):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subj}\r\nMessage-ID: <{subj}.{time.time()}@x>\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n{extra}\r\n{body}\r\n")


class Interop(unittest.TestCase, metaclass=InteropMeta):
    @property
    def ferry(self):
        return _state["ferry"]

    # -- helpers

    def via_ferry(self, rcpts, data, mail_options=(), rcpt_options=(), sender="alice@ferry.test"):
        """Submit to Ferry from 127.0.0.1 (a relay client); Ferry delivers by MX."""
        with smtplib.SMTP(FERRY_ADDR, 25, timeout=30) as s:
            s.ehlo("client.test")
            return s.sendmail(sender, rcpts, data if isinstance(data, bytes) else data.encode(),
                              mail_options=list(mail_options), rcpt_options=list(rcpt_options))

    def via_peer(self, peer, rcpts, data, mail_options=(), rcpt_options=(), sender=None):
        """Submit to the peer from 127.0.0.1; the peer delivers to Ferry by MX."""
        with smtplib.SMTP(peer.address, 25, timeout=30) as s:
            s.ehlo("client.test")
            return s.sendmail(sender or f"sender@{peer.domain}", rcpts,
                              data if isinstance(data, bytes) else data.encode(),
                              mail_options=list(mail_options), rcpt_options=list(rcpt_options))

    def ferry_message(self, user, marker, timeout=30):
        last_kick = [time.time()]

        def find():
            for p in self.ferry.mailbox_files(user):
                with open(p, "rb") as fh:
                    data = fh.read()
                if marker.encode() in data:
                    return data
            # After Ferry's 4xx (the 4xx-then-accept cell) OpenSMTPD keeps its route
            # to Ferry in a backoff of minutes; ask it to retry now, once a second.
            if time.time() - last_kick[0] > 1:
                last_kick[0] = time.time()
                _state["peers"]["opensmtpd"].schedule_all()
            return None
        got = wait_for(find, timeout, 0.1)
        self.assertTrue(got, f"Ferry has no message {marker!r} for {user}:\n" + self.ferry.read_log()[-4000:])
        return got

    def ferry_verdicts(self, user, marker):
        """The header of the message Ferry delivered, and its Authentication-Results text."""
        head = self.ferry_message(user, marker).split(b"\n\n", 1)[0].decode("utf-8", "replace")
        ar = re.search(r"^Authentication-Results: mx\.ferry\.test;(.*(?:\n\s.*)*)", head, re.M)
        self.assertTrue(ar, head)
        return head, ar.group(1)

    def peer_message(self, peer, address, marker, timeout=30):
        got = peer.wait_message(address, marker, timeout)
        self.assertTrue(got, f"{peer.name} has no message {marker!r} for {address}:\n{peer.log()[-4000:]}\n"
                             f"ferry:\n{self.ferry.read_log()[-3000:]}")
        return got

    def report(self, data, kind="delivery-status"):
        """The message/delivery-status part of a DSN (RFC 3464; kind
        global-delivery-status for RFC 6533), as {field: value} per-message and a
        list of per-recipient dicts; asserts the MIME structure."""
        m = email.message_from_bytes(data, policy=email.policy.compat32)
        self.assertEqual(m.get_content_type(), "multipart/report", data[:2000])
        self.assertEqual(m.get_param("report-type"), kind)
        parts = [p for p in m.walk() if p.get_content_type() == "message/" + kind]
        self.assertEqual(len(parts), 1)
        body = parts[0].get_payload()
        if kind == "global-delivery-status":
            # Python parses message/global-* as one message: the per-message block is
            # its header, the per-recipient blocks its body text.
            inner = body[0] if isinstance(body, list) else email.message_from_string(body)
            text = inner.get_payload(decode=True).decode("utf-8", "replace").replace("\r\n", "\n").strip("\n")
            body = [inner] + [email.message_from_string(b + "\n") for b in re.split(r"\n\s*\n", text) if b.strip()]
        fields = [dict((k.lower(), v) for k, v in b.items()) for b in body]
        return fields[0], fields[1:]

    def uniq(self, case):
        return f"{case}-{int(time.time() * 1000)}"

    # -- cells

    @cell("plain", "out")
    def _plain_out(self, peer):
        s = self.uniq("plain")
        self.via_ferry([f"bob@{peer.domain}"], msg(s, f"bob@{peer.domain}"))
        data = self.peer_message(peer, f"bob@{peer.domain}", s)
        self.assertIn(b"hello", data)
        self.assertRegex(self.ferry.read_log(), rf"to=<bob@{peer.domain}> status=sent .*relay=mx\.{peer.domain}")

    @cell("plain", "in")
    def _plain_in(self, peer):
        s = self.uniq("plain-in")
        self.via_peer(peer, ["alice@ferry.test"], msg(s, "alice@ferry.test", frm=f"sender@{peer.domain}"))
        data = self.ferry_message("alice", s)
        self.assertIn(b"hello", data)
        self.assertIn(f"connect from [{peer.address}]", self.ferry.read_log())

    @cell("starttls", "out")
    def _tls_out(self, peer):
        if peer.name == "opensmtpd":
            with smtplib.SMTP(peer.address, 25, timeout=10) as c:
                c.ehlo("x")
                self.assertFalse(c.has_extn("starttls"))
            return
        s = self.uniq("tls")
        self.via_ferry([f"tls@{peer.domain}"], msg(s, f"tls@{peer.domain}"))
        self.peer_message(peer, f"tls@{peer.domain}", s)
        line = [l for l in self.ferry.read_log().splitlines() if f"to=<tls@{peer.domain}> status=sent" in l][-1]
        self.assertRegex(line, r'tls="TLS=TLSv1\.[23] ')
        self.assertRegex(peer.log(), r"<= alice@ferry.test H=\S+ \[127\.0\.0\.22\] P=esmtps X=TLS1\.[23]:\S+")

    @cell("starttls", "in")
    def _tls_in(self, peer):
        s = self.uniq("tls-in")
        self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}"))
        data = self.ferry_message("bob", s)
        self.assertIn(b"ESMTPS", data)          # the session it came in was TLS (peers reuse sessions)
        self.assertRegex(self.ferry.read_log(), rf"TLS established with \[{peer.address}\]: TLSv1\.[23] \S+")
        if peer.name == "exim":
            self.assertRegex(peer.log(), r"=> alice@ferry.test|=> bob@ferry.test.*X=TLS1\.[23]:\S+ CV=yes")
        else:
            self.assertRegex(peer.log(), r"mta tls ciphers=TLSv1\.[23]")

    @cell("8bitmime", "out")
    def _8bit_out(self, peer):
        s = self.uniq("eight")
        body = "Grüße aus Köln – ça va?"
        self.via_ferry([f"eight@{peer.domain}"],
                       msg(s, f"eight@{peer.domain}", body=body,
                           extra="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 "Content-Transfer-Encoding: 8bit\r\n").encode("utf-8"),
                       mail_options=["BODY=8BITMIME"])
        self.assertIn(body.encode("utf-8"), self.peer_message(peer, f"eight@{peer.domain}", s))

    @cell("8bitmime", "in")
    def _8bit_in(self, peer):
        s = self.uniq("eight-in")
        body = "Grüße aus Köln – ça va?"
        self.via_peer(peer, ["carol@ferry.test"],
                      msg(s, "carol@ferry.test", frm=f"sender@{peer.domain}", body=body,
                          extra="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                "Content-Transfer-Encoding: 8bit\r\n").encode("utf-8"),
                      mail_options=["BODY=8BITMIME"])
        self.assertIn(body.encode("utf-8"), self.ferry_message("carol", s))

    @cell("smtputf8", "out")
    def _utf8_out(self, peer):
        s = self.uniq("utf8")
        rcpt = f"bøb@{peer.domain}"
        self.via_ferry([rcpt], msg(s, rcpt, extra="MIME-Version: 1.0\r\n").encode("utf-8"),
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        if peer.name == "exim":
            self.assertIn(b"hello", self.peer_message(peer, rcpt, s))
            return
        # The peer lacks SMTPUTF8: Ferry bounces (RFC 6531 §3.4) to the sender,
        # with an RFC 6533 report since the message is an SMTPUTF8 one.
        dsn = self.ferry_message("alice", s)
        per_msg, rcpts = self.report(dsn, "global-delivery-status")
        self.assertEqual(rcpts[0]["action"], "failed")
        self.assertTrue(rcpts[0]["status"].startswith("5."), rcpts[0])
        self.assertEqual(peer.mailbox_files(rcpt), [])

    @cell("smtputf8", "in")
    def _utf8_in(self, peer):
        s = self.uniq("utf8-in")
        sender = f"sender@{peer.domain}"
        data = msg(s, "bob@ferry.test", frm=f"Sénder <{sender}>", extra="MIME-Version: 1.0\r\n").encode("utf-8")
        if peer.name == "opensmtpd":
            with self.assertRaises(smtplib.SMTPNotSupportedError):
                self.via_peer(peer, ["bob@ferry.test"], data, mail_options=["SMTPUTF8"])
            return
        self.via_peer(peer, ["bob@ferry.test"], data, mail_options=["SMTPUTF8", "BODY=8BITMIME"],
                      sender=f"sënder@{peer.domain}")
        got = self.ferry_message("bob", s)
        self.assertIn(f"sënder@{peer.domain}".encode("utf-8"), got)
        self.assertIn(b"UTF8SMTP", got)

    @cell("chunking", "out")
    def _chunk_out(self, peer):
        if peer.name == "opensmtpd":
            with smtplib.SMTP(peer.address, 25, timeout=10) as c:
                c.ehlo("x")
                self.assertFalse(c.has_extn("chunking"))
            return
        s = self.uniq("chunk")
        self.via_ferry([f"chunk@{peer.domain}"], msg(s, f"chunk@{peer.domain}"))
        self.peer_message(peer, f"chunk@{peer.domain}", s)
        # Exim's log marks a message received with BDAT with K.
        self.assertRegex(peer.log(), r"<= alice@ferry.test H=\S+ \[127\.0\.0\.22\] .*\bK S=")

    @cell("chunking", "in")
    def _chunk_in(self, peer):
        if peer.name == "opensmtpd":
            with smtplib.SMTP(peer.address, 25, timeout=10) as c:
                c.ehlo("x")
                self.assertFalse(c.has_extn("chunking"))
            return
        s = self.uniq("chunk-in")
        self.via_peer(peer, ["carol@ferry.test"], msg(s, "carol@ferry.test", frm=f"sender@{peer.domain}"))
        self.ferry_message("carol", s)
        self.assertRegex(peer.log(), r"=> carol@ferry.test .*\bK C=")

    @cell("dsn", "out")
    def _dsn_out(self, peer):
        s = self.uniq("dsn")
        envid = s.replace("-", "")
        self.via_ferry([f"dsn@{peer.domain}"], msg(s, f"dsn@{peer.domain}"),
                       mail_options=[f"ENVID={envid}", "RET=HDRS"],
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", f"ORCPT=rfc822;dsn@{peer.domain}"])
        self.peer_message(peer, f"dsn@{peer.domain}", s)
        # The peer reports the delivery to alice@ferry.test, through Ferry.
        per_msg, rcpts = self.report(self.ferry_message("alice", envid, timeout=40))
        self.assertEqual(per_msg.get("original-envelope-id"), envid)
        self.assertEqual(len(rcpts), 1)
        self.assertEqual(rcpts[0]["action"], "delivered")
        self.assertTrue(rcpts[0]["status"].startswith("2."), rcpts[0])
        self.assertIn(f"dsn@{peer.domain}", rcpts[0]["final-recipient"])
        self.assertRegex(rcpts[0].get("original-recipient", ""), rf"rfc822; ?dsn@{peer.domain}")

    @cell("dsn", "in")
    def _dsn_in(self, peer):
        s = self.uniq("dsn-in")
        envid = s.replace("-", "")
        self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"dsn@{peer.domain}"),
                      mail_options=[f"ENVID={envid}", "RET=HDRS"],
                      rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@ferry.test"],
                      sender=f"dsn@{peer.domain}")
        self.ferry_message("bob", s)
        per_msg, rcpts = self.report(self.peer_message(peer, f"dsn@{peer.domain}", envid, timeout=40))
        self.assertEqual(per_msg.get("original-envelope-id"), envid)
        self.assertEqual(rcpts[0]["action"], "delivered")
        self.assertTrue(rcpts[0]["status"].startswith("2."), rcpts[0])
        self.assertIn("bob@ferry.test", rcpts[0]["final-recipient"])

    @cell("refused-1-of-3", "out")
    def _refused_out(self, peer):
        s = self.uniq("refused")
        rcpts = [f"bob@{peer.domain}", f"nosuch@{peer.domain}", f"carol@{peer.domain}"]
        self.via_ferry(rcpts, msg(s, ", ".join(rcpts)))
        self.peer_message(peer, f"bob@{peer.domain}", s)
        self.peer_message(peer, f"carol@{peer.domain}", s)
        per_msg, r = self.report(self.ferry_message("alice", s))
        self.assertEqual([x["final-recipient"] for x in r], [f"rfc822; nosuch@{peer.domain}"])
        self.assertEqual(r[0]["action"], "failed")
        self.assertRegex(r[0]["diagnostic-code"], r"^smtp; 5\d\d ")

    @cell("refused-1-of-3", "in")
    def _refused_in(self, peer):
        s = self.uniq("refused-in")
        rcpts = ["bob@ferry.test", "nosuch@ferry.test", "carol@ferry.test"]
        self.via_peer(peer, rcpts, msg(s, ", ".join(rcpts), frm=f"sender@{peer.domain}"))
        self.ferry_message("bob", s)
        self.ferry_message("carol", s)
        bounce = self.peer_message(peer, f"sender@{peer.domain}", "nosuch@ferry.test", timeout=40)
        if peer.name == "opensmtpd":
            # Its bounce is multipart/mixed text, not an RFC 3464 report (EXCEPTIONS).
            m = email.message_from_bytes(bounce)
            self.assertEqual(m.get_content_type(), "multipart/mixed")
            text = m.get_payload(0).get_payload(decode=True).decode("utf-8", "replace")
            self.assertRegex(text, r"nosuch@ferry\.test[\s\S]*550 5\.1\.1")
            self.assertNotIn("bob@ferry.test", text.split("nosuch@ferry.test")[0][-200:])
            return
        per_msg, r = self.report(bounce)
        self.assertEqual(len(r), 1)
        self.assertIn("nosuch@ferry.test", r[0]["final-recipient"])
        self.assertEqual(r[0]["action"], "failed")
        self.assertIn("550", r[0].get("diagnostic-code", ""))

    @cell("4xx-then-accept", "out")
    def _retry_out(self, peer):
        s = self.uniq("retry")
        rcpt = f"retry-me@{peer.domain}"
        self.via_ferry([rcpt], msg(s, rcpt))
        line = wait_for(lambda: re.search(rf"(\w+): to=<{rcpt}> status=deferred .*451", self.ferry.read_log()), 30)
        self.assertTrue(line, self.ferry.read_log()[-3000:])
        peer.release_retry()
        self.assertEqual(self.ferry.ferryctl("queue", "flush", line.group(1)).returncode, 0)
        self.peer_message(peer, rcpt, s)
        self.assertRegex(self.ferry.read_log(), rf"{line.group(1)}: to=<{rcpt}> status=sent")

    def _reload_ferry(self, extra):
        """Rewrite Ferry's config with extra appended (or the saved one back) and SIGHUP it."""
        f = self.ferry
        base = _state.setdefault("ferry_conf", open(f.conf).read())
        with open(f.conf, "w") as fh:
            fh.write(base + extra)
        n = f.read_log().count("queue process ready")
        f.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: f.read_log().count("queue process ready") > n, 20), f.read_log()[-3000:])

    @cell("4xx-then-accept", "in")
    def _retry_in(self, peer):
        """Ferry greylists the peer once (pull_mode = on: a sender that is not classified
        gets 451 4.7.1 on RCPT); the peer retries and the message arrives exactly once."""
        s = self.uniq("retry-in")
        self._reload_ferry("pull_mode = on\npull_greylist_delay = 2s\n")
        try:
            self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}"))
            greylisted = rf"dmtp greylisted RCPT <bob@ferry\.test> from=<sender@{peer.domain}> \[{peer.address}\]"
            self.assertTrue(wait_for(lambda: re.search(greylisted, self.ferry.read_log()), 30),
                            self.ferry.read_log()[-3000:])

            def arrived():
                if peer.name == "opensmtpd":
                    peer.schedule_all()     # its own backoff is minutes
                return [p for p in self.ferry.mailbox_files("bob") if s.encode() in open(p, "rb").read()]
            self.assertTrue(wait_for(arrived, 40, 1), self.ferry.read_log()[-3000:] + peer.log()[-2000:])
            time.sleep(2)
            self.assertEqual(len(arrived()), 1)     # no duplicate
            self.assertRegex(self.ferry.read_log(), rf"dmtp greylist pass <bob@ferry\.test> from=<sender@{peer.domain}>")
        finally:
            self._reload_ferry("")

    @cell("oversize", "out")
    def _big_out(self, peer):
        s = self.uniq("big")
        body = ("x" * 76 + "\r\n") * 16000      # 1.2 MB: above the peer's 1 MB, below Ferry's 2 MB
        self.via_ferry([f"big@{peer.domain}"], msg(s, f"big@{peer.domain}", body=body))
        per_msg, r = self.report(self.ferry_message("alice", s, timeout=40))
        self.assertEqual(r[0]["action"], "failed")
        # Either the peer refused it (552 to SIZE= or after DATA), or Ferry did not
        # send it at all because the peer's EHLO SIZE is smaller (RFC 1870 §6.1).
        self.assertTrue(r[0]["status"].startswith("5."), r[0])
        self.assertRegex(r[0].get("diagnostic-code", ""), r"^smtp; 552 |5\.3\.4 .* exceeds the limit\s+of host "
                         rf"mx\.{peer.domain}\S* \(SIZE 1048576\)")
        self.assertEqual(peer.mailbox_files(f"big@{peer.domain}"), [])

    @cell("dkim", "out")
    def _dkim_out(self, peer):
        s = self.uniq("dkim")
        self.via_ferry([f"dkim@{peer.domain}"], msg(s, f"dkim@{peer.domain}"))
        data = self.peer_message(peer, f"dkim@{peer.domain}", s)
        self.assertIn(b"DKIM-Signature:", data)
        if peer.name == "exim":
            self.assertRegex(data, rb"Authentication-Results: mx\.exim\.test;\s+dkim=pass header\.d=ferry\.test")
        # Independently: the copy the peer delivered still verifies.
        r = subprocess.run([FERRYCTL, "--resolver", f"{DNS_ADDR}:53", "dkim", "verify"], input=data,
                           capture_output=True)
        self.assertRegex(r.stdout.decode(), r"^dkim=pass header\.d=ferry\.test")

    @cell("dkim", "in")
    def _dkim_in(self, peer):
        s = self.uniq("dkim-in")
        self.via_peer(peer, ["bob@ferry.test"], msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}"))
        head, ar = self.ferry_verdicts("bob", s)
        if peer.name == "exim":
            self.assertIn("DKIM-Signature:", head)
            self.assertRegex(ar, r"dkim=pass header\.d=exim\.test header\.s=exim1")
        else:
            self.assertNotIn("DKIM-Signature:", head)       # EXCEPTIONS: it cannot sign
            self.assertRegex(ar, r"dkim=none")

    @cell("spf-dmarc", "in")
    def _spf_dmarc_in(self, peer):
        """The test's DNS publishes each peer's address as its domain's only SPF sender
        and a DMARC record; Ferry's verdicts are in the Authentication-Results it adds."""
        s = self.uniq("spf-in")
        self.via_peer(peer, ["carol@ferry.test"], msg(s, "carol@ferry.test", frm=f"sender@{peer.domain}"))
        _, ar = self.ferry_verdicts("carol", s)
        self.assertRegex(ar, rf"spf=pass smtp\.mailfrom=sender@{peer.domain}")
        self.assertRegex(ar, rf"dmarc=pass (\(p=none[^)]*\) )?header\.from={peer.domain}")

    @cell("oversize", "in")
    def _big_in(self, peer):
        s = self.uniq("big-in")
        body = ("y" * 76 + "\r\n") * 32000      # 2.5 MB: above Ferry's 2 MB
        data = msg(s, "bob@ferry.test", frm=f"sender@{peer.domain}", body=body)
        if peer.name == "opensmtpd":
            with self.assertRaises(smtplib.SMTPException) as e:   # EXCEPTIONS: its own 1M limit
                self.via_peer(peer, ["bob@ferry.test"], data)
            self.assertIn("5.3.4", str(e.exception))
            return
        self.via_peer(peer, ["bob@ferry.test"], data)
        # The bounce returns the headers, so it carries the subject.
        bounce = self.peer_message(peer, f"sender@{peer.domain}", s, timeout=40)
        per_msg, r = self.report(bounce)
        self.assertEqual(r[0]["action"], "failed")
        self.assertTrue(r[0]["status"].startswith("5."), r[0])
        self.assertIn("bob@ferry.test", r[0]["final-recipient"])
        self.assertFalse(any(s.encode() in open(p, "rb").read() for p in self.ferry.mailbox_files("bob")))


if __name__ == "__main__":
    unittest.main()
