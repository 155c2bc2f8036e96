#!/usr/bin/env python3
"""Writes the received-report samples in this directory (run from anywhere; the
files are committed, this only documents how they were made). Reporters and
addresses are invented; every count is listed in test_dmarc_import.py."""
import base64
import gzip
import io
import os
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
FUTURE_B, FUTURE_E = 4070908800, 4070995199      # 2099-01-01 UTC, a whole day
OLD_B, OLD_E = 1420070400, 1420156799            # 2015-01-01 UTC


def record(ip, count, dkim, spf, hf, disp="none", dkim_dom=None, spf_dom=None):
    dk = f"<dkim><domain>{dkim_dom or hf}</domain><selector>s1</selector><result>{'pass' if dkim == 'pass' else 'fail'}</result></dkim>"
    sp = f"<spf><domain>{spf_dom or hf}</domain><result>{'pass' if spf == 'pass' else 'fail'}</result></spf>"
    return (f"<record><row><source_ip>{ip}</source_ip><count>{count}</count><policy_evaluated>"
            f"<disposition>{disp}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated></row>"
            f"<identifiers><header_from>{hf}</header_from></identifiers><auth_results>{dk}{sp}</auth_results></record>")


def report(org, email, rid, domain, begin, end, records, ns=True):
    xmlns = ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' if ns else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<feedback{xmlns}>'
            f"<report_metadata><org_name>{org}</org_name><email>{email}</email><report_id>{rid}</report_id>"
            f"<date_range><begin>{begin}</begin><end>{end}</end></date_range></report_metadata>"
            f"<policy_published><domain>{domain}</domain><p>none</p><sp>none</sp><pct>100</pct></policy_published>"
            + "".join(records) + "</feedback>\n").encode()


def mail(subject, parts):
    b = "==sample-boundary=="
    out = [f"From: noreply-dmarc@reporter.example\r\nTo: dmarc-reports@ferry.test\r\nSubject: {subject}\r\n"
           f"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\npreamble\r\n"]
    out.append(f"--{b}\r\nContent-Type: text/plain\r\n\r\nA DMARC report.\r\n")
    for ctype, name, data in parts:
        body = base64.encodebytes(data).decode().replace("\n", "\r\n")
        out.append(f"--{b}\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n"
                   f"Content-Disposition: attachment;\r\n filename=\"{name}\"\r\n\r\n{body}")
    out.append(f"--{b}--\r\n")
    return "".join(out).encode()


def zipped(name, data):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
    return f.getvalue()


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


g = report("google.com", "noreply-dmarc-support@google.com", "1234567890123456789", "example.com",
           FUTURE_B, FUTURE_E, [record("192.0.2.1", 10, "pass", "pass", "example.com"),
                                record("198.51.100.9", 3, "fail", "fail", "example.com", "reject")], ns=False)
write("rua_google.eml", mail("Report domain: example.com Submitter: google.com Report-ID: 1234567890123456789",
                             [("application/zip", "google.com!example.com!4070908800!4070995199.zip",
                               zipped("google.com!example.com!4070908800!4070995199.xml", g))]))
m = report("Enterprise Outlook", "dmarcreport@microsoft.example", "a1b2c3d4e5", "example.com", FUTURE_B, FUTURE_E,
           [record("192.0.2.1", 5, "pass", "fail", "example.com", spf_dom="bounces.esp.example"),
            record("203.0.113.66", 2, "fail", "fail", "example.com", "quarantine")])
write("rua_outlook.eml", mail("Report Domain: example.com Submitter: outlook.example Report-ID: <a1b2c3d4e5>",
                              [("application/gzip", "outlook.example!example.com!4070908800!4070995199.xml.gz",
                                gzip.compress(m, mtime=0))]))
p = report("Small ISP &amp; Co", "dmarc@isp.example", "isp-77", "example.org", FUTURE_B, FUTURE_E,
           [record("2001:db8::7", 7, "pass", "pass", "example.org")])
write("rua_isp.xml.gz", gzip.compress(p, mtime=0))
t = report("Tiny", "postmaster@tiny.example", "tiny-1", "example.com", OLD_B, OLD_E,
           [record("192.0.2.200", 1, "fail", "pass", "example.com")])
write("rua_tiny_textxml.eml", b"From: postmaster@tiny.example\r\nTo: dmarc-reports@ferry.test\r\n"
      b"Subject: Report Domain: example.com Submitter: tiny.example\r\nMIME-Version: 1.0\r\n"
      b"Content-Type: text/xml\r\n\r\n" + t.replace(b"\n", b"\r\n"))

# broken ones: each must be refused, storing nothing
whole = gzip.compress(report("Broken", "b@broken.example", "trunc-1", "example.com", FUTURE_B, FUTURE_E,
                             [record("192.0.2.9", 99, "pass", "pass", "example.com")] * 20), mtime=0)
write("bad_truncated_gz.eml", mail("truncated", [("application/gzip", "t.xml.gz", whole[: len(whole) // 2])]))
write("bad_not_xml.eml", mail("bad xml", [("application/gzip", "b.xml.gz",
                                           gzip.compress(b"<feedback><report_metadata><org_name>x</feedback>",
                                                         mtime=0))]))
bomb = b"<feedback>" + b" " * (40 << 20) + b"</feedback>"
write("bad_oversize.xml.gz", gzip.compress(bomb, compresslevel=9, mtime=0))
write("bad_zip_bomb.eml", mail("zip bomb", [("application/zip", "z.zip", zipped("z.xml", bomb))]))
xxe = (b'<?xml version="1.0"?>\n<!DOCTYPE feedback [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
       b"<feedback><report_metadata><org_name>&x;</org_name><report_id>x</report_id>"
       b"<date_range><begin>1</begin><end>2</end></date_range></report_metadata>"
       b"<policy_published><domain>example.com</domain></policy_published></feedback>\n")
write("bad_xxe.eml", mail("xxe", [("text/xml", "x.xml", xxe)]))
write("bad_no_report.eml", b"From: a@example.net\r\nTo: dmarc-reports@ferry.test\r\nSubject: hello\r\n\r\n"
      b"Just text, no report.\r\n")
