"""What the interop cells share: addresses, the exceptions table, the state the
module setup fills, the cell decorator that records each outcome for
RESULTS.md, and the helpers that submit and find messages on either side.

Addresses (the suite's loopback block 127.0.0.20-29): Exim .20, OpenSMTPD .21,
Ferry .22, nsd .23, Postfix .24, Dovecot (LMTP port 24, and the OpenDKIM milter
of Postfix, port 8891) .25, the mid-DATA cut proxies .26 (port 25 for SMTP, 24 for
LMTP)."""
import email
import email.policy
import os
import re
import signal
import smtplib
import subprocess
import time

from ferrytest import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
DNS_ADDR, FERRY_ADDR, AUX_ADDR, CUT_ADDR = "127.0.0.23", "127.0.0.22", "127.0.0.25", "127.0.0.26"
PEER_ADDR = {"exim": "127.0.0.20", "opensmtpd": "127.0.0.21", "postfix": "127.0.0.24"}
LMTP_PORT = 24
USERS = ["bob", "carol", "sender", "big", "dsn", "dkim", "tls", "eight", "chunk", "bøb"]
FERRY_USERS = ["alice", "bob", "carol", "postmaster"]
RESULTS = os.path.join(HERE, "RESULTS.md")
# Ferry's user for the peers' smart-host relaying (the peer logs in to Ferry's
# submission), and the one each peer's submission knows Ferry by.
RELAY_USER, RELAY_PASS = "relayer", "relay pass 1"
SMART_USER, SMART_PASS = "ferry", "smart pass 2"
DEBIAN_PACKAGE = {"exim": "exim4-daemon-light", "opensmtpd": "opensmtpd", "postfix": "postfix",
                  "dovecot": "dovecot-lmtpd"}

