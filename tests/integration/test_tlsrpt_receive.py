"""TLS reports others send us (RFC 8460 §4, §5.3), through the real ferryctl and
the real daemon.

Reports are made here, dated from today (the store keeps 400 days), in the
shapes senders use: multipart/report with application/tlsrpt+gzip in base64,
application/tlsrpt+json, a plain .json attachment, a bare JSON body. Each good
one validates against tests/data/tlsrpt/report.schema.json (written from §4.4),
so the inputs are what the RFC describes; broken ones are refused with a
sentence naming the fault (and the schema, where it covers the fault, refuses
them too). `tlsrpt summary` totals are checked exactly.

The daemon: mail to tlsrpt@<local domain> is read at the end of DATA and a
broken report refused there (550 5.6.0), one about another domain too; a good
one is delivered to <mail_dir>/.tlsrpt-reports and stored by the queue
process's report run, a duplicate report-id once."""
import base64
import copy
import gzip
import json
import os
import re
import shutil
import subprocess
import time
import unittest

import jsonschema

from ferrytest import FERRYCTL, Ferry, ROOT, SmtpLines, wait_for

SCHEMA = os.path.join(ROOT, "tests", "data", "tlsrpt", "report.schema.json")
DAY = 86400


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def report(org, rid, domain="example.test", ok=100, fails=(), days_ago=1, extra_policies=()):
    """A report about the UTC day days_ago days back. fails: (result, count, mx, ip)."""
    start = (int(time.time()) // DAY - days_ago) * DAY
    pol = {
        "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce",
                                                          "mx: mx.%s" % domain, "max_age: 604800"],
                   "policy-domain": domain, "mx-host": ["mx.%s" % domain]},
        "summary": {"total-successful-session-count": ok,
                    "total-failure-session-count": sum(f[1] for f in fails)},
    }
    if fails:
        pol["failure-details"] = [{"result-type": r, "sending-mta-ip": "192.0.2.25", "receiving-mx-hostname": mx,
                                   "receiving-ip": ip, "failed-session-count": n} for r, n, mx, ip in fails]
    return {"organization-name": org, "date-range": {"start-datetime": iso(start), "end-datetime": iso(start + DAY)},
            "contact-info": "tlsrpt-noreply@%s" % org.split()[0].lower() + ".example",
            "report-id": rid, "policies": [pol] + list(extra_policies)}


def message(doc_bytes, ctype="application/tlsrpt+gzip", gz=True, to="tlsrpt@example.test", name=None):
    body = gzip.compress(doc_bytes, mtime=0) if gz else doc_bytes
    b64 = base64.encodebytes(body).decode().replace("\n", "\r\n")
    name = name or "reporter.example!example.test!1!2.json" + (".gz" if gz else "")
    return ("From: tlsrpt-noreply@reporter.example\r\nTo: %s\r\n"
            "Subject: Report Domain: example.test Submitter: reporter.example Report-ID: <r1@reporter.example>\r\n"
            "TLS-Report-Domain: example.test\r\nTLS-Report-Submitter: reporter.example\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"=_b1\"\r\n\r\n"
            "--=_b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nAn aggregate TLS report.\r\n\r\n"
            "--=_b1\r\nContent-Type: %s\r\nContent-Transfer-Encoding: base64\r\n"
            "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n\r\n%s--=_b1--\r\n"
            % (to, ctype, name, b64)).encode()


def plain_body(doc_bytes, to="tlsrpt@example.test"):
    return b"From: r@reporter.example\r\nTo: " + to.encode() + b"\r\nSubject: TLS report\r\n\r\n" + doc_bytes


GOOGLE = report("Google Inc.", "2026-g1_example.test",
                fails=[("certificate-expired", 2, "mx.example.test", "192.0.2.7"),
                       ("starttls-not-supported", 1, "mx2.example.test", "2001:db8::7")])
MICROSOFT = report("Microsoft Corporation", "ms-7f3a", ok=50,
                   extra_policies=[{"policy": {"policy-type": "no-policy-found", "policy-domain": "localhost"},
                                    "summary": {"total-successful-session-count": 5,
                                                "total-failure-session-count": 0}}])
OLD = report("Google Inc.", "2026-g0_example.test", ok=30, days_ago=10,
             fails=[("validation-failure", 4, "mx.example.test", "192.0.2.7")])
SMALL = report("Small ISP", "isp-1", domain="example.org", ok=7)


def dump(doc):
    return json.dumps(doc).encode()


