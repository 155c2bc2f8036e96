"""Received DMARC aggregate reports through the real ferryctl: `dmarc import` of
sample messages from several reporters (zip, gzip, bare .xml.gz, single-part
text/xml) and of broken ones (truncated gzip, bad XML, gzip bomb, zip bomb, XXE,
no attachment), which must be refused with a clear message, exit 1 and store
nothing; then `dmarc summary` totals checked exactly, and its --json parsed."""
import json
import os
import shutil
import subprocess
import unittest

from ferrytest import FERRYCTL, Ferry, ROOT

DATA = os.path.join(ROOT, "tests", "data", "dmarc")
GOOD = ["rua_google.eml", "rua_outlook.eml", "rua_isp.xml.gz", "rua_tiny_textxml.eml"]
BAD = {
    "bad_truncated_gz.eml": "gzip data is truncated",
    "bad_not_xml.eml": "not well-formed XML",
    "bad_oversize.xml.gz": "inflates to more than",
    "bad_zip_bomb.eml": "inflates to more than",
    "bad_xxe.eml": "DOCTYPE",
    "bad_no_report.eml": "no DMARC report attachment",
}


class ImportTest(unittest.TestCase):
    def setUp(self):
        self.ferry = Ferry()            # its config and directories; no daemon is needed

    def tearDown(self):
        shutil.rmtree(self.ferry.dir, ignore_errors=True)

    def ctl(self, *args, stdin=None):
        return subprocess.run([FERRYCTL, "-c", self.ferry.conf, "dmarc"] + list(args), input=stdin,
                              capture_output=True, timeout=60)

    def summary(self, *args):
        r = self.ctl("summary", "--json", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_broken_reports_are_refused_and_store_nothing(self):
        for name, why in BAD.items():
            r = self.ctl("import", os.path.join(DATA, name))
            self.assertEqual(r.returncode, 1, name)
            err = r.stderr.decode()
            self.assertIn("report refused", err, name)
            self.assertIn(why, err, name)
            self.assertEqual(err.count("\n"), 1, f"{name}: one line of error, got {err!r}")
        s = self.summary()
        self.assertEqual((s["reports"], s["messages"], s["sources"]), (0, 0, []))

    def test_import_then_summary_totals(self):
        for name in GOOD:
            r = self.ctl("import", os.path.join(DATA, name))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(b"1 report stored", r.stdout)
        with open(os.path.join(DATA, "rua_outlook.eml"), "rb") as f:      # a duplicate, on stdin
            r = self.ctl("import", stdin=f.read())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(b"0 reports stored, 1 already present", r.stdout)
        for name in BAD:                   # broken ones in between change nothing
            self.assertEqual(self.ctl("import", os.path.join(DATA, name)).returncode, 1)

        s = self.summary()
        self.assertEqual(s["reports"], 4)
        self.assertEqual(s["messages"], 10 + 3 + 5 + 2 + 7 + 1)
        self.assertEqual((s["spf_pass"], s["dkim_pass"], s["dmarc_pass"]), (18, 22, 23))
        src = {(x["reporter"], x["source_ip"]): (x["messages"], x["spf_pass"], x["dkim_pass"], x["dmarc_pass"])
               for x in s["sources"]}
        self.assertEqual(src, {
            ("google.com", "192.0.2.1"): (10, 10, 10, 10),
            ("google.com", "198.51.100.9"): (3, 0, 0, 0),
            ("Enterprise Outlook", "192.0.2.1"): (5, 0, 5, 5),
            ("Enterprise Outlook", "203.0.113.66"): (2, 0, 0, 0),
            ("Small ISP & Co", "2001:db8::7"): (7, 7, 7, 7),
            ("Tiny", "192.0.2.200"): (1, 1, 0, 1),
        })
        failing = {(x["reporter"], x["source_ip"], x["header_from"]): x["messages"] for x in s["failing"]}
        self.assertEqual(failing, {("google.com", "198.51.100.9", "example.com"): 3,
                                   ("Enterprise Outlook", "203.0.113.66", "example.com"): 2})

        # --domain and --days: example.org only; the 2015 report falls out of a year
        s = self.summary("--domain", "example.org")
        self.assertEqual((s["reports"], s["messages"]), (1, 7))
        s = self.summary("--days", "365")
        self.assertEqual((s["reports"], s["messages"]), (3, 27))
        s = self.summary("--domain", "EXAMPLE.COM", "--days", "365")
        self.assertEqual((s["reports"], s["messages"], s["dmarc_pass"]), (2, 20, 15))

        text = self.ctl("summary")
        self.assertEqual(text.returncode, 0)
        out = text.stdout.decode()
        self.assertIn("4 reports, 28 messages", out)
        self.assertRegex(out, r"failing sources \(DMARC fail\):\n.*203\.0\.113\.66")

    def test_usage_errors(self):
        self.assertEqual(self.ctl("summary", "--days", "x").returncode, 2)
        self.assertEqual(self.ctl("frobnicate").returncode, 2)
        r = self.ctl("import", "/nonexistent/file")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"cannot open /nonexistent/file", r.stderr)


