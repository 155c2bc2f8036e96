"""The RFC 8460 report Ferry writes (delivery/tlsrpt_report.c through
tests/tools/tlsrpt_json) validates against tests/data/tlsrpt/report.schema.json,
written from RFC 8460 §4.4, with exact counts for a mix of an sts policy with
successes and three kinds of failure and a no-policy-found domain; the gzip'd
form inflates to the same bytes; and the schema itself rejects a report with a
count as a string or an unknown result type (so a pass means something)."""
import copy
import gzip
import json
import os
import subprocess
import unittest

import jsonschema

from ferrytest import ROOT

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "tlsrpt_json")
SCHEMA = os.path.join(ROOT, "tests", "data", "tlsrpt", "report.schema.json")

SPEC = """report Ferry 1480550400 1480636800 tlsrpt@sender.example 2016-12-01_example.com
policy sts example.com 17 6 mx1.example.com,*.mx.example.com
string version: STSv1
string mode: enforce
string mx: mx1.example.com
string mx: *.mx.example.com
string max_age: 86400
fail certificate-host-mismatch 192.0.2.1 mx1.example.com 198.51.100.7 3 X509_V_ERR_HOSTNAME_MISMATCH
fail starttls-not-supported 192.0.2.1 b.mx.example.com 2001:db8::25 2
fail sts-policy-fetch-error 192.0.2.1 mx1.example.com 198.51.100.7 1
policy no-policy-found other.example 4 0
"""


class TlsRptSchema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA) as f:
            cls.schema = json.load(f)
        jsonschema.Draft202012Validator.check_schema(cls.schema)

    def run_tool(self, *args, spec=SPEC):
        out = subprocess.run([TOOL] + list(args), input=spec.encode(), capture_output=True, timeout=30)
        return out

    def validate(self, doc):
        jsonschema.Draft202012Validator(self.schema).validate(doc)

    def test_report_validates_with_exact_counts(self):
        out = self.run_tool()
        self.assertEqual(out.returncode, 0, out.stderr)
        doc = json.loads(out.stdout)
        self.validate(doc)
        self.assertEqual(doc["date-range"], {"start-datetime": "2016-12-01T00:00:00Z",
                                             "end-datetime": "2016-12-02T00:00:00Z"})
        sts, none = doc["policies"]
        self.assertEqual(sts["policy"]["policy-type"], "sts")
        self.assertEqual(sts["policy"]["mx-host"], ["mx1.example.com", "*.mx.example.com"])
        self.assertEqual(sts["policy"]["policy-string"][1], "mode: enforce")
        self.assertEqual(sts["summary"], {"total-successful-session-count": 17, "total-failure-session-count": 6})
        got = {(f["result-type"], f["receiving-ip"]): f["failed-session-count"] for f in sts["failure-details"]}
        self.assertEqual(got, {("certificate-host-mismatch", "198.51.100.7"): 3,
                               ("starttls-not-supported", "2001:db8::25"): 2,
                               ("sts-policy-fetch-error", "198.51.100.7"): 1})
        self.assertEqual(sts["failure-details"][0]["failure-reason-code"], "X509_V_ERR_HOSTNAME_MISMATCH")
        self.assertNotIn("failure-reason-code", sts["failure-details"][1])
        self.assertEqual(none["policy"], {"policy-type": "no-policy-found", "policy-domain": "other.example"})
        self.assertEqual(none["summary"]["total-successful-session-count"], 4)
        self.assertNotIn("failure-details", none)

    def test_gzip_form(self):
        plain = self.run_tool().stdout
        gz = self.run_tool("--gzip").stdout
        self.assertEqual(gz[:2], b"\x1f\x8b")
        self.assertEqual(gzip.decompress(gz), plain)
        self.assertEqual(self.run_tool("--gzip").stdout, gz)     # stable bytes

    def test_schema_rejects_bad_reports(self):
        doc = json.loads(self.run_tool().stdout)
        bad = copy.deepcopy(doc)
        bad["policies"][0]["summary"]["total-failure-session-count"] = "6"
        with self.assertRaises(jsonschema.ValidationError):
            self.validate(bad)
        bad = copy.deepcopy(doc)
        bad["policies"][0]["failure-details"][0]["result-type"] = "success"
        with self.assertRaises(jsonschema.ValidationError):
            self.validate(bad)

    def test_policy_level_failure_without_a_session(self):
        """A policy fetch that failed concerns no MX host and no address: the two
        fields are left out (not sent empty), which the schema allows only for the
        policy-level result types; a session failure without them is refused."""
        spec = SPEC.replace("fail sts-policy-fetch-error 192.0.2.1 mx1.example.com 198.51.100.7 1",
                            "fail sts-policy-fetch-error 192.0.2.1 - - 1")
        out = self.run_tool(spec=spec)
        self.assertEqual(out.returncode, 0, out.stderr)
        doc = json.loads(out.stdout)
        self.validate(doc)
        fetch = doc["policies"][0]["failure-details"][2]
        self.assertEqual(fetch["result-type"], "sts-policy-fetch-error")
        self.assertNotIn("receiving-ip", fetch)
        self.assertNotIn("receiving-mx-hostname", fetch)
        bad = copy.deepcopy(doc)
        del bad["policies"][0]["failure-details"][0]["receiving-ip"]
        with self.assertRaises(jsonschema.ValidationError):
            self.validate(bad)

    def test_writer_refuses_inconsistent_counts(self):
        out = self.run_tool(spec=SPEC.replace("17 6", "17 7"))
        self.assertEqual(out.returncode, 1)
        self.assertIn(b"failure details add up to 6, not 7", out.stderr)


if __name__ == "__main__":
    unittest.main()