class Fixtures(unittest.TestCase):
    """The reports made here are what RFC 8460 §4.4 describes (schema), and the
    schema refuses the broken variants used below where it covers them."""

    @classmethod
    def setUpClass(cls):
        with open(SCHEMA) as f:
            cls.validator = jsonschema.Draft202012Validator(json.load(f))

    def test_good_reports_validate(self):
        for doc in (GOOGLE, OLD, SMALL):
            self.validator.validate(doc)
        # the no-policy-found policy has a one-label domain, which the schema's
        # domain pattern does not take; Ferry does (its own local domain)
        ms = copy.deepcopy(MICROSOFT)
        ms["policies"][1]["policy"]["policy-domain"] = "localhost.example"
        self.validator.validate(ms)

    def test_broken_reports_fail_the_schema_too(self):
        for mutate in BROKEN_DOCS.values():
            doc = copy.deepcopy(GOOGLE)
            mutate(doc)
            self.assertFalse(self.validator.is_valid(doc), doc)


def _del(path):
    def f(doc):
        d = doc
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return f


def _set(path, value):
    def f(doc):
        d = doc
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return f


# the refusal's words -> the change to a good report
BROKEN_DOCS = {
    "report-id is missing": _del(["report-id"]),
    "policies[0].summary.total-successful-session-count is not an integer":
        _set(["policies", 0, "summary", "total-successful-session-count"], "100"),
    "policies[0].policy.policy-type \"dane\" is not tlsa, sts or no-policy-found":
        _set(["policies", 0, "policy", "policy-type"], "dane"),
    "policies[0].failure-details[1].receiving-ip is not an IP address":
        _set(["policies", 0, "failure-details", 1, "receiving-ip"], "mx2.example.test"),
    "date-range.end-datetime is not an RFC 3339 date-time": _set(["date-range", "end-datetime"], "yesterday"),
    "contact-info is not an e-mail address": _set(["contact-info"], "nobody"),
}


