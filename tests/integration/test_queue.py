"""The queue: retries on schedule, delay warnings, expiry bounces, mail loops,
the double-bounce rule, the NOTIFY defaults, ferryctl queue commands with the
daemon running and stopped, and corrupt envelopes found while running.

Remote delivery does not exist yet, so every non-local recipient defers with
4.4.3: that is the "domain that only ever defers". Messages to remote domains
are put into the spool directly (Ferry.inject), since the SMTP server accepts
only local domains. Durations are shortened with retry_min = 1s and
queue_lifetime = a few seconds (the configuration allows 1s for this)."""
import email
import email.utils
import random
import signal
import threading
import json
import os
import re
import smtplib
import stat
import time
import unittest

from ferrytest import Ferry, wait_for

FAST = "retry_min = 1s\nretry_max = 2s\n"
SLOW = "retry_min = 1h\nretry_max = 2h\n"
ORIGINAL = "From: Alice <alice@example.test>\r\nTo: bob@remote.invalid\r\nSubject: lunch\r\n\r\nsee you at noon\r\n"


def parse(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f)


def dsn_parts(msg):
    """(human, per-message fields, [per-recipient fields], returned part) of a DSN."""
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = msg.get_payload()
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    return parts[0], blocks[0], blocks[1:], parts[2]


def attempts_of(f, qid):
    r = f.ferryctl("queue", "list", "--json")
    for m in json.loads(r.stdout):
        if m["id"] == qid:
            return m
    return None


def log_times(log, pattern):
    out = []
    for line in log.splitlines():
        if re.search(pattern, line):
            ts = line.split()[0]
            out.append(time.mktime(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + ts[19:]))
    return out


