"""DMTP pull client (issue 14, item 4): Ferry A (127.0.0.6:25) holds a message
after a scripted receiver took its MSID on 127.0.0.7:25; then Ferry B takes over
127.0.0.7:25 with pull_mode = on and a notice carrying that msid (stored with the
test tool, as the smtp process's MSID verb will). ferryctl pull fetch, or a
NOTICE_AUTO notice, makes B pull from A over GTML: the message lands in B's
Maildir byte-identical below the trace fields, and A removes the held copy."""
import os
import shutil
import re
import smtplib
import subprocess
import unittest

from ferrytest import FERRYCTL, Ferry, ROOT, wait_for
from test_pull_send import A_ADDR, B_ADDR, MSG, PullBase, ScriptedRmta

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "pull_notice_add")


class PullRecv(PullBase):
    def held_at_a(self, subj, rcpt="bob@b.test"):
        r = ScriptedRmta()
        try:
            a = self.sender()
            _, hid, msid = self.send_held(a, r, rcpts=(rcpt,), subj=subj)
        finally:
            r.close()
        return a, hid, msid

    def receiver(self, start=True, extra=""):
        b = Ferry(extra=f"hostname = mx.b.test\nlisten = smtp {self.b_addr}:25\n"
                        f"resolver = 127.0.0.1:{self.dns.port}\nsmtp_source_ipv4 = {self.b_addr}\n"
                        "pull_mode = on\npull_private_peers = yes\n" + extra,
                  domains="b.test")
        self.addCleanup(b.cleanup)
        if start:
            b.start()
        return b

    def add_notice(self, b, msid, auto=False):
        env = dict(os.environ, PULL_NOTICE_MSID=msid, PULL_NOTICE_AUTO="1" if auto else "0")
        r = subprocess.run([TOOL, b.conf, "bob", "bob@b.test", "alice@a.test", A_ADDR, "a.test", "pull me"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def assert_pulled(self, a, b, hid, subj, timeout=20):
        """The original, pulled from A, is in bob's Maildir (beside an intent
        message, if any) byte-identical below B's trace fields; A's copy went."""
        original = MSG.format(to="bob@b.test", subj=subj).encode().replace(b"\r\n", b"\n")

        def pulled():
            for p in b.mailbox_files("bob"):
                with open(p, "rb") as f:
                    data = f.read()
                if data.endswith(original):
                    return data
            return None
        data = wait_for(pulled, timeout)
        self.assertTrue(data, b.read_log()[-3000:] + a.read_log()[-2000:])
        trace = data[:-len(original)]
        self.assertNotIn(b"\n\n", trace)         # only header fields above the original
        self.assertIn(b"with DMTP pull (GTML)", trace)
        self.assertTrue(wait_for(lambda: hid not in self.held(a), 10), a.read_log()[-2000:])
        self.assertTrue(wait_for(lambda: b.ferryctl("pull", "list", "bob").stdout.strip() == "", 5))

    def test_fetch_pulls_from_the_holder(self):
        a, hid, msid = self.held_at_a("fetched")
        b = self.receiver()
        nid = self.add_notice(b, msid)
        self.assertEqual(b.mailbox_files("bob"), [])        # pending: nothing pulled yet
        r = b.ferryctl("pull", "fetch", "bob", nid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("pulls are being looked at", r.stdout)
        self.assert_pulled(a, b, hid, "fetched")
        self.assertIn(f"<bob@b.test> pulled by [{B_ADDR}]", a.read_log())

    def test_pull_uses_starttls_when_the_holder_offers_it(self):
        """A pull carries the whole message, so it is encrypted when the holder
        offers STARTTLS (opportunistic, as a push at level may); the outcome is in
        B's log and in the Received: field B adds."""
        import tempfile
        from tlscerts import make_ca_and_server
        d = tempfile.mkdtemp(prefix="ferry-pulltls-")
        os.chmod(d, 0o755)                  # read by the queue process's user
        self.addCleanup(shutil.rmtree, d, True)
        ca, cert, key = make_ca_and_server(d, cn="a.test", ip=A_ADDR)
        r = ScriptedRmta()
        try:
            a = self.sender(extra=f"tls_cert = {cert}\ntls_key = {key}\n")
            _, hid, msid = self.send_held(a, r, rcpts=("bob@b.test",), subj="over-tls")
        finally:
            r.close()
        b = self.receiver(extra=f"smtp_tls_ca_file = {ca}\n")
        nid = self.add_notice(b, msid)
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        self.assert_pulled(a, b, hid, "over-tls")
        self.assertRegex(b.read_log(), r"pull \S+ for <bob@b\.test>: STARTTLS with \[127\.0\.0\.6\]: TLS=TLSv1\.[23] ")
        pulled = [p for p in b.mailbox_files("bob") if b"over-tls" in open(p, "rb").read()]
        with open(pulled[0], "rb") as fh:
            self.assertRegex(fh.read(), rb"with DMTP pull \(GTML\) id \S+\n\t\(using TLSv1\.[23] \S+\)\n")

    def test_failed_handshake_is_retried_without_starttls(self):
        """A holder that offers STARTTLS but breaks the handshake: that pull fails,
        and the next try of the notice goes in plaintext instead of failing the
        same way until the notice expires."""
        import socket
        import threading
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((A_ADDR, 25))
        srv.listen(4)
        self.addCleanup(srv.close)
        seen = []
        body = b"Subject: plain-retry\r\n\r\nhello\r\n"

        def serve():
            for _ in range(2):
                try:
                    c, _ = srv.accept()
                except OSError:
                    return
                f = c.makefile("rb")
                c.sendall(b"220 fake.a.test ESMTP\r\n")
                cmds = []
                for line in f:
                    cmd = line.decode().strip()
                    cmds.append(cmd.split()[0].upper())
                    if cmds[-1] == "EHLO":
                        c.sendall(b"250-fake.a.test\r\n250-GTML\r\n250 STARTTLS\r\n")
                    elif cmds[-1] == "STARTTLS":
                        c.sendall(b"220 go ahead\r\n")
                        break           # and hang up: the handshake fails
                    elif cmds[-1] == "GTML":
                        c.sendall(b"250 2.0.0 message follows\r\n" + body + b".\r\n")
                    elif cmds[-1] == "QUIT":
                        c.sendall(b"221 bye\r\n")
                        break
                seen.append(cmds)
                f.close()
                c.shutdown(socket.SHUT_RDWR)
                c.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        b = self.receiver(extra="pull_retry_min = 1s\n")
        nid = self.add_notice(b, "0123456789abcdef-fake")
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        self.assertTrue(wait_for(lambda: len(seen) == 2, 20), (seen, b.read_log()[-3000:]))
        self.assertEqual(seen[0], ["EHLO", "STARTTLS"])
        self.assertEqual(seen[1], ["EHLO", "GTML", "QUIT"])
        self.assertIn("TLS handshake failed", b.read_log())
        self.assertTrue(wait_for(lambda: any(open(p, "rb").read().endswith(b"hello\n") for p in b.mailbox_files("bob")), 10),
                        b.read_log()[-3000:])

    def test_auto_notice_survives_kill9_and_is_pulled(self):
        a, hid, msid = self.held_at_a("auto")
        b = self.receiver(start=False)
        b.start()
        b.kill9_all()                    # between MSID and the pull: the notice is on disk
        self.add_notice(b, msid, auto=True)
        b.start()                        # the first pull run takes NOTICE_AUTO notices
        self.assert_pulled(a, b, hid, "auto")

    def test_refused_pull_is_retried_later_not_lost(self):
        a, hid, msid = self.held_at_a("altered")
        b = self.receiver()
        altered = msid[:-1] + ("0" if msid[-1] != "0" else "1")
        nid = self.add_notice(b, altered)
        b.ferryctl("pull", "fetch", "bob", nid)
        self.assertTrue(wait_for(lambda: "GTML refused: 550 5.7.1" in b.read_log(), 10), b.read_log()[-2000:])
        self.assertIn(nid, b.ferryctl("pull", "list", "bob").stdout)    # kept, for a retry
        self.assertEqual(self.held(a), [hid])


class TwoFerries(PullBase):
    """End to end: A relays for b.test, B (pull_mode = on) takes the MSID."""
    receiver = PullRecv.receiver

    def pair(self):
        b = self.receiver()
        a = self.sender()
        return a, b

    def notice_id(self, b):
        out = wait_for(lambda: b.ferryctl("pull", "list", "bob").stdout.strip(), 15)
        self.assertTrue(out, b.read_log()[-3000:])
        return out.split()[0]

    def test_unclassified_sender_held_then_fetched(self):
        a, b = self.pair()
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="e2e"))
        nid = self.notice_id(b)
        hid = wait_for(lambda: self.held(a), 10)[0]
        self.assertRegex(a.ferryctl("queue", "list").stdout, r"bob@b.test.*waiting for pull")
        # only the intent message so far
        files = b.wait_mail("bob", 1, 10)
        self.assertEqual(len(files), 1)
        self.assertIn(b"[pull " + nid.encode(), open(files[0], "rb").read())
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        files = b.wait_mail("bob", 2, 20)
        self.assertTrue(files, b.read_log()[-3000:])
        original = MSG.format(to="bob@b.test", subj="e2e").encode().replace(b"\r\n", b"\n")
        self.assertTrue(any(open(p, "rb").read().endswith(original) for p in files), files)
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])

    def test_user_allowed_sender_pulled_right_after_msid(self):
        # a per-user allow of alice@a.test applies when SPF passes for a.test
        b = self.receiver(extra="spf_check = yes\n")
        a = self.sender()
        self.assertEqual(b.ferryctl("pull", "allow", "bob", "alice@a.test").returncode, 0)
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="auto-e2e"))
        original = MSG.format(to="bob@b.test", subj="auto-e2e").encode().replace(b"\r\n", b"\n")

        def arrived():
            return [p for p in b.mailbox_files("bob") if open(p, "rb").read().endswith(original)]
        self.assertTrue(wait_for(arrived, 20), b.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])


