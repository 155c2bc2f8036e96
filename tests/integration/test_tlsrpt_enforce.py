"""MTA-STS enforce failures, counted for TLS-RPT and bounced at expiry.

A sending Ferry with no smtp_source_ipv4 (so the kernel picks its address:
127.0.0.1 towards the loopback MX) and a queue_lifetime of a minute sends to
two domains under enforce policies served by nginx on 127.0.0.44:443:
 - gapbad.test: its MX mx.gapbad.test (a Ferry on 127.0.0.45:25) shows a
   certificate for mx.other.test: certificate-host-mismatch, deferred;
 - gapnomx.test: its policy names mx.elsewhere.test, its MX is mx.gapnomx.test:
   no MX host matches, deferred without a connection; counted as
   sts-policy-invalid (RFC-NOTES.md "TLS-RPT").
A day later (datefudge) the sender's queue finds both past their lifetime and
returns them to alice@a.test in one RFC 3464 DSN each (Action: failed,
Status 5.4.7, the last deferral in Diagnostic-Code), and its report run POSTs one report per
domain to https://127.0.0.46/tlsrpt: valid against the §4.4 schema, exact
counts, sending-mta-ip 127.0.0.1 from the connection (gapbad.test) or the
routing table (gapnomx.test, where no connection was made), and the reason
codes. The smtp client's side of a stalled handshake is test_smtp_client's."""
import email
import gzip
import http.server
import json
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import jsonschema

from dnsserver import DnsServer
from ferrytest import FERRYCTL, ROOT, Ferry, wait_for
from httpsserver import NginxServer
from test_mta_sts_delivery import multi_san_cert, policy
from test_remote_delivery import wait_status, zone
from tlscerts import make_ca_and_server

WWW, MX, HOOK = "127.0.0.44", "127.0.0.45", "127.0.0.46"
SCHEMA = os.path.join(ROOT, "tests", "data", "tlsrpt", "report.schema.json")
DATEFUDGE = "/usr/bin/datefudge"
MSG = "From: alice@a.test\r\nTo: {to}\r\nSubject: {subj}\r\nMessage-ID: <{subj}@a.test>\r\n\r\nhello\r\n"


