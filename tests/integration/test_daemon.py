"""ferryd as a daemon: the spool's promise across kill -9, start-up recovery,
config checking, reload, clean stop, privilege drop, and ferryctl's queue view."""
import os
import pwd
import signal
import smtplib
import shutil
import subprocess
import tempfile
import time
import unittest

from ferrytest import FERRYD, Ferry, SmtpLines, wait_for


def send(port, rcpt, subject="t", sender="s@example.org"):
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.ehlo("c.example")
        code, msg = c.sendmail(sender, [rcpt], f"Subject: {subject}\r\n\r\nbody of {subject}\r\n".encode()), None
    return code


class Durability(unittest.TestCase):
    def test_kill9_after_250_before_delivery_still_delivers(self):
        f = Ferry()
        try:
            f.start()
            queue_pid = wait_for(lambda: f.child_by_role("queue"))
            self.assertTrue(queue_pid, f.read_log())
            os.kill(queue_pid, signal.SIGSTOP)        # nothing can be delivered now
            send(f.port, "dave@localhost", "survivor")
            qfiles = f.queue_files()
            self.assertEqual(len([n for n in qfiles if n.endswith(".msg")]), 1, qfiles)   # one file per message
            self.assertEqual(f.mailbox_files("dave"), [])
            f.kill9_all()
            f.start()
            files = f.wait_mail("dave")
            self.assertTrue(files, f.read_log())
            self.assertIn(b"body of survivor", open(files[0], "rb").read())
            self.assertTrue(wait_for(lambda: f.queue_files() == [] or None, 10) or f.queue_files() == [])
        finally:
            f.cleanup()

    def test_startup_cleans_incoming_and_strays_and_quarantines_corrupt(self):
        f = Ferry()
        try:
            f.start()
            f.stop()
            inc = os.path.join(f.spool, "incoming")
            q = os.path.join(f.spool, "queue")
            open(os.path.join(inc, "0000000000000001.msg"), "w").write("half a message")
            # a message whose envelope never arrived: never acknowledged
            open(os.path.join(q, "0000000000000002.msg"), "w").write("orphan")
            # an envelope rewrite cut short (the start-up cleaner's part)
            open(os.path.join(q, "0000000000000004.env.tmp"), "w").write("FERRY-ENV 1\nid 0000000000000004\n")
            # a damaged envelope with its message
            open(os.path.join(q, "0000000000000003.msg"), "w").write("x")
            open(os.path.join(q, "0000000000000003.env"), "w").write("FERRY-ENV 1\nid 0000000000000003\ngarbage\n")
            f.start()
            self.assertEqual(os.listdir(inc), [])
            ok = wait_for(lambda: not os.path.exists(os.path.join(q, "0000000000000003.env")), 10)
            self.assertTrue(ok, f.read_log())
            self.assertFalse(os.path.exists(os.path.join(q, "0000000000000002.msg")))
            self.assertFalse(os.path.exists(os.path.join(q, "0000000000000004.env.tmp")))
            self.assertIn("removing message file without envelope", f.read_log())
            corrupt = sorted(os.listdir(os.path.join(f.spool, "corrupt")))
            self.assertEqual(corrupt, ["0000000000000003.env", "0000000000000003.msg", "0000000000000003.reason"])
            self.assertIn("quarantined", f.read_log())
            # the daemon keeps working
            send(f.port, "erin@localhost")
            self.assertTrue(f.wait_mail("erin"))
        finally:
            f.cleanup()


class Lifecycle(unittest.TestCase):
    def test_sigterm_stops_cleanly_and_removes_pid_file(self):
        f = Ferry()
        try:
            f.start()
            pidfile = os.path.join(f.dir, "ferryd.pid")
            self.assertEqual(int(open(pidfile).read()), f.proc.pid)
            kids = f.children()
            self.assertEqual(len(kids), 3, kids)        # queue, smtp, auth (no key directory: no keys)
            self.assertEqual(f.stop(), 0)
            self.assertFalse(os.path.exists(pidfile))
            for pid in kids:
                self.assertFalse(os.path.exists(f"/proc/{pid}") and
                                 open(f"/proc/{pid}/stat").read().split(")")[1].split()[0] != "Z")
            self.assertIn("ferryd stopped", f.read_log())
        finally:
            f.cleanup()

    def test_children_drop_privileges_when_root(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to check the privilege drop")
        # The smtp process runs as `user` (nobody here); the queue process as
        # queue_user, which defaults to ferryq when that account exists.
        try:
            queue_uid = str(pwd.getpwnam("ferryq").pw_uid)
        except KeyError:
            queue_uid = "65534"
        with Ferry() as f:
            kids = f.children()
            self.assertEqual(len(kids), 3)      # no dkim_key_dir: no key process; the auth process
            # The auth process keeps root's uid but no capability at all.
            for role, want in (("smtp", "65534"), ("queue", queue_uid), ("auth", "0")):
                status = open(f"/proc/{f.child_by_role(role)}/status").read()
                uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0]
                self.assertEqual(set(uid_line.split()[1:]), {want}, uid_line)
                self.assertIn("NoNewPrivs:\t1", status)
            status = open(f"/proc/{f.child_by_role('auth')}/status").read()
            self.assertIn("CapEff:\t0000000000000000", status)
            self.assertIn("CapBnd:\t0000000000000000", status)
            self.assertEqual(os.stat(f.spool).st_uid, 65534)

    def test_child_crash_is_restarted(self):
        with Ferry() as f:
            smtp_pid = wait_for(lambda: f.child_by_role("smtp"))
            os.kill(smtp_pid, signal.SIGKILL)
            new = wait_for(lambda: (f.child_by_role("smtp") != smtp_pid) and f.child_by_role("smtp"), 10)
            self.assertTrue(new, f.read_log())
            self.assertTrue(wait_for(lambda: f._accepting(), 10))
            send(f.port, "frank@localhost")
            self.assertTrue(f.wait_mail("frank"))

    def test_sighup_reloads_config(self):
        with Ferry(domains="localhost") as f:
            s = SmtpLines(f.port)
            s.cmd("EHLO c.example")
            s.cmd("MAIL FROM:<a@example.org>")
            self.assertEqual(s.cmd("RCPT TO:<g@newdomain.test>")[0], 554)
            s.close()
            f.write_config(domains="localhost newdomain.test")
            f.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "configuration reloaded" in f.read_log(), 10), f.read_log())

            def accepted():
                try:
                    s = SmtpLines(f.port)
                    s.cmd("EHLO c.example")
                    s.cmd("MAIL FROM:<a@example.org>")
                    code = s.cmd("RCPT TO:<g@newdomain.test>")[0]
                    s.close()
                    return code == 250
                except (OSError, EOFError):
                    return False
            self.assertTrue(wait_for(accepted, 10), f.read_log())

    def test_sighup_with_bad_config_keeps_running(self):
        with Ferry() as f:
            with open(f.conf, "a") as fh:
                fh.write("no_such_key = 1\n")
            f.proc.send_signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: "reload refused" in f.read_log(), 10), f.read_log())
            send(f.port, "hank@localhost")
            self.assertTrue(f.wait_mail("hank"))


