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
import json
import re
import signal
import unittest

import jsonschema

from ferrytest import Ferry, wait_for
from test_remote_delivery import wait_status
from test_tlsrpt_delivery import Hook, ReportWorld

WWW, MX, HOOK = "127.0.0.44", "127.0.0.45", "127.0.0.46"


class EnforceFailures(ReportWorld):
    @classmethod
    def setUpClass(cls):
        cls.build("ferry-tlsrpt-enf-", WWW, MX, HOOK, "mx.other.test",
                  {"gapbad.test": "mx.gapbad.test", "gapnomx.test": "mx.elsewhere.test"},
                  f"v=TLSRPTv1; rua=https://{HOOK}/tlsrpt")

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
        p = self.day_later(f)
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
