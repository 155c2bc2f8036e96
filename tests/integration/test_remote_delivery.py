"""Remote delivery end to end: a sending Ferry (A, 127.0.0.2) routes by MX through
a real resolver (unbound in front of nsd, dnssec.DnssecResolver) to a receiving
Ferry (B, 127.0.0.3:25) or to scripted servers on other loopback addresses.

Covered: MX delivery with opportunistic STARTTLS, null MX (5.1.10), NXDOMAIN
(5.1.2), SERVFAIL (4.4.3, from a zone whose signatures are broken), every MX
down (4.4.1, deferred), per-recipient 250/450/550 from one transaction (one
delivered, one deferred, one bounced with the server's reply in the DSN),
connection reuse under a per-destination concurrency of 1, a per-destination
rate limit, DANE (matching TLSA delivers, mismatching defers) and a smart host
with AUTH over STARTTLS (right and wrong password)."""
import email
import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from dnssec import DnssecResolver
from ferrytest import FERRYCTL, Ferry, wait_for
from peers import DovecotLmtp, PostfixPeer
from test_dane import der_digest
from tlscerts import make_ca_and_server

A_ADDR, B_ADDR = "127.0.0.2", "127.0.0.3"
MSG = "From: alice@a.test\r\nTo: {to}\r\nSubject: {subj}\r\nMessage-ID: <{subj}@a.test>\r\n\r\nhello {subj}\r\n"


def zone(origin, body):
    return (f"$ORIGIN {origin}.\n$TTL 60\n@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 900 604800 5\n"
            f"@ IN NS ns\nns IN A 127.0.0.1\n" + body)


