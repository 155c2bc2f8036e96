"""Shared pieces of Ferry's integration tests: a real ferryd on loopback high
ports, with its own config, spool and Maildirs in a temporary directory, and a
raw SMTP line client for the tests that check exact reply codes."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, os.environ.get("BIN", "bin"))
FERRYD = os.path.join(BIN, "ferryd")
FERRYCTL = os.path.join(BIN, "ferryctl")


_servfail = {}


def servfail_resolver():
    """A resolver address answering every query at once with SERVFAIL: remote
    domains defer with 4.4.3 in every test that does not bring its own DNS. One
    per test process, in a thread. (A dead port was used before; the kernel
    rate-limits the ICMP errors that make such a query fail fast, so under a
    busy suite lookups sometimes waited for their timeouts instead.)"""
    if "addr" not in _servfail:
        import threading
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))

        def serve():
            while True:
                try:
                    q, peer = sock.recvfrom(4096)
                except OSError:
                    return
                if len(q) < 12:
                    continue
                # same ID and question; QR=1, RD copied, RA=1, RCODE=2; no records
                flags = 0x8000 | (q[2] << 8 & 0x0100) | 0x0080 | 2
                sock.sendto(q[:2] + flags.to_bytes(2, "big") + q[4:6] + b"\0\0\0\0\0\0" + q[12:], peer)

        threading.Thread(target=serve, daemon=True).start()
        _servfail["addr"] = "127.0.0.1:%d" % sock.getsockname()[1]
        _servfail["sock"] = sock
    return _servfail["addr"]


def free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def make_signing_key(base, domain, selector):
    """A dkim_key_dir under base with one active key for domain (readable by the
    daemon's user). Returns (key_dir, the TXT record as ferryctl prints it (quoted
    strings), the record text joined)."""
    keydir = os.path.join(base, "keys", domain)
    os.makedirs(keydir, exist_ok=True)
    key = os.path.join(keydir, selector + ".key")
    r = subprocess.run([FERRYCTL, "dkim", "keygen", "--domain", domain, "--selector", selector, "--out", key],
                       capture_output=True, text=True, check=True)
    quoted = r.stdout.split(" IN TXT ", 1)[1].strip()
    os.chmod(key, 0o644)
    with open(os.path.join(keydir, "active"), "w") as fh:
        fh.write(selector + "\n")
    for p in (os.path.dirname(keydir), keydir):
        os.chmod(p, 0o755)
    return os.path.dirname(keydir), quoted, "".join(p.strip('"') for p in quoted.split('" "'))


DKIMPY_ORACLE = [os.environ.get("FERRY_SYSTEM_PYTHON", "/usr/bin/python3"),
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "dkimpy_oracle.py")]


def dkimpy_verifies_delivered(delivered, records, workdir):
    """Does dkimpy (python3-dkim) verify a message as local delivery wrote it (less
    Return-Path and Delivered-To, LF line ends), with keys from records (name → TXT)?"""
    body = delivered.split(b"\n", 2)[2].replace(b"\n", b"\r\n")
    recs = os.path.join(workdir, "recs.json")
    with open(recs, "w") as fh:
        json.dump(records, fh)
    r = subprocess.run(DKIMPY_ORACLE + ["verify", recs], input=body, capture_output=True)
    return r.stdout.strip() == b"pass"


def wait_for(pred, timeout=10.0, interval=0.05):
    """Poll pred() until it returns something true; return it, or None on timeout."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


