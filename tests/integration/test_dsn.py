"""DSN parameters (RFC 3461) and REQUIRETLS (RFC 8689) against a real ferryd: the
accepted values land in the envelope on disk (read while delivery is held) and
survive the queue's rewrite of it; every invalid form gets its exact reply."""
import os
import unittest

from envfile import envelope_bytes, read_env
from ferrytest import Ferry, SmtpLines, wait_for
from test_chunking import held_mailbox


class Dsn(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.f = Ferry().start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def session(self):
        s = SmtpLines(self.f.port)
        self.assertEqual(s.cmd("EHLO c.example")[0], 250)
        return s

    def env_path(self, qid):
        return os.path.join(self.f.spool, "queue", qid + ".env")

    def send(self, mail, rcpts):
        s = self.session()
        code, lines = s.cmd(mail)
        self.assertEqual(code, 250, lines)
        for r in rcpts:
            code, lines = s.cmd(r)
            self.assertEqual(code, 250, lines)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send("Subject: dsn\r\n\r\nbody\r\n.\r\n")
        code, lines = s.reply()
        self.assertEqual(code, 250, lines)
        s.close()
        return lines[0].split()[-1]

    def test_ehlo(self):
        s = SmtpLines(self.f.port)
        code, lines = s.cmd("EHLO c.example")
        kw = [l[4:].split()[0] for l in lines[1:]]
        self.assertIn("DSN", kw)
        self.assertNotIn("REQUIRETLS", kw)      # not without TLS
        s.close()

    def test_params_stored_in_envelope(self):
        held_mailbox(self.f, "dsnheld1")
        held_mailbox(self.f, "dsnheld2")
        held_mailbox(self.f, "dsnheld3")
        qid = self.send("MAIL FROM:<a@example.org> RET=hdrs ENVID=QQ+2B314+3Dx",
                        ["RCPT TO:<dsnheld1@localhost> NOTIFY=failure,Success ORCPT=rfc822;DsnHeld1+40localhost",
                         "RCPT TO:<dsnheld2@localhost> NOTIFY=NEVER ORCPT=utf-8;j\\x{FC}rgen@example.org",
                         "RCPT TO:<dsnheld3@localhost>"])
        path = self.env_path(qid)
        self.assertIn(qid + ".msg", self.f.queue_files())

        def check(env):
            rec = env["records"]
            self.assertEqual(rec.get("ret"), "HDRS")
            self.assertEqual(rec.get("envid"), "QQ+314=x")
            self.assertNotIn("requiretls", rec)
            r = env["rcpts"]
            self.assertEqual([x["addr"] for x in r], ["dsnheld1@localhost", "dsnheld2@localhost",
                                                      "dsnheld3@localhost"])
            self.assertEqual(r[0]["notify"], "SUCCESS,FAILURE")
            self.assertEqual(r[0]["orcpt"], ("rfc822", "DsnHeld1@localhost"))
            self.assertEqual(r[1]["notify"], "NEVER")
            self.assertEqual(r[1]["orcpt"], ("utf-8", "jürgen@example.org"))
            self.assertIsNone(r[2]["notify"])
            self.assertIsNone(r[2]["orcpt"])

        check(read_env(path))
        # The queue tries, defers, and rewrites the envelope: the values stay.
        self.assertTrue(wait_for(lambda: read_env(path)["rcpts"][0]["attempts"] >= 1, 10), self.f.read_log())
        env = read_env(path)
        check(env)
        self.assertTrue(all(r["state"] in ("pending", "deferred") for r in env["rcpts"]), env)
        self.assertNotIn("quarantined", self.f.read_log())

    def test_no_params_no_records(self):
        held_mailbox(self.f, "dsnplain")
        qid = self.send("MAIL FROM:<a@example.org>", ["RCPT TO:<dsnplain@localhost>"])
        text = envelope_bytes(self.env_path(qid)).decode()
        for k in ("\nret ", "\nenvid ", "\nrequiretls ", "\nnotify ", "\norcpt "):
            self.assertNotIn(k, text)

    def test_bdat_with_dsn(self):
        held_mailbox(self.f, "dsnbdat")
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org> RET=FULL")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<dsnbdat@localhost> NOTIFY=DELAY")[0], 250)
        s.send(b"BDAT 10 LAST\r\nSubject:\r\n")
        code, lines = s.reply()
        self.assertEqual(code, 250, lines)
        env = read_env(self.env_path(lines[0].split()[-1]))
        self.assertEqual(env["records"]["ret"], "FULL")
        self.assertEqual(env["rcpts"][0]["notify"], "DELAY")
        s.close()

    def test_invalid_forms(self):
        mail_cases = [
            ("RET=ALL", "501 5.5.4"), ("RET", "501 5.5.4"), ("RET=FULL RET=FULL", "501 5.5.4"),
            ("RET=FULL ret=HDRS", "501 5.5.4"), ("ENVID", "501 5.5.4"), ("ENVID=", "501 5.5.4"),
            ("ENVID=a+2bc", "501 5.5.4"), ("ENVID=a+0Ac", "501 5.5.4"), ("ENVID=a+", "501 5.5.4"),
            ("ENVID=" + "x" * 101, "501 5.5.4"), ("ENVID=a ENVID=a", "501 5.5.4"),
            ("REQUIRETLS", "530 5.7.10"), ("REQUIRETLS=1", "501 5.5.4"),
            ("NOTIFY=NEVER", "555 5.5.4"), ("ORCPT=rfc822;a@b", "555 5.5.4"), ("X-FOO=1", "555 5.5.4"),
            ("BODY=BINARYMIME", "504 5.5.4"), ("SIZE=1 SIZE=1", "501 5.5.4"),
        ]
        s = self.session()
        for params, want in mail_cases:
            code, lines = s.cmd("MAIL FROM:<a@example.org> " + params)
            self.assertEqual(lines[0][:len(want)], want, params)
            if code == 250:
                s.cmd("RSET")
        s.close()
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org> ENVID=" + "x" * 100)[0], 250)
        rcpt_cases = [
            ("NOTIFY=NEVER,SUCCESS", "501 5.5.4"), ("NOTIFY=SUCCESS,SUCCESS", "501 5.5.4"),
            ("NOTIFY=SOMETIMES", "501 5.5.4"), ("NOTIFY=", "501 5.5.4"), ("NOTIFY", "501 5.5.4"),
            ("NOTIFY=SUCCESS,", "501 5.5.4"), ("NOTIFY=NEVER NOTIFY=NEVER", "501 5.5.4"),
            ("ORCPT=x400;a", "501 5.5.4"), ("ORCPT=a@b", "501 5.5.4"), ("ORCPT=rfc822;", "501 5.5.4"),
            ("ORCPT=rfc822;a+2bb", "501 5.5.4"), ("ORCPT=utf-8;a\\x{41}", "501 5.5.4"),
            ("ORCPT=utf-8;a\\x{D800}", "501 5.5.4"), ("ORCPT=rfc822;a@b ORCPT=rfc822;a@b", "501 5.5.4"),
            ("RET=FULL", "555 5.5.4"), ("REQUIRETLS", "555 5.5.4"), ("FOO", "555 5.5.4"),
        ]
        for params, want in rcpt_cases:
            code, lines = s.cmd("RCPT TO:<alice@localhost> " + params)
            self.assertEqual(lines[0][:len(want)], want, params)
        # raw UTF-8 in ORCPT only within an SMTPUTF8 transaction
        code, lines = s.cmd("RCPT TO:<alice@localhost> ORCPT=utf-8;jö@example.org")
        self.assertEqual(lines[0][:9], "501 5.5.4")
        s.close()
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org> SMTPUTF8")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<alice@localhost> ORCPT=utf-8;jö@example.org")[0], 250)
        s.close()

    def test_helo_session_has_no_parameters(self):
        s = SmtpLines(self.f.port)
        self.assertEqual(s.cmd("HELO c.example")[0], 250)
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org> RET=FULL")[1][0][:9], "555 5.5.4")
        self.assertEqual(s.cmd("MAIL FROM:<a@example.org>")[0], 250)
        self.assertEqual(s.cmd("RCPT TO:<alice@localhost> NOTIFY=NEVER")[1][0][:9], "555 5.5.4")
        s.close()


if __name__ == "__main__":
    unittest.main()