class Ctl(unittest.TestCase):
    def setUp(self):
        self.ferry = Ferry()            # its config and directories; no daemon is needed
        self.tmp = os.path.join(self.ferry.dir, "in")
        os.mkdir(self.tmp)

    def tearDown(self):
        shutil.rmtree(self.ferry.dir, ignore_errors=True)

    def ctl(self, *args, stdin=None):
        return subprocess.run([FERRYCTL, "-c", self.ferry.conf, "tlsrpt"] + list(args), input=stdin,
                              capture_output=True, timeout=60)

    def file(self, name, data):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def summary(self, *args):
        r = self.ctl("summary", "--json", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_broken_reports_are_refused_and_store_nothing(self):
        bad = {}
        for why, mutate in BROKEN_DOCS.items():
            doc = copy.deepcopy(GOOGLE)
            mutate(doc)
            bad[message(dump(doc))] = why
        whole = message(dump(GOOGLE))
        gz = gzip.compress(dump(GOOGLE), mtime=0)
        bad[whole.replace(b"\r\n\r\nH4sI", b"\r\n\r\n!!!!H4sI", 1)] = "not valid base64"
        bad[gz[: len(gz) // 2]] = "the gzip data is truncated"
        bad[gzip.compress(b" " * (11 << 20), mtime=0)] = "the report inflates to more than 10485760 octets"
        bad[b"{\"organization-name\": \"x\", "] = "the report is not valid JSON: it ends early"
        bad[b"Subject: hi\r\n\r\nno report here\r\n"] = "the message holds no TLS report"
        bad[message(b"<feedback/>", ctype="application/tlsrpt+json", gz=False)] = "not valid JSON"
        self.assertNotIn(whole, bad)
        for data, why in bad.items():
            r = self.ctl("import", self.file("bad", data))
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 1, why)
            self.assertIn("report refused", err, why)
            self.assertIn(why, err)
            self.assertEqual(err.count("\n"), 1, err)
        s = self.summary()
        self.assertEqual((s["reports"], s["pairs"]), (0, []))

    def test_import_then_summary_totals(self):
        inputs = [
            message(dump(GOOGLE)),                                              # tlsrpt+gzip, base64
            message(dump(MICROSOFT), ctype="application/tlsrpt+json", gz=False),
            message(dump(OLD), ctype="application/octet-stream", gz=False, name="old.json"),
            plain_body(dump(SMALL)),                                            # the whole body is JSON
        ]
        for data in inputs:
            r = self.ctl("import", self.file("m.eml", data))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, b"1 report stored, 0 already present\n")
        # the same report again, as a bare gzip file on standard input: kept once
        r = self.ctl("import", stdin=gzip.compress(dump(GOOGLE)))
        self.assertEqual((r.returncode, r.stdout), (0, b"0 reports stored, 1 already present\n"), r.stderr)
        # and a report whose organisation differs only in case is the same one
        g = copy.deepcopy(GOOGLE)
        g["organization-name"] = "GOOGLE INC."
        self.assertEqual(self.ctl("import", stdin=dump(g)).stdout, b"0 reports stored, 1 already present\n")

        s = self.summary()
        self.assertEqual(s["reports"], 4)
        pairs = {(p["organization"], p["policy_domain"]): (p["reports"], p["successful"], p["failed"],
                                                           p["failure_types"]) for p in s["pairs"]}
        self.assertEqual(pairs, {
            ("Google Inc.", "example.test"): (2, 130, 7, {"certificate-expired": 2, "starttls-not-supported": 1,
                                                          "validation-failure": 4}),
            ("Microsoft Corporation", "example.test"): (1, 50, 0, {}),
            ("Microsoft Corporation", "localhost"): (1, 5, 0, {}),
            ("Small ISP", "example.org"): (1, 7, 0, {}),
        })
        # --days 5: the report of ten days ago falls out
        s = self.summary("--days", "5")
        self.assertEqual(s["reports"], 3)
        google = [p for p in s["pairs"] if p["organization"] == "Google Inc."][0]
        self.assertEqual((google["reports"], google["successful"], google["failed"]), (1, 100, 3))
        self.assertNotIn("validation-failure", google["failure_types"])

        text = self.ctl("summary", "--days", "30")
        self.assertEqual(text.returncode, 0)
        out = text.stdout.decode()
        self.assertIn("4 reports ending in the last 30 days\n", out)
        self.assertIn("Google Inc. / example.test: 2 reports, 130 successful, 7 failed (certificate-expired 2, "
                      "starttls-not-supported 1, validation-failure 4)\n", out)
        self.assertIn("Small ISP / example.org: 1 report, 7 successful, 0 failed\n", out)

    def test_old_and_future_reports_refused(self):
        r = self.ctl("import", stdin=dump(report("Old", "o1", days_ago=401)))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"ended more than 400 days ago", r.stderr)
        r = self.ctl("import", stdin=dump(report("Future", "f1", days_ago=-3)))
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"starts more than a day from now", r.stderr)

    def test_usage_errors(self):
        self.assertEqual(self.ctl("summary", "--days", "x").returncode, 2)
        self.assertEqual(self.ctl("summary", "--days", "0").returncode, 2)
        self.assertEqual(self.ctl("frobnicate").returncode, 2)
        r = self.ctl("import", "/nonexistent/file")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cannot open /nonexistent/file", r.stderr)