class Schedule(unittest.TestCase):
    def test_defer_retry_delay_warning_then_bounce(self):
        with Ferry(extra=FAST + "queue_lifetime = 6s\ndelay_warning_time = 2s\n") as f:
            qid = f.inject("alice@example.test", ["bob@remote.invalid", "carol@localhost"], ORIGINAL)
            self.assertTrue(f.wait_mail("carol"), f.read_log())
            files = f.wait_mail("alice", 2, 20)
            self.assertTrue(files, f.read_log())
            self.assertTrue(wait_for(lambda: f.queue_files() == [] or None, 5), f.queue_files())
            log = f.read_log()

            # retried on schedule: several attempts, spaced by the back-off, not hammered
            times = log_times(log, qid + r": to=<bob@remote.invalid> status=deferred")
            self.assertGreaterEqual(len(times), 3, log)
            self.assertLessEqual(len(times), 8, log)
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertTrue(all(g >= 0.85 for g in gaps), gaps)
            self.assertIn("status=expired", log)

            # the delay warning came first, then the bounce
            warn, bounce = parse(files[0]), parse(files[1])
            for m in (warn, bounce):
                self.assertEqual(m["Return-Path"], "<>")
                self.assertEqual(m["Auto-Submitted"], "auto-replied")
                self.assertEqual(email.utils.parseaddr(m["From"])[1], "MAILER-DAEMON@mx.example.test")
                self.assertEqual(m["To"], "<alice@example.test>")
                self.assertTrue(email.utils.parsedate_to_datetime(m["Date"]))
                self.assertTrue(m["Message-ID"])

            human, per_msg, per_rcpt, returned = dsn_parts(warn)
            self.assertIn("bob@remote.invalid", human.get_payload())
            self.assertEqual(per_msg["Reporting-MTA"], "dns; mx.example.test")
            self.assertEqual(per_msg["X-Ferry-Queue-ID"], qid)
            self.assertTrue(email.utils.parsedate_to_datetime(per_msg["Arrival-Date"]))
            self.assertEqual(len(per_rcpt), 1)          # carol was delivered: not reported
            r = per_rcpt[0]
            self.assertEqual(r["Final-Recipient"], "rfc822; bob@remote.invalid")
            self.assertEqual(r["Action"], "delayed")
            self.assertEqual(r["Status"], "4.4.3")
            self.assertTrue(r["Diagnostic-Code"].startswith("x-ferry; 4.4.3"), r["Diagnostic-Code"])
            self.assertTrue(email.utils.parsedate_to_datetime(r["Last-Attempt-Date"]))
            self.assertTrue(email.utils.parsedate_to_datetime(r["Will-Retry-Until"]))
            self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
            self.assertIn("Subject: lunch", returned.get_payload())
            self.assertNotIn("see you at noon", returned.get_payload())

            human, per_msg, per_rcpt, returned = dsn_parts(bounce)
            self.assertEqual(bounce["Subject"], "Undelivered Mail Returned to Sender")
            self.assertEqual(per_msg["Reporting-MTA"], "dns; mx.example.test")
            self.assertEqual(per_msg["Received-From-MTA"], "dns; test.example")
            self.assertEqual(len(per_rcpt), 1)
            r = per_rcpt[0]
            self.assertEqual(r["Final-Recipient"], "rfc822; bob@remote.invalid")
            self.assertEqual(r["Action"], "failed")
            self.assertEqual(r["Status"], "5.4.7")
            self.assertIn("expired", r["Diagnostic-Code"])
            self.assertIn("4.4.3", r["Diagnostic-Code"].replace("\n ", " "))
            self.assertIsNone(r["Will-Retry-Until"])
            self.assertEqual(returned.get_content_type(), "message/rfc822")
            orig = returned.get_payload()[0]
            self.assertEqual(orig["Subject"], "lunch")
            self.assertIn("see you at noon", orig.get_payload())
            # the DSNs themselves were sent from the null sender and are gone
            self.assertIn("queued as", log)
            self.assertEqual(len(f.mailbox_files("alice")), 2)

    def test_no_delay_warning_when_turned_off_and_null_sender_goes_to_postmaster(self):
        with Ferry(extra=FAST + "queue_lifetime = 3s\ndelay_warning_time = 0\n") as f:
            f.inject("", ["bob@remote.invalid"], ORIGINAL)
            files = f.wait_mail("postmaster", 1, 15)
            self.assertTrue(files, f.read_log())
            m = parse(files[0])
            self.assertEqual(m["To"], "<postmaster@localhost>")
            _, _, per_rcpt, _ = dsn_parts(m)
            self.assertEqual(per_rcpt[0]["Action"], "failed")
            self.assertEqual(per_rcpt[0]["Status"], "5.4.7")
            time.sleep(1)
            self.assertEqual(len(f.mailbox_files("postmaster")), 1)
            self.assertEqual(f.queue_files(), [])

    def test_failed_double_bounce_is_logged_and_dropped(self):
        with Ferry(extra=FAST + "queue_lifetime = 2s\n") as f:
            f.inject("", ["postmaster@remote.invalid"], ORIGINAL, extra_env="kind double-bounce\n")
            self.assertTrue(wait_for(lambda: "double bounce dropped" in f.read_log(), 15), f.read_log())
            self.assertTrue(wait_for(lambda: f.queue_files() == [] or None, 5), f.queue_files())
            self.assertFalse(os.path.exists(f.maildir) and os.listdir(f.maildir))

    def test_mail_loop_bounces_with_5_4_6(self):
        with Ferry() as f:
            hops = "".join("Received: from h%d.example by h%d.example; Mon, 23 Nov 2026 00:00:00 +0000\r\n"
                           % (i, i + 1) for i in range(101))
            with smtplib.SMTP("127.0.0.1", f.port) as c:
                c.sendmail("alice@example.test", ["dave@localhost"], (hops + "Subject: loop\r\n\r\nx\r\n").encode())
                # exactly 100 is still allowed
                c.sendmail("alice@example.test", ["erin@localhost"],
                           ("".join(hops.splitlines(True)[:99]) + "Subject: ok\r\n\r\nx\r\n").encode())
            files = f.wait_mail("alice")
            self.assertTrue(files, f.read_log())
            self.assertTrue(f.wait_mail("erin"), f.read_log())
            _, _, per_rcpt, returned = dsn_parts(parse(files[0]))
            self.assertEqual(per_rcpt[0]["Final-Recipient"], "rfc822; dave@localhost")
            self.assertEqual(per_rcpt[0]["Status"], "5.4.6")
            self.assertIn("mail loop", per_rcpt[0]["Diagnostic-Code"])
            self.assertEqual(f.mailbox_files("dave"), [])

    def test_notify_defaults_no_success_dsn(self):
        # Without NOTIFY (RFC 3461 default): no DSN on success.
        with Ferry() as f:
            with smtplib.SMTP("127.0.0.1", f.port) as c:
                c.sendmail("alice@example.test", ["frank@localhost"], b"Subject: hi\r\n\r\nx\r\n")
            self.assertTrue(f.wait_mail("frank"))
            time.sleep(0.5)
            self.assertEqual(f.mailbox_files("alice"), [])
            self.assertNotIn("notification", f.read_log())