class ReplyToIntent(PullBase):
    """End to end with the user's reply: A (127.0.0.36) relays for b.test; B
    (127.0.0.37, pull_mode = on) puts the intent message in bob's Maildir; bob,
    logged in on B's submission port, replies to it; B pulls from A at once."""
    a_addr, b_addr = "127.0.0.36", "127.0.0.37"
    receiver = PullRecv.receiver
    assert_pulled = PullRecv.assert_pulled

    def intent_for_bob(self, subj):
        """B with user bob, A holding a message for him: (a, b, held ID, the intent
        message bob got, his row in `ferryctl pull list`)."""
        b = self.receiver(start=False, extra="auth_plaintext_loopback = yes\n")
        r = subprocess.run([FERRYCTL, "-c", b.conf, "user", "add", "bob"], input="bob-pw\n",
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        b.start()
        a = self.sender()
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj=subj))
        files = b.wait_mail("bob", 1, 15)
        self.assertTrue(files, b.read_log()[-3000:] + a.read_log()[-2000:])
        hid = wait_for(lambda: self.held(a), 10)[0]
        with open(files[0], encoding="utf-8") as f:
            intent = f.read()
        row = b.ferryctl("pull", "list", "bob").stdout.split()
        self.assertEqual((row[1], row[3], row[5]), ("alice@a.test", self.a_addr, "pending"), row)
        return a, b, hid, intent, row

    def bob_replies(self, b, to, text):
        # bob answers from his mail program: authenticated submission on B
        c = smtplib.SMTP("127.0.0.1", b.sub_port, timeout=20)
        c.ehlo("mua.b.test")
        c.login("bob", "bob-pw")
        c.sendmail("bob@b.test", [to], text)
        c.quit()

    def test_reply_to_intent_message_pulls_the_original(self):
        a, b, hid, intent, row = self.intent_for_bob("replied")
        reply_to = re.search(r"^Reply-To: .*?(dmtp-pull\+[0-9a-f]{16}\.[0-9A-V]{16}@mx\.b\.test)", intent, re.M)
        self.assertIsNotNone(reply_to, intent)
        reply_to = reply_to.group(1)
        msg_id = re.search(r"^Message-ID: (<[^>]+>)", intent, re.M | re.I).group(1)
        self.bob_replies(b, reply_to, f"From: bob@b.test\r\nTo: {reply_to}\r\nIn-Reply-To: {msg_id}\r\n"
                                      f"Subject: Re: pull\r\n\r\nyes, send it\r\n")
        # pulled at once (not at the next periodic scan), byte-identical, A's copy gone
        self.assert_pulled(a, b, hid, "replied", timeout=10)
        self.assertIn(f"<bob@b.test> pulled by [{self.b_addr}]", a.read_log())
        self.assertRegex(b.read_log(), r"dmtp notice %s of bob: fetch requested by reply" % row[0])
        self.assertEqual(len(b.mailbox_files("bob")), 2)      # the intent message and the original; no reply

    def test_reply_by_header_token_pulls_the_original(self):
        """A mail program that answers the plain dmtp-pull@ address (the token only
        in In-Reply-To): the smtp process reads the header section back from the
        draft it wrote, so its descriptor must be readable."""
        a, b, hid, intent, row = self.intent_for_bob("by header")
        msg_id = re.search(r"^Message-ID: (<[^>]+>)", intent, re.M | re.I).group(1)
        self.bob_replies(b, "dmtp-pull@mx.b.test", f"From: bob@b.test\r\nTo: dmtp-pull@mx.b.test\r\n"
                                                  f"In-Reply-To: {msg_id}\r\nSubject: Re: pull\r\n\r\nyes\r\n")
        self.assert_pulled(a, b, hid, "by header", timeout=10)
        self.assertRegex(b.read_log(), r"dmtp notice %s of bob: fetch requested by reply" % row[0])
        self.assertNotIn("carries no notice token", b.read_log())

if __name__ == "__main__":
    unittest.main()