class ReceivedBySmtp(unittest.TestCase):
    """The daemon's path, end to end."""

    def send(self, f, data, rcpts=("tlsrpt@example.test",), bdat=False):
        c = SmtpLines(f.port)
        try:
            c.cmd("EHLO reporter.example")
            self.assertEqual(c.cmd("MAIL FROM:<tlsrpt-noreply@reporter.example>")[0], 250)
            for r in rcpts:
                self.assertEqual(c.cmd("RCPT TO:<%s>" % r)[0], 250, r)
            if bdat:
                c.send(b"BDAT %d LAST\r\n" % len(data) + data)
                return c.reply()
            self.assertEqual(c.cmd("DATA")[0], 354)
            lines = data.split(b"\r\n")
            c.send(b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines) +
                   (b"" if data.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            return c.reply()
        finally:
            c.close()

    def test_reports_mailed_to_the_address(self):
        f = Ferry(local_recipients="known", domains="localhost example.test example.org").start()
        try:
            # refused at the end of DATA, saying why
            code, lines = self.send(f, b"Subject: a question\r\n\r\nDo you take TLS reports here?\r\n")
            self.assertEqual(code, 550)
            self.assertIn("5.6.0 TLS report refused: the message holds no TLS report", lines[0])
            broken = copy.deepcopy(GOOGLE)
            BROKEN_DOCS["report-id is missing"](broken)
            code, lines = self.send(f, message(dump(broken)))
            self.assertEqual(code, 550)
            self.assertRegex(lines[0], r"^550 5\.6\.0 TLS report refused: \S+\.json\.gz: report-id is missing$")
            elsewhere = report("Google Inc.", "g-else", domain="elsewhere.example")
            code, lines = self.send(f, message(dump(elsewhere)), bdat=True)
            self.assertEqual(code, 550)
            self.assertIn("is about elsewhere.example, not a domain of this server", lines[0])
            # taken: a good report by DATA, by BDAT, the first again, and a broken
            # one that also goes to another recipient (taken, flagged at import)
            self.assertEqual(self.send(f, message(dump(GOOGLE)))[0], 250)
            self.assertEqual(self.send(f, message(dump(SMALL), to="tlsrpt@example.org"),
                                       rcpts=["tlsrpt@example.org"], bdat=True)[0], 250)
            self.assertEqual(self.send(f, message(dump(GOOGLE)))[0], 250)
            self.assertEqual(self.send(f, message(dump(broken)),
                                       rcpts=["tlsrpt@example.test", "dmarc-reports@localhost"])[0], 250)
            self.assertIn("refused message from [127.0.0.1]", f.read_log())
            box = os.path.join(f.maildir, ".tlsrpt-reports")
            new = os.path.join(box, "new")
            self.assertTrue(wait_for(lambda: os.path.isdir(new) and len(os.listdir(new)) == 4, 20), f.read_log())
            # the first report run comes a few seconds after the (re)start
            f.stop()
            f.start()
            cur = os.path.join(box, "cur")
            self.assertTrue(wait_for(lambda: os.path.isdir(cur) and len(os.listdir(cur)) == 4, 30), f.read_log())
            names = sorted(os.listdir(cur))
            self.assertEqual(sum(n.endswith(":2,S") for n in names), 3, names)
            self.assertEqual(sum(n.endswith(":2,FS") for n in names), 1, names)
            log = f.read_log()
            self.assertRegex(log, r"tls-rpt reports received: \S+ refused: \S+: report-id is missing")
            self.assertIn("0 stored, 1 already known", log)
            r = subprocess.run([FERRYCTL, "-c", f.conf, "tlsrpt", "summary", "--json"], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            s = json.loads(r.stdout)
            self.assertEqual(s["reports"], 2)
            pairs = {(p["organization"], p["policy_domain"]): (p["successful"], p["failed"], p["failure_types"])
                     for p in s["pairs"]}
            self.assertEqual(pairs, {
                ("Google Inc.", "example.test"): (100, 3, {"certificate-expired": 2, "starttls-not-supported": 1}),
                ("Small ISP", "example.org"): (7, 0, {}),
            })
        finally:
            f.cleanup()

    def test_broken_report_larger_than_the_write_buffer_is_refused_at_data(self):
        """A report message over the smtp process's 64 KB write buffer is in its
        draft file by the end of DATA and is read back from there (the draft was
        once write-only: the read failed and the broken report was taken)."""
        f = Ferry(local_recipients="known", domains="localhost example.test example.org").start()
        try:
            broken = copy.deepcopy(GOOGLE)
            BROKEN_DOCS["report-id is missing"](broken)
            doc = dump(broken) + b" " * (200 << 10)      # JSON allows trailing white space
            data = message(doc, ctype="application/tlsrpt+json", gz=False)
            self.assertGreater(len(data), 64 << 10)
            code, lines = self.send(f, data)
            self.assertEqual(code, 550, lines)
            self.assertIn("report-id is missing", lines[0])
            self.assertNotIn("cannot read the report back", f.read_log())
        finally:
            f.cleanup()

    def test_report_too_big_to_check_on_the_loop_is_taken_and_refused_at_import(self):
        """A few KB of gzip can inflate to megabytes of JSON, and a json-c tree costs
        many times its text: the smtp process builds none larger than 1 MB at the
        end of DATA. Such a report is taken and checked by the report run."""
        f = Ferry(local_recipients="known", domains="localhost example.test example.org").start()
        try:
            # 2 MB of JSON, a few KB once message() has gzipped it
            code, lines = self.send(f, message(b"[" + b"0," * (1 << 20) + b"0]"))
            self.assertEqual(code, 250, lines)
            self.assertIn("octets of JSON: taken, checked at import", f.read_log())
            f.stop()
            f.start()
            self.assertTrue(wait_for(lambda: re.search(r"tls-rpt reports received: \S+ refused: ", f.read_log()), 30),
                            f.read_log()[-3000:])
        finally:
            f.cleanup()


if __name__ == "__main__":
    unittest.main()
