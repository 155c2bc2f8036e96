"""DMARC aggregate reports end to end (RFC 9990): messages from three source
addresses are evaluated by the daemon and counted in Berkeley DB; once the
period is over (datefudge moves the clock a day on), `ferryctl dmarc report`
and the queue process's own timer send the report through the maildrop, where
the pickup DKIM-signs it. The report arrives in the rua mailbox as a MIME
message whose gzipped XML validates against dmarc-xml-0.2.xsd with exact
counts, and whose signature dkimpy verifies; an external rua without its
_report._dmarc authorization gets nothing and the log says why; a second run
sends nothing again; kill -9 of report runs never gives two copies."""
import email
import email.policy
import gzip
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

from dnsserver import DnsServer
from ferrytest import FERRYCTL, Ferry, make_signing_key, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
XSD = os.path.join(os.path.dirname(HERE), "data", "dmarc", "dmarc-xml-0.2.xsd")
NS = "{urn:ietf:params:xml:ns:dmarc-2.0}"
DATEFUDGE = "/usr/bin/datefudge"


def later(seconds):
    """The command prefix that runs a program with its clock `seconds` ahead.
    datefudge (Debian) shifts the wall clock only; libfaketime also works but
    deadlocks at start-up with AddressSanitizer builds (make test SAN=1)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + seconds))
    return [DATEFUDGE, when]

ZONE = """$ORIGIN test.
$TTL 300
@ IN SOA ns.test. hostmaster.test. 1 3600 900 604800 60
@ IN NS ns.test.
ns IN A 127.0.0.1
agg IN TXT "v=spf1 ip4:127.0.0.1 ~all"
_dmarc.agg IN TXT "v=DMARC1; p=quarantine; rua=mailto:rua@rep.test"
agg.test._report._dmarc.rep IN TXT "v=DMARC1"
fail IN TXT "v=spf1 ~all"
_dmarc.fail IN TXT "v=DMARC1; p=none; ruf=mailto:ruf@rep.test; fo=1"
fail.test._report._dmarc.rep IN TXT "v=DMARC1"
ovr IN TXT "v=spf1 ~all"
_dmarc.ovr IN TXT "v=DMARC1; p=none; rua=mailto:rua3@rep.test"
ovr.test._report._dmarc.rep IN TXT "v=DMARC1; rua=mailto:elsewhere@other.example"
unv IN TXT "v=spf1 ~all"
_dmarc.unv IN TXT "v=DMARC1; p=none; rua=mailto:rua2@rep.test"
{dkim}
"""


def send_from(src, port, sender, rcpt, from_hdr, subject="counted"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    f = s.makefile("rwb")

    def reply():
        line = f.readline()
        while line[3:4] == b"-":
            line = f.readline()
        return int(line[:3])

    def cmd(text):
        f.write(text.encode() + b"\r\n")
        f.flush()
        return reply()
    assert reply() == 220
    cmd("EHLO client.example")
    assert cmd(f"MAIL FROM:<{sender}>") == 250
    assert cmd(f"RCPT TO:<{rcpt}>") == 250
    assert cmd("DATA") == 354
    f.write(f"From: {from_hdr}\r\nSubject: {subject}\r\n\r\nbody\r\n.\r\n".encode())
    f.flush()
    code = reply()
    cmd("QUIT")
    s.close()
    return code


class DmarcReportsEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="ferry-dmarcrep-")
        os.chmod(cls.d, 0o755)
        cls.keys, quoted, cls.txt = make_signing_key(cls.d, "rep.test", "r1")
        cls.ns = DnsServer({"test": ZONE.format(dkim=f"r1._domainkey.rep IN TXT {quoted}")}).start()
        cls.f = Ferry(extra=f"resolver = 127.0.0.1:{cls.ns.port}\nspf_check = yes\ndmarc_check = yes\n"
                            f"dkim_key_dir = {cls.keys}\n"
                            "dmarc_report_email = dmarc-noreply@rep.test\ndmarc_report_org_name = Ferry Test\n"
                            "max_connection_rate = 0\n",
                      domains="localhost example.test rep.test").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        cls.ns.stop()
        shutil.rmtree(cls.d, ignore_errors=True)

    def report(self, shift, *extra):
        return subprocess.run(later(shift) + [FERRYCTL, "-c", self.f.conf, "dmarc", "report"] + list(extra),
                              capture_output=True, text=True, env=dict(os.environ, TZ="UTC"))

    def reports_in(self, user):
        return self.f.mailbox_files(user)

    def check_report(self, path, expected, dkim=True):
        with open(path, "rb") as fh:
            raw = fh.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertRegex(msg["Subject"], r"^Report Domain: agg\.test Submitter: mx\.example\.test Report-ID: <\S+>$")
        parts = [p for p in msg.iter_attachments()]
        self.assertEqual(len(parts), 1)
        self.assertEqual(parts[0].get_content_type(), "application/gzip")
        self.assertRegex(parts[0].get_filename(), r"^mx\.example\.test!agg\.test!\d+!\d+!\S+\.xml\.gz$")
        xml = gzip.decompress(parts[0].get_content())
        xf = os.path.join(self.d, "report.xml")
        with open(xf, "wb") as fh:
            fh.write(xml)
        v = subprocess.run(["xmllint", "--noout", "--schema", XSD, xf], capture_output=True, text=True)
        self.assertEqual(v.returncode, 0, v.stderr)
        root = ET.fromstring(xml)
        self.assertEqual(root.find(f"{NS}policy_published/{NS}domain").text, "agg.test")
        self.assertEqual(root.find(f"{NS}policy_published/{NS}p").text, "quarantine")
        counts = {}
        for rec in root.findall(f"{NS}record"):
            ip = rec.find(f"{NS}row/{NS}source_ip").text
            disp = rec.find(f"{NS}row/{NS}policy_evaluated/{NS}disposition").text
            counts[(ip, disp)] = counts.get((ip, disp), 0) + int(rec.find(f"{NS}row/{NS}count").text)
        self.assertEqual(counts, expected)
        if not dkim:
            return
        # the pickup signed it for rep.test; dkimpy checks the signature with the published key
        records = os.path.join(self.d, "records.json")
        with open(records, "w") as fh:
            json.dump({"r1._domainkey.rep.test": self.txt}, fh)
        dk = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "dkimpy_oracle.py"), "verify", records],
                            input=raw.replace(b"\n", b"\r\n"), capture_output=True)
        self.assertEqual(dk.stdout.strip(), b"pass", dk.stderr)

    def test_a_report_sent_once_with_exact_counts(self):
        # SPF passes (and aligns) from 127.0.0.1 only: 3 pass there; 2 + 1 from
        # other addresses fail and are quarantined
        plan = [("127.0.0.1", 3), ("127.0.0.2", 2), ("127.0.0.3", 1)]
        for src, n in plan:
            for _ in range(n):
                self.assertEqual(send_from(src, self.f.port, "a@agg.test", "cnt@localhost", "a@agg.test"), 250)
        self.assertEqual(send_from("127.0.0.1", self.f.port, "b@unv.test", "cnt@localhost", "b@unv.test"), 250)
        self.assertEqual(send_from("127.0.0.1", self.f.port, "c@ovr.test", "cnt@localhost", "c@ovr.test"), 250)
        self.assertTrue(self.f.wait_mail("cnt", 1))
        # nothing is due before the period ends
        r = self.report(0)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0 reports due", r.stderr)
        r = self.report(86400)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"domain=unv\.test .*to=rua2@rep\.test: not sent: external destination not "
                                   r"verified: no TXT record at unv\.test\._report\._dmarc\.rep\.test")
        # RFC 9990 4: a confirming record that names another host means neither gets it
        self.assertRegex(r.stderr, r"domain=ovr\.test .*to=rua3@rep\.test: not sent: external destination not "
                                   r"verified: .* names another host \(other\.example\)")
        files = self.f.wait_mail("rua", 1, timeout=15)
        self.assertTrue(files, self.f.read_log())
        self.check_report(files[0], {("127.0.0.1", "none"): 3, ("127.0.0.2", "quarantine"): 2,
                                     ("127.0.0.3", "quarantine"): 1})
        # again: nothing more is sent, and the unverified destination never got one
        r = self.report(86400)
        self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(1.5)
        self.assertEqual(len(self.reports_in("rua")), 1)
        self.assertEqual(self.reports_in("rua2"), [])
        self.assertEqual(self.reports_in("rua3"), [])

    def test_kill9_during_report_runs_never_sends_twice(self):
        for _ in range(4):
            self.assertEqual(send_from("127.0.0.2", self.f.port, "a@agg.test", "k@localhost", "a@agg.test"), 250)
        before = len(self.reports_in("rua"))
        rng = random.Random(7)
        for i in range(6):
            p = subprocess.Popen(later(3 * 86400) + [FERRYCTL, "-c", self.f.conf, "dmarc", "report"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, TZ="UTC"))
            time.sleep(rng.uniform(0.0, 0.08))
            p.send_signal(signal.SIGKILL)
            p.wait()
        r = self.report(3 * 86400)
        self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(2)
        after = self.reports_in("rua")
        # at most one report for the new period: never two copies
        new = after[before:] if len(after) > before else []
        self.assertLessEqual(len(new), 1)
        subjects = [email.message_from_bytes(open(p, "rb").read())["Subject"] for p in after]
        self.assertEqual(len(subjects), len(set(subjects)), subjects)

    def test_the_queue_process_sends_due_reports_itself(self):
        # A second daemon counts two messages, stops, and starts again a day later
        # (datefudge): its queue process's first report run sends the report.
        f2 = Ferry(extra=f"resolver = 127.0.0.1:{self.ns.port}\nspf_check = yes\ndmarc_check = yes\n"
                   f"dkim_key_dir = {self.keys}\n"
                   "dmarc_report_email = dmarc-noreply@rep.test\nmax_connection_rate = 0\n",
                   domains="localhost example.test rep.test").start()
        try:
            for _ in range(2):
                self.assertEqual(send_from("127.0.0.3", f2.port, "a@agg.test", "q@localhost", "a@agg.test"), 250)
            junk = os.path.join(f2.maildir, "q", ".Junk", "new")      # quarantined: SPF fails from there
            self.assertTrue(wait_for(lambda: os.path.isdir(junk) and len(os.listdir(junk)) == 2, 10))
            f2.stop()
            log = open(f2.log_path, "ab")
            day_later = subprocess.Popen(later(86400) + [os.path.join(os.path.dirname(FERRYCTL), "ferryd"),
                                                         "-c", f2.conf, "-f"], stdout=log, stderr=log, cwd=f2.dir,
                                         env=dict(os.environ, TZ="UTC"))
            try:
                files = wait_for(lambda: f2.mailbox_files("rua"), timeout=30)
                self.assertTrue(files, f2.read_log()[-3000:])
                # (no DKIM check here: this daemon signs a day ahead, and dkimpy
                # rightly refuses a signature from the future)
                self.check_report(files[0], {("127.0.0.3", "quarantine"): 2}, dkim=False)
                self.assertIn("dmarc reports: 1 due, 1 sent", f2.read_log())
            finally:
                day_later.send_signal(signal.SIGTERM)
                day_later.wait(timeout=20)
                log.close()
        finally:
            f2.cleanup()

    def test_failure_reports_rate_limited_headers_only(self):
        f3 = Ferry(extra=f"resolver = 127.0.0.1:{self.ns.port}\nspf_check = yes\ndmarc_check = yes\n"
                   "dmarc_failure_reports = yes\ndmarc_failure_rate = 2\n"
                   f"dkim_key_dir = {self.keys}\n"
                   "dmarc_report_email = dmarc-noreply@rep.test\nmax_connection_rate = 0\n",
                   domains="localhost example.test rep.test").start()
        try:
            # no report about reports: an aggregate report that fails DMARC gets none
            self.assertEqual(send_from("127.0.0.2", f3.port, "who@fail.test", "fr@localhost", "who@fail.test",
                                       "Report Domain: x.example Submitter: fail.test Report-ID: <1>"), 250)
            self.assertTrue(wait_for(lambda: "no failure report about a DMARC report" in f3.read_log(), 10))
            for i in range(3):
                self.assertEqual(send_from("127.0.0.2", f3.port, "who@fail.test", "fr@localhost",
                                           "Secret Person <who@fail.test>"), 250)
            waiting = os.path.join(f3.dir, "db", "dmarc-failure")
            self.assertTrue(wait_for(lambda: os.path.isdir(waiting) and len(os.listdir(waiting)) == 2, 10),
                            f3.read_log())
            self.assertIn("no failure report to ruf@rep.test: over 2 an hour", f3.read_log())
            f3.stop()
            f3.start()          # the report run comes a few seconds after the start
            files = wait_for(lambda: len(f3.mailbox_files("ruf")) == 2 and f3.mailbox_files("ruf"), 20)
            self.assertTrue(files, f3.read_log()[-3000:])
            self.assertEqual(os.listdir(waiting), [])
            with open(files[0], "rb") as fh:
                raw = fh.read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertEqual(msg.get_content_type(), "multipart/report")
            self.assertEqual(msg.get_param("report-type"), "feedback-report")
            types = [p.get_content_type() for p in msg.iter_parts()]
            self.assertEqual(types, ["text/plain", "message/feedback-report", "text/rfc822-headers"])
            text = raw.decode("latin-1")
            self.assertIn("Feedback-Type: auth-failure", text)
            self.assertIn("Auth-Failure: dmarc", text)
            self.assertIn("Reported-Domain: fail.test", text)
            self.assertIn("Source-IP: 127.0.0.2", text)
            self.assertNotIn("who@fail.test", text)         # redacted by default
            self.assertNotIn("\nbody\n", text)               # headers only
            self.assertIn("DKIM-Signature", text)            # signed by the pickup
        finally:
            f3.cleanup()


if __name__ == "__main__":
    unittest.main()