class DsnParameters(unittest.TestCase):
    """RFC 3461 parameters given over SMTP (a trusted client relays to a domain that
    only ever defers) shape the notifications."""

    def send(self, f, rcpt_params, mail_params="", rcpt="bob@remote.invalid"):
        with smtplib.SMTP("127.0.0.1", f.port, timeout=10) as c:
            c.ehlo("client.example")
            code, _ = c.docmd(f"MAIL FROM:<alice@localhost>{mail_params}")
            self.assertEqual(code, 250)
            code, msg = c.docmd(f"RCPT TO:<{rcpt}>{rcpt_params}")
            self.assertEqual(code, 250, msg)
            code, _ = c.docmd("DATA")
            self.assertEqual(code, 354)
            c.send(ORIGINAL + ".\r\n")
            code, msg = c.getreply()
            self.assertEqual(code, 250, msg)

    def test_ret_hdrs_envid_orcpt_in_the_bounce(self):
        with Ferry(extra=FAST + "queue_lifetime = 3s\ndelay_warning_time = 0\n", relay_networks="127.0.0.0/8") as f:
            self.send(f, " NOTIFY=FAILURE ORCPT=rfc822;Bob+2B@Remote.INVALID", " RET=HDRS ENVID=QQ314159")
            files = f.wait_mail("alice", 1, 20)
            self.assertTrue(files, f.read_log())
            human, per_msg, per_rcpt, returned = dsn_parts(parse(files[0]))
            self.assertEqual(per_msg["Original-Envelope-Id"], "QQ314159")
            self.assertEqual(per_rcpt[0]["Original-Recipient"], "rfc822; Bob+@Remote.INVALID")
            self.assertEqual(per_rcpt[0]["Action"], "failed")
            self.assertEqual(returned.get_content_type(), "text/rfc822-headers")     # RET=HDRS
            self.assertNotIn("see you at noon", returned.get_payload())

    def test_notify_never_and_delay(self):
        with Ferry(extra=FAST + "queue_lifetime = 3s\ndelay_warning_time = 1s\n", relay_networks="127.0.0.0/8") as f:
            self.send(f, " NOTIFY=NEVER")
            self.assertTrue(wait_for(lambda: "status=expired" in f.read_log(), 20), f.read_log())
            time.sleep(1)
            self.assertEqual(f.mailbox_files("alice"), [])          # neither warning nor bounce
            self.send(f, " NOTIFY=DELAY", rcpt="carl@remote.invalid")
            files = f.wait_mail("alice", 1, 20)
            self.assertTrue(wait_for(lambda: f.read_log().count("status=expired") >= 2, 20), f.read_log())
            time.sleep(1)
            self.assertEqual(len(f.mailbox_files("alice")), 1)      # the warning only, no bounce
            _, _, per_rcpt, _ = dsn_parts(parse(files[0]))
            self.assertEqual(per_rcpt[0]["Action"], "delayed")

    def test_notify_success_on_local_delivery(self):
        with Ferry(relay_networks="127.0.0.0/8") as f:
            self.send(f, " NOTIFY=SUCCESS ORCPT=rfc822;frank@localhost", rcpt="frank@localhost")
            self.assertTrue(f.wait_mail("frank"))
            files = f.wait_mail("alice", 1, 10)
            self.assertTrue(files, f.read_log())
            m = parse(files[0])
            self.assertEqual(m["Subject"], "Successful Mail Delivery Report")
            _, _, per_rcpt, returned = dsn_parts(m)
            self.assertEqual(per_rcpt[0]["Action"], "delivered")
            self.assertEqual(per_rcpt[0]["Status"][0], "2")
            self.assertEqual(per_rcpt[0]["Original-Recipient"], "rfc822; frank@localhost")