class ReceivedBySmtp(unittest.TestCase):
    """The daemon's path: reports mailed to dmarc_reports_address (which exists
    whatever local_recipients says) are kept in <mail_dir>/.dmarc-reports and read
    by the queue process's report run; a broken one is kept, flagged, and logged."""

    def test_reports_mailed_to_the_address_are_stored(self):
        import time
        from ferrytest import SmtpLines, wait_for
        # reports are kept only about our domains: example.com here, not example.net
        f = Ferry(local_recipients="known", extra="dmarc_report_domains = example.com\n").start()
        try:
            for name in ("rua_google.eml", "rua_outlook.eml", "bad_truncated_gz.eml", "rua_tiny_textxml.eml"):
                with open(os.path.join(DATA, name), "rb") as fh:
                    msg = fh.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                if name == "rua_tiny_textxml.eml":      # made about someone else's domain
                    msg = msg.replace(b"<domain>example.com</domain>", b"<domain>elsewhere.example</domain>")
                msg = b"\r\n".join(b"." + l if l.startswith(b".") else l for l in msg.split(b"\r\n"))
                c = SmtpLines(f.port)
                c.cmd("EHLO reporter.example")
                self.assertEqual(c.cmd("MAIL FROM:<noreply-dmarc@reporter.example>")[0], 250)
                self.assertEqual(c.cmd("RCPT TO:<dmarc-reports@localhost>")[0], 250)
                self.assertEqual(c.cmd("DATA")[0], 354)
                c.send(msg + (b"" if msg.endswith(b"\r\n") else b"\r\n") + b".\r\n")
                self.assertEqual(c.reply()[0], 250)
                c.cmd("QUIT")
                c.close()
            box = os.path.join(f.maildir, ".dmarc-reports")
            self.assertTrue(wait_for(lambda: os.path.isdir(os.path.join(box, "new")) and
                                     len(os.listdir(os.path.join(box, "new"))) == 4, 10), f.read_log())
            # what someone with access to new/ might put there: a FIFO (a reader that
            # followed it would block) and a symbolic link; each is flagged, not read
            new = os.path.join(box, "new")
            os.mkfifo(os.path.join(new, "1.fifo.x"))
            os.symlink("/etc/shadow", os.path.join(new, "2.link.x"))
            # the first report run comes a few seconds after the (re)start
            f.stop()
            f.start()
            cur = os.path.join(box, "cur")
            self.assertTrue(wait_for(lambda: os.path.isdir(cur) and len(os.listdir(cur)) == 6, 20), f.read_log())
            names = sorted(os.listdir(cur))
            self.assertEqual(sum(n.endswith(":2,S") for n in names), 2, names)
            self.assertEqual(sum(n.endswith(":2,FS") for n in names), 4, names)
            self.assertIn("1.fifo.x refused: not a regular file", f.read_log())
            self.assertIn("2.link.x refused: cannot open it", f.read_log())
            self.assertIn("not one of our domains", f.read_log())
            self.assertRegex(f.read_log(), r"dmarc reports received: \S+ refused: .*gzip data is truncated")
            r = subprocess.run([FERRYCTL, "-c", f.conf, "dmarc", "summary", "--json"], capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            s = json.loads(r.stdout)
            self.assertEqual((s["reports"], s["messages"]), (2, 10 + 3 + 5 + 2))
        finally:
            f.cleanup()


if __name__ == "__main__":
    unittest.main()
