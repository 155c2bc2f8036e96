"""The peer harness (peers.py) proven against itself and against Ferry's
inbound side: a private Postfix receives over SMTP and delivers into Maildirs,
relays to a real ferryd (in clear and over STARTTLS), and a private Dovecot
takes LMTP. Delivery tests from Ferry to these peers build on the same classes."""
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import unittest

from ferrytest import FERRYCTL, Ferry, SmtpLines
from peers import DovecotLmtp, PostfixPeer
from tlscerts import make_ca_and_server

MSG = b"From: a@sender.test\r\nTo: alice@peer.example.test\r\nSubject: peer test\r\n\r\nhello from the harness\r\n"


class PostfixPeerTest(unittest.TestCase):
    def test_receives_into_maildirs_and_refuses_unlisted_users(self):
        with PostfixPeer(listen="127.0.0.4", users=["alice@peer.example.test", "bob@peer.example.test"]) as p:
            s = SmtpLines(25, host="127.0.0.4")
            self.assertEqual(s.greeting[0], 220)
            self.assertEqual(s.cmd("EHLO client.test")[0], 250)
            self.assertEqual(s.cmd("MAIL FROM:<a@sender.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<alice@peer.example.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<bob@peer.example.test>")[0], 250)
            code, lines = s.cmd("RCPT TO:<nobody-here@peer.example.test>")
            self.assertEqual(code, 550, lines)
            self.assertIn("5.1.1", lines[0])
            self.assertEqual(s.cmd("DATA")[0], 354)
            s.send(MSG + b".\r\n")
            self.assertEqual(s.reply()[0], 250)
            s.cmd("QUIT")
            s.close()
            alice = p.wait_for_messages(1, 10, address="alice@peer.example.test")
            bob = p.wait_for_messages(1, 10, address="bob@peer.example.test")
            self.assertEqual(len(alice), 1)
            self.assertIn(b"hello from the harness", alice[0])
            self.assertIn(b"Return-Path: <a@sender.test>", alice[0])
            self.assertIn(b"Delivered-To: bob@peer.example.test", bob[0])
            self.assertEqual(len(p.wait_for_messages(2, 5)), 2)
            self.assertIn("status=sent (delivered to maildir)", p.log())

    def test_two_instances_side_by_side_with_starttls(self):
        d = tempfile.mkdtemp(prefix="ferry-peer-certs-")
        self.addCleanup(shutil.rmtree, d, True)
        ca, cert, key = make_ca_and_server(d, cn="postfix.peer.test")
        with PostfixPeer(listen="127.0.0.5", domains=["five.test"]) as five, \
                PostfixPeer(listen="127.0.0.6", domains=["six.test"], tls_cert=cert, tls_key=key) as six:
            self.assertNotEqual(five.dir, six.dir)
            with smtplib.SMTP("127.0.0.6", 25, timeout=10) as c:
                c.ehlo("client.test")
                self.assertTrue(c.has_extn("starttls"))
                c.starttls()
                c.ehlo("client.test")
                c.sendmail("a@sender.test", ["carol@six.test"], MSG)
            with smtplib.SMTP("127.0.0.5", 25, timeout=10) as c:
                c.ehlo("client.test")
                self.assertFalse(c.has_extn("starttls"))
                c.sendmail("a@sender.test", ["dave@five.test"], MSG)
            self.assertIn(b"Delivered-To: carol@six.test", six.wait_for_messages(1, 10)[0])
            self.assertIn(b"Delivered-To: dave@five.test", five.wait_for_messages(1, 10)[0])
            self.assertEqual(five.mailbox_files("carol@six.test"), [])
            self.assertRegex(six.log(), r"Anonymous TLS connection established from|TLS connection established from")

    def test_sendmail_submits_to_its_own_instance(self):
        with PostfixPeer(listen="127.0.0.4") as p:
            p.send("root@peer.example.test", ["erin@peer.example.test"], "Subject: via sendmail\n\nlocal submission\n")
            got = p.wait_for_messages(1, 10, address="erin@peer.example.test")
            self.assertIn(b"local submission", got[0])
            self.assertIn("uid=0 from=<root@peer.example.test>", p.log())


