"""DMTP receiver-pull, the receiving side (RMTA), against a real ferryd with
pull_mode = on: a DMTP sender scripted here (MAIL ... DMTP, RCPT, MSID) and swaks
as a legacy sender, connecting from 127.0.0.4 and 127.0.0.5 (the peers these tests
classify). Denied peer → 554 greeting and 503 until QUIT; unclassified DMTP peer →
MSID 250, a pending notice, an intent message, DATA refused; allowed peer →
ordinary delivery; a recipient whose list allows the sender → automatic notice;
legacy sender → greylisted, then accepted after the delay; replies to the intent
message (the user's own, a stranger's); regular correspondents; kill -9 after the
MSID 250."""
import os
import re
import smtplib
import subprocess
import time
import unittest

from dnsserver import DnsServer
from ferrytest import FERRYCTL, Ferry, SmtpLines, wait_for

DENIED = "127.0.0.4"
OTHER = "127.0.0.5"
PULL_CONF = ("pull_mode = on\npull_greylist_delay = 2s\nauth_plaintext_loopback = yes\n"
             "local_recipients = any\n")
# Most tests here want a denied peer greeted (it may still pull); DeniedGreeting
# checks the default, -03's 554 greeting.
PULL_CONF_GREET_DENIED = PULL_CONF + "pull_denied_greeting = no\n"


class Peer(SmtpLines):
    """SmtpLines from a chosen loopback source address."""

    def __init__(self, port, source, timeout=10):
        import socket
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.buf = b""
        self.greeting = self.reply()


def header(msg, name):
    m = re.search(r"^%s: (.*(?:\r?\n[ \t].*)*)" % name, msg, re.M | re.I)
    return re.sub(r"\r?\n[ \t]", " ", m.group(1)).strip() if m else None


# SPF for the senders the users' lists allow (a sender-based allow needs SPF pass);
# every other *.example name does not exist (SPF none).
SPF_ZONE = """$ORIGIN example.
$TTL 300
@ IN SOA ns.example. hostmaster.example. 1 3600 900 604800 60
@ IN NS ns.example.
ns IN A 127.0.0.1
friends IN TXT "v=spf1 ip4:127.0.0.5 -all"
far IN TXT "v=spf1 ip4:127.0.0.5 -all"
soft IN TXT "v=spf1 ip4:127.0.0.5 ~all"
"""


