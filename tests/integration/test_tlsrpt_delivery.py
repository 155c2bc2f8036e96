"""TLS-RPT end to end (RFC 8460): a sending Ferry (source 127.0.0.42) delivers by
MX to a receiving Ferry on 127.0.0.41:25 (certificate for mx.rpt.test) under
MTA-STS enforce policies served by nginx on 127.0.0.40:443. rpt.test's delivery
succeeds over verified STARTTLS; rptbad.test's policy names mx.rptbad.test, whose
certificate does not match, so it is deferred. Both publish
"_smtp._tls" with rua=mailto:tlsrpt@rpt.test and https://127.0.0.43/tlsrpt (a
Python HTTPS server with the test CA's certificate that records each POST).
The sender then starts again a day later (datefudge): its report run sends,
for each domain, one report to the mailbox (multipart/report, an
application/tlsrpt+gzip attachment, the RFC's Subject and TLS-Report-* headers)
and one POST (Content-Type application/tlsrpt+gzip); each inflates to JSON that
validates against tests/data/tlsrpt/report.schema.json with exact counts: 1
success for rpt.test, 1 certificate-host-mismatch at mx.rptbad.test/127.0.0.41
for rptbad.test. A second restart sends nothing again. The receiving Ferry
takes both at its TLS report address and, after its report run, its
`ferryctl tlsrpt summary` shows the same counts."""
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

WWW, MX, SRC, HOOK = "127.0.0.40", "127.0.0.41", "127.0.0.42", "127.0.0.43"
SCHEMA = os.path.join(ROOT, "tests", "data", "tlsrpt", "report.schema.json")
DATEFUDGE = "/usr/bin/datefudge"
RUA = f"v=TLSRPTv1; rua=mailto:tlsrpt@rpt.test,https://{HOOK}/tlsrpt"
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


def later(seconds):
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + seconds))
    return [DATEFUDGE, when]


class ReportWorld(unittest.TestCase):
    """The stage of a TLS-RPT end-to-end test (no tests of its own): a test CA,
    nginx on www:443 serving an MTA-STS policy per domain, nsd with each
    domain's MX (mx.DOMAIN at mx), _mta-sts and _smtp._tls records, a receiving
    Ferry on mx:25 whose certificate names mx_cn, and an HTTPS endpoint on
    hook:443 recording each POST in Hook.posts."""

    @classmethod
    def build(cls, prefix, www, mx, hook, mx_cn, policies, rua):
        cls.d = tempfile.mkdtemp(prefix=prefix)
        os.chmod(cls.d, 0o755)
        cls.ca, cls.cert, cls.key = make_ca_and_server(cls.d, cn=mx_cn, ip=mx)
        _, hcert, hkey = make_ca_and_server(cls.d, name="hook", cn="hook.example.test", ip=hook)
        wcert, wkey = multi_san_cert(cls.d, ["mta-sts." + dom for dom in policies])
        os.makedirs(os.path.join(cls.d, "nginx"))
        cls.www = NginxServer(os.path.join(cls.d, "nginx"), www, 443, wcert, wkey,
                              f"location / {{ root {cls.d}/nginx/www/$host; }}")
        for dom, mx_pattern in policies.items():
            cls.www.put(f"mta-sts.{dom}/.well-known/mta-sts.txt", policy("enforce", mx_pattern))
        zones = {dom: zone(dom, f"@ IN MX 10 mx\nmx IN A {mx}\n_mta-sts IN TXT \"v=STSv1; id=1\"\n"
                                f"_smtp._tls IN TXT \"{rua}\"\n") for dom in policies}
        cls.dns = DnsServer(zones).start()
        cls.b = Ferry(extra=f"listen = smtp {mx}:25\ntls_cert = {cls.cert}\ntls_key = {cls.key}\n"
                            f"hostname = {mx_cn}\n", domains=" ".join(policies))
        cls.b.start()
        Hook.posts = []
        cls.httpd = http.server.ThreadingHTTPServer((hook, 443), Hook)
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

    def day_later(self, f):
        """The sender's ferryd again, its clock a day ahead (datefudge)."""
        log = open(f.log_path, "ab")
        p = subprocess.Popen(later(86400) + [os.path.join(os.path.dirname(FERRYCTL), "ferryd"), "-c", f.conf, "-f"],
                             stdout=log, stderr=log, cwd=f.dir, env=dict(os.environ, TZ="UTC"))
        self.addCleanup(log.close)
        return p

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)



