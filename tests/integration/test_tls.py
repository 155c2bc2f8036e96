"""TLS: STARTTLS (RFC 3207) on smtp and submission, implicit TLS (RFC 8314) on
smtps, with certificates from a test CA, checked by Python's ssl and openssl
s_client: verification, what Received: records, the pipelining-injection
defence, protocol floors, configuration errors and reload."""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from ferrytest import FERRYD, Ferry, SmtpLines, free_port, wait_for
from tlscerts import make_ca_and_server


class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-tls-")
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d)
        cls.smtps_port = free_port()
        cls.f = Ferry(extra=f"tls_cert = {cls.cert}\ntls_key = {cls.key}\n"
                            f"listen = smtps 127.0.0.1:{cls.smtps_port}\n").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        shutil.rmtree(cls.d, ignore_errors=True)

    def ctx(self):
        return ssl.create_default_context(cafile=self.ca)

    def test_starttls_sessions_do_not_leak(self):
        """A STARTTLS session's SSL goes with it: libevent leaves a filter's SSL to
        its owner, and leaving it leaked about 29 KB per session (43 MB in 1 500)."""
        f = Ferry(extra=f"tls_cert = {self.cert}\ntls_key = {self.key}\nmax_connection_rate = 0\n")
        # Under `make test SAN=1` freed memory waits in ASan's quarantine and
        # would look like growth: none kept (a no-op for the normal build).
        saved = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (saved + ":" if saved else "") + "quarantine_size_mb=0"
        try:
            f.start()
        finally:
            if saved is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = saved
        self.addCleanup(f.cleanup)
        smtp = f.child_by_role("smtp")

        def rss_kb():
            with open(f"/proc/{smtp}/status") as st:
                return int(re.search(r"VmRSS:\s+(\d+)", st.read()).group(1))

        def sessions(n):
            for _ in range(n):
                with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as c:
                    c.ehlo("leak.example")
                    c.starttls(context=self.ctx())
                    c.ehlo("leak.example")

        sessions(100)               # allocator pools warmed
        before = rss_kb()
        sessions(600)
        grown = rss_kb() - before
        self.assertLess(grown, 3000, f"{grown} kB more after 600 STARTTLS sessions")

    def test_starttls_verified_and_recorded(self):
        with smtplib.SMTP("127.0.0.1", self.f.port) as c:
            c.ehlo("client.example")
            self.assertIn("starttls", c.esmtp_features)
            self.assertNotIn("requiretls", c.esmtp_features)
            code, _ = c.starttls(context=self.ctx())
            self.assertEqual(code, 220)
            version = c.sock.version()
            c.ehlo("client.example")
            self.assertNotIn("starttls", c.esmtp_features)       # not offered twice
            self.assertIn("requiretls", c.esmtp_features)        # RFC 8689: only under TLS
            self.assertEqual(c.sendmail("a@example.org", ["sec@localhost"], b"Subject: tls\r\n\r\nhi\r\n"), {})
        data = open(self.f.wait_mail("sec")[0]).read()
        m = re.search(r"Received: from client\.example \(\[127\.0\.0\.1\]\)\n\tby mx\.example\.test \(Ferry\) "
                      r"with ESMTPS id [0-9A-V]{16}\n\t\(using (TLSv1\.[23]) with cipher (\S+) \((\d+) bits\)\)", data)
        self.assertTrue(m, data[:600])
        self.assertEqual(m.group(1), version)
        self.assertTrue(wait_for(lambda: re.search(r"end=quit client=\[127\.0\.0\.1\] kind=smtp helo=client\.example "
                                                   r"tls=TLSv1\.[23]", self.f.read_log()), 5))

    def test_smtps_handshake_first(self):
        with smtplib.SMTP_SSL("127.0.0.1", self.smtps_port, context=self.ctx()) as c:
            code, _ = c.ehlo("client.example")
            self.assertEqual(code, 250)
            self.assertNotIn("starttls", c.esmtp_features)
            self.assertIn(c.sock.version(), ("TLSv1.2", "TLSv1.3"))

    def test_pipelined_commands_after_starttls_are_discarded(self):
        s = socket.create_connection(("127.0.0.1", self.f.port), timeout=5)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"220"))
        s.sendall(b"EHLO c.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        # The injected RSET/MAIL travel in clear text behind STARTTLS.
        s.sendall(b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n")
        self.assertEqual(f.readline(), b"220 2.0.0 Ready to start TLS\r\n")
        t = self.ctx().wrap_socket(s, server_hostname="mx.example.test")
        tf = t.makefile("rb")
        t.sendall(b"NOOP\r\n")
        # Had RSET or MAIL been kept, their replies would come before NOOP's.
        self.assertEqual(tf.readline(), b"250 2.0.0 Ok\r\n")
        # The state was reset: MAIL needs a new EHLO.
        t.sendall(b"MAIL FROM:<a@example.org>\r\n")
        self.assertTrue(tf.readline().startswith(b"503 5.5.1"))
        t.close()
        self.assertTrue(wait_for(lambda: "octets sent after STARTTLS before the handshake" in self.f.read_log(), 5))

    def test_starttls_errors(self):
        s = SmtpLines(self.f.port)
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("STARTTLS now")[0], 501)
        s.cmd("MAIL FROM:<a@example.org>")
        self.assertEqual(s.cmd("STARTTLS")[0], 503)          # not inside a transaction
        s.close()

    def test_old_protocols_refused(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError) as e:
            self.fail(f"this Python cannot make a TLS 1.1 client: {e}")
        with self.assertRaises((ssl.SSLError, ConnectionResetError, OSError)):
            with socket.create_connection(("127.0.0.1", self.smtps_port), timeout=5) as raw:
                with ctx.wrap_socket(raw) as t:
                    t.recv(100)

    def test_openssl_s_client_starttls(self):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.f.port}", "-starttls", "smtp",
                            "-CAfile", self.ca, "-verify_return_error", "-servername", "mx.example.test", "-ign_eof"],
                           input=b"EHLO s-client.example\r\nQUIT\r\n", capture_output=True, timeout=20)
        out = r.stdout.decode(errors="replace")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("250-mx.example.test Hello s-client.example", out)


    def test_openssl_s_client_smtps(self):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.smtps_port}", "-CAfile", self.ca,
                            "-verify_return_error", "-servername", "mx.example.test", "-ign_eof"],
                           input=b"EHLO s-client.example\r\nQUIT\r\n", capture_output=True, timeout=20)
        out = r.stdout.decode(errors="replace")
        self.assertIn("Verify return code: 0 (ok)", out)
        self.assertIn("220 mx.example.test ESMTP Ferry", out)
        self.assertIn("250-mx.example.test Hello s-client.example", out)
        self.assertIn("221 2.0.0", out)