class PostfixToFerryTest(unittest.TestCase):
    """Postfix as a client: its relayhost is a real ferryd."""

    def relay_through(self, ferry, **kw):
        with PostfixPeer(listen="127.0.0.4", relayhost=f"[127.0.0.1]:{ferry.port}", **kw) as p:
            p.send("sender@peer.example.test", ["alice@example.test"],
                   "From: sender@peer.example.test\nSubject: Postfix to Ferry\n\nover the relayhost\n")
            files = ferry.wait_mail("alice", 1, timeout=15)
            self.assertTrue(files, "Ferry got nothing; Postfix queue:\n%s\nPostfix log:\n%s\nferryd log:\n%s" % (
                p.queue(), p.log(), ferry.read_log()[-4000:]))
            with open(files[0], "rb") as f:
                body = f.read()
            self.assertIn(b"over the relayhost", body)
            self.assertIn(b"by postfix.peer.test (Postfix", body)
            self.assertRegex(p.log(), r"to=<alice@example.test>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d.*status=sent"
                             % ferry.port)
            return p.log(), body

    def test_postfix_relays_to_ferry(self):
        with Ferry() as f:
            self.relay_through(f)

    def test_postfix_relays_to_ferry_over_starttls_verified(self):
        d = tempfile.mkdtemp(prefix="ferry-peer-certs-")
        self.addCleanup(shutil.rmtree, d, True)
        ca, cert, key = make_ca_and_server(d)        # mx.example.test and IP 127.0.0.1
        with Ferry(extra=f"tls_cert = {cert}\ntls_key = {key}\n") as f:
            # "verify" checks the chain against the CA and that the name matches;
            # the relayhost is the IP literal, so the name to match is given.
            log, body = self.relay_through(f, relay_tls="verify", relay_ca=ca,
                                           extra="smtp_tls_verify_cert_match = mx.example.test")
            self.assertRegex(log, r"Verified TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:%d" % f.port)