class Ferry:
    """One ferryd instance. Use as a context manager, or call start()/stop()."""

    # Test clients connect from loopback, which the default relay_networks trusts;
    # tests see the stranger's view unless they ask for a trusted one.
    def __init__(self, extra="", local_recipients="any", domains="localhost example.test",
                 relay_networks="192.0.2.1/32"):
        self.relay_networks = relay_networks
        self.dir = tempfile.mkdtemp(prefix="ferry-it-")
        # Children run as nobody when the tests run as root: they must reach the tree.
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.sub_port = free_port()
        # Every lookup gets SERVFAIL: remote domains defer at once with 4.4.3,
        # unless a test gives its own resolver.
        self.resolver = servfail_resolver()
        self.spool = os.path.join(self.dir, "spool")
        self.maildir = os.path.join(self.dir, "mail")
        self.conf = os.path.join(self.dir, "ferry.conf")
        self.log_path = os.path.join(self.dir, "ferryd.log")
        self.proc = None
        self.write_config(extra, local_recipients, domains)

    def write_config(self, extra="", local_recipients="any", domains="localhost example.test"):
        base = f"""hostname = mx.example.test
listen = smtp 127.0.0.1:{self.port}
listen = submission 127.0.0.1:{self.sub_port}
spool_dir = {self.spool}
data_dir = {self.dir}/db
mail_dir = {self.maildir}
pid_file = {self.dir}/ferryd.pid
local_domains = {", ".join(domains.split())}
local_recipients = {local_recipients}
log = stderr
log_level = debug
user = nobody
smtp_timeout = 30s
relay_networks = {self.relay_networks}
spf_check = no
dmp_check = off
dmarc_check = no
resolver = {self.resolver}
"""
        # A key set in extra replaces the default line of the same key (keys that
        # build lists, like listen, are added to instead).
        overridden = {line.split("=", 1)[0].strip() for line in extra.splitlines() if "=" in line}
        overridden.discard("listen")
        lines = [l for l in base.splitlines() if l.split("=", 1)[0].strip() not in overridden]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n" + extra + "\n")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([FERRYD, "-c", self.conf, "-f"], stdout=self.log, stderr=self.log,
                                     cwd=self.dir, preexec_fn=getattr(self, "preexec", None))
        if not wait_for(self._accepting, 10):
            self.stop()
            raise RuntimeError("ferryd did not start:\n" + self.read_log())
        # The queue process has made its first scan: a message injected from now
        # on is found by the test's flush alone, never also by that scan.
        with open(self.conf) as c:
            quiet = re.search(r"^log_level = (warn|error)", c.read(), re.M)
        if not quiet and not wait_for(lambda: "queue process ready" in self.read_log(), 10):
            self.stop()
            raise RuntimeError("the queue process did not start:\n" + self.read_log())
        return self

    def _accepting(self):
        if self.proc.poll() is not None:
            raise RuntimeError("ferryd exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
        try:
            # Long enough for a configured greeting_delay.
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                return s.recv(512).startswith(b"220")
        except OSError:
            return False

    def children(self):
        """pid → process name ('ferryd' children) of the running daemon."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return [int(x) for x in out.stdout.split()]

    def child_by_role(self, role):
        """Find the queue or smtp child from the 'started the X process, pid N' log line."""
        pids = re.findall(r"started the %s process, pid (\d+)" % role, self.read_log())
        return int(pids[-1]) if pids else None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None

    def kill9_all(self):
        """kill -9 the parent and every child at once."""
        pids = self.children() + [self.proc.pid]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        for pid in pids:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}") or _zombie(pid), 5)
        self.log.close()
        self.log = None

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def mailbox_files(self, user):
        d = os.path.join(self.maildir, user, "new")
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d))

    def wait_mail(self, user, count=1, timeout=10):
        return wait_for(lambda: len(self.mailbox_files(user)) >= count and self.mailbox_files(user), timeout)

    def queue_files(self, sub="queue"):
        d = os.path.join(self.spool, sub)
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def inject(self, sender, rcpts, data, nudge=True, extra_env=""):
        """Queue a message the way the spool commits one (incoming/, .msg then .env
        renamed into queue/), for recipients the SMTP server would not accept
        (remote domains: Ferry does not relay yet). With nudge, the running queue
        process is told through `ferryctl queue flush ID`. Returns the queue ID."""
        if isinstance(data, str):
            data = data.encode()
        qid = _qid()
        st = os.stat(os.path.join(self.spool, "queue"))

        def enc(v):
            if v == "":
                return "-"
            return "".join("%%%02X" % b if b <= 0x20 or b == 0x7F or b == 0x25 else chr(b) for b in v.encode())

        env = f"FERRY-ENV 1\nid {qid}\narrival {int(time.time())}\nsize {len(data)}\nsender {enc(sender)}\n"
        env += "client 127.0.0.1\nhelo test.example\nprotocol ESMTP\nbody 7BIT\nsmtputf8 0\nattempts 0\nnext 0\n"
        for r in rcpts:
            env += f"rcpt pending 0 {enc(r)} -\n"
        env += extra_env
        env += "end %08x\n" % (zlib.crc32(env.encode()) & 0xFFFFFFFF)
        for ext, body in ((".msg", data), (".env", env.encode())):
            tmp = os.path.join(self.spool, "incoming", qid + ext)
            with open(tmp, "wb") as f:
                f.write(body)
                os.fsync(f.fileno())
            os.chown(tmp, st.st_uid, st.st_gid)
            # As ferryd writes them: the group's too when the spool is shared with
            # the queue user (SECURITY.md "Sharing the spool").
            os.chmod(tmp, 0o660 if st.st_mode & 0o070 else 0o600)
            os.rename(tmp, os.path.join(self.spool, "queue", qid + ext))
        if nudge:
            r = self.ferryctl("queue", "flush", qid)
            if r.returncode != 0:
                raise RuntimeError("flush of injected %s failed: %s" % (qid, r.stderr))
        return qid

    def ferryctl(self, *args):
        return subprocess.run([FERRYCTL, "-c", self.conf] + list(args), capture_output=True, text=True)

    def cleanup(self):
        self.stop()
        # Under `make test SAN=1` a sanitizer report in the daemon's log (a leak at
        # exit, a bad access in a child) fails the test that ran it.
        log = self.read_log()
        shutil.rmtree(self.dir, ignore_errors=True)
        if "Sanitizer" in log or "runtime error:" in log:
            raise AssertionError("sanitizer report in ferryd's log:\n" + log[-6000:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


_last_qid_us = [0]


def _qid():
    """A queue ID as lib/qid.c makes them (seconds, microseconds, pid; base 32)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
    us = max(int(time.time() * 1e6), _last_qid_us[0] + 1)
    _last_qid_us[0] = us

    def b32(v, n):
        return "".join(alphabet[(v >> (5 * (n - 1 - i))) & 31] for i in range(n))

    return b32(us // 1000000, 7) + b32(us % 1000000, 4) + b32(os.getpid() & 0x1FFFFFF, 5)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[1].split()[0] == "Z"
    except OSError:
        return True


def sockets_of(pid):
    """How many sockets process pid holds (0 when it is gone)."""
    n = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


class SmtpLines:
    """A raw SMTP client: send exact bytes, read whole (multi-line) replies."""

    def __init__(self, port, host="127.0.0.1", timeout=10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        """Return (code, [lines]) of one reply."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return int(lines[0][:3]), lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self, timeout=5):
        """True when the server has closed the connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True         # we wrote after the server closed
        except OSError:
            return False

    def close(self):
        self.sock.close()