class Hook(http.server.BaseHTTPRequestHandler):
    posts = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Hook.posts.append((self.path, self.headers.get("Content-Type"), self.rfile.read(n)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class EnforceFailures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-tlsrpt-enf-")
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d, cn="mx.other.test", ip=MX)
        _, hcert, hkey = make_ca_and_server(cls.d, name="hook", cn="hook.gap.test", ip=HOOK)
        wcert, wkey = multi_san_cert(cls.d, ["mta-sts.gapbad.test", "mta-sts.gapnomx.test"])
        os.makedirs(os.path.join(cls.d, "nginx"))
        cls.www = NginxServer(os.path.join(cls.d, "nginx"), WWW, 443, wcert, wkey,
                              f"location / {{ root {cls.d}/nginx/www/$host; }}")
        cls.www.put("mta-sts.gapbad.test/.well-known/mta-sts.txt", policy("enforce", "mx.gapbad.test"))
        cls.www.put("mta-sts.gapnomx.test/.well-known/mta-sts.txt", policy("enforce", "mx.elsewhere.test"))
        rua = f"v=TLSRPTv1; rua=https://{HOOK}/tlsrpt"
        zones = {dom: zone(dom, f"@ IN MX 10 mx\nmx IN A {MX}\n_mta-sts IN TXT \"v=STSv1; id=1\"\n"
                                f"_smtp._tls IN TXT \"{rua}\"\n") for dom in ("gapbad.test", "gapnomx.test")}
        cls.dns = DnsServer(zones).start()
        cls.b = Ferry(extra=f"listen = smtp {MX}:25\ntls_cert = {cls.cert}\ntls_key = {cls.key}\n"
                            "hostname = mx.other.test\n", domains="gapbad.test gapnomx.test")
        cls.b.start()
        Hook.posts = []
        cls.httpd = http.server.ThreadingHTTPServer((HOOK, 443), Hook)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(hcert, hkey)
        cls.httpd.socket = ctx.wrap_socket(cls.httpd.socket, server_side=True)
        threading.Thread(target=cls.httpd.serve_forever, daemon=True).start()
        with open(SCHEMA) as f:
            cls.schema = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.httpd.shutdown()
        cls.httpd.server_close()
        cls.b.cleanup()
        cls.dns.stop()
        cls.www.stop()
        shutil.rmtree(cls.d, ignore_errors=True)

    def send(self, f, rcpt, subj):
        before = set(re.findall(r"(\w{16}): to=<", f.read_log()))
        with smtplib.SMTP("127.0.0.1", f.port, timeout=20) as s:
            s.sendmail("alice@a.test", [rcpt], MSG.format(to=rcpt, subj=subj))
        ids = wait_for(lambda: set(re.findall(r"(\w{16}): to=<", f.read_log())) - before or None, 30)
        self.assertTrue(ids, f.read_log()[-3000:])
        return sorted(ids)[0]

    def test_counted_reported_and_bounced(self):
        f = Ferry(extra=f"hostname = a.test\nresolver = 127.0.0.1:{self.dns.port}\n"
                        f"relay_networks = 127.0.0.0/8\nretry_min = 1h\nretry_max = 2h\nqueue_lifetime = 60s\n"
                        f"smtp_tls_ca_file = {self.ca}\nmta_sts_test_policy_addr = {WWW}\n", domains="a.test")
        f.start()
        self.addCleanup(f.cleanup)
        bad = self.send(f, "bob@gapbad.test", "gap-bad")
        st = wait_status(f, bad, "bob@gapbad.test")
        self.assertEqual(st[0], "deferred", st)
        self.assertIn("certificate verify failed", st[1])
        nomx = self.send(f, "bob@gapnomx.test", "gap-nomx")
        st = wait_status(f, nomx, "bob@gapnomx.test")
        self.assertEqual(st[0], "deferred", st)
        self.assertIn("no MX host of gapnomx.test matches its MTA-STS policy", st[1])
        self.assertIn("MX host mx.gapnomx.test is not in the enforce policy", f.read_log())
        f.stop()

        # A day later: both expired (one DSN each) and the day's reports go out.
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 86400))
        log = open(f.log_path, "ab")
        self.addCleanup(log.close)
        p = subprocess.Popen([DATEFUDGE, when, os.path.join(os.path.dirname(FERRYCTL), "ferryd"), "-c", f.conf,
                              "-f"], stdout=log, stderr=log, cwd=f.dir, env=dict(os.environ, TZ="UTC"))
        try:
            ok = wait_for(lambda: len(f.mailbox_files("alice")) >= 2 and len(Hook.posts) >= 2 or None, 40)
            self.assertTrue(ok, (Hook.posts, f.read_log()[-4000:]))
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=20)

        dsns = {}
        for path in f.mailbox_files("alice"):
            with open(path, "rb") as fp:
                m = email.message_from_bytes(fp.read())
            self.assertEqual(m.get_content_type(), "multipart/report")
            self.assertEqual(m.get_param("report-type"), "delivery-status")
            status = [q for q in m.walk() if q.get_content_type() == "message/delivery-status"][0]
            text = status.as_string()
            rcpt = re.search(r"Final-Recipient: rfc822; ?(\S+)", text).group(1)
            self.assertRegex(text, r"Action: failed")
            dsns[rcpt] = text
        self.assertEqual(sorted(dsns), ["bob@gapbad.test", "bob@gapnomx.test"])
        for rcpt, last in (("bob@gapbad.test", "4.7.5 TLS handshake with mx.gapbad.test[127.0.0.45] failed"),
                           ("bob@gapnomx.test", "4.7.5 no MX host of gapnomx.test matches its MTA-STS policy "
                                                "(mode enforce, id 1)")):
            self.assertIn("Status: 5.4.7", dsns[rcpt])        # expired, RFC 3463
            self.assertIn("message expired after", dsns[rcpt])
            self.assertIn("last result: " + last, dsns[rcpt].replace("\n ", " "))

        docs = {}
        for path, ctype, body in Hook.posts:
            self.assertEqual((path, ctype), ("/tlsrpt", "application/tlsrpt+gzip"))
            doc = json.loads(gzip.decompress(body))
            jsonschema.validate(doc, self.schema)
            self.assertEqual(len(doc["policies"]), 1)
            docs[doc["policies"][0]["policy"]["policy-domain"]] = doc["policies"][0]
        self.assertEqual(sorted(docs), ["gapbad.test", "gapnomx.test"])
        self.assertEqual(docs["gapbad.test"]["summary"], {"total-successful-session-count": 0,
                                                          "total-failure-session-count": 1})
        self.assertEqual(docs["gapbad.test"]["failure-details"], [{
            "result-type": "certificate-host-mismatch", "sending-mta-ip": "127.0.0.1",
            "receiving-mx-hostname": "mx.gapbad.test", "receiving-ip": MX, "failed-session-count": 1}])
        self.assertEqual(docs["gapnomx.test"]["summary"], {"total-successful-session-count": 0,
                                                           "total-failure-session-count": 1})
        self.assertEqual(docs["gapnomx.test"]["failure-details"], [{
            "result-type": "sts-policy-invalid", "sending-mta-ip": "127.0.0.1",
            "receiving-mx-hostname": "mx.gapnomx.test", "receiving-ip": MX, "failed-session-count": 1,
            "failure-reason-code": "MX host not in the MTA-STS policy"}])
        self.assertEqual(docs["gapnomx.test"]["policy"]["mx-host"], ["mx.elsewhere.test"])


if __name__ == "__main__":
    unittest.main()
