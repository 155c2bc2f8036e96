"""Privilege separation, checked on the running daemon from the outside: each
process's uid, gids and no_new_privs in /proc/PID/status are the configured ones;
the DKIM private key (root's, mode 0600) cannot be opened with the smtp or queue
process's credentials (a real open() under them, beside a check of mode and owner),
and no descriptor of theirs points at it; the key process is root, chrooted into
the key directory, and signs what dkimpy then verifies; a stopped or killed key
process makes mail wait (451), never leave unsigned, and is restarted.

The auth process alone reads users.db (root's, in auth_dir, chrooted there, no
capability): the smtp and queue processes cannot open it, AUTH still works with
every mechanism, the smtp loop serves other sessions while a verification waits,
a stopped auth process costs a 454, and the public directory in data_dir (no
secrets) still answers RCPT and sender checks."""
import base64
import errno
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from envfile import split_msg
from ferrytest import BIN, Ferry, SmtpLines, dkimpy_verifies_delivered, wait_for
from test_auth import scram_client

FERRYCTL = os.path.join(BIN, "ferryctl")
DOMAIN = "priv.test"


def users_exist():
    try:
        pwd.getpwnam("ferry")
        pwd.getpwnam("ferryq")
        return os.geteuid() == 0
    except KeyError:
        return False


def landlock_abi():
    """The kernel's Landlock ABI version, 0 without it (landlock_create_ruleset is
    syscall 444 on every architecture)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    return max(0, libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1)))


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def creds(pid):
    st = status(pid)
    return int(st["Uid"][0]), int(st["Gid"][0]), sorted(int(g) for g in st["Groups"]), st


def try_open_as(uid, gid, groups, path):
    """open(path) in a process holding exactly these credentials: 0 or the errno."""
    def drop():
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
    code = ("import os,sys\ntry:\n    os.close(os.open(sys.argv[1], os.O_RDONLY))\n    print(0)\n"
            "except OSError as e:\n    print(e.errno)\n")
    r = subprocess.run(["python3", "-c", code, path], preexec_fn=drop, capture_output=True, text=True, timeout=30)
    return int(r.stdout.strip())


@unittest.skipUnless(users_exist(), "needs root and the ferry and ferryq accounts (make deps creates them)")

def dead(pid):
    """pid has exited (a zombie, or already reaped: the /proc entry may vanish
    between any two looks at it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] == "Z"
    except OSError:
        return True

