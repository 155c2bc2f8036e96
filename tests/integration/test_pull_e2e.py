"""DMTP end to end between two Ferries (issue 14, items 1 and 3, "Done when"),
for the paths test_pull_recv does not take: the user's reply to the intent
message through ferry-sendmail (a wrong H first: dropped, nothing pulled); a
sender whose mail the user pulled becoming a regular correspondent, whose next
message is pulled at once with no intent message; a pull whose holder is down,
retried with a doubling back-off (pull_retry_min/max) until it succeeds.

A (127.0.0.38) relays for b.test; B (127.0.0.39, pull_mode = on) is its MX."""
import datetime
import os
import re
import subprocess
import unittest

from ferrytest import FERRYCTL, wait_for
import test_pull_recv
from test_pull_send import MSG, PullBase, ScriptedRmta


def read(path):
    with open(path, "rb") as f:
        return f.read()


def subject_of(path):
    with open(path, encoding="utf-8") as f:
        m = re.search(r"^Subject: (.*(?:\n[ \t].*)*)", f.read(), re.M)
    return re.sub(r"\n[ \t]", " ", m.group(1)).strip()


class PullEndToEnd(PullBase):
    a_addr, b_addr = "127.0.0.38", "127.0.0.39"
    receiver = test_pull_recv.PullRecv.receiver

    def original(self, subj, to):
        return MSG.format(to=to, subj=subj).encode().replace(b"\r\n", b"\n")

    def arrived(self, b, user, subj, to):
        want = self.original(subj, to)
        return [p for p in b.mailbox_files(user) if read(p).endswith(want)]

    def intents(self, b, user):
        return [p for p in b.mailbox_files(user) if b"[pull " in read(p)]

    def test_reply_through_ferry_sendmail_pulls_the_original(self):
        import pwd
        me = pwd.getpwuid(os.getuid()).pw_name
        rcpt = f"{me}@b.test"
        b = self.receiver()
        a = self.sender()
        a.inject("alice@a.test", [rcpt], MSG.format(to=rcpt, subj="by-sendmail"))
        files = wait_for(lambda: self.intents(b, me), 15)
        self.assertTrue(files, b.read_log()[-3000:] + a.read_log()[-2000:])
        hid = wait_for(lambda: self.held(a), 10)[0]
        subject = subject_of(files[0])
        token = re.search(r"\[pull ([0-9a-f]{16})\.([0-9A-V]{16})\]", subject)
        nid, h = token.group(1), token.group(2)
        sendmail = os.path.join(os.path.dirname(FERRYCTL), "ferry-sendmail")

        def reply(subj):
            r = subprocess.run([sendmail, "-c", b.conf, "dmtp-pull@mx.b.test"],
                               input=f"From: {rcpt}\nSubject: Re: {subj}\n\nsend it\n".encode(), capture_output=True)
            self.assertEqual(r.returncode, 0, r.stderr)
        # a wrong H: dropped silently (draft -03 §3.5), nothing pulled
        bad = h[:-1] + ("0" if h[-1] != "0" else "1")
        reply(subject.replace(f"{nid}.{h}", f"{nid}.{bad}"))
        self.assertTrue(wait_for(lambda: re.search(r"dmtp reply from \S+ for notice %s refused" % nid,
                                                   b.read_log()), 10), b.read_log()[-3000:])
        self.assertEqual(b.ferryctl("pull", "list", me).stdout.split()[5], "pending")
        self.assertEqual(self.held(a), [hid])
        # the right one: pulled at once, byte-identical below B's trace fields
        reply(subject)
        self.assertTrue(wait_for(lambda: self.arrived(b, me, "by-sendmail", rcpt), 20),
                        b.read_log()[-3000:] + a.read_log()[-2000:])
        self.assertRegex(b.read_log(), r"dmtp notice %s of %s: fetch requested by reply" % (nid, me))
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])
        data = read(self.arrived(b, me, "by-sendmail", rcpt)[0])
        trace = data[:-len(self.original("by-sendmail", rcpt))]
        self.assertNotIn(b"\n\n", trace)
        self.assertIn(b"with DMTP pull (GTML)", trace)
        self.assertEqual(len(b.mailbox_files(me)), 2)       # the intent message and the original

    def test_sender_pulled_once_is_pulled_automatically_next_time(self):
        # sender-based allows need SPF pass for MAIL FROM's domain (a.test names A)
        b = self.receiver(extra="spf_check = yes\n")
        a = self.sender()
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="first"))
        nid = wait_for(lambda: b.ferryctl("pull", "list", "bob").stdout.split()[:1], 15)
        self.assertTrue(nid, b.read_log()[-3000:])
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid[0]).returncode, 0)
        self.assertTrue(wait_for(lambda: self.arrived(b, "bob", "first", "bob@b.test"), 20), b.read_log()[-3000:])
        # alice is now bob's correspondent: her next message comes as if DMTP were not there
        a.inject("alice@a.test", ["bob@b.test"], MSG.format(to="bob@b.test", subj="second"))
        self.assertTrue(wait_for(lambda: self.arrived(b, "bob", "second", "bob@b.test"), 20),
                        b.read_log()[-3000:] + a.read_log()[-2000:])
        self.assertRegex(b.read_log(), r"dmtp notice \S+ user=bob from=<alice@a.test> .* state=auto")
        self.assertEqual(len(self.intents(b, "bob")), 1)     # only the first message's
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])

    def test_failed_pull_backs_off_and_succeeds_later(self):
        r = ScriptedRmta(addr=self.b_addr)
        try:
            a = self.sender()
            _, hid, msid = self.send_held(a, r, subj="backoff")
        finally:
            r.close()
        a.stop()                                    # the holder is down: every pull fails
        b = self.receiver(extra="pull_retry_min = 2s\npull_retry_max = 5s\n")
        env = dict(os.environ, PULL_NOTICE_MSID=msid, PULL_NOTICE_AUTO="0")
        r = subprocess.run([test_pull_recv.TOOL, b.conf, "bob", "bob@b.test", "alice@a.test", self.a_addr, "a.test",
                            "pull me"], capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        nid = r.stdout.strip()
        self.assertEqual(b.ferryctl("pull", "fetch", "bob", nid).returncode, 0)
        fails = r"pull %s for <bob@b.test> from \[%s\] failed \(attempt (\d+), next in (\d+)s\)" % (nid, self.a_addr)
        got = wait_for(lambda: len(re.findall(fails, b.read_log())) >= 3 and re.findall(fails, b.read_log()), 40)
        self.assertTrue(got, b.read_log()[-3000:])
        self.assertEqual(got[:3], [("1", "2"), ("2", "4"), ("3", "5")])     # doubled, capped at pull_retry_max
        # each retry started no earlier than its back-off allowed
        stamps = [datetime.datetime.fromisoformat(m.group(1)) for m in
                  re.finditer(r"^(\S+) .*" + fails, b.read_log(), re.M)]
        for (t0, t1), wait in zip(zip(stamps, stamps[1:]), (2, 4)):
            self.assertGreaterEqual((t1 - t0).total_seconds(), wait - 0.01, stamps)
        self.assertIn(nid, b.ferryctl("pull", "list", "bob").stdout)   # kept through the failures
        a.start()                                   # back: the next retry pulls it
        self.assertTrue(wait_for(lambda: self.arrived(b, "bob", "backoff", "bob@b.test"), 30),
                        b.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: self.held(a) == [], 10), a.read_log()[-2000:])


if __name__ == "__main__":
    unittest.main()