class TlsRptDelivery(ReportWorld):
    @classmethod
    def setUpClass(cls):
        cls.build("ferry-tlsrpt-", WWW, MX, HOOK, "mx.rpt.test",
                  {"rpt.test": "mx.rpt.test", "rptbad.test": "mx.rptbad.test"}, RUA)

    def check(self, raw, domain):
        doc = json.loads(gzip.decompress(raw))
        jsonschema.validate(doc, self.schema)
        self.assertEqual(len(doc["policies"]), 1, doc)
        pol = doc["policies"][0]
        self.assertEqual(pol["policy"]["policy-type"], "sts")
        self.assertEqual(pol["policy"]["policy-domain"], domain)
        self.assertIn("mode: enforce", pol["policy"]["policy-string"])
        day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
        self.assertEqual(doc["date-range"]["start-datetime"], day)
        if domain == "rpt.test":
            self.assertEqual(pol["summary"], {"total-successful-session-count": 1,
                                              "total-failure-session-count": 0})
            self.assertNotIn("failure-details", pol)
        else:
            self.assertEqual(pol["summary"], {"total-successful-session-count": 0,
                                              "total-failure-session-count": 1})
            self.assertEqual(pol["failure-details"], [{
                "result-type": "certificate-host-mismatch", "sending-mta-ip": SRC,
                "receiving-mx-hostname": "mx.rptbad.test", "receiving-ip": MX, "failed-session-count": 1}])
        return doc

    def test_reports_mailed_and_posted_once(self):
        f = Ferry(extra=f"hostname = a.test\nresolver = 127.0.0.1:{self.dns.port}\nsmtp_source_ipv4 = {SRC}\n"
                        f"relay_networks = 127.0.0.0/8\nretry_min = 1h\nretry_max = 2h\n"
                        f"smtp_tls_ca_file = {self.ca}\nmta_sts_test_policy_addr = {WWW}\n", domains="a.test")
        f.start()
        self.addCleanup(f.cleanup)
        ok = self.send(f, "bob@rpt.test", "rpt-ok")
        self.assertEqual(wait_status(f, ok, "bob@rpt.test")[0], "sent", f.read_log()[-3000:])
        bad = self.send(f, "bob@rptbad.test", "rpt-bad")
        st = wait_status(f, bad, "bob@rptbad.test")
        self.assertEqual(st[0], "deferred", st)
        self.assertIn("certificate verify failed", st[1])
        f.stop()
        p = self.day_later(f)
        try:
            files = wait_for(lambda: len(self.received()) >= 2 and len(Hook.posts) >= 2 or None, 40)
            self.assertTrue(files, (Hook.posts, f.read_log()[-4000:]))
            time.sleep(1)
        finally:
            self.stop(p)
        seen = {}
        for path in self.received():
            with open(path, "rb") as fp:
                m = email.message_from_bytes(fp.read())
            dom = m["TLS-Report-Domain"]
            self.assertEqual(m["TLS-Report-Submitter"], "a.test")
            self.assertTrue(re.fullmatch(rf"Report Domain: {re.escape(dom)} Submitter: a\.test "
                                         r"Report-ID: <[^<>]+@a\.test>", m["Subject"]), m["Subject"])
            self.assertEqual(m.get_content_type(), "multipart/report")
            self.assertEqual(m.get_param("report-type"), "tlsrpt")
            parts = [q for q in m.walk() if q.get_content_type() == "application/tlsrpt+gzip"]
            self.assertEqual(len(parts), 1)
            self.assertTrue(parts[0].get_filename().endswith(".json.gz"))
            seen[dom] = self.check(parts[0].get_payload(decode=True), dom)
        self.assertEqual(sorted(seen), ["rpt.test", "rptbad.test"])
        self.assertEqual(len(Hook.posts), 2)
        posted = {}
        for path, ctype, body in Hook.posts:
            self.assertEqual(path, "/tlsrpt")
            self.assertEqual(ctype, "application/tlsrpt+gzip")
            doc = json.loads(gzip.decompress(body))
            posted[doc["policies"][0]["policy"]["policy-domain"]] = doc
            self.check(body, doc["policies"][0]["policy"]["policy-domain"])
        self.assertEqual(posted, seen)
        # Started again (the same day-later clock): nothing is sent twice.
        n = len(Hook.posts)
        p = self.day_later(f)
        try:
            self.assertTrue(wait_for(lambda: "queue process ready" in f.read_log()[-20000:], 10))
            time.sleep(8)           # past the first report run (5 s after start)
        finally:
            self.stop(p)
        self.assertEqual(len(Hook.posts), n)
        self.assertEqual(len(self.received()), 2)
        # The receiving Ferry reads them: its report run (5 s after a start)
        # stores both, and its summary shows what the sender counted.
        self.b.stop()
        self.b.start()
        cur = os.path.join(self.b.maildir, ".tlsrpt-reports", "cur")
        self.assertTrue(wait_for(lambda: os.path.isdir(cur) and
                                 sum(n.endswith(":2,S") for n in os.listdir(cur)) == 2, 30), self.b.read_log()[-3000:])
        r = subprocess.run([FERRYCTL, "-c", self.b.conf, "tlsrpt", "summary", "--json"], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        pairs = {(p["organization"], p["policy_domain"]): (p["reports"], p["successful"], p["failed"],
                                                           p["failure_types"]) for p in json.loads(r.stdout)["pairs"]}
        self.assertEqual(pairs, {("a.test", "rpt.test"): (1, 1, 0, {}),
                                 ("a.test", "rptbad.test"): (1, 0, 1, {"certificate-host-mismatch": 1})})

    def received(self):
        """The reports b took at tlsrpt@rpt.test (its TLS report address: kept
        in <mail_dir>/.tlsrpt-reports until its report run reads them)."""
        box = os.path.join(self.b.maildir, ".tlsrpt-reports")
        return sorted(os.path.join(box, d, n) for d in ("new", "cur") if os.path.isdir(os.path.join(box, d))
                      for n in os.listdir(os.path.join(box, d)))


if __name__ == "__main__":
    unittest.main()