class PrivSep(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-priv-")
        os.chmod(cls.tmp, 0o755)
        cls.keydir = os.path.join(cls.tmp, "keys")
        d = os.path.join(cls.keydir, DOMAIN)
        os.makedirs(d)
        cls.keyfile = os.path.join(d, "k1.key")
        r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", DOMAIN, "--selector", "k1", "--out",
                            cls.keyfile], capture_output=True, text=True, check=True)
        txt = r.stdout.split(" IN TXT ", 1)[1].strip()
        cls.records = {f"k1._domainkey.{DOMAIN}": "".join(p.strip('"') for p in txt.split('" "'))}
        with open(os.path.join(d, "active"), "w") as fh:
            fh.write("k1\n")
        os.chmod(os.path.join(d, "active"), 0o644)
        for p in (cls.keydir, d):
            os.chmod(p, 0o755)
        # The key as an operator keeps it: root's, readable by root alone.
        os.chown(cls.keyfile, 0, 0)
        os.chmod(cls.keyfile, 0o600)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(["rm", "-rf", cls.tmp])

    def ferry(self):
        return Ferry(relay_networks="127.0.0.0/8",
                     extra=f"user = ferry\nqueue_user = ferryq\ndkim_key_dir = {self.keydir}\n")

    def send(self, f, rcpt):
        msg = (f"From: a@{DOMAIN}\r\nTo: {rcpt}@localhost\r\nSubject: privsep\r\n"
               f"Date: Mon, 23 Nov 2026 00:00:00 +0000\r\nMessage-ID: <{rcpt}@{DOMAIN}>\r\n\r\nhello\r\n").encode()
        s = SmtpLines(f.port)
        s.cmd("EHLO client.test")
        self.assertEqual(s.cmd(f"MAIL FROM:<a@{DOMAIN}>")[0], 250)
        self.assertEqual(s.cmd(f"RCPT TO:<{rcpt}@localhost>")[0], 250)
        self.assertEqual(s.cmd("DATA")[0], 354)
        s.send(msg + b".\r\n")
        code, lines = s.reply()
        s.cmd("QUIT")
        return code, lines

    def dkimpy_verifies(self, delivered):
        return dkimpy_verifies_delivered(delivered, self.records, self.tmp)

    def test_each_process_runs_as_configured(self):
        ferry, ferryq = pwd.getpwnam("ferry"), pwd.getpwnam("ferryq")
        with self.ferry() as f:
            self.assertTrue(wait_for(lambda: f.child_by_role("keys"), 10), f.read_log())
            smtp, queue, keys = (f.child_by_role(r) for r in ("smtp", "queue", "keys"))
            uid, gid, groups, st = creds(smtp)
            self.assertEqual((uid, gid, groups), (ferry.pw_uid, ferry.pw_gid, [ferry.pw_gid]))
            self.assertEqual(st["Uid"], [str(ferry.pw_uid)] * 4)      # real, effective, saved, fs
            self.assertEqual(st["NoNewPrivs"], ["1"])
            uid, gid, groups, st = creds(queue)
            self.assertEqual((uid, gid), (ferryq.pw_uid, ferryq.pw_gid))
            self.assertEqual(groups, sorted({ferryq.pw_gid, ferry.pw_gid}))   # ferry's group: the spool
            self.assertEqual(st["Uid"], [str(ferryq.pw_uid)] * 4)
            self.assertEqual(st["NoNewPrivs"], ["1"])
            uid, gid, groups, st = creds(keys)
            self.assertEqual(uid, 0)
            self.assertEqual(st["NoNewPrivs"], ["1"])
            self.assertEqual(os.readlink(f"/proc/{keys}/root"), self.keydir)     # chrooted
            # The smtp process is Landlocked where the kernel can (lib/landlock is
            # tested to deny in tests/unit/test_landlock.c).
            if landlock_abi() > 0:
                self.assertIn("smtp process confined with Landlock", f.read_log())
            # The shared spool: set-group-id, the smtp user's group, not others'.
            q = os.stat(os.path.join(f.spool, "queue"))
            self.assertEqual((q.st_uid, q.st_gid, q.st_mode & 0o7777), (ferry.pw_uid, ferry.pw_gid, 0o2770))
            # mail_dir: the queue user's; the smtp user's group may only pass (RCPT
            # sees whether a mailbox exists).
            m = os.stat(f.maildir)
            self.assertEqual((m.st_uid, m.st_gid, m.st_mode & 0o7777), (ferryq.pw_uid, ferry.pw_gid, 0o710))
            # The queue's own databases (MTA-STS cache, TLS-RPT counters): its
            # environment, which the smtp process can neither read nor write.
            qd = os.path.join(f.dir, "db-queue")
            q = os.stat(qd)
            self.assertEqual((q.st_uid, q.st_mode & 0o7777), (ferryq.pw_uid, 0o700))
            uid, gid, groups, _ = creds(smtp)
            self.assertEqual(try_open_as(uid, gid, groups, qd), errno.EACCES)

    def test_queue_user_cuts_back_a_message_file_of_the_smtp_user(self):
        """The spool commits one file per message (queue/spool.h); when the queue
        process (ferryq) first updates the envelope it writes ID.env and cuts
        ID.msg, the smtp process's (ferry's) file, back to the message. A closed
        smart host makes every attempt defer."""
        ferry = pwd.getpwnam("ferry")
        closed = socket.socket()
        closed.bind(("127.0.0.71", 0))
        port = closed.getsockname()[1]
        closed.close()
        f = Ferry(relay_networks="127.0.0.0/8",
                  extra=f"user = ferry\nqueue_user = ferryq\nrelayhost = [127.0.0.71]:{port}\n"
                        "relayhost_tls = none\nretry_min = 1h\nretry_max = 2h\n")
        with f:
            s = SmtpLines(f.port)
            s.cmd("EHLO client.test")
            self.assertEqual(s.cmd("MAIL FROM:<a@client.test>")[0], 250)
            self.assertEqual(s.cmd("RCPT TO:<b@remote.test>")[0], 250)
            self.assertEqual(s.cmd("DATA")[0], 354)
            code, lines = s.cmd("Subject: cut\r\n\r\nbody\r\n.")
            self.assertEqual(code, 250, lines)
            qid = lines[0].split()[-1]
            path = os.path.join(f.spool, "queue", qid + ".msg")

            def cut():
                if not os.path.exists(path[:-4] + ".env"):
                    return None
                with open(path, "rb") as fh:
                    data = fh.read()
                return data if split_msg(data)[1] is None else None
            data = wait_for(cut, 20)
            self.assertTrue(data, f.read_log()[-3000:])
            self.assertTrue(data.endswith(b"Subject: cut\r\n\r\nbody\r\n"), data)
            self.assertEqual(os.stat(path).st_uid, ferry.pw_uid)       # still the smtp user's file
            self.assertNotIn("cannot update the envelope", f.read_log())
            r = f.ferryctl("queue", "list", "--json")
            self.assertIn(qid, r.stdout)

    def test_delivered_file_is_reused_across_the_two_users(self):
        """queue/spool_spare.h under privilege separation: the queue process
        (ferryq) moves a delivered message's file, the smtp user's, into spare/
        and empties it; the smtp process (ferry) takes it for the next message,
        which needs the file to be its own for the lease it checks with."""
        with self.ferry() as f:
            spare = os.path.join(f.spool, "spare")

            def published():
                return {os.stat(os.path.join(spare, n)).st_ino
                        for n in os.listdir(spare) if not n.startswith(".")} or None
            self.assertEqual(self.send(f, "one")[0], 250)
            first = wait_for(published, 20)
            self.assertTrue(first, f.read_log()[-3000:])
            self.assertEqual(len(first), 1)
            self.assertEqual(self.send(f, "two")[0], 250)
            self.assertTrue(wait_for(lambda: len(f.mailbox_files("two")) == 1, 20), f.read_log()[-3000:])
            self.assertTrue(wait_for(lambda: published() == first, 10), (published(), first))
            self.assertNotIn("not reused", f.read_log())

    def test_smtp_and_queue_cannot_open_the_key(self):
        with self.ferry() as f:
            code, lines = self.send(f, "first")       # keys are in use now
            self.assertEqual(code, 250, lines)
            f.wait_mail("first")
            st = os.stat(self.keyfile)
            for role in ("smtp", "queue"):
                uid, gid, groups, _ = creds(f.child_by_role(role))
                with self.subTest(role=role):
                    # By mode and owner: neither owner, nor group, nor world may read.
                    self.assertNotIn(st.st_uid, (uid,))
                    self.assertFalse(st.st_gid in groups and st.st_mode & 0o040)
                    self.assertFalse(st.st_mode & 0o004)
                    # And a real open() with exactly those credentials fails ...
                    self.assertEqual(try_open_as(uid, gid, groups, self.keyfile), errno.EACCES)
                    # ... where the same process may open what it should (the test can tell).
                    self.assertEqual(try_open_as(uid, gid, groups, os.path.join(self.keydir, DOMAIN, "active")), 0)
                    # No descriptor of the process points at a key.
                    pid = f.child_by_role(role)
                    for fd in os.listdir(f"/proc/{pid}/fd"):
                        try:
                            target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        except OSError:
                            continue
                        self.assertFalse(target.endswith(".key"), target)

    def test_root_only_key_signs_through_the_key_process(self):
        with self.ferry() as f:
            code, lines = self.send(f, "signed")
            self.assertEqual(code, 250, lines)
            data = open(f.wait_mail("signed")[0], "rb").read()
            self.assertEqual(data.count(b"DKIM-Signature:"), 1, data)
            self.assertIn(b"s=k1;", data)
            self.assertTrue(self.dkimpy_verifies(data))

    def test_key_planted_by_the_smtp_user_is_refused(self):
        # The smtp user may write the domain directory (rotation): a key it owns
        # must not be loaded by the root key process, so nothing is signed with it.
        import pwd
        ferry = pwd.getpwnam("ferry")
        try:
            os.chown(self.keyfile, ferry.pw_uid, ferry.pw_gid)
            with self.ferry() as f:
                code, lines = self.send(f, "planted")
                self.assertEqual(code, 250, lines)          # as for a domain without a usable key
                # The key process has no capability left (lib/caps.h): uid 0 cannot
                # even open another user's 0600 file; were it readable, the owner
                # check refuses it.
                log = f.read_log()
                self.assertTrue("refused: owned by uid %d" % ferry.pw_uid in log or
                                "k1.key: Permission denied" in log, log)
                data = open(f.wait_mail("planted")[0], "rb").read()
                self.assertNotIn(b"DKIM-Signature:", data)
        finally:
            os.chown(self.keyfile, 0, 0)

    def test_stopped_key_process_defers_and_recovers(self):
        with self.ferry() as f:
            self.assertEqual(self.send(f, "warm")[0], 250)
            keys = f.child_by_role("keys")
            os.kill(keys, signal.SIGSTOP)
            try:
                t0 = time.time()
                code, lines = self.send(f, "stalled")
                waited = time.time() - t0
            finally:
                os.kill(keys, signal.SIGCONT)
            self.assertEqual(code, 451, lines)
            self.assertLess(waited, 10)                     # bounded: KEYPROC_TIMEOUT_MS
            self.assertIn("did not answer", f.read_log())
            # The circuit breaker: for KEYPROC_BACKOFF_SECONDS the key process is
            # not asked again (no second wait on the event loop), mail waits.
            code, lines = self.send(f, "breaker")
            self.assertEqual(code, 451, lines)
            self.assertIn("did not answer a moment ago", f.read_log())
            time.sleep(6)                                   # KEYPROC_BACKOFF_SECONDS is 5
            code, lines = self.send(f, "after")
            self.assertEqual(code, 250, lines)
            self.assertTrue(self.dkimpy_verifies(open(f.wait_mail("after")[0], "rb").read()))
            time.sleep(1)
            self.assertFalse(f.mailbox_files("stalled"), "a deferred message was delivered")
            self.assertFalse(f.mailbox_files("breaker"), "a deferred message was delivered")

    def test_killed_key_process_is_restarted_and_nothing_leaves_unsigned(self):
        with self.ferry() as f:
            self.assertEqual(self.send(f, "warm")[0], 250)
            keys = f.child_by_role("keys")
            os.kill(keys, signal.SIGKILL)
            wait_for(lambda: dead(keys), 5)
            # At once: the parent restarts it after a second, so this one waits (451)
            # or, if the new one is already up, is signed; it never leaves unsigned.
            gap, lines = self.send(f, "gap")
            self.assertIn(gap, (250, 451), lines)
            self.assertTrue(wait_for(lambda: f.child_by_role("keys") not in (None, keys), 10), f.read_log())
            self.assertIn("the keys process was killed by signal 9", f.read_log())
            code, lines = self.send(f, "later")
            self.assertEqual(code, 250, lines)
            self.assertTrue(self.dkimpy_verifies(open(f.wait_mail("later")[0], "rb").read()))
            if gap == 250:
                self.assertTrue(f.wait_mail("gap"))
                self.assertTrue(self.dkimpy_verifies(open(f.mailbox_files("gap")[0], "rb").read()))


    # --- the auth process -------------------------------------------------

    def auth_ferry(self):
        f = Ferry(relay_networks="192.0.2.1/32", local_recipients="known",
                  extra="user = ferry\nqueue_user = ferryq\nauth_plaintext_loopback = yes\n"
                        "auth_failure_delay = 1s\n")
        self.ctl(f, "user", "add", "alice", input="alice pw\n")
        return f

    def ctl(self, f, *args, input=None):
        r = subprocess.run([FERRYCTL, "-c", f.conf, *args], input=input, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def auth_plain(self, f, user, pw):
        s = SmtpLines(f.sub_port, timeout=30)
        s.cmd("EHLO client.test")
        code, lines = s.cmd("AUTH PLAIN " + base64.b64encode(f"\0{user}\0{pw}".encode()).decode())
        s.cmd("QUIT")
        return code, lines

    def test_only_the_auth_process_reads_the_user_secrets(self):
        with self.auth_ferry() as f:
            self.assertTrue(wait_for(lambda: "auth process ready" in f.read_log(), 10), f.read_log())
            auth_dir = os.path.join(f.dir, "db-auth")
            users_db = os.path.join(auth_dir, "users.db")
            st = os.stat(auth_dir)
            self.assertEqual((st.st_uid, st.st_mode & 0o7777), (0, 0o700))
            self.assertTrue(os.path.exists(users_db))
            # The auth process: root's uid, but no capability, no way back, chrooted.
            auth = f.child_by_role("auth")
            uid, _, _, ast = creds(auth)
            self.assertEqual(uid, 0)
            self.assertEqual(ast["NoNewPrivs"], ["1"])
            for c in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                self.assertEqual(int(ast[c][0], 16), 0, c)
            self.assertEqual(os.readlink(f"/proc/{auth}/root"), auth_dir)
            keys_free = self.auth_plain(f, "alice", "alice pw")
            self.assertEqual(keys_free[0], 235, keys_free)
            for role in ("smtp", "queue"):
                pid = f.child_by_role(role)
                uid, gid, groups, _ = creds(pid)
                with self.subTest(role=role):
                    # A real open() with exactly the process's credentials fails,
                    # for users.db and for the environment's region files (its cache).
                    self.assertEqual(try_open_as(uid, gid, groups, users_db), errno.EACCES)
                    self.assertEqual(try_open_as(uid, gid, groups, os.path.join(auth_dir, "__db.001")), errno.EACCES)
                    # Nothing under auth_dir is open or mapped in it.
                    for fd in os.listdir(f"/proc/{pid}/fd"):
                        try:
                            target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        except OSError:
                            continue
                        self.assertFalse(target.startswith(auth_dir), target)
                    with open(f"/proc/{pid}/maps") as m:
                        self.assertNotIn(auth_dir, m.read())
            # data_dir holds the directory only: the user, without credentials.
            self.assertFalse(os.path.exists(os.path.join(f.dir, "db", "users.db")))
            with open(os.path.join(f.dir, "db", "userdir.db"), "rb") as fh:
                raw = fh.read()
            self.assertIn(b"name alice", raw)
            self.assertNotIn(b"stored ", raw)
            self.assertNotIn(b"salt ", raw)

    def test_every_mechanism_is_verified_by_the_auth_process(self):
        with self.auth_ferry() as f:
            self.assertEqual(self.auth_plain(f, "alice", "alice pw")[0], 235)
            code, lines = self.auth_plain(f, "alice", "wrong")
            self.assertEqual(code, 535, lines)
            self.assertEqual(self.auth_plain(f, "nobody-here", "x")[0], 535)
            log = f.read_log()
            self.assertIn("user=alice: wrong password", log)     # the auth process's reason
            self.assertIn("user=nobody-here: unknown user", log)
            s = SmtpLines(f.sub_port, timeout=30)
            s.cmd("EHLO client.test")
            self.assertEqual(s.cmd("AUTH LOGIN")[0], 334)
            self.assertEqual(s.cmd(base64.b64encode(b"alice").decode())[0], 334)
            self.assertEqual(s.cmd(base64.b64encode(b"alice pw").decode())[0], 235)
            s.cmd("QUIT")
            s = SmtpLines(f.sub_port, timeout=30)
            s.cmd("EHLO client.test")

            def exchange(first):
                code, lines = s.cmd("AUTH SCRAM-SHA-256 " + base64.b64encode(first.encode()).decode())
                self.assertEqual(code, 334, lines)
                return base64.b64decode(lines[0][4:]).decode()
            final, expect = scram_client("alice", "alice pw", exchange)
            code, lines = s.cmd(base64.b64encode(final.encode()).decode())
            self.assertEqual(code, 334, lines)
            self.assertEqual(base64.b64decode(lines[0][4:]).decode(), expect)   # ServerKey stayed in the auth process
            self.assertEqual(s.cmd("")[0], 235)
            s.cmd("QUIT")

    def test_smtp_loop_serves_others_while_a_verification_waits(self):
        with self.auth_ferry() as f:
            self.assertEqual(self.auth_plain(f, "alice", "alice pw")[0], 235)
            auth = f.child_by_role("auth")
            os.kill(auth, signal.SIGSTOP)
            try:
                waiting = SmtpLines(f.sub_port, timeout=30)
                waiting.cmd("EHLO client.test")
                waiting.send("AUTH PLAIN " + base64.b64encode(b"\0alice\0alice pw").decode() + "\r\n")
                # Meanwhile another client does a whole transaction on the same loop.
                other = SmtpLines(f.port, timeout=30)
                other.cmd("EHLO other.test")
                self.assertEqual(other.cmd("MAIL FROM:<x@example.org>")[0], 250)
                self.assertEqual(other.cmd("RCPT TO:<alice@localhost>")[0], 250)
                self.assertEqual(other.cmd("DATA")[0], 354)
                self.assertEqual(other.cmd("Subject: meanwhile\r\n\r\nhi\r\n.")[0], 250)
                other.cmd("QUIT")
                # ... and the first is still waiting for its verdict: had the loop
                # waited (synchronously) for the auth process, it would have its
                # answer (a 454 after the timeout) before the other got any.
                waiting.sock.setblocking(False)
                try:
                    early = waiting.sock.recv(512)
                except BlockingIOError:
                    early = b""
                waiting.sock.setblocking(True)
                self.assertEqual(early, b"")
            finally:
                os.kill(auth, signal.SIGCONT)
            self.assertEqual(waiting.reply()[0], 235)
            waiting.cmd("QUIT")

    def test_stopped_auth_process_costs_a_454_then_recovers(self):
        with self.auth_ferry() as f:
            auth = f.child_by_role("auth")
            self.assertTrue(wait_for(lambda: "auth process ready" in f.read_log(), 10))
            os.kill(auth, signal.SIGSTOP)
            try:
                code, lines = self.auth_plain(f, "alice", "alice pw")
            finally:
                os.kill(auth, signal.SIGCONT)
            self.assertEqual(code, 454, lines)
            self.assertIn("the auth process did not answer", f.read_log())
            # Its late answer to that question is dropped; the next is answered.
            self.assertEqual(self.auth_plain(f, "alice", "alice pw")[0], 235)
            # Killed, it is restarted and takes over the same link.
            os.kill(auth, signal.SIGKILL)
            self.assertTrue(wait_for(lambda: f.child_by_role("auth") not in (None, auth), 10), f.read_log())
            self.assertTrue(wait_for(lambda: self.auth_plain(f, "alice", "alice pw")[0] == 235, 20))

    def test_the_directory_answers_rcpt_without_secrets(self):
        with self.auth_ferry() as f:
            def rcpt(name):
                s = SmtpLines(f.port, timeout=30)
                s.cmd("EHLO client.test")
                s.cmd("MAIL FROM:<x@example.org>")
                code = s.cmd(f"RCPT TO:<{name}@localhost>")[0]
                s.cmd("QUIT")
                return code
            self.assertEqual(rcpt("alice"), 250)            # an AUTH user: a local recipient
            self.assertEqual(rcpt("zed"), 550)
            self.ctl(f, "user", "add", "zed", input="zed pw\n")
            self.assertEqual(rcpt("zed"), 250)              # seen at once, no restart
            self.ctl(f, "user", "del", "zed")
            self.assertEqual(rcpt("zed"), 550)
            self.assertEqual(self.auth_plain(f, "zed", "zed pw")[0], 535)


    def test_users_of_an_older_ferry_are_imported_by_sync(self):
        f = Ferry(relay_networks="192.0.2.1/32",
                  extra="user = ferry\nqueue_user = ferryq\nauth_plaintext_loopback = yes\n")
        # The old layout: users.db, keys and all, in data_dir's environment, the
        # daemon user's (made here as that user, with auth_dir pointed at data_dir:
        # what ferryctl did before).
        old = f.conf + ".old"
        with open(f.conf) as src, open(old, "w") as dst:
            dst.write(src.read() + f"auth_dir = {f.dir}/db\n")
        ferry = pwd.getpwnam("ferry")
        os.makedirs(os.path.join(f.dir, "db"))
        os.chown(os.path.join(f.dir, "db"), ferry.pw_uid, ferry.pw_gid)

        def as_ferry():
            os.setgroups([])
            os.setgid(ferry.pw_gid)
            os.setuid(ferry.pw_uid)
            os.umask(0o007)
        r = subprocess.run([FERRYCTL, "-c", old, "user", "add", "olduser"], input="old pw\n",
                           capture_output=True, text=True, preexec_fn=as_ferry)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(f.dir, "db", "users.db")))
        with f:
            self.assertIn("holds AUTH users of an older Ferry", f.read_log())
            self.assertEqual(self.auth_plain(f, "olduser", "old pw")[0], 535)     # not read from data_dir
            out = self.ctl(f, "user", "sync")
            self.assertIn("1 users imported", out)
            self.assertEqual(self.auth_plain(f, "olduser", "old pw")[0], 235)
            self.assertIn("olduser", self.ctl(f, "user", "list"))
            # Again: nothing new to import, nothing overwritten.
            self.assertNotIn("imported", self.ctl(f, "user", "sync"))

    # --- each child's part of the configuration ---------------------------

    def test_each_child_keeps_only_its_part_of_the_configuration(self):
        d = tempfile.mkdtemp(prefix="ferry-cfg-", dir=self.tmp)
        os.chmod(d, 0o755)
        creds = os.path.join(d, "relay-PATHMARK7-creds")
        with open(creds, "w") as fh:
            fh.write("relayuser PWMARK7secret\n")
        os.chmod(creds, 0o600)
        auth_dir = os.path.join(d, "auth-AUTHMARK7")
        f = Ferry(relay_networks="127.0.0.0/8",
                  extra=f"user = ferry\nqueue_user = ferryq\ndkim_key_dir = {self.keydir}\n"
                        f"relayhost = [relay.invalid]:587\nrelayhost_auth_file = {creds}\nauth_dir = {auth_dir}\n")
        with f:
            self.assertTrue(wait_for(lambda: f.child_by_role("auth") and f.child_by_role("keys"), 10))
            self.assertEqual(self.send(f, "warm")[0], 250)
            # What each child may hold, searched for in its whole writable memory.
            # (Directory paths such as auth_dir are cleared from each copy of the
            # configuration too, but a path is no secret and may linger in memory
            # the parent once used; the relay password and file are checked.)
            expect_absent = {
                "smtp": [b"PATHMARK7", b"PWMARK7"],
                "queue": [b"PATHMARK7"],                # the credentials themselves it needs
                "keys": [b"PATHMARK7", b"PWMARK7"],
                "auth": [b"PATHMARK7", b"PWMARK7"],
            }
            for role, markers in expect_absent.items():
                held = memory_holds(f.child_by_role(role), markers)
                for m in markers:
                    with self.subTest(role=role, marker=m):
                        self.assertNotIn(m, held, "%s holds %r" % (role, m))
            # The check can fail: the queue does hold the relay password.
            self.assertIn(b"PWMARK7", memory_holds(f.child_by_role("queue"), [b"PWMARK7"]))


def memory_holds(pid, markers):
    """Which of markers are in pid's writable memory (heap, stack, data). Mappings
    with nothing resident are skipped, and so are those over 1 GiB (a sanitizer's
    shadow: terabytes reserved, a little touched); the others are read in chunks."""
    found, chunk, over = set(), 16 << 20, max(len(m) for m in markers)
    regions, cur = [], None
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                cur = [lo, hi, "w" in parts[1], 0]
                regions.append(cur)
            elif parts[0] == "Rss:" and cur:
                cur[3] = int(parts[1])
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for lo, hi, writable, rss in regions:
            if not writable or rss == 0 or hi - lo > 1 << 30:
                continue
            tail = b""
            for at in range(lo, hi, chunk):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(chunk, hi - at))
                except OSError:
                    tail = b""
                    continue
                found.update(m for m in markers if m in data)
                tail = data[-over:]
    return found


if __name__ == "__main__":
    unittest.main()