# Peer limits: (case, peer, direction) -> why the cell cannot pass as written.
EXCEPTIONS = {
    ("starttls", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 (Debian, OpenSSL 3) fails every server-side TLS "
                                      "handshake; STARTTLS is not offered (RFC-NOTES.md Interop)",
    ("smtputf8", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 has no SMTPUTF8: it refuses the MAIL parameter",
    ("chunking", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 has no CHUNKING (BDAT)",
    ("chunking", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 has no CHUNKING (BDAT)",
    ("chunking", "postfix", "in"): "Postfix 3.7.11's SMTP client never sends BDAT (CHUNKING is a server "
                                   "feature only): Ferry's transcript shows DATA",
    ("refused-1-of-3", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 bounces as multipart/mixed text, not an RFC 3464 "
                                           "report: checked as text",
    ("dkim", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 has no DKIM verifier: verified by Ferry's own verifier "
                                  "on the copy OpenSMTPD delivered",
    ("dkim", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 cannot sign with DKIM: Ferry's verdict on its mail is "
                                 "dkim=none",
    ("oversize", "opensmtpd", "in"): "OpenSMTPD 6.8.0p2 has one max-message-size for every listener (1M here, "
                                     "for the out cell), below Ferry's 2M: it refuses the message at submission",
    ("smarthost-auth", "opensmtpd", "out"): "OpenSMTPD 6.8.0p2 offers AUTH only after STARTTLS, and its "
                                            "server-side TLS fails: it cannot be Ferry's smart host",
}

state = {}
results = []       # (peer, case, direction, status, reason)


def cell(case, direction, peers=tuple(PEER_ADDR)):
    """Decorate a test(self, peer) into one cell per peer; record its outcome."""
    def wrap(fn):
        def make(peer):
            def test(self):
                key = (case, peer, direction)
                try:
                    fn(self, state["peers"][peer] if peer in state["peers"] else state[peer])
                except Exception as e:
                    results.append((peer, case, direction, "FAIL",
                                    (str(e).splitlines() or [type(e).__name__])[0][:200]))
                    raise
                results.append((peer, case, direction, "exception" if key in EXCEPTIONS else "pass",
                                EXCEPTIONS.get(key, "")))
            test.__name__ = f"test_{case.replace('-', '_')}_{peer}_{direction}"
            return test
        return [make(p) for p in peers]
    return wrap


class InteropMeta(type):
    """Turns each @cell list in a class body into its test methods."""
    def __new__(mcs, name, bases, ns):
        for attr, val in list(ns.items()):
            if isinstance(val, list) and val and callable(val[0]) and val[0].__name__.startswith("test_"):
                del ns[attr]
                for t in val:
                    ns[t.__name__] = t
        return super().__new__(mcs, name, bases, ns)


def package_version(package, unpacked):
    """The Debian version of package: from the unpacked peers' VERSIONS, else dpkg."""
    if package in unpacked:
        return unpacked[package]
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return r.stdout.strip() or "?"


def write_results(unpacked):
    versions = state.get("versions", {})
    lines = ["# Interop results", "",
             "Written by `make interop` (tests/interop/test_interop.py); do not edit by hand.",
             "out: Ferry → peer; in: peer → Ferry. exception: the peer's own limit (RFC-NOTES.md \"Interop\"),",
             "asserted by the cell.", "",
             "Peers: " + ", ".join(f"{v} (Debian {package_version(DEBIAN_PACKAGE[k], unpacked)})"
                                   for k, v in sorted(versions.items())) + ".", "",
             "| peer | case | direction | result | reason |", "|---|---|---|---|---|"]
    if "setup_error" in state:
        lines.append(f"| - | setup | - | FAIL | {state['setup_error'].replace('|', '/')} |")
    for peer, case, direction, status, reason in sorted(results):
        lines.append(f"| {versions.get(peer, peer)} | {case} | {direction} | {status} | {reason.replace('|', '/')} |")
    with open(RESULTS, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def msg(subj, to, frm="alice@ferry.test", body="hello", extra=""):
    return (f"From: {frm}\r\nTo: {to}\r\nSubject: {subj}\r\nMessage-ID: <{subj}.{time.time()}@x>\r\n"
            f"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n{extra}\r\n{body}\r\n")


def kick(peer):
    """Ask a peer whose own retry backoff is minutes (OpenSMTPD) or seconds (Postfix) to retry now."""
    if hasattr(peer, "schedule_all"):
        peer.schedule_all()


class Helpers:
    @property
    def ferry(self):
        return state["ferry"]

    def via_ferry(self, rcpts, data, mail_options=(), rcpt_options=(), sender="alice@ferry.test"):
        """Submit to Ferry from 127.0.0.1 (a relay client); Ferry delivers by MX."""
        with smtplib.SMTP(FERRY_ADDR, 25, timeout=30) as s:
            s.ehlo("client.test")
            return s.sendmail(sender, rcpts, data if isinstance(data, bytes) else data.encode(),
                              mail_options=list(mail_options), rcpt_options=list(rcpt_options))

    def via_peer(self, peer, rcpts, data, mail_options=(), rcpt_options=(), sender=None):
        """Submit to the peer from 127.0.0.1 (on its submission port where it has
        one); the peer delivers to Ferry by MX."""
        with smtplib.SMTP(peer.address, getattr(peer, "submit_port", 25), timeout=30) as s:
            s.ehlo("client.test")
            return s.sendmail(sender or f"sender@{peer.domain}", rcpts,
                              data if isinstance(data, bytes) else data.encode(),
                              mail_options=list(mail_options), rcpt_options=list(rcpt_options))

    def ferry_copies(self, user, marker):
        out = []
        for p in self.ferry.mailbox_files(user):
            with open(p, "rb") as fh:
                data = fh.read()
            if marker.encode() in data:
                out.append(data)
        return out

    def ferry_message(self, user, marker, timeout=30):
        last_kick = [time.time()]

        def find():
            got = self.ferry_copies(user, marker)
            if got:
                return got[0]
            # A peer that met Ferry's 4xx or a cut keeps its route to Ferry in a
            # backoff; ask it to retry now, once a second.
            if time.time() - last_kick[0] > 1:
                last_kick[0] = time.time()
                for p in state["peers"].values():
                    kick(p)
            return None
        got = wait_for(find, timeout, 0.1)
        self.assertTrue(got, f"Ferry has no message {marker!r} for {user}:\n" + self.ferry.read_log()[-4000:])
        return got

    def ferry_trace(self, marker):
        """The transcript (listen option trace=) of Ferry's session that carried marker."""
        for name in sorted(os.listdir(state["trace_dir"])):
            with open(os.path.join(state["trace_dir"], name), "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
            if marker in text:
                return text
        self.fail(f"no transcript of Ferry's carries {marker!r}")

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

    def peer_copies(self, peer, address, marker):
        return [p for p in peer.mailbox_files(address) if marker.encode() in open(p, "rb").read()]

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

    def wait_log(self, pattern, timeout=20):
        """Wait until Ferry's log matches pattern (an LMTP server has the message
        before Ferry has read its reply and logged it)."""
        self.assertTrue(wait_for(lambda: re.search(pattern, self.ferry.read_log()), timeout),
                        f"Ferry's log lacks {pattern!r}:\n" + self.ferry.read_log()[-3000:])

    def assert_lacks(self, peer, extension):
        """The peer's EHLO reply on port 25 does not offer extension."""
        with smtplib.SMTP(peer.address, 25, timeout=10) as c:
            c.ehlo("x")
            self.assertFalse(c.has_extn(extension))

    def uniq(self, case):
        return f"{case}-{int(time.time() * 1000)}"

    def reload_ferry(self, extra):
        """Rewrite Ferry's config with extra appended (or the saved one back) and SIGHUP it."""
        f = self.ferry
        base = state.setdefault("ferry_conf", open(f.conf).read())
        with open(f.conf, "w") as fh:
            fh.write(base + extra)
        n = f.read_log().count("queue process ready")
        f.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: f.read_log().count("queue process ready") > n, 20), f.read_log()[-3000:])