class ScriptedServer:
    """An SMTP server on addr:25 answering RCPT from a table (default 250)."""

    def __init__(self, addr, rcpt_replies):
        self.replies = rcpt_replies
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, 25))
        self.sock.listen(5)
        self.sock.settimeout(0.2)
        self.messages = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.session(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def session(self, conn):
        conn.settimeout(10)
        f = conn.makefile("rb")
        conn.sendall(b"220 scripted.test ESMTP\r\n")
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-scripted.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n")
            elif verb == b"MAIL":
                conn.sendall(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                addr = line.decode().split("<", 1)[1].split(">", 1)[0]
                reply = self.replies.get(addr, "250 2.1.5 ok")
                conn.sendall(reply.encode() + b"\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                data = b""
                while not data.endswith(b"\r\n.\r\n"):
                    chunk = f.readline()
                    if not chunk:
                        return
                    data += chunk
                self.messages.append(data)
                conn.sendall(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            else:
                conn.sendall(b"250 2.0.0 ok\r\n")

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def log_results(f, qid):
    """to=<addr> → (status, text) from the last delivery line for each recipient."""
    out = {}
    for m in re.finditer(qid + r": to=<([^>]*)> status=(\w+) .*?\((.*)\)$", f.read_log(), re.M):
        out[m.group(1)] = (m.group(2), m.group(3))
    return out


def wait_status(f, qid, addr, timeout=20):
    return wait_for(lambda: log_results(f, qid).get(addr), timeout)


def delivery_line(f, qid, addr):
    """The last log line of the attempts for addr."""
    return [l for l in f.read_log().splitlines() if qid + f": to=<{addr}>" in l][-1]


class RemoteDelivery(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-remote-")
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d, cn="mx.b.test")
        _, cls.pf_cert, cls.pf_key = make_ca_and_server(cls.d, name="postfix", cn="mx.pf.test")
        _, cls.smart_cert, cls.smart_key = make_ca_and_server(cls.d, name="smart", cn="smart.pf.test")
        _, cls.bad_cert, cls.bad_key = make_ca_and_server(cls.d, name="other", cn="mx.b.test")
        digest = der_digest(cls.cert, "spki")
        wrong = der_digest(cls.bad_cert, "spki")
        cls.dns = DnssecResolver(
            signed={
                "dane.test": zone("dane.test", f"@ IN MX 10 mx\nmx IN A {B_ADDR}\n_25._tcp.mx IN TLSA 3 1 1 {digest}\n"),
                "danebad.test": zone("danebad.test",
                                     f"@ IN MX 10 mx\nmx IN A {B_ADDR}\n_25._tcp.mx IN TLSA 3 1 1 {wrong}\n"),
            },
            unsigned={
                "b.test": zone("b.test", f"@ IN MX 10 mx\nmx IN A {B_ADDR}\nrelay IN MX 10 mx\n"),
                "nullmx.test": zone("nullmx.test", "@ IN MX 0 .\n"),
                "down.test": zone("down.test", "@ IN MX 10 mx1\n@ IN MX 20 mx2\nmx1 IN A 127.0.0.5\n"
                                               "mx2 IN A 127.0.0.6\n"),
                "mixed.test": zone("mixed.test", "@ IN MX 10 mx\nmx IN A 127.0.0.9\n"),
                "pf.test": zone("pf.test", "@ IN MX 10 mx\nmx IN A 127.0.0.4\nsmart IN A 127.0.0.8\n"),
            },
            bogus={
                # The MX record changed after signing: its RRSIG no longer verifies,
                # so the validating resolver answers SERVFAIL.
                "broken.test": (zone("broken.test", f"@ IN MX 10 mx\nmx IN A {B_ADDR}\n"),
                                lambda t: re.sub(r"(IN\s+MX\s+)10", r"\g<1>20", t)),
            }).start()
        # B: the receiver, port 25 on its own address, STARTTLS with the test CA's certificate.
        cls.b = Ferry(extra=f"listen = smtp {B_ADDR}:25\nlisten = submission {B_ADDR}:587\n"
                            f"listen = smtps {B_ADDR}:465\ntls_cert = {cls.cert}\ntls_key = {cls.key}\n"
                            "hostname = mx.b.test\n",
                      domains="b.test dane.test danebad.test")
        for user, pw in (("relayuser", "s3cret pass"),):
            r = subprocess.run([FERRYCTL, "-c", cls.b.conf, "user", "add", user], input=pw + "\n",
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        subprocess.run([FERRYCTL, "-c", cls.b.conf, "user", "addr", "relayuser", "add", "@a.test"], check=True)
        cls.b.start()

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()
        cls.dns.stop()
        shutil.rmtree(cls.d, ignore_errors=True)

    def sender(self, extra=""):
        f = Ferry(extra=f"hostname = a.test\nresolver = {self.dns.resolver}\nsmtp_source_ipv4 = {A_ADDR}\n"
                        f"relay_networks = 127.0.0.0/8\nretry_min = 1h\nretry_max = 2h\n" + extra,
                  domains="a.test")
        f.start()
        self.addCleanup(f.cleanup)
        return f

    def assert_deferred(self, f, qid, addr, prefix):
        """addr was deferred with a text starting with prefix, and is still queued."""
        st = wait_status(f, qid, addr)
        self.assertEqual(st[0], "deferred", st)
        self.assertTrue(st[1].startswith(prefix), st)
        self.assertIn(qid + ".msg", f.queue_files())

    def send_and_qid(self, f, rcpts, subj):
        before = set(re.findall(r"(\w{16}): to=<", f.read_log()))
        with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as s:
            s.sendmail("alice@a.test", rcpts, MSG.format(to=", ".join(rcpts), subj=subj))
        # The first delivery line names the new ID.
        ids = wait_for(lambda: set(re.findall(r"(\w{16}): to=<", f.read_log())) - before or None, 20)
        self.assertTrue(ids, f.read_log()[-3000:])
        return sorted(ids)[0]

    def b_messages(self, user, subj, timeout=20):
        def find():
            for p in self.b.mailbox_files(user):
                data = open(p, "rb").read()
                if f"Subject: {subj}".encode() in data:
                    return data
            return None
        return wait_for(find, timeout)

    def dsn_to_alice(self, f, subj, timeout=20):
        def find():
            for p in f.mailbox_files("alice"):
                m = email.message_from_bytes(open(p, "rb").read())
                if subj in m.as_string():
                    return m
            return None
        return wait_for(find, timeout)

    # ---- MX routing ----

    def test_mx_delivery_with_starttls(self):
        f = self.sender()
        qid = self.send_and_qid(f, ["bob@b.test"], "plain-mx")
        data = self.b_messages("bob", "plain-mx")
        self.assertTrue(data, f.read_log()[-3000:] + self.b.read_log()[-3000:])
        st = wait_status(f, qid, "bob@b.test")
        self.assertEqual(st[0], "sent", st)
        self.assertRegex(st[1], r"^2\.0\.0 host mx\.b\.test\[127\.0\.0\.3\] said: 250")
        line = delivery_line(f, qid, "bob@b.test")
        self.assertIn("relay=mx.b.test[127.0.0.3]", line)
        self.assertRegex(line, r'tls="TLS=TLSv1\.[23] ')
        # B saw the connection from A's source address, over TLS, with A's name.
        self.assertRegex(self.b.read_log(), r"connect from \[127\.0\.0\.2\]")
        self.assertIn(b"a.test", data.split(b"\r\n\r\n")[0] if b"\r\n\r\n" in data else data.split(b"\n\n")[0])
        self.assertIn(b"ESMTPS", data)

    def test_null_mx_bounces_5_1_10(self):
        f = self.sender()
        qid = self.send_and_qid(f, ["bob@nullmx.test"], "nullmx")
        st = wait_status(f, qid, "bob@nullmx.test")
        self.assertEqual(st[0], "bounced", st)
        self.assertTrue(st[1].startswith("5.1.10 "), st)
        dsn = self.dsn_to_alice(f, "nullmx")
        self.assertTrue(dsn, f.read_log()[-2000:])
        self.assertIn("Status: 5.1.10", dsn.as_string())

    def test_nxdomain_bounces_5_1_2(self):
        f = self.sender()
        qid = self.send_and_qid(f, ["bob@nosuch.b.test"], "nxdomain")
        st = wait_status(f, qid, "bob@nosuch.b.test")
        self.assertEqual(st[0], "bounced", st)
        self.assertTrue(st[1].startswith("5.1.2 the domain nosuch.b.test does not exist"), st)

    def test_servfail_defers_4_4_3(self):
        f = self.sender()
        qid = self.send_and_qid(f, ["bob@broken.test"], "servfail")
        self.assert_deferred(f, qid, "bob@broken.test", "4.4.3 cannot look up the MX records of broken.test")

    def test_all_mx_down_defers(self):
        f = self.sender("smtp_connect_timeout = 2s\n")
        qid = self.send_and_qid(f, ["bob@down.test"], "alldown")
        # The last one tried is the preference-20 host: both were tried, in order.
        self.assert_deferred(f, qid, "bob@down.test", "4.4.1 cannot connect to mx2.down.test[127.0.0.6]")

    def test_per_recipient_replies(self):
        srv = ScriptedServer("127.0.0.9", {"full@mixed.test": "452 4.2.2 mailbox full",
                                           "gone@mixed.test": "550 5.1.1 no such user here"})
        self.addCleanup(srv.stop)
        f = self.sender()
        rcpts = ["ok@mixed.test", "full@mixed.test", "gone@mixed.test"]
        qid = self.send_and_qid(f, rcpts, "mixed")
        self.assertTrue(wait_for(lambda: len(log_results(f, qid)) == 3, 20), f.read_log()[-3000:])
        res = log_results(f, qid)
        self.assertEqual(res["ok@mixed.test"][0], "sent")
        self.assertEqual(res["full@mixed.test"][0], "deferred")
        self.assertIn("said: 452 4.2.2 mailbox full (in reply to RCPT TO)", res["full@mixed.test"][1])
        self.assertEqual(res["gone@mixed.test"][0], "bounced")
        self.assertEqual(len(srv.messages), 1)
        dsn = self.dsn_to_alice(f, "mixed")
        self.assertTrue(dsn, f.read_log()[-2000:])
        text = dsn.as_string()
        self.assertIn("Final-Recipient: rfc822; gone@mixed.test", text)
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1 no such user here", text)
        self.assertIn("Remote-MTA: dns; mx.mixed.test", text)
        report = text.split("Content-Type: message/rfc822")[0]
        self.assertNotIn("full@mixed.test", report)     # deferred, not reported
        self.assertNotIn("ok@mixed.test", report)
        self.assertIn(qid + ".msg", f.queue_files())   # the 452 recipient stays queued

    # ---- efficiency ----

    def test_connection_reuse_with_concurrency_one(self):
        f = self.sender("smtp_dest_concurrency = 1\n")
        b_sessions_before = len(re.findall(r"connect from \[127\.0\.0\.2\]", self.b.read_log()))
        with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as s:
            for i in range(5):
                s.sendmail("alice@a.test", ["carol@b.test"], MSG.format(to="carol@b.test", subj=f"reuse{i}"))
        for i in range(5):
            self.assertTrue(self.b_messages("carol", f"reuse{i}"), f.read_log()[-3000:])
        sessions = len(re.findall(r"connect from \[127\.0\.0\.2\]", self.b.read_log())) - b_sessions_before
        # Five messages, at most two connections (the first may leave before the
        # others are queued), never one per message.
        self.assertLessEqual(sessions, 2, self.b.read_log()[-4000:])
        self.assertRegex(self.b.read_log(), r"client=\[127\.0\.0\.2\].* messages=[2-5] ")

    def test_rate_limit_spaces_messages(self):
        f = self.sender("smtp_dest_rate = 2\n")
        with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as s:
            for i in range(4):
                s.sendmail("alice@a.test", ["dave@b.test"], MSG.format(to="dave@b.test", subj=f"rate{i}"))
        for i in range(4):
            self.assertTrue(self.b_messages("dave", f"rate{i}"), f.read_log()[-3000:])
        times = []
        for line in f.read_log().splitlines():
            if "to=<dave@b.test> status=sent" in line:
                ts = line.split()[0]
                times.append(time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:]))
        self.assertEqual(len(times), 4)
        # 2 per second: four message starts span at least 1.5 s.
        self.assertGreaterEqual(max(times) - min(times), 1.3, times)

    # ---- DANE ----

    def test_dane_matching_tlsa_delivers(self):
        f = self.sender()
        qid = self.send_and_qid(f, ["erin@dane.test"], "dane-ok")
        self.assertTrue(self.b_messages("erin", "dane-ok"), f.read_log()[-3000:])
        line = delivery_line(f, qid, "erin@dane.test")
        self.assertIn("status=sent", line)
        self.assertIn("auth=dane-ee verified", line)

    def test_dane_mismatching_tlsa_defers(self):
        f = self.sender()
        qid = self.send_and_qid(f, ["erin@danebad.test"], "dane-bad")
        self.assert_deferred(f, qid, "erin@danebad.test", "4.7.5 ")
        self.assertFalse(self.b_messages("erin", "dane-bad", timeout=1))

    # ---- smart host ----

    def creds_file(self, line):
        """A relayhost_auth_file with one "user password" line, mode 0600."""
        creds = os.path.join(tempfile.mkdtemp(prefix="ferry-creds-"), "relay.auth")
        self.addCleanup(shutil.rmtree, os.path.dirname(creds), True)
        with open(creds, "w") as c:
            c.write(f"# smart host\n{line}\n")
        os.chmod(creds, 0o600)
        return creds

    def relay_sender(self, password):
        creds = self.creds_file(f"relayuser {password}")
        return self.sender(f"relayhost = [mx.b.test]:587\nrelayhost_auth_file = {creds}\n"
                           f"smtp_tls_ca_file = {self.ca}\n")

    def test_smarthost_with_auth(self):
        """relayhost = [mx.b.test]:587: no MX lookup, STARTTLS verified against the
        test CA, AUTH PLAIN; B (the smart host) accepts for its own domain."""
        f = self.relay_sender("s3cret pass")
        qid = self.send_and_qid(f, ["frank@b.test"], "smarthost")
        data = self.b_messages("frank", "smarthost")
        self.assertTrue(data, f.read_log()[-3000:] + self.b.read_log()[-3000:])
        st = wait_status(f, qid, "frank@b.test")
        self.assertEqual(st[0], "sent", st)
        line = delivery_line(f, qid, "frank@b.test")
        self.assertIn("relay=mx.b.test[127.0.0.3]", line)
        self.assertIn(" verified", line)
        self.assertRegex(self.b.read_log(), r"kind=submission .*auth=relayuser")

    def test_smarthost_wrong_password_defers(self):
        f = self.relay_sender("wrong password")
        qid = self.send_and_qid(f, ["frank@b.test"], "smarthost-bad")
        self.assert_deferred(f, qid, "frank@b.test", "4.7.0 host mx.b.test[127.0.0.3] did not accept our credentials: 535")

    def test_smarthost_by_unvalidated_mx_never_gets_the_credentials(self):
        """relayhost = relay.b.test:587 (no brackets: MX lookup, unsigned zone).
        The MX name it leads to has a valid certificate, but the relay must prove
        the name in the configuration: it does not, so no AUTH is sent."""
        creds = self.creds_file("relayuser s3cret pass")
        f = self.sender(f"relayhost = relay.b.test:587\nrelayhost_auth_file = {creds}\n"
                        f"smtp_tls_ca_file = {self.ca}\n")
        b_auth_before = self.b.read_log().count("auth=relayuser")
        qid = self.send_and_qid(f, ["lena@b.test"], "mx-relay")
        self.assert_deferred(f, qid, "lena@b.test", "4.7.")
        self.assertEqual(self.b.read_log().count("auth=relayuser"), b_auth_before)
        self.assertFalse(self.b_messages("lena", "mx-relay", timeout=1))

    def test_smarthost_credentials_file_readable_by_others_is_refused(self):
        creds = os.path.join(self.d, "open.auth")
        with open(creds, "w") as c:
            c.write("relayuser s3cret pass\n")
        os.chmod(creds, 0o644)
        f = Ferry(extra=f"relayhost = [mx.b.test]:587\nrelayhost_auth_file = {creds}\n", domains="a.test")
        self.addCleanup(f.cleanup)
        with self.assertRaises(RuntimeError) as cm:
            f.start()
        self.assertIn("readable or writable by group or others", str(cm.exception))

    # ---- Postfix from Debian as the peer ----

    def test_postfix_receives_by_mx_over_starttls(self):
        with PostfixPeer(listen="127.0.0.4", domains=("pf.test",), tls_cert=self.pf_cert,
                         tls_key=self.pf_key) as pf:
            f = self.sender()
            qid = self.send_and_qid(f, ["bob@pf.test"], "to-postfix")
            msgs = pf.wait_for_messages(1, timeout=20)
            self.assertTrue(msgs, f.read_log()[-3000:] + pf.log()[-3000:])
            self.assertIn(b"Subject: to-postfix", msgs[0])
            st = wait_status(f, qid, "bob@pf.test")
            self.assertEqual(st[0], "sent", st)
            self.assertRegex(st[1], r"^2\.0\.0 host mx\.pf\.test\[127\.0\.0\.4\] said: 250 2\.0\.0 Ok: \d+ bytes queued as \w+ "
                                   r"\(in reply to BDAT LAST\)$")    # Postfix offers CHUNKING: BDAT was used
            line = delivery_line(f, qid, "bob@pf.test")
            self.assertRegex(line, r'tls="TLS=TLSv1\.[23] ')
            self.assertIn("TLS connection established from", pf.log())

    def test_postfix_smarthost_with_auth(self):
        """Ferry's AUTH client against Postfix (SASL by Dovecot), relaying to B."""
        with DovecotLmtp(auth_users={"ferry@relay.test": "s3cret pass"}) as auth, \
                PostfixPeer(listen="127.0.0.8", mynetworks="127.0.0.8/32", sasl_path=auth.auth_socket,
                            tls_cert=self.smart_cert, tls_key=self.smart_key,
                            relayhost=f"[127.0.0.1]:{self.b.port}", extra="smtpd_tls_auth_only = yes") as smart:
            creds = self.creds_file("ferry@relay.test s3cret pass")
            f = self.sender(f"relayhost = [smart.pf.test]:25\nrelayhost_auth_file = {creds}\n"
                            f"smtp_tls_ca_file = {self.ca}\n")
            qid = self.send_and_qid(f, ["gina@b.test"], "via-postfix")
            data = self.b_messages("gina", "via-postfix")
            self.assertTrue(data, f.read_log()[-3000:] + smart.log()[-3000:])
            self.assertIn(b"(Authenticated sender: ferry@relay.test)", data)
            self.assertIn("sasl_username=ferry@relay.test", smart.log())
            line = delivery_line(f, qid, "gina@b.test")
            self.assertIn("relay=smart.pf.test[127.0.0.8]", line)
            self.assertIn(" verified", line)


    def test_smarthost_implicit_tls(self):
        """relayhost_tls = implicit: TLS from the first octet (RFC 8314), port 465."""
        creds = self.creds_file("relayuser s3cret pass")
        f = self.sender(f"relayhost = [mx.b.test]:465\nrelayhost_tls = implicit\nrelayhost_auth_file = {creds}\n"
                        f"smtp_tls_ca_file = {self.ca}\n")
        qid = self.send_and_qid(f, ["hank@b.test"], "implicit-tls")
        self.assertTrue(self.b_messages("hank", "implicit-tls"), f.read_log()[-3000:])
        line = delivery_line(f, qid, "hank@b.test")
        self.assertIn("status=sent", line)
        self.assertIn(" verified", line)
        self.assertRegex(self.b.read_log(), r"kind=smtps .*auth=relayuser")

    def test_postfix_smarthost_auth_login(self):
        """A smart host offering only AUTH LOGIN: Ferry falls back from PLAIN."""
        with DovecotLmtp(auth_users={"ferry@relay.test": "s3cret pass"}, extra="auth_mechanisms = login\n") as auth, \
                PostfixPeer(listen="127.0.0.8", mynetworks="127.0.0.8/32", sasl_path=auth.auth_socket,
                            tls_cert=self.smart_cert, tls_key=self.smart_key,
                            relayhost=f"[127.0.0.1]:{self.b.port}", extra="smtpd_tls_auth_only = yes") as smart:
            creds = self.creds_file("ferry@relay.test s3cret pass")
            f = self.sender(f"relayhost = [smart.pf.test]:25\nrelayhost_auth_file = {creds}\n"
                            f"smtp_tls_ca_file = {self.ca}\n")
            self.send_and_qid(f, ["ivan@b.test"], "via-login")
            self.assertTrue(self.b_messages("ivan", "via-login"), f.read_log()[-3000:] + smart.log()[-3000:])
            self.assertIn("sasl_method=LOGIN", smart.log())

    def test_tls_policy_table_overrides_the_default(self):
        pol = os.path.join(self.d, "tls_policy")
        with open(pol, "w") as fh:
            fh.write("# per-domain TLS\nb.test none\ndanebad.test encrypt\n")
        f = self.sender(f"smtp_tls_policy = {pol}\n")
        q1 = self.send_and_qid(f, ["judy@b.test"], "policy-none")
        self.assertTrue(self.b_messages("judy", "policy-none"), f.read_log()[-3000:])
        line = delivery_line(f, q1, "judy@b.test")
        self.assertIn('tls="none"', line)
        # encrypt: TLS without authentication, so the wrong TLSA record does not matter
        q2 = self.send_and_qid(f, ["judy@danebad.test"], "policy-encrypt")
        st = wait_status(f, q2, "judy@danebad.test")
        self.assertEqual(st[0], "sent", st)
        line = delivery_line(f, q2, "judy@danebad.test")
        self.assertRegex(line, r'tls="TLS=TLSv1\.[23] ')
        self.assertNotIn(" verified", line.split("tls=")[1].split('"')[1])

    def test_requiretls_needs_dnssec_mx_and_verified_tls(self):
        """RFC 8689: to a DNSSEC domain with DANE the message goes (REQUIRETLS passed
        on); to a domain whose MX is not validated it bounces with 5.7.10."""
        import ssl
        f = self.sender(f"tls_cert = {self.cert}\ntls_key = {self.key}\n")
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        before = set(re.findall(r"(\w{16}): to=<", f.read_log()))
        with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as s:
            s.starttls(context=ctx)
            s.ehlo()
            self.assertTrue(s.has_extn("requiretls"))
            s.sendmail("alice@a.test", ["kim@dane.test", "kim@b.test"], MSG.format(to="kim", subj="requiretls"),
                       mail_options=["REQUIRETLS"])
        ids = wait_for(lambda: set(re.findall(r"(\w{16}): to=<", f.read_log())) - before or None, 20)
        qid = sorted(ids)[0]
        self.assertTrue(self.b_messages("kim", "requiretls"), f.read_log()[-3000:])
        res = wait_for(lambda: len(log_results(f, qid)) == 2 and log_results(f, qid), 20)
        self.assertTrue(res, f.read_log()[-3000:])
        self.assertEqual(res["kim@dane.test"][0], "sent")
        self.assertEqual(res["kim@b.test"][0], "bounced")
        self.assertTrue(res["kim@b.test"][1].startswith("5.7.10 "), res)
        line = delivery_line(f, qid, "kim@dane.test")
        self.assertIn("auth=dane-ee verified", line)


if __name__ == "__main__":
    unittest.main()
