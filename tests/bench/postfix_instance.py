"""A private Postfix instance for `make bench`, never the system one.

Everything lives in one temporary directory: config_directory (main.cf and
master.cf written here), queue_directory and data_directory. It is started with
`postfix -c DIR start` (no postmulti, nothing in /etc/postfix is written or
read beyond the package's meta files), listens only on 127.0.0.1:PORT, relays to
a given smtp-sink, and delivers the domain `localhost` into Maildirs through
virtual(8), owned by nobody. No chroot, so the daemons see the temporary paths.

Durability as Postfix ships it: cleanup(8) fsyncs each queue file before smtpd
answers 250 (one fsync per message; the file is created in incoming/ and not
renamed before the 250, so the directory entry is made durable by the same ext4
journal commit). Nothing here changes that.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

MASTER_CF = """{listen} inet n - n - {maxproc} smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
virtual   unix  - n n -  - virtual
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
"""


class Postfix:
    def __init__(self, port, sink_port, maxproc=250):
        self.dir = tempfile.mkdtemp(prefix="ferry-bench-postfix-")
        os.chmod(self.dir, 0o755)
        self.port = port
        self.etc = os.path.join(self.dir, "etc")
        self.spool = os.path.join(self.dir, "spool")
        self.data = os.path.join(self.dir, "data")
        self.maildir = os.path.join(self.dir, "mail")
        for d in (self.etc, self.spool, self.data, self.maildir):
            os.mkdir(d)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.maildir, nobody.pw_uid, nobody.pw_gid)
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
meta_directory = /etc/postfix
myhostname = pf.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
virtual_mailbox_domains = localhost
virtual_mailbox_base = {self.maildir}
virtual_mailbox_maps = static:bench/
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
default_process_limit = {maxproc}
""")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=f"127.0.0.1:{port}", maxproc=maxproc))

    def postfix(self, *args):
        return subprocess.run([POSTFIX, "-c", self.etc] + list(args), capture_output=True, text=True)

    def start(self):
        r = self.postfix("start")
        if r.returncode != 0:
            raise RuntimeError("private postfix did not start: " + r.stdout + r.stderr)
        import socket
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    if s.recv(512).startswith(b"220"):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("private postfix does not answer on port %d" % self.port)

    def queued(self):
        """Messages still in the queue (any state)."""
        n = 0
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for _, _, files in os.walk(os.path.join(self.spool, sub)):
                n += len(files)
        return n

    def delivered(self, user="bench"):
        d = os.path.join(self.maildir, user, "new")
        return len(os.listdir(d)) if os.path.isdir(d) else 0

    def master_pid(self):
        try:
            with open(os.path.join(self.spool, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def cleanup(self):
        self.postfix("stop")
        # master exits after its children; wait for it before removing its tree.
        pid = self.master_pid()
        for _ in range(100):
            if not pid or not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)
        shutil.rmtree(self.dir, ignore_errors=True)