class TlsConfig(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp(prefix="ferry-tlsconf-")
        os.chmod(self.d, 0o755)

    def tearDown(self):
        shutil.rmtree(self.d, ignore_errors=True)

    def test_check_names_the_bad_file(self):
        ca, cert, key = make_ca_and_server(self.d)
        f = Ferry(extra=f"tls_cert = {cert}\ntls_key = {self.d}/missing.key\n")
        try:
            r = subprocess.run([FERRYD, "-c", f.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"tls_key {self.d}/missing.key: No such file or directory", r.stderr)
            _, cert2, key2 = make_ca_and_server(self.d, name="other")
            f.write_config(extra=f"tls_cert = {cert}\ntls_key = {key2}\n")
            r = subprocess.run([FERRYD, "-c", f.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("does not belong to the certificate", r.stderr)
            f.write_config(extra=f"listen = smtps 127.0.0.1:{free_port()}\n")
            r = subprocess.run([FERRYD, "-c", f.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("smtps needs tls_cert and tls_key", r.stderr)
        finally:
            f.cleanup()

    def test_min_version_13_refuses_12(self):
        ca, cert, key = make_ca_and_server(self.d)
        with Ferry(extra=f"tls_cert = {cert}\ntls_key = {key}\ntls_min_version = 1.3\n") as f:
            ctx = ssl.create_default_context(cafile=ca)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with smtplib.SMTP("127.0.0.1", f.port) as c:
                c.ehlo("c.example")
                with self.assertRaises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionResetError)):
                    c.starttls(context=ctx)
            self.assertTrue(wait_for(lambda: "TLS handshake with [127.0.0.1] failed" in f.read_log(), 5))

    def test_sighup_serves_the_new_certificate(self):
        ca, cert, key = make_ca_and_server(self.d, name="one", cn="one.example.test")
        live_cert, live_key = os.path.join(self.d, "live.pem"), os.path.join(self.d, "live.key")
        shutil.copy(cert, live_cert)
        shutil.copy(key, live_key)
        os.chmod(live_key, 0o644)
        with Ferry(extra=f"tls_cert = {live_cert}\ntls_key = {live_key}\n") as f:
            def served_cn():
                with smtplib.SMTP("127.0.0.1", f.port, timeout=5) as c:
                    c.ehlo("c.example")
                    ctx = ssl.create_default_context(cafile=ca)
                    ctx.check_hostname = False
                    c.starttls(context=ctx)
                    return dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"]
            self.assertEqual(served_cn(), "one.example.test")
            _, cert2, key2 = make_ca_and_server(self.d, name="two", cn="two.example.test")
            shutil.copy(cert2, live_cert)
            shutil.copy(key2, live_key)
            os.chmod(live_key, 0o644)
            f.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: f.read_log().count("started the smtp process") >= 2, 10))
            time.sleep(0.3)
            self.assertEqual(served_cn(), "two.example.test")


if __name__ == "__main__":
    unittest.main()