class PostfixSubmitsToFerryTest(unittest.TestCase):
    def test_postfix_logs_in_to_ferry_submission_over_verified_tls(self):
        d = tempfile.mkdtemp(prefix="ferry-peer-certs-")
        self.addCleanup(shutil.rmtree, d, True)
        os.chmod(d, 0o755)
        ca, cert, key = make_ca_and_server(d)
        f = Ferry(extra=f"tls_cert = {cert}\ntls_key = {key}\n")
        r = subprocess.run([FERRYCTL, "-c", f.conf, "user", "add", "alice"], input="s3cret pass\n",
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        with f, PostfixPeer(listen="127.0.0.4", relayhost=f"[127.0.0.1]:{f.sub_port}", relay_tls="verify",
                            relay_ca=ca, relay_auth=("alice", "s3cret pass"),
                            extra="smtp_tls_verify_cert_match = mx.example.test") as p:
            p.send("alice@localhost", ["bob@example.test"], "Subject: submitted\n\nby Postfix with AUTH\n")
            files = f.wait_mail("bob", 1, timeout=15)
            self.assertTrue(files, "Ferry got nothing:\n%s\n%s" % (p.log(), f.read_log()[-3000:]))
            with open(files[0], "rb") as fh:
                self.assertIn(b"by Postfix with AUTH", fh.read())
            self.assertRegex(f.read_log(), r"AUTH \S+ succeeded for \[127\.0\.0\.4\] user=alice")
            self.assertRegex(f.read_log(), r"proto=ESMTPSA")
            self.assertIn("Verified TLS connection established to 127.0.0.1[127.0.0.1]:%d" % f.sub_port, p.log())


class SmartHostTest(unittest.TestCase):
    """A Postfix smart host that relays only for authenticated clients (AUTH
    checked by Dovecot's auth service), over STARTTLS, onwards to a ferryd."""

    def test_auth_required_to_relay(self):
        d = tempfile.mkdtemp(prefix="ferry-peer-certs-")
        self.addCleanup(shutil.rmtree, d, True)
        ca, cert, key = make_ca_and_server(d, cn="smarthost.peer.test")
        with Ferry() as f, DovecotLmtp(auth_users={"ferry@relay.test": "s3cret pass"}) as auth, \
                PostfixPeer(listen="127.0.0.7", mynetworks="127.0.0.7/32", sasl_path=auth.auth_socket,
                            tls_cert=cert, tls_key=key, relayhost=f"[127.0.0.1]:{f.port}",
                            extra="smtpd_tls_auth_only = yes") as smart:
            with smtplib.SMTP("127.0.0.7", 25, timeout=10) as c:
                c.ehlo("client.test")
                self.assertFalse(c.has_extn("auth"), "AUTH offered before STARTTLS")
                c.starttls()
                c.ehlo("client.test")
                self.assertIn("PLAIN", c.esmtp_features.get("auth", "").upper())
                with self.assertRaises(smtplib.SMTPRecipientsRefused) as cm:
                    c.sendmail("a@sender.test", ["alice@example.test"], MSG)
                self.assertEqual(cm.exception.recipients["alice@example.test"][0], 554)
                c.rset()
                with self.assertRaises(smtplib.SMTPAuthenticationError) as cm:
                    c.login("ferry@relay.test", "wrong")
                self.assertEqual(cm.exception.smtp_code, 535)
                c.login("ferry@relay.test", "s3cret pass")
                c.sendmail("a@sender.test", ["alice@example.test"], MSG)
            files = f.wait_mail("alice", 1, timeout=15)
            self.assertTrue(files, "Ferry got nothing from the smart host:\n" + smart.log())
            with open(files[0], "rb") as fh:
                body = fh.read()
            self.assertIn(b"(Authenticated sender: ferry@relay.test)", body)
            self.assertIn(b"hello from the harness", body)
            self.assertIn("sasl_username=ferry@relay.test", smart.log())


class DovecotLmtpTest(unittest.TestCase):
    def test_two_recipients_two_maildir_files_over_tcp(self):
        with DovecotLmtp() as d:
            s = SmtpLines(d.port, host=d.address)
            self.assertEqual(s.greeting[0], 220)
            code, lines = s.cmd("LHLO client.test")
            self.assertEqual(code, 250, lines)
            self.assertEqual(s.cmd("MAIL FROM:<a@sender.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<alice@example.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<bob@example.test>")[0], 250)
            self.assertEqual(s.cmd("DATA")[0], 354)
            s.send(MSG + b".\r\n")
            # LMTP: one reply per accepted recipient, in RCPT order.
            self.assertEqual(s.reply()[0], 250)
            self.assertEqual(s.reply()[0], 250)
            s.cmd("QUIT")
            s.close()
            for user in ("alice@example.test", "bob@example.test"):
                got = d.wait_for_messages(user, 1, 10)
                self.assertEqual(len(got), 1)
                self.assertIn(b"hello from the harness", got[0])
                self.assertIn(b"Return-Path: <a@sender.test>", got[0])
            self.assertEqual(d.connections(), 1)

    def test_unix_socket_and_unknown_user(self):
        with DovecotLmtp(users=["carol@example.test"]) as d:
            c = smtplib.LMTP(d.socket_path)
            try:
                refused = c.sendmail("a@sender.test", ["carol@example.test", "zed@example.test"], MSG)
            finally:
                c.quit()
            self.assertEqual(list(refused), ["zed@example.test"])
            self.assertEqual(refused["zed@example.test"][0], 550)
            got = d.wait_for_messages("carol@example.test", 1, 10)
            self.assertIn(b"Delivered-To: carol@example.test", got[0])
            self.assertEqual(d.mailbox_files("zed@example.test"), [])
            self.assertEqual(d.connections(), 1)
            self.assertIn("Connect from local", d.log())


class PeerStartupTest(unittest.TestCase):
    def test_port_taken_is_a_clear_error(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            p = PostfixPeer(listen="127.0.0.1", port=port)
            try:
                with self.assertRaises(RuntimeError) as cm:
                    p.start()
            finally:
                p.cleanup()
            self.assertIn(f"127.0.0.1:{port}", str(cm.exception))
            self.assertFalse(os.path.exists(p.dir))


if __name__ == "__main__":
    unittest.main()