class PullReceive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer({"example": SPF_ZONE}).start()
        cls.f = Ferry(extra=PULL_CONF_GREET_DENIED + "spf_check = yes\nresolver = 127.0.0.1:%d\n" % cls.dns.port)
        aliases = os.path.join(cls.f.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write("sales: kim\n")
        with open(cls.f.conf, "a") as fh:
            fh.write(f"alias_file = {aliases}\n")
        for user in ("dave", "erin", "kim"):
            r = subprocess.run([FERRYCTL, "-c", cls.f.conf, "user", "add", user], input=user + "-pw\n",
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
        cls.f.start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()
        cls.dns.stop()

    def ctl(self, *args):
        r = self.f.ferryctl("pull", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def dmtp_offer(self, sender, rcpts, msid, subject="Hello there", source=OTHER):
        """MAIL ... DMTP, RCPTs, MSID from source; returns the MSID reply."""
        c = Peer(self.f.port, source)
        self.assertEqual(c.greeting[0], 220)
        code, lines = c.cmd("EHLO smta.example")
        self.assertEqual(code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<%s> DMTP" % sender)[0], 250)
        for r in rcpts:
            self.assertEqual(c.cmd("RCPT TO:<%s>" % r)[0], 250)
        reply = c.cmd("MSID %s %s" % (msid, subject))
        c.cmd("QUIT")
        c.close()
        return reply

    def notices(self, user):
        return [l.split() for l in self.ctl("list", user).splitlines()]

    def test_denied_peer(self):
        self.ctl("deny", DENIED)
        try:
            c = Peer(self.f.port, DENIED)
            # greeted (it may pull what we hold for it), but no mail from it
            self.assertEqual(c.greeting[0], 220, c.greeting)
            code, lines = c.cmd("EHLO smta.example")
            self.assertEqual(code, 250)
            self.assertIn("250-GTML", lines)
            self.assertNotIn("250-MSID", lines)
            code, lines = c.cmd("MAIL FROM:<a@b.example>")
            self.assertEqual(code, 550)
            self.assertIn("DENIED", lines[0])
            self.assertEqual(c.cmd("MAIL FROM:<a@b.example> DMTP")[0], 550)
            self.assertEqual(c.cmd("RCPT TO:<bob@example.test>")[0], 503)
            self.assertEqual(c.cmd("MSID x y")[0], 503)
            self.assertEqual(c.cmd("NOOP")[0], 250)
            self.assertEqual(c.cmd("QUIT")[0], 221)
            self.assertTrue(c.closed())
        finally:
            self.ctl("unlist", DENIED)

    def test_unclassified_dmtp_sender(self):
        c = Peer(self.f.port, OTHER)
        self.assertEqual(c.greeting[0], 220)
        code, lines = c.cmd("EHLO smta.example")
        self.assertIn("250-MSID", lines)
        self.assertIn("250-GTML", lines)
        self.assertEqual(c.cmd("MAIL FROM:<alice@sender.example> DMTP")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.test>")[0], 250)
        # DATA and BDAT are refused with the decided reply: use MSID
        code, lines = c.cmd("DATA")
        self.assertEqual(code, 503)
        self.assertIn("5.5.1", lines[0])
        self.assertIn("use MSID", lines[0])
        code, lines = c.cmd("MSID 1ABC-00FFFFFFFF-TESTMSID Quarterly report")
        self.assertEqual(code, 250, lines)
        # BDAT too; a refused chunk ends the transaction (RFC 3030 §2), so no MSID after it
        self.assertEqual(c.cmd("MAIL FROM:<alice@sender.example> DMTP")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.test>")[0], 250)
        c.send("BDAT 3 LAST\r\nabc")
        code, lines = c.reply()
        self.assertEqual(code, 503)
        self.assertIn("use MSID", lines[0])
        self.assertEqual(c.cmd("MSID 1ABC-00FFFFFFFF-OTHERMSID")[0], 503)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        rows = self.notices("bob")
        self.assertEqual(len(rows), 1, rows)
        nid, sender, rcpt, peer = rows[0][:4]
        self.assertEqual((sender, rcpt, peer), ("alice@sender.example", "bob@example.test", OTHER))
        self.assertEqual(rows[0][5], "pending")
        self.assertEqual(" ".join(rows[0][6:]), "Quarterly report")
        files = self.f.wait_mail("bob")
        self.assertTrue(files, "no intent message")
        msg = open(files[0], encoding="utf-8").read()
        self.assertIn("MAILER-DAEMON@mx.example.test", header(msg, "From"))
        self.assertIn("bob@example.test", header(msg, "To"))
        self.assertRegex(header(msg, "Reply-To"), r"dmtp-pull\+%s\.[0-9A-V]{16}@mx\.example\.test" % nid)
        self.assertRegex(header(msg, "Message-ID"), r"<dmtp\.%s\.[0-9A-V]{16}@mx\.example\.test>" % nid)
        self.assertIn("id=%s" % nid, header(msg, "X-Ferry-Pull"))
        self.assertRegex(header(msg, "Subject"), r"\[pull %s\.[0-9A-V]{16}\]$" % nid)
        self.assertIn("alice@sender.example", msg)
        self.assertIn("ferryctl pull fetch bob %s" % nid, msg)
        self.assertRegex(self.f.read_log(), r"dmtp notice %s user=bob .* state=pending" % nid)

    def test_msid_sequence_and_syntax(self):
        c = Peer(self.f.port, OTHER)
        c.cmd("EHLO smta.example")
        self.assertEqual(c.cmd("MSID abc")[0], 503)            # no transaction
        c.cmd("MAIL FROM:<x@sender.example> DMTP")
        self.assertEqual(c.cmd("MSID abc")[0], 503)            # no accepted RCPT
        self.assertEqual(c.cmd("MAIL FROM:<x@sender.example> DMTP=1")[0], 503)   # nested
        c.cmd("RSET")
        self.assertEqual(c.cmd("MAIL FROM:<x@sender.example> DMTP=1")[0], 501)
        c.cmd("QUIT")

    def test_allowed_peer_delivers_normally(self):
        self.ctl("allow", DENIED)
        try:
            c = Peer(self.f.port, DENIED)
            code, lines = c.cmd("EHLO smta.example")
            self.assertNotIn("250-MSID", lines)
            self.assertIn("250-GTML", lines)
            self.assertEqual(c.cmd("MAIL FROM:<list@lists.example> DMTP")[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<gina@example.test>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send("Subject: allowed\r\nFrom: list@lists.example\r\n\r\nstraight in\r\n.\r\n")
            self.assertEqual(c.reply()[0], 250)
            c.cmd("QUIT")
            files = self.f.wait_mail("gina")
            self.assertTrue(files)
            self.assertIn("straight in", open(files[0]).read())
            self.assertEqual(self.notices("gina"), [])
        finally:
            self.ctl("unlist", DENIED)

    def test_user_list_allows_sender(self):
        self.ctl("allow", "hank", "@friends.example")
        code, lines = self.dmtp_offer("pal@friends.example", ["hank@example.test"], "2ABC-00FFFFFFFF-AUTOMSID")
        self.assertEqual(code, 250, lines)
        rows = self.notices("hank")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][5], "auto")
        self.assertRegex(self.f.read_log(), r"dmtp notice %s user=hank .* state=auto" % rows[0][0])
        time.sleep(1.5)
        self.assertEqual(self.f.mailbox_files("hank"), [], "an automatic notice got an intent message")
        # the user's own deny list refuses at RCPT
        self.ctl("deny", "hank", "pest@friends.example")
        c = Peer(self.f.port, OTHER)
        c.cmd("EHLO smta.example")
        c.cmd("MAIL FROM:<pest@friends.example> DMTP")
        code, lines = c.cmd("RCPT TO:<hank@example.test>")
        self.assertEqual(code, 550)
        self.assertIn("5.7.1", lines[0])
        c.cmd("QUIT")

    def test_sender_allow_needs_spf_pass(self):
        # Anyone can write MAIL FROM:<pal@soft.example>: from a host its SPF does not
        # name (softfail) or for a domain without SPF, the user's allow does not apply.
        self.ctl("allow", "judy", "@soft.example")
        self.ctl("allow", "judy", "@nospf.example")
        forged = "127.0.0.38"
        for sender, src, msid in (("pal@soft.example", forged, "5ABC-00FFFFFFFF-FORGED1"),
                                  ("pal@nospf.example", OTHER, "5ABD-00FFFFFFFF-FORGED2")):
            code, lines = self.dmtp_offer(sender, ["judy@example.test"], msid, source=src)
            self.assertEqual(code, 250, lines)
        rows = self.notices("judy")
        self.assertEqual([r[5] for r in rows], ["pending", "pending"], rows)
        self.assertIn("judy's allow of <pal@soft.example> not applied", self.f.read_log())
        # from the host SPF names, the same allow applies: an automatic notice
        code, lines = self.dmtp_offer("pal@soft.example", ["judy@example.test"], "5ABE-00FFFFFFFF-REALPAL")
        self.assertEqual(code, 250, lines)
        self.assertEqual(sorted(r[5] for r in self.notices("judy")), ["auto", "pending", "pending"])
        # a legacy sender claiming the allowed domain from elsewhere is greylisted
        r = self.swaks("pal@soft.example", "judy@example.test", source=forged)
        self.assertIn("451 4.7.1", r.stdout)

    def swaks(self, sender, rcpt, source=OTHER):
        return subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(self.f.port), "--local-interface",
                               source, "--from", sender, "--to", rcpt, "--ehlo", "legacy.example",
                               "--body", "legacy body"], capture_output=True, text=True, timeout=30)

    def test_legacy_sender_greylisted(self):
        r = self.swaks("old@legacy.example", "ivan@example.test")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("451 4.7.1", r.stdout)
        self.assertIn("greylisted", r.stdout)
        r = self.swaks("old@legacy.example", "ivan@example.test")     # too soon
        self.assertIn("451 4.7.1", r.stdout)
        time.sleep(2.5)
        r = self.swaks("old@legacy.example", "ivan@example.test")
        self.assertEqual(r.returncode, 0, r.stdout)
        files = self.f.wait_mail("ivan")
        self.assertTrue(files)
        self.assertIn("legacy body", open(files[0]).read())

    def submission(self, user):
        c = smtplib.SMTP("127.0.0.1", self.f.sub_port, timeout=20)
        c.ehlo("mua.example")
        c.login(user, user + "-pw")
        return c

    def test_reply_to_intent_message(self):
        code, lines = self.dmtp_offer("zed@sender.example", ["dave@example.test"], "3ABC-00FFFFFFFF-REPLYMSID")
        self.assertEqual(code, 250, lines)
        files = self.f.wait_mail("dave")
        self.assertTrue(files)
        intent = open(files[-1], encoding="utf-8").read()
        reply_to = re.search(r"dmtp-pull\+[0-9a-f]{16}\.[0-9A-V]{16}@mx\.example\.test", header(intent, "Reply-To"))
        self.assertIsNotNone(reply_to)
        reply_to = reply_to.group(0)
        nid = reply_to.split("+")[1].split(".")[0]
        # a stranger on port 25: refused
        c = Peer(self.f.port, OTHER)
        c.cmd("EHLO stranger.example")
        c.cmd("MAIL FROM:<x@stranger.example>")
        code, lines = c.cmd("RCPT TO:<%s>" % reply_to)
        self.assertEqual(code, 550, lines)
        c.cmd("QUIT")
        # another authenticated user: refused
        c = self.submission("erin")
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            c.sendmail("erin@example.test", [reply_to], "From: erin@example.test\r\nSubject: me\r\n\r\nx\r\n")
        c.quit()
        # a wrong H: refused
        c = self.submission("dave")
        bad = reply_to[:-len("@mx.example.test") - 1] + ("0" if reply_to[-len("@mx.example.test") - 1] != "0" else "1")
        with self.assertRaises(smtplib.SMTPRecipientsRefused):
            c.sendmail("dave@example.test", [bad + "@mx.example.test"],
                       "From: dave@example.test\r\nSubject: x\r\n\r\nx\r\n")
        self.assertNotIn("notice %s of dave: fetch requested" % nid, self.f.read_log())
        # dave's own reply: taken, consumed
        c.sendmail("dave@example.test", [reply_to],
                   "From: dave@example.test\r\nSubject: Re: pull\r\n\r\nyes please\r\n")
        c.quit()
        self.assertTrue(wait_for(lambda: re.search(r"dmtp notice %s of dave: fetch requested by reply" % nid,
                                                   self.f.read_log()), 5))
        self.assertIn("consumed (not delivered)", self.f.read_log())
        self.assertFalse(os.path.exists(os.path.join(self.f.maildir, "dmtp-pull")))

    def test_alias_notice_belongs_to_its_owner(self):
        # sales is an alias of kim: the notice is kim's, and kim's reply fetches it
        code, lines = self.dmtp_offer("yan@sender.example", ["sales@example.test"], "3ABD-00FFFFFFFF-ALIASMSID")
        self.assertEqual(code, 250, lines)
        rows = self.notices("kim")
        row = [r for r in rows if r[1] == "<yan@sender.example>" or "yan@sender.example" in r[1]]
        self.assertEqual(len(row), 1, rows)
        nid = row[0][0]
        self.assertEqual(self.notices("sales"), [])
        intent = wait_for(lambda: [p for p in self.f.mailbox_files("kim") if nid in open(p, encoding="utf-8").read()],
                          10)
        self.assertTrue(intent, self.f.read_log()[-2000:])
        reply_to = re.search(r"dmtp-pull\+%s\.[0-9A-V]{16}@mx\.example\.test" % nid,
                             header(open(intent[0], encoding="utf-8").read(), "Reply-To")).group(0)
        c = self.submission("kim")
        c.sendmail("kim@example.test", [reply_to], "From: kim@example.test\r\nSubject: Re: pull\r\n\r\nyes\r\n")
        c.quit()
        self.assertTrue(wait_for(lambda: re.search(r"dmtp notice %s of kim: fetch requested by reply" % nid,
                                                   self.f.read_log()), 5), self.f.read_log()[-2000:])

    def test_sendmail_reply_by_subject(self):
        """A local user's reply through ferry-sendmail, to plain dmtp-pull@ with the
        token only in the Subject; another local user's copy is dropped."""
        import pwd
        me = pwd.getpwuid(os.getuid()).pw_name
        code, lines = self.dmtp_offer("yan@sender.example", ["%s@example.test" % me], "6ABC-00FFFFFFFF-LOCALMSID")
        self.assertEqual(code, 250, lines)
        files = self.f.wait_mail(me)
        self.assertTrue(files)
        subject = header(open(files[-1], encoding="utf-8").read(), "Subject")
        nid = re.search(r"\[pull ([0-9a-f]{16})\.", subject).group(1)
        sendmail = os.path.join(os.path.dirname(FERRYCTL), "ferry-sendmail")
        text = "From: %s@example.test\nSubject: Re: %s\n\nfetch it\n" % (me, subject)
        if os.getuid() == 0:
            other = subprocess.run(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", sendmail, "-c",
                                    self.f.conf, "dmtp-pull@mx.example.test"], input=text.encode(),
                                   capture_output=True)
            self.assertEqual(other.returncode, 0, other.stderr)
            self.assertTrue(wait_for(lambda: re.search(r"pickup from \S+: dmtp reply from \S+ for notice %s "
                                                       r"refused" % nid, self.f.read_log()), 10))
        r = subprocess.run([sendmail, "-c", self.f.conf, "dmtp-pull@mx.example.test"], input=text.encode(),
                           capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(wait_for(lambda: re.search(r"dmtp notice %s of %s: fetch requested by reply" % (nid, me),
                                                   self.f.read_log()), 10))
        self.assertIn("consumed (not delivered)", self.f.read_log())
        self.assertFalse(os.path.exists(os.path.join(self.f.maildir, "dmtp-pull")))

    def test_regular_correspondent_allowed(self):
        c = self.submission("erin")
        c.sendmail("erin@example.test", ["pen.pal@far.example"],
                   "From: erin@example.test\r\nTo: pen.pal@far.example\r\nSubject: hi\r\n\r\nhello\r\n")
        c.quit()
        # the correspondent answers from a legacy MTA: not greylisted
        r = self.swaks("Pen.Pal@far.example", "erin@example.test")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertTrue(self.f.wait_mail("erin"))
        # and over DMTP: an automatic notice, no intent message
        code, lines = self.dmtp_offer("pen.pal@far.example", ["erin@example.test"], "4ABC-00FFFFFFFF-CORRMSID")
        self.assertEqual(code, 250)
        rows = self.notices("erin")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][5], "auto")
        self.assertRegex(self.f.read_log(), r"dmtp notice %s user=erin .* state=auto" % rows[0][0])
        # someone else from that domain is still greylisted
        r = self.swaks("other@far.example", "erin@example.test")
        self.assertIn("451 4.7.1", r.stdout)


FCRDNS_ZONES = {
    "0.0.127.in-addr.arpa": """$ORIGIN 0.0.127.in-addr.arpa.
$TTL 300
@ IN SOA ns.dmtp.test. hostmaster.dmtp.test. 1 3600 900 604800 60
@ IN NS ns.dmtp.test.
4 IN PTR peer.dmtp.test.
5 IN PTR liar.dmtp.test.
""",
    "dmtp.test": """$ORIGIN dmtp.test.
$TTL 300
@ IN SOA ns hostmaster 1 3600 900 604800 60
@ IN NS ns
ns IN A 127.0.0.1
peer IN A 127.0.0.4
liar IN A 192.0.2.99
""",
}


class PullFcrdns(unittest.TestCase):
    """The peer's name counts only when forward-confirmed: 127.0.0.4's PTR leads
    back to it, 127.0.0.5's PTR names a host with another address."""

    def test_verified_name_classifies(self):
        from dnsserver import DnsServer
        dns = DnsServer(FCRDNS_ZONES)
        dns.start()
        f = Ferry(extra=PULL_CONF_GREET_DENIED + "resolver = 127.0.0.1:%d\n" % dns.port)
        try:
            f.start()
            for args in (("allow", "peer.dmtp.test"), ("deny", "liar.dmtp.test")):
                self.assertEqual(f.ferryctl("pull", *args).returncode, 0)
            c = Peer(f.port, DENIED)
            self.assertEqual(c.greeting[0], 220)
            code, lines = c.cmd("EHLO peer.dmtp.test")
            self.assertNotIn("250-MSID", lines)         # allowed by its verified name
            c.cmd("QUIT")
            c = Peer(f.port, OTHER)
            self.assertEqual(c.greeting[0], 220)        # the deny entry names an unverified host
            code, lines = c.cmd("EHLO liar.dmtp.test")
            self.assertIn("250-MSID", lines)
            c.cmd("QUIT")
            log = f.read_log()
            self.assertRegex(log, r"dmtp peer \[127\.0\.0\.4\] fcrdns=peer\.dmtp\.test class=allowed")
            self.assertRegex(log, r"dmtp peer \[127\.0\.0\.5\] fcrdns=- class=unclassified")
            # a denied verified name may not send (it is greeted: it may pull)
            self.assertEqual(f.ferryctl("pull", "deny", "dmtp.test").returncode, 0)
            self.assertEqual(f.ferryctl("pull", "unlist", "peer.dmtp.test").returncode, 0)
            c = Peer(f.port, DENIED)
            self.assertEqual(c.greeting[0], 220)
            c.cmd("EHLO peer.dmtp.test")
            self.assertEqual(c.cmd("MAIL FROM:<a@dmtp.test>")[0], 550)
            c.cmd("QUIT")
        finally:
            f.cleanup()
            dns.stop()


class PullReceiveCrash(unittest.TestCase):
    def test_kill9_after_msid(self):
        f = Ferry(extra=PULL_CONF)
        try:
            f.start()
            c = Peer(f.port, OTHER)
            c.cmd("EHLO smta.example")
            c.cmd("MAIL FROM:<alice@sender.example> DMTP")
            c.cmd("RCPT TO:<kim@example.test>")
            c.cmd("RCPT TO:<lee@example.test>")
            code, lines = c.cmd("MSID 5ABC-00FFFFFFFF-CRASHMSID after the crash")
            self.assertEqual(code, 250, lines)
            f.kill9_all()
            f.start()
            for user in ("kim", "lee"):
                r = f.ferryctl("pull", "list", user)
                self.assertEqual(len(r.stdout.splitlines()), 1, r.stdout + r.stderr)
                files = f.wait_mail(user)
                self.assertTrue(files, "intent message for %s lost" % user)
                self.assertIn("[pull ", open(files[0], encoding="utf-8").read())
        finally:
            f.cleanup()


if __name__ == "__main__":
    unittest.main()


class DeniedGreeting(unittest.TestCase):
    """pull_denied_greeting = yes (the default): a denied peer is greeted 554 as
    DMTP -03 §3.5 says, and then, as RFC 5321 §3.1 requires, only QUIT is served;
    every other command (GTML too) gets 503 and counts toward max_errors."""

    def test_denied_peer_is_greeted_554_and_may_only_quit(self):
        f = Ferry(extra=PULL_CONF + "max_errors = 6\n")
        try:
            f.start()
            self.assertEqual(f.ferryctl("pull", "deny", DENIED).returncode, 0)
            c = Peer(f.port, DENIED)
            self.assertEqual(c.greeting[0], 554, c.greeting)
            self.assertEqual(c.greeting[1][0], "554 5.7.1 DENIED: no SMTP service for this host")
            for line in ("EHLO smta.example", "MAIL FROM:<a@b.example>", "GTML 0123 bob@example.test"):
                code, lines = c.cmd(line)
                self.assertEqual(code, 503, lines)
                self.assertIn("only QUIT after a 554 greeting", lines[0])
            self.assertEqual(c.cmd("QUIT")[0], 221)
            self.assertTrue(c.closed())
            self.assertIn(f"dmtp peer [{DENIED}] denied: ", f.read_log())
            self.assertIn("greeted 554", f.read_log())
            # a peer that keeps talking is dropped once max_errors is passed
            c = Peer(f.port, DENIED)
            codes = []
            while len(codes) < 10 and (not codes or codes[-1] == 503):
                codes.append(c.cmd("NOOP")[0])
            self.assertEqual(codes[-1], 421, codes)
            self.assertGreaterEqual(len(codes), 5, codes)     # 503s first, up to the limit
            self.assertTrue(c.closed())
            # an unlisted peer is greeted as usual
            c = Peer(f.port, OTHER)
            self.assertEqual(c.greeting[0], 220)
            c.cmd("QUIT")
        finally:
            f.cleanup()
