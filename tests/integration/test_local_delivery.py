"""Local delivery through the real daemon: mbox, sub-addressing, aliases (several
users, pipes, include files) compiled with `ferryctl map build`, virtual domains
and catch-alls, LMTP (a small Python server that counts connections, and a
private Dovecot instance), quota, and RCPT-time checks of local recipients."""
import os
import resource
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from ferrytest import FERRYCTL, Ferry, SmtpLines, wait_for


def map_build(path):
    out = subprocess.run([FERRYCTL, "map", "build", path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert os.path.exists(path + ".db")
    return out.stdout


def send(port, rcpts, body="Subject: t\r\n\r\nhello\r\n", sender="s@example.org"):
    with smtplib.SMTP("127.0.0.1", port) as c:
        c.sendmail(sender, rcpts, body)


class LmtpServer:
    """A tiny LMTP server on a unix socket: accepts every RCPT except those
    starting with 'reject', answers one reply per accepted recipient after DATA."""

    def __init__(self, path):
        self.path = path
        self.messages = []      # (rcpts, data)
        self.connections = 0
        self.closed = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(5)
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        f = conn.makefile("rb")
        conn.sendall(b"220 lmtp ready\r\n")
        rcpts = []
        while True:
            line = f.readline()
            if not line:
                self.closed += 1
                return
            cmd = line.decode().strip()
            up = cmd.upper()
            if up.startswith("LHLO"):
                conn.sendall(b"250-lmtp\r\n250 PIPELINING\r\n")
            elif up.startswith("MAIL"):
                rcpts = []
                conn.sendall(b"250 2.1.0 ok\r\n")
            elif up.startswith("RCPT"):
                addr = cmd[cmd.index("<") + 1:cmd.index(">")]
                if addr.startswith("reject"):
                    conn.sendall(b"550 5.1.1 no such mailbox\r\n")
                else:
                    rcpts.append(addr)
                    conn.sendall(b"250 2.1.5 ok\r\n")
            elif up == "DATA":
                conn.sendall(b"354 go\r\n")
                data = b""
                while True:
                    l = f.readline()
                    if l == b".\r\n" or not l:
                        break
                    data += l[1:] if l.startswith(b"..") else l
                self.messages.append((rcpts, data))
                for r in rcpts:
                    conn.sendall(b"250 2.0.0 <%s> stored\r\n" % r.encode())
            elif up == "RSET":
                conn.sendall(b"250 ok\r\n")
            elif up == "QUIT":
                conn.sendall(b"221 bye\r\n")
                self.closed += 1
                return
            else:
                conn.sendall(b"500 what\r\n")

    def close(self):
        self.sock.close()


class LocalDeliveryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        f = cls.f = Ferry(domains="localhost example.test virt.test mb.test")
        # systemd's soft descriptor limit: ferryd raises it for itself, not for
        # the commands it runs (test_alias_to_pipe).
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        f.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        cls.pub = os.path.join(f.dir, "pub")      # writable by the dropped queue user
        os.mkdir(cls.pub)
        os.chmod(cls.pub, 0o777)
        cls.lmtp = LmtpServer(os.path.join(cls.pub, "lmtp.sock"))
        inc = os.path.join(f.dir, "list.inc")
        with open(inc, "w") as fh:
            fh.write("# the list\nbob\ncarol, dave@virt.test\n")
        aliases = os.path.join(f.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write(f"""# test aliases
team: alice,
  bob
keep: \\keep, carol
list: :include:{inc}
prog: "|cat > {cls.pub}/prog.out; echo $RECIPIENT >> {cls.pub}/prog.out; echo nofile=$(ulimit -n) >> {cls.pub}/prog.out"
fail: "|echo 'no such list here' >&2; exit 1"
temp: "|exit 75"
slow: "|sleep 30"
loop1: loop2
loop2: loop1
solo: frida
""")
        virtual = os.path.join(f.dir, "virtual")
        with open(virtual, "w") as fh:
            fh.write(f"""info@virt.test alice
dave@virt.test {cls.pub}/dave.mbox
box@virt.test {cls.pub}/boxdir/
store@virt.test lmtp:unix:{cls.pub}/lmtp.sock
store2@virt.test lmtp:unix:{cls.pub}/lmtp.sock
rejectme@virt.test lmtp:unix:{cls.pub}/lmtp.sock
@virt.test {cls.pub}/catchall.mbox
""")
        cls.built = map_build(aliases) + map_build(virtual)
        f.write_config(f"""alias_file = {aliases}
virtual_map = {virtual}
mailbox_format_domains = mb.test:mbox
mailbox_quota = 4k
pipe_timeout = 2s
""", domains="localhost example.test virt.test mb.test")
        f.start()

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()
        cls.lmtp.close()
        cls.f.cleanup()

    def read(self, path):
        with open(path, "rb") as fh:
            return fh.read().decode()

    def has_mail(self, user, text):
        ok = wait_for(lambda: any(text in self.read(p) for p in self.f.mailbox_files(user)))
        self.assertTrue(ok, f"no {text!r} for {user}:\n" + self.f.read_log()[-3000:])

    def maildir_text(self, user, count=1):
        files = self.f.wait_mail(user, count)
        self.assertTrue(files, f"no mail for {user}:\n" + self.f.read_log()[-3000:])
        return [self.read(p) for p in files]

    def wait_log(self, text, timeout=10):
        ok = wait_for(lambda: text in self.f.read_log(), timeout)
        self.assertTrue(ok, f"{text!r} not in the log:\n" + self.f.read_log()[-3000:])

    def test_maps_are_read_compiled(self):
        self.assertIn("aliases.db: 10 entries (aliases)", self.built)
        self.assertIn("(virtual)", self.built)
        send(self.f.port, ["team@example.test"], "Subject: compiled\r\n\r\nx\r\n")
        self.has_mail("bob", "Subject: compiled")
        self.wait_log("aliases.db (10 entries)")

    def dsns_for(self, user):
        return [t for t in (self.read(p) for p in self.f.mailbox_files(user)) if "Action:" in t]

    def test_multi_alias_with_notify_success_gets_one_expanded_dsn(self):
        """RFC 3461 §5.2.7.3 (c): an "expanded" DSN for the alias; the members
        carry NOTIFY without SUCCESS, so no "delivered" DSN follows."""
        with smtplib.SMTP("127.0.0.1", self.f.port) as c:
            c.sendmail("dsn1@example.test", ["team@example.test"], "Subject: expand-dsn\r\n\r\nx\r\n",
                       rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;team@example.test"])
        self.has_mail("alice", "Subject: expand-dsn")
        self.has_mail("bob", "Subject: expand-dsn")
        self.assertTrue(wait_for(lambda: self.dsns_for("dsn1"), 10), self.f.read_log()[-3000:])
        time.sleep(1)
        dsns = self.dsns_for("dsn1")
        self.assertEqual(len(dsns), 1, dsns)
        self.assertIn("Action: expanded", dsns[0])
        self.assertIn("Final-Recipient: rfc822; team@example.test", dsns[0])
        self.assertNotIn("Action: delivered", dsns[0])

    def test_single_alias_passes_notify_on(self):
        """§5.2.7.2: no DSN for the alias; the one forwarding address carries
        NOTIFY=SUCCESS and ORCPT, so the final delivery is reported, once."""
        with smtplib.SMTP("127.0.0.1", self.f.port) as c:
            c.sendmail("dsn2@example.test", ["solo@example.test"], "Subject: solo-dsn\r\n\r\nx\r\n",
                       rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;solo@example.test"])
        self.has_mail("frida", "Subject: solo-dsn")
        self.assertTrue(wait_for(lambda: self.dsns_for("dsn2"), 10), self.f.read_log()[-3000:])
        time.sleep(1)
        dsns = self.dsns_for("dsn2")
        self.assertEqual(len(dsns), 1, dsns)
        self.assertIn("Action: delivered", dsns[0])
        self.assertIn("Original-Recipient: rfc822;solo@example.test", dsns[0].replace("rfc822; ", "rfc822;"))
        self.assertNotIn("::", dsns[0])      # never the encoded target

    def test_pipe_timeout_defers(self):
        send(self.f.port, ["slow@example.test"])
        self.wait_log("to=<slow@example.test> status=deferred", timeout=15)
        self.wait_log("4.4.7")

    def test_mbox_per_domain_with_from_quoting(self):
        send(self.f.port, ["erin@mb.test"], "Subject: mb\r\n\r\nFrom here\r\n>From there\r\nend\r\n")
        path = os.path.join(self.f.maildir, "erin")
        # Done (and unlocked) once the queue logs it, not when the file first grows.
        self.wait_log("to=<erin@mb.test> status=sent")
        text = self.read(path)
        self.assertTrue(text.startswith("From s@example.org "), text)
        self.assertIn("Delivered-To: erin@mb.test\n", text)
        self.assertIn("\n>From here\n>>From there\nend\n\n", text)
        self.assertNotIn("\r", text)
        self.assertFalse(os.path.exists(path + ".lock"))

    def test_subaddress_goes_to_user(self):
        send(self.f.port, ["frank+news@example.test"])
        (msg,) = self.maildir_text("frank")
        self.assertIn("Delivered-To: frank+news@example.test", msg)

    def test_alias_to_several_users(self):
        send(self.f.port, ["team@example.test"], "Subject: team\r\n\r\nx\r\n")
        for u in ("alice", "bob"):
            self.has_mail(u, "Subject: team")
        self.wait_log("2.1.5 expanded to 2 recipients")

    def test_keep_copy_and_include_file(self):
        send(self.f.port, ["keep@example.test"], "Subject: keep\r\n\r\nx\r\n")
        self.has_mail("keep", "Subject: keep")
        send(self.f.port, ["list@example.test"], "Subject: list\r\n\r\nx\r\n")
        dave = os.path.join(self.pub, "dave.mbox")
        self.assertTrue(wait_for(lambda: os.path.exists(dave) and "Subject: list" in self.read(dave)))
        self.has_mail("carol", "Subject: list")
        self.has_mail("bob", "Subject: list")

    def test_alias_to_pipe(self):
        send(self.f.port, ["prog@example.test"], "Subject: piped\r\n\r\nbody\r\n")
        out = os.path.join(self.pub, "prog.out")
        self.assertTrue(wait_for(lambda: os.path.exists(out) and "prog@example.test" in self.read(out)))
        self.assertTrue(wait_for(lambda: "nofile=" in self.read(out)))
        text = self.read(out)
        self.assertIn("Subject: piped\n\nbody\n", text)
        self.assertNotIn("\r", text)
        self.assertIn("nofile=1024\n", text)         # not the daemon's raised limit
        self.assertIn("descriptor limit %d per process" % resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                      self.f.read_log())

    def test_pipe_failures(self):
        send(self.f.port, ["fail@example.test"])
        self.wait_log("5.3.0 command exited with status 1: no such list here")
        send(self.f.port, ["temp@example.test"])
        self.wait_log("to=<temp@example.test> status=deferred")
        self.wait_log("4.3.0 command exited with EX_TEMPFAIL")

    def test_alias_loop_bounces(self):
        send(self.f.port, ["loop1@example.test"])
        self.wait_log("5.4.6 alias loop")

    def test_virtual_domain_and_catch_all(self):
        send(self.f.port, ["info@virt.test"], "Subject: virt\r\n\r\nx\r\n")
        self.has_mail("alice", "Subject: virt")
        send(self.f.port, ["box@virt.test"], "Subject: box\r\n\r\nx\r\n")
        d = os.path.join(self.pub, "boxdir", "new")
        self.assertTrue(wait_for(lambda: os.path.isdir(d) and os.listdir(d)))
        send(self.f.port, ["whoever@virt.test"], "Subject: catch\r\n\r\nx\r\n")
        path = os.path.join(self.pub, "catchall.mbox")
        self.assertTrue(wait_for(lambda: os.path.exists(path) and "Subject: catch" in self.read(path)))
        self.assertIn("Delivered-To: whoever@virt.test", self.read(path))

    def test_lmtp_one_transaction_and_kept_connection(self):
        before = len(self.lmtp.messages)
        conns = self.lmtp.connections
        send(self.f.port, ["store@virt.test", "store2@virt.test"], "Subject: lmtp\r\n\r\n.dot\r\nx\r\n")
        self.assertTrue(wait_for(lambda: len(self.lmtp.messages) >= before + 1))
        rcpts, data = self.lmtp.messages[before]
        # Both recipients in ONE transaction: one DATA, one reply each after the dot.
        self.assertEqual(sorted(rcpts), ["store2@virt.test", "store@virt.test"])
        self.assertIn(b"Subject: lmtp\r\n\r\n.dot\r\nx\r\n", data)
        # The next message reuses the connection instead of dialling again.
        send(self.f.port, ["store@virt.test"], "Subject: second\r\n\r\nx\r\n")
        self.assertTrue(wait_for(lambda: len(self.lmtp.messages) >= before + 2))
        self.assertEqual(self.lmtp.connections, conns + (0 if conns else 1))
        send(self.f.port, ["rejectme@virt.test"])
        self.wait_log("5.1.1 lmtp unix:")
        self.assertEqual(self.lmtp.connections, conns + (0 if conns else 1))
        # Idle for longer than LMTP_IDLE (5 s): the client closes it.
        self.assertTrue(wait_for(lambda: self.lmtp.closed >= 1, timeout=12))

    def test_quota_exceeded_bounces(self):
        send(self.f.port, ["gina@example.test"], "Subject: big\r\n\r\n" + ("y" * 70 + "\r\n") * 80)
        self.wait_log("to=<gina@example.test> status=bounced")
        self.wait_log("5.2.2 mailbox full")
        self.assertEqual(self.f.mailbox_files("gina"), [])


class RcptCheckTest(unittest.TestCase):
    """local_recipients = known: RCPT TO is answered from the same maps and users
    local delivery would use."""

    @classmethod
    def setUpClass(cls):
        f = cls.f = Ferry(local_recipients="known", domains="example.test virt.test catch.test")
        aliases = os.path.join(f.dir, "aliases")
        with open(aliases, "w") as fh:
            fh.write("team: zed, far@remote.example\nlistx: :include:/nonexistent/list\n")
        virtual = os.path.join(f.dir, "virtual")
        with open(virtual, "w") as fh:
            fh.write("info@virt.test zed\n@catch.test zed\n")
        map_build(aliases)
        map_build(virtual)
        os.makedirs(os.path.join(f.maildir, "zed"))
        os.chmod(f.maildir, 0o777)
        os.chmod(os.path.join(f.maildir, "zed"), 0o777)   # the queue runs as nobody
        f.write_config(f"alias_file = {aliases}\nvirtual_map = {virtual}\n", local_recipients="known",
                       domains="example.test virt.test catch.test")
        f.start()

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()
        cls.f.cleanup()

    def rcpt(self, addr):
        with smtplib.SMTP("127.0.0.1", self.f.port) as c:
            c.ehlo("client.example")
            c.mail("s@example.org")
            return c.rcpt(addr)

    def test_known_recipients(self):
        for addr in ("zed@example.test", "zed+tag@example.test", "team@example.test", "listx@example.test",
                     "postmaster@example.test", "root@example.test", "info@virt.test",
                     "anyone@catch.test", "anyone+x@catch.test"):
            code, text = self.rcpt(addr)
            self.assertEqual(code, 250, f"{addr}: {code} {text}")

    def test_unknown_recipients_get_550_511(self):
        for addr in ("nosuch@example.test", "nosuch+tag@example.test", "other@virt.test"):
            code, text = self.rcpt(addr)
            self.assertEqual(code, 550, f"{addr}: {code} {text}")
            self.assertTrue(text.startswith(b"5.1.1 "), text)

    def test_accepted_alias_is_delivered(self):
        send(self.f.port, ["team@example.test"], "Subject: known\r\n\r\nx\r\n")
        self.assertTrue(self.f.wait_mail("zed"), self.f.read_log()[-3000:])


def dovecot_conf(base):
    """A private Dovecot (LMTP only) under base: unix socket base/run/lmtp, every
    user's mail in base/mail/USER/Maildir, owned by nobody."""
    conf = os.path.join(base, "dovecot.conf")
    me = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    uid, gid = (65534, 65534) if os.geteuid() == 0 else (os.getuid(), os.getgid())
    with open(conf, "w") as fh:
        fh.write(f"""protocols = lmtp
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
listen = 127.0.0.1
ssl = no
default_internal_user = {me}
default_login_user = {me}
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/mail/%n
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
""")
    return conf


class MboxControlNamesTest(unittest.TestCase):
    """Security review #6: with local_recipients = any and mbox delivery,
    RCPT TO:<"dave.lock"@...> created dave's dotlock and kept dave's mail
    deferred. No local part may name a lock or control file: refused at RCPT,
    bounced at delivery for mail already queued, and dave's mail goes through."""

    @classmethod
    def setUpClass(cls):
        cls.f = Ferry(extra="mailbox_format = mbox", local_recipients="any").start()

    @classmethod
    def tearDownClass(cls):
        cls.f.cleanup()

    def lock_like_files(self):
        return [n for n in os.listdir(self.f.maildir) if n.lower().endswith(".lock") or n.startswith(".")] \
            if os.path.isdir(self.f.maildir) else []

    def test_rcpt_naming_a_lock_file_is_refused(self):
        s = SmtpLines(self.f.port)
        s.cmd("EHLO c.example")
        self.assertEqual(s.cmd("MAIL FROM:<s@example.org>")[0], 250)
        for rcpt in ('"dave.lock"@localhost', "dave.lock@localhost", '"DAVE.LOCK"@localhost',
                     "dave.lock+x@localhost", '"dave.lock."@localhost', '".dave"@localhost'):
            code, lines = s.cmd(f"RCPT TO:<{rcpt}>")
            self.assertEqual(code, 550, (rcpt, lines))
            self.assertTrue(lines[0].startswith("550 5.1.1 <"), lines)
        self.assertIn("would name a mailbox lock file", s.cmd('RCPT TO:<"dave.lock"@localhost>')[1][0])
        self.assertEqual(s.cmd("RCPT TO:<dave@localhost>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        self.assertEqual(s.cmd("Subject: for dave\r\n\r\nhello dave\r\n.")[0], 250)
        s.cmd("QUIT")
        self.assertTrue(wait_for(lambda: "to=<dave@localhost> status=sent" in self.f.read_log(), 10),
                        self.f.read_log()[-3000:])
        with open(os.path.join(self.f.maildir, "dave"), "rb") as fh:
            self.assertIn(b"hello dave", fh.read())
        self.assertEqual(self.lock_like_files(), [])
        self.assertIn('reject RCPT from [127.0.0.1]: <"dave.lock"@localhost>', self.f.read_log())

    def test_queued_mail_for_a_lock_name_bounces_without_a_file(self):
        # As if accepted before the RCPT check refused such names.
        self.f.inject("", ["dave.lock@localhost", "erin@localhost"], "Subject: old\r\n\r\nqueued\r\n")
        self.assertTrue(wait_for(lambda: "to=<erin@localhost> status=sent" in self.f.read_log(), 10),
                        self.f.read_log()[-3000:])
        self.assertTrue(wait_for(lambda: "to=<dave.lock@localhost> status=bounced" in self.f.read_log(), 10),
                        self.f.read_log()[-3000:])
        self.assertEqual(self.lock_like_files(), [])
        send(self.f.port, ["erin@localhost"], "Subject: again\r\n\r\nsecond\r\n")
        self.assertTrue(wait_for(lambda: self.f.read_log().count("to=<erin@localhost> status=sent") == 2, 10))


class DovecotLmtpTest(unittest.TestCase):
    """mailbox_transport to a real LMTP server: Dovecot's lmtp, run privately."""

    @classmethod
    def setUpClass(cls):
        if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/lmtp"):
            raise AssertionError("dovecot-core and dovecot-lmtpd are not installed (make deps installs them)")
        cls.base = tempfile.mkdtemp(prefix="ferry-dv-")
        os.chmod(cls.base, 0o755)
        for d in ("run", "state", "mail"):
            os.mkdir(os.path.join(cls.base, d))
        os.chmod(os.path.join(cls.base, "mail"), 0o777)
        conf = dovecot_conf(cls.base)
        cls.dv = subprocess.Popen(["dovecot", "-F", "-c", conf], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        sock = os.path.join(cls.base, "run", "lmtp")
        assert wait_for(lambda: os.path.exists(sock)), "dovecot did not start"
        cls.f = Ferry(extra=f"mailbox_transport = lmtp:unix:{sock}\n")
        cls.f.start()

    @classmethod
    def tearDownClass(cls):
        cls.f.stop()
        cls.f.cleanup()
        cls.dv.terminate()
        cls.dv.wait(10)
        shutil.rmtree(cls.base, ignore_errors=True)

    def stored(self, user):
        d = os.path.join(self.base, "mail", user, "Maildir", "new")
        return [os.path.join(d, n) for n in os.listdir(d)] if os.path.isdir(d) else []

    def test_two_recipients_and_two_messages(self):
        send(self.f.port, ["u1@example.test", "u2@example.test"], "Subject: dv\r\n\r\n.dot\r\n")
        ok = wait_for(lambda: self.stored("u1") and self.stored("u2"))
        self.assertTrue(ok, self.f.read_log()[-3000:])
        with open(self.stored("u1")[0], "rb") as fh:
            text = fh.read()
        self.assertIn(b"Subject: dv", text)
        self.assertIn(b"\n.dot", text)
        self.assertIn(b"Return-Path: <s@example.org>", text)
        send(self.f.port, ["u1@example.test"], "Subject: dv2\r\n\r\nx\r\n")
        self.assertTrue(wait_for(lambda: len(self.stored("u1")) == 2), self.f.read_log()[-3000:])
        log = self.f.read_log()
        self.assertIn("lmtp unix:", log)
        self.assertEqual(log.count("to=<u1@example.test> status=sent"), 2)
        # A recipient Dovecot refuses for good: its reply carries through.
        with open(os.path.join(self.base, "dovecot.log")) as fh:
            self.assertNotIn("Fatal", fh.read())


class HomeDeliveryTest(unittest.TestCase):
    """mailbox_owner = system: a mailbox named after a system account is written
    into that account's ~/Maildir/ by a child of the root parent running as the
    account (the file is the account's, not Ferry's); other names stay under
    mail_dir; root is never written this way."""

    USER = "ferryhome%d" % (os.getpid() % 100000)

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("delivery as a system user needs the tests to run as root (make test does)")
        cls.d = tempfile.mkdtemp(prefix="ferry-home-")
        os.chmod(cls.d, 0o755)
        cls.home = os.path.join(cls.d, "home")
        subprocess.run(["useradd", "--no-create-home", "--home-dir", cls.home, "--shell", "/usr/sbin/nologin",
                        cls.USER], check=True, capture_output=True)
        os.mkdir(cls.home, 0o700)
        import pwd
        cls.pw = pwd.getpwnam(cls.USER)
        os.chown(cls.home, cls.pw.pw_uid, cls.pw.pw_gid)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["userdel", cls.USER], capture_output=True)
        shutil.rmtree(cls.d, ignore_errors=True)

    def test_system_account_gets_its_own_maildir(self):
        with Ferry(extra="mailbox_owner = system\n") as f:
            send(f.port, [f"{self.USER}@example.test", "zed@example.test"])
            new = os.path.join(self.home, "Maildir", "new")
            self.assertTrue(wait_for(lambda: os.path.isdir(new) and os.listdir(new), 15), f.read_log()[-3000:])
            files = os.listdir(new)
            self.assertEqual(len(files), 1)
            st = os.stat(os.path.join(new, files[0]))
            self.assertEqual(st.st_uid, self.pw.pw_uid)
            self.assertEqual(st.st_mode & 0o077, 0)
            with open(os.path.join(new, files[0]), "rb") as fh:
                data = fh.read()
            self.assertIn(f"Delivered-To: {self.USER}@example.test".encode(), data)
            # a name that is no system account stays with Ferry's own Maildirs
            self.assertTrue(f.wait_mail("zed"), f.read_log()[-3000:])
            self.assertNotEqual(os.stat(f.mailbox_files("zed")[0]).st_uid, self.pw.pw_uid)
            self.assertIn(f"delivering to the home of {self.USER}", f.read_log())
            self.assertFalse(os.path.exists(os.path.join(f.maildir, self.USER)))

    def test_default_owner_keeps_everything_under_mail_dir(self):
        with Ferry() as f:
            send(f.port, [f"{self.USER}@example.test"])
            self.assertTrue(f.wait_mail(self.USER), f.read_log()[-3000:])
            self.assertFalse(os.path.exists(os.path.join(self.home, "Maildir")))


if __name__ == "__main__":
    unittest.main()