class ConfigCheck(unittest.TestCase):
    def test_typo_reports_file_and_line(self):
        f = Ferry()
        try:
            with open(f.conf, "a") as fh:
                fh.write("\n# comment\nlocal_recipeints = any\n")
            lines = open(f.conf).read().split("\n")
            lineno = lines.index("local_recipeints = any") + 1
            r = subprocess.run([FERRYD, "-c", f.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertTrue(r.stderr.startswith(f"{f.conf}:{lineno}: "), r.stderr)
            self.assertIn("local_recipeints", r.stderr)
        finally:
            f.cleanup()

    def test_bad_value_reports_file_and_line(self):
        f = Ferry(extra="message_size_limit = lots")
        try:
            r = subprocess.run([FERRYD, "-c", f.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertRegex(r.stderr, r"^%s:\d+: message_size_limit: " % f.conf)
        finally:
            f.cleanup()

    def test_check_and_print_effective_config(self):
        f = Ferry()
        try:
            r = subprocess.run([FERRYD, "-c", f.conf, "-t"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = subprocess.run([FERRYD, "-c", f.conf, "-n"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0)
            self.assertIn("hostname = mx.example.test\n", r.stdout)
            self.assertIn("message_size_limit = 26214400\n", r.stdout)
            self.assertIn(f"listen = smtp 127.0.0.1:{f.port}\n", r.stdout)
            self.assertIn("local_domains = example.test\n", r.stdout)
            r = subprocess.run([FERRYD, "-x"], capture_output=True, text=True)
            self.assertEqual(r.returncode, 2)
        finally:
            f.cleanup()

    def test_shipped_configs_are_valid(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        # ferry-local.conf names files under ./var that `make run` makes first.
        d = tempfile.mkdtemp(prefix="ferry-conf-")
        try:
            r = subprocess.run(["sh", os.path.join(root, "etc", "make-run-setup.sh")], cwd=d, capture_output=True,
                               text=True, env=dict(os.environ, FERRYCTL=os.path.join(os.path.dirname(FERRYD),
                                                                                    "ferryctl")))
            self.assertEqual(r.returncode, 0, r.stderr)
            for name in ("ferry.conf", "ferry-local.conf"):
                r = subprocess.run([FERRYD, "-c", os.path.join(root, "etc", name), "-t"], capture_output=True,
                                   text=True, cwd=d)
                self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


class QueueView(unittest.TestCase):
    def test_queue_list_shows_waiting_message(self):
        with Ferry() as f:
            r = f.ferryctl("queue", "list")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("Mail queue is empty", r.stdout)
            queue_pid = wait_for(lambda: f.child_by_role("queue"))
            os.kill(queue_pid, signal.SIGSTOP)
            try:
                send(f.port, "ivan@localhost", sender="list@example.org")
                r = f.ferryctl("queue", "list")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertRegex(r.stdout, r"[0-9A-V]{16} .* <list@example.org>")
                self.assertIn("<ivan@localhost> pending", r.stdout)
                self.assertIn("-- 1 KiB in 1 request.", r.stdout)
                import json
                j = json.loads(f.ferryctl("queue", "list", "--json").stdout)
                self.assertEqual(j[0]["sender"], "list@example.org")
                self.assertEqual(j[0]["recipients"][0]["status"], "pending")
            finally:
                os.kill(queue_pid, signal.SIGCONT)
            self.assertTrue(f.wait_mail("ivan"))
            self.assertTrue(wait_for(lambda: "Mail queue is empty" in f.ferryctl("queue", "list").stdout, 10))


if __name__ == "__main__":
    unittest.main()