class Admin(unittest.TestCase):
    def test_commands_with_daemon_running(self):
        with Ferry(extra=SLOW + "queue_scan_interval = 1s\n") as f:
            ids = [f.inject("alice@example.test", ["bob@remote%d.invalid" % i], ORIGINAL) for i in range(3)]
            self.assertTrue(wait_for(lambda: all((attempts_of(f, i) or {}).get("attempts") == 1 for i in ids), 10))
            # remote0.invalid just deferred: another message to it waits for the
            # destination's retry time instead of costing an attempt of its own
            # (found by the safety rescan, here every second, due at once)
            same = f.inject("alice@example.test", ["carl@remote0.invalid"], ORIGINAL, nudge=False)
            other = f.inject("alice@example.test", ["dora@remote9.invalid"], ORIGINAL, nudge=False)
            self.assertTrue(wait_for(lambda: attempts_of(f, other)["attempts"] == 1, 10), f.read_log())
            time.sleep(0.5)
            self.assertEqual(attempts_of(f, same)["attempts"], 0)
            for i in (same, other):
                self.assertEqual(f.ferryctl("queue", "delete", i).returncode, 0)
            sock = os.path.join(f.spool, "control.sock")
            self.assertTrue(stat.S_ISSOCK(os.stat(sock).st_mode))
            # Owner-only, or the group's too when the spool is shared with the queue user.
            shared = os.stat(os.path.join(f.spool, "queue")).st_mode & 0o070
            self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o660 if shared else 0o600)

            r = f.ferryctl("queue", "list")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("<bob@remote0.invalid> deferred, 1 attempt, next in", r.stdout)
            self.assertIn("-- 1 KiB in 3 requests.", r.stdout)
            m = attempts_of(f, ids[0])
            self.assertEqual(m["recipients"][0]["status"], "deferred")
            self.assertGreater(m["recipients"][0]["next_attempt"], time.time() + 1000)
            self.assertFalse(m["hold"])

            r = f.ferryctl("queue", "show", ids[0])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("sender: <alice@example.test>", r.stdout)
            self.assertIn("recipient: <bob@remote0.invalid> deferred", r.stdout)
            self.assertIn("Subject: lunch", r.stdout)
            self.assertNotIn("see you at noon", r.stdout)

            # hold / release
            r = f.ferryctl("queue", "hold", ids[0])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("held", r.stdout)
            self.assertNotIn("not running", r.stdout)
            self.assertTrue(attempts_of(f, ids[0])["hold"])
            self.assertIn("next: held", f.ferryctl("queue", "list").stdout)
            r = f.ferryctl("queue", "flush", ids[0])
            self.assertEqual(r.returncode, 1)
            self.assertIn("on hold", r.stderr)
            r = f.ferryctl("queue", "release", ids[0])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(wait_for(lambda: attempts_of(f, ids[0])["attempts"] == 2, 10))
            self.assertFalse(attempts_of(f, ids[0])["hold"])

            # flush one, then all
            r = f.ferryctl("queue", "flush", ids[1])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(wait_for(lambda: attempts_of(f, ids[1])["attempts"] == 2, 10))
            r = f.ferryctl("queue", "flush")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("due now", r.stdout)
            self.assertTrue(wait_for(lambda: attempts_of(f, ids[2])["attempts"] >= 2, 10))

            # delete: gone, no bounce
            r = f.ferryctl("queue", "delete", ids[2])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIsNone(attempts_of(f, ids[2]))

            # bounce: returned now with 5.0.0
            r = f.ferryctl("queue", "bounce", ids[1])
            self.assertEqual(r.returncode, 0, r.stderr)
            files = f.wait_mail("alice")
            self.assertTrue(files, f.read_log())
            self.assertEqual(len(files), 1)
            _, _, per_rcpt, _ = dsn_parts(parse(files[0]))
            self.assertEqual(per_rcpt[0]["Status"], "5.0.0")
            self.assertIn("returned by the administrator", per_rcpt[0]["Diagnostic-Code"])
            self.assertIsNone(attempts_of(f, ids[1]))

            r = f.ferryctl("queue", "delete", ids[2])
            self.assertEqual(r.returncode, 1)
            self.assertIn("not in the queue", r.stderr)
            self.assertEqual(f.ferryctl("queue", "hold", "nonsense").returncode, 2)
            self.assertEqual(f.ferryctl("queue", "frobnicate", ids[0]).returncode, 2)
            self.assertIn("-- 1 KiB in 1 request.", f.ferryctl("queue", "list").stdout)

    def test_commands_with_daemon_stopped(self):
        f = Ferry(extra=SLOW)
        try:
            f.start()
            a = f.inject("alice@example.test", ["bob@a.invalid"], ORIGINAL)
            b = f.inject("alice@example.test", ["bob@b.invalid"], ORIGINAL)
            c = f.inject("alice@example.test", ["bob@c.invalid"], ORIGINAL)
            self.assertTrue(wait_for(lambda: all((attempts_of(f, i) or {}).get("attempts") == 1 for i in (a, b, c)), 10))
            f.stop()
            self.assertFalse(os.path.exists(os.path.join(f.spool, "control.sock")))

            r = f.ferryctl("queue", "hold", a)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("not running", r.stdout)
            self.assertTrue(attempts_of(f, a)["hold"])
            r = f.ferryctl("queue", "delete", c)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIsNone(attempts_of(f, c))
            r = f.ferryctl("queue", "bounce", b)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIsNone(attempts_of(f, b))
            self.assertEqual(len([n for n in f.queue_files() if n.endswith(".msg")]), 2)  # a and the DSN
            r = f.ferryctl("queue", "flush")
            self.assertEqual(r.returncode, 0, r.stderr)

            f.start()
            files = f.wait_mail("alice")             # the offline bounce is delivered at start
            self.assertTrue(files, f.read_log())
            _, _, per_rcpt, _ = dsn_parts(parse(files[0]))
            self.assertEqual(per_rcpt[0]["Status"], "5.0.0")
            time.sleep(1)
            self.assertEqual(attempts_of(f, a)["attempts"], 1)     # held: not attempted
            r = f.ferryctl("queue", "release", a)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn("not running", r.stdout)
            self.assertTrue(wait_for(lambda: attempts_of(f, a)["attempts"] == 2, 10), f.read_log())
        finally:
            f.cleanup()

    def test_corrupt_envelope_found_while_running(self):
        with Ferry(extra=SLOW) as f:
            qid = f.inject("alice@example.test", ["bob@remote.invalid"], ORIGINAL)
            self.assertTrue(wait_for(lambda: (attempts_of(f, qid) or {}).get("attempts") == 1, 10))
            env = os.path.join(f.spool, "queue", qid + ".env")
            with open(env, "rb") as fh:
                data = fh.read()
            with open(env, "wb") as fh:
                fh.write(data[: len(data) // 2])          # torn
            r = f.ferryctl("queue", "flush")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(f.spool, "corrupt", qid + ".reason")), 10),
                            f.read_log())
            self.assertIn(qid + ": quarantined to corrupt/", f.read_log())
            self.assertEqual(sorted(os.listdir(os.path.join(f.spool, "corrupt"))),
                             [qid + ".env", qid + ".msg", qid + ".reason"])
            # still working
            with smtplib.SMTP("127.0.0.1", f.port) as c:
                c.sendmail("alice@example.test", ["gina@localhost"], b"Subject: hi\r\n\r\nx\r\n")
            self.assertTrue(f.wait_mail("gina"))
            self.assertEqual(f.ferryctl("queue", "list").returncode, 0)


