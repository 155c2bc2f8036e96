"""DMARC aggregate reports as Ferry sends them (auth/dmarc_agg, dmarc_report_xml,
dmarc_report_mail), driven by tests/tools/dmarc_report_tool on real Berkeley DB
files: the XML validates against RFC 9990's schema (xmllint, an independent
validator) and carries exact counts; XML and message match golden files; the
message decodes with Python's email package and its attachment gunzips to the
report; sending is at most once per destination and honours "!size"."""
import email
import email.policy
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import xml.etree.ElementTree as ET

from ferrytest import ROOT

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "dmarc_report_tool")
DATA = os.path.join(ROOT, "tests", "data", "dmarc")
XSD = os.path.join(DATA, "dmarc-xml-0.2.xsd")
NS = {"d": "urn:ietf:params:xml:ns:dmarc-2.0"}


def split_reports(text):
    parts = text.split('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ['<?xml version="1.0" encoding="UTF-8"?>\n' + p for p in parts if p]


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ferry-dmarc-rep-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_tool(self, mode, spec_name=None, spec_text=None, db="db"):
        if spec_text is None:
            with open(os.path.join(DATA, spec_name)) as f:
                spec_text = f.read()
        env = dict(os.environ, TZ="UTC")
        r = subprocess.run([TOOL, os.path.join(self.dir, db), mode], input=spec_text.encode(),
                           capture_output=True, env=env, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r.stdout

    def golden(self, name, got):
        with open(os.path.join(DATA, name), "rb") as f:
            want = f.read()
        self.assertEqual(got, want, f"output differs from {name}")

    def test_xml_validates_with_exact_counts(self):
        reports = split_reports(self.run_tool("xml", "agg_basic.in").decode())
        self.assertEqual(len(reports), 2)
        for i, rep in enumerate(reports):
            path = os.path.join(self.dir, f"r{i}.xml")
            with open(path, "w") as f:
                f.write(rep)
            v = subprocess.run(["xmllint", "--noout", "--schema", XSD, path], capture_output=True, text=True)
            self.assertEqual(v.returncode, 0, v.stderr)
        com = ET.fromstring(reports[0].encode())
        self.assertEqual(com.findtext("d:policy_published/d:domain", namespaces=NS), "example.com")
        self.assertEqual(com.findtext("d:report_metadata/d:org_name", namespaces=NS),
                         'Ferry Test <Reporting> & "Co"')
        self.assertEqual(com.findtext("d:report_metadata/d:date_range/d:begin", namespaces=NS), "1700006400")
        self.assertEqual(com.findtext("d:report_metadata/d:date_range/d:end", namespaces=NS), "1700092799")
        counts = {r.findtext("d:row/d:source_ip", namespaces=NS): int(r.findtext("d:row/d:count", namespaces=NS))
                  for r in com.findall("d:record", NS)}
        self.assertEqual(counts, {"192.0.2.10": 3, "2001:db8::25": 1, "198.51.100.7": 2})
        ml = [r for r in com.findall("d:record", NS)
              if r.findtext("d:row/d:source_ip", namespaces=NS) == "198.51.100.7"][0]
        self.assertEqual(ml.findtext("d:row/d:policy_evaluated/d:reason/d:comment", namespaces=NS),
                         "list <lists@example.net> & forwarded")
        self.assertEqual(ml.findtext("d:identifiers/d:header_from", namespaces=NS), "news.example.com")
        null = [r for r in com.findall("d:record", NS)
                if r.findtext("d:row/d:source_ip", namespaces=NS) == "2001:db8::25"][0]
        self.assertEqual(null.findtext("d:identifiers/d:envelope_from", namespaces=NS), "")  # null path
        self.assertIsNotNone(null.find("d:identifiers/d:envelope_from", NS))
        org = ET.fromstring(reports[1].encode())
        self.assertEqual(org.findtext("d:policy_published/d:testing", namespaces=NS), "y")
        self.assertEqual(org.findtext("d:policy_published/d:sp", namespaces=NS), "none")   # default: p
        self.assertEqual(sum(int(c.text) for c in org.iter("{%s}count" % NS["d"])), 4)

    def test_xml_golden(self):
        self.golden("agg_basic.xml.out", self.run_tool("xml", "agg_basic.in"))

    def test_mail_golden_and_decodes(self):
        raw = self.run_tool("mail", "agg_basic.in")
        self.golden("agg_basic.mail.out", raw)
        xml = split_reports(self.run_tool("xml", "agg_basic.in", db="db2").decode())
        msgs = [b"From:" + m for m in raw.split(b"\r\nFrom:") if m]
        msgs[0] = msgs[0][len(b"From:"):]
        self.assertEqual(len(msgs), 2)
        m = email.message_from_bytes(msgs[0], policy=email.policy.default)
        self.assertEqual(m.get_content_type(), "multipart/mixed")
        self.assertEqual(m["From"].addresses[0].addr_spec, "dmarc-noreply@ferry.test")
        self.assertEqual(m["To"].addresses[0].addr_spec, "dmarc@example.com")
        rid = "0123456789abcdef0123456789abcdef"
        self.assertRegex(re.sub(r"\s+", " ", str(m["Subject"])),
                         r"^Report Domain: example\.com Submitter: mx\.ferry\.test Report-ID: <%s>$" % rid)
        self.assertEqual(str(m["Message-ID"]), f"<{rid}@mx.ferry.test>")
        parts = list(m.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "application/gzip"])
        att = parts[1]
        self.assertEqual(att.get_filename(), f"mx.ferry.test!example.com!1700006400!1700092799!{rid}.xml.gz")
        self.assertEqual(att["Content-Transfer-Encoding"], "base64")
        self.assertEqual(gzip.decompress(att.get_content()).decode(), xml[0])
        for line in msgs[0].split(b"\r\n"):
            self.assertLessEqual(len(line), 998)

    def test_send_is_at_most_once_and_honours_size(self):
        with open(os.path.join(DATA, "agg_basic.in")) as f:
            spec = f.read()
        # example.org's first rua takes at most 1k: the report message is larger
        spec = spec.replace("rua mailto:agg@reports.example.net", "rua mailto:agg@reports.example.net!1k")
        out = self.run_tool("send", spec_text=spec).decode()
        self.assertIn("reports=2 sent=2 too_big=1 failed=0", out)
        self.assertRegex(out, r"to=agg@reports\.example\.net: not sent: the report message \(\d+ octets\) is over")
        sent = sorted(f for f in os.listdir(os.path.join(self.dir, "db")) if f.startswith("sent-"))
        self.assertEqual(len(sent), 2)
        tos = set()
        for name in sent:
            with open(os.path.join(self.dir, "db", name), "rb") as f:
                tos.add(email.message_from_bytes(f.read(), policy=email.policy.default)["To"].addresses[0].addr_spec)
        self.assertEqual(tos, {"dmarc@example.com", "second@example.org"})
        # a second run (same store, no new messages) sends nothing again
        again = self.run_tool("send", spec_text="\n".join(l for l in spec.splitlines()
                                                           if l.startswith(("receiver", "now", "email")))).decode()
        self.assertIn("reports=0 sent=0", again)


if __name__ == "__main__":
    unittest.main()