class Crash(unittest.TestCase):
    """kill -9 of the queue process at random moments while mail arrives, then
    of every process; after a restart every acknowledged message is delivered.
    Several clients at once, so that kills land while group-commit batches are on
    the flusher's threads (queue/spool_flusher.h). Short form here;
    FERRY_CRASH_MESSAGES=2000 FERRY_CRASH_KILLS=10 for the long one
    (FERRY_CRASH_CLIENTS, default 4)."""

    def test_kill9_during_load_loses_nothing(self):
        total = int(os.environ.get("FERRY_CRASH_MESSAGES", "300"))
        kills = int(os.environ.get("FERRY_CRASH_KILLS", "3"))
        clients = int(os.environ.get("FERRY_CRASH_CLIENTS", "4"))
        f = Ferry()
        try:
            f.start()
            acked = []
            acked_lock = threading.Lock()
            done = threading.Event()

            killed, sent = [], []
            kills_done = threading.Event()

            def killer():
                # Either child, at random moments; the parent restarts it.
                rnd = random.Random(4)
                for k in range(kills):
                    if done.wait(rnd.uniform(0.05, 0.4)):
                        break
                    role = "queue" if k % 2 == 0 else "smtp"
                    pid = f.child_by_role(role)
                    try:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(role)
                    except (ProcessLookupError, TypeError):
                        pass
                    wait_for(lambda: f.child_by_role(role) != pid, 5)
                kills_done.set()

            def client(first):
                # At least total messages, and on until every kill has landed
                # (a fast server finishes total before the first one).
                c = None
                i = first
                while (i < total or not kills_done.is_set()) and i < 10 * total:
                    with acked_lock:
                        sent.append(i)
                    try:
                        if c is None:
                            c = smtplib.SMTP("127.0.0.1", f.port, timeout=10)
                        c.sendmail("load@example.test", ["sink@localhost"],
                                   ("Subject: crash-%d\r\n\r\nx\r\n" % i).encode())
                        with acked_lock:
                            acked.append(i)     # only a 250 promises anything
                    except (smtplib.SMTPException, OSError):
                        c = None                # the smtp process was killed under us: reconnect
                        wait_for(f._accepting, 5)
                    i += clients
                if c is not None:
                    try:
                        c.close()
                    except OSError:
                        pass

            t = threading.Thread(target=killer)
            t.start()
            senders = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
            try:
                for th in senders:
                    th.start()
            finally:
                for th in senders:
                    th.join()
                done.set()
                t.join()
            f.kill9_all()
            f.start()

            def subjects():
                seen = {}
                for p in f.mailbox_files("sink"):
                    with open(p, "rb") as fh:
                        m = re.search(rb"^Subject: crash-(\d+)", fh.read(), re.M)
                    if m:
                        seen[int(m.group(1))] = seen.get(int(m.group(1)), 0) + 1
                return seen

            self.assertTrue(wait_for(lambda: len(subjects()) >= len(acked) or None, 60), f.read_log()[-3000:])
            seen = subjects()
            lost = [i for i in acked if i not in seen]
            dups = sum(n - 1 for n in seen.values())
            print("\ncrash test: sent %d, acknowledged %d, delivered %d, duplicated %d, lost %d; killed %s"
                  % (len(sent), len(acked), len(seen), dups, len(lost), ",".join(killed)))
            self.assertEqual(lost, [])
            self.assertGreaterEqual(f.read_log().count("process was killed by signal 9"), 1)
            self.assertTrue(wait_for(lambda: f.queue_files() == [] or None, 10), f.queue_files())
        finally:
            f.cleanup()


if __name__ == "__main__":
    unittest.main()
