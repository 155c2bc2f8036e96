"""Real mail servers from Debian as peers for Ferry's delivery tests: a private
Postfix (SMTP server, relay client, sendmail) and a private Dovecot LMTP server.

Each peer lives wholly in its own temporary directory (configuration, queue,
state, log, Maildirs) and never touches the system instance: the system
services stay stopped and /etc/postfix, /var/lib/postfix and /etc/dovecot are
only read. Several peers can run side by side on different loopback addresses.
Both need root (they bind port 25 and switch users), which the tests have.

A missing program is a RuntimeError naming the package to install (`make deps`
installs them); the tests fail on it, they never skip."""
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from ferrytest import free_port, wait_for

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTFIX_SENDMAIL = "/usr/sbin/sendmail"
POSTQUEUE = "/usr/sbin/postqueue"
POSTFIX_META = "/etc/postfix"         # read-only: postfix-files, dynamicmaps.cf
DOVECOT = "/usr/sbin/dovecot"
DOVECOT_LMTP = "/usr/lib/dovecot/lmtp"


def _require(path, package):
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{path} is missing: install the Debian package {package} (`make deps`)")


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _maildir_files(base):
    """Every delivered message file under base: base/USER/new/* and base/USER/cur/*, oldest first."""
    files = glob.glob(os.path.join(base, "*", "new", "*")) + glob.glob(os.path.join(base, "*", "cur", "*"))
    return sorted(files, key=lambda p: (os.stat(p).st_mtime, p))


def _read_bytes(paths):
    out = []
    for p in paths:
        with open(p, "rb") as f:
            out.append(f.read())
    return out


def _delivered_to(path, address):
    """True when the message file's header has Delivered-To: address."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536).split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    except OSError:
        return False
    want = address.lower().encode()
    return any(line.split(b":", 1)[1].strip().lower() == want
               for line in head.splitlines() if line.lower().startswith(b"delivered-to:"))


def _accepting(host, port, banner=b"220"):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(512).startswith(banner)
    except OSError:
        return False


# Every service a private Postfix needs, none chrooted (the temp dir has no
# chroot jail), logging through postlogd into maillog_file.
_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       1       1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       1       1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixPeer:
    """A private Postfix on listen:port.

    domains: mail for these domains is accepted and delivered into Maildirs
    under self.maildir: any local part into one Maildir per domain, or with
    users (full addresses) only those, each into its own Maildir, and the
    others refused at RCPT with 550 5.1.1. The virtual delivery agent adds
    Delivered-To: with the recipient, by which wait_for_messages tells them apart.
    Mail for any other domain is relayed (from mynetworks) to relayhost, given
    as Postfix writes it ("[127.0.0.1]:2525"), or refused when there is none.
    tls_cert/tls_key: offer STARTTLS with them. relay_tls: the client's TLS
    level towards relayhost ("none", "may", "encrypt", "verify" or "secure");
    relay_ca: the CA file for "verify"/"secure". sasl_path: offer AUTH,
    checked by a Dovecot auth socket (DovecotLmtp(auth_users=...).auth_socket);
    authenticated clients may relay like mynetworks (give a narrow mynetworks
    to make AUTH matter). relay_auth (user, password): the client logs in to
    relayhost with them (Cyrus SASL picks the mechanism; Postfix sends them
    only after STARTTLS when relay_tls asks for TLS). extra: more main.cf lines.
    """

    def __init__(self, listen="127.0.0.4", port=25, domains=("peer.example.test",), users=None, relayhost=None,
                 tls_cert=None, tls_key=None, relay_tls="none", relay_ca=None,
                 myhostname="postfix.peer.test", mynetworks="127.0.0.0/8", sasl_path=None, relay_auth=None,
                 extra=""):
        for path, pkg in ((POSTFIX, "postfix"), (POSTCONF, "postfix"), (POSTFIX_SENDMAIL, "postfix")):
            _require(path, pkg)
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            raise RuntimeError("the system user 'postfix' does not exist: install the Debian package postfix")
        self.listen, self.port = listen, port
        self.domains = tuple(domains)
        self.dir = tempfile.mkdtemp(prefix="ferry-postfix-")
        os.chmod(self.dir, 0o755)       # Postfix's daemons run as postfix and nobody
        self.config_dir = os.path.join(self.dir, "etc")
        self.queue_dir = os.path.join(self.dir, "spool")
        self.data_dir = os.path.join(self.dir, "data")
        self.maildir = os.path.join(self.dir, "mail")
        self.log_path = os.path.join(self.dir, "maillog")
        self.running = False
        nobody = pwd.getpwnam("nobody")
        for d in (self.config_dir, self.queue_dir, self.maildir):
            os.mkdir(d, 0o755)
        os.mkdir(self.data_dir, 0o700)
        os.chown(self.data_dir, pwd.getpwnam("postfix").pw_uid, -1)
        # The virtual delivery agent writes as nobody.
        os.chown(self.maildir, nobody.pw_uid, nobody.pw_gid)
        main = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue_dir,
            "data_directory": self.data_dir,
            "maillog_file": self.log_path,
            "maillog_file_prefixes": self.dir,
            "myhostname": myhostname,
            "mydomain": myhostname.split(".", 1)[-1],
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            # inet_interfaces must name addresses configured on an interface
            # (127.0.0.4 is not: lo has 127.0.0.1/8); master.cf binds listen itself.
            "inet_interfaces": "all",
            "inet_protocols": "all" if ":" in listen else "ipv4",
            "smtp_bind_address" if ":" not in listen else "smtp_bind_address6": listen,
            "mynetworks": mynetworks,
            "smtpd_relay_restrictions": "permit_mynetworks reject_unauth_destination",
            "relayhost": relayhost or "",
            "virtual_mailbox_domains": " ".join(self.domains),
            "virtual_mailbox_base": self.maildir,
            "virtual_mailbox_maps": "texthash:" + os.path.join(self.config_dir, "mailboxes"),
            "virtual_uid_maps": "static:%d" % nobody.pw_uid,
            "virtual_gid_maps": "static:%d" % nobody.pw_gid,
            "virtual_minimum_uid": "1",
            # Tests wait seconds, not Postfix's minutes: retry deferred mail quickly.
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtp_connect_timeout": "5s",
            "smtp_helo_timeout": "15s",
            "smtp_dns_support_level": "disabled" if relayhost and relayhost.startswith("[") else "enabled",
            "biff": "no",
            "smtpd_error_sleep_time": "0",      # a refused command is answered at once
            "smtputf8_enable": "yes",
            "smtp_tls_security_level": relay_tls,
            "smtp_tls_loglevel": "1",
        }
        if relay_ca:
            main["smtp_tls_CAfile"] = relay_ca
        if relay_auth:
            if not relayhost:
                raise ValueError("PostfixPeer: relay_auth needs a relayhost")
            main.update({"smtp_sasl_auth_enable": "yes",
                         "smtp_sasl_password_maps": "texthash:" + os.path.join(self.config_dir, "relay_passwd"),
                         "smtp_sasl_security_options": "noanonymous",
                         "smtp_sasl_tls_security_options": "noanonymous"})
        if sasl_path:
            main.update({"smtpd_sasl_auth_enable": "yes", "smtpd_sasl_type": "dovecot",
                         "smtpd_sasl_path": sasl_path, "smtpd_sasl_authenticated_header": "yes",
                         "smtpd_relay_restrictions":
                             "permit_mynetworks permit_sasl_authenticated reject_unauth_destination"})
        if tls_cert:
            main.update({"smtpd_tls_cert_file": tls_cert, "smtpd_tls_key_file": tls_key,
                         "smtpd_tls_security_level": "may", "smtpd_tls_loglevel": "1"})
        else:
            main["smtpd_tls_security_level"] = "none"
        with open(os.path.join(self.config_dir, "main.cf"), "w") as f:
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
            f.write(extra + "\n")
        listen_spec = f"[{listen}]:{port}" if ":" in listen else f"{listen}:{port}"
        with open(os.path.join(self.config_dir, "master.cf"), "w") as f:
            f.write(_MASTER_CF.format(listen=listen_spec))
        # texthash: read at startup, no postmap. A trailing slash makes a Maildir.
        # Listed users get their own; without a list, a catch-all per domain.
        # (Postfix refuses regexp substitutions in virtual_mailbox_maps.)
        with open(os.path.join(self.config_dir, "mailboxes"), "w") as f:
            if users is None:
                for d in self.domains:
                    f.write(f"@{d} {d}/\n")
            else:
                for u in users:
                    if not re.fullmatch(r"[A-Za-z0-9._+=-]+@[A-Za-z0-9.-]+", u):
                        raise ValueError(f"PostfixPeer: {u!r} is not a plain address for a Maildir name")
                    f.write(f"{u} {u}/\n")
        if relay_auth:
            # Keyed by the relayhost exactly as main.cf writes it.
            path = os.path.join(self.config_dir, "relay_passwd")
            with open(path, "w") as f:
                f.write(f"{relayhost} {relay_auth[0]}:{relay_auth[1]}\n")
            os.chmod(path, 0o600)
        # Postfix programs wait, polling, until main.cf and each table file is a
        # moment old (so as not to read a half-written file): date them in the
        # past, which spares two seconds at startup and at smtpd's first connection.
        past = time.time() - 10
        for name in os.listdir(self.config_dir):
            os.utime(os.path.join(self.config_dir, name), (past, past))

    # -- lifecycle

    def _postfix(self, *args, check=True):
        r = subprocess.run([POSTFIX, "-c", self.config_dir] + list(args), capture_output=True, text=True,
                           timeout=60)
        if check and r.returncode != 0:
            raise RuntimeError("postfix -c %s %s failed (exit %d): %s%s\n%s" % (
                self.config_dir, " ".join(args), r.returncode, r.stdout, r.stderr, self.log()))
        return r

    def start(self):
        self._make_queue_dirs()
        r = self._postfix("start", check=False)
        if r.returncode != 0:
            self._kill_master()
            raise RuntimeError("Postfix on %s:%d did not start (postfix -c %s start: exit %d): %s%s\n%s" % (
                self.listen, self.port, self.config_dir, r.returncode, r.stdout, r.stderr, self.log()))
        self.running = True

        def ready():
            # master exits at once when it cannot bind; say so instead of waiting.
            m = re.search(r"postfix/master\[\d+\]: fatal: .*", self.log())
            if m:
                self.stop()
                raise RuntimeError(f"Postfix on {self.listen}:{self.port} did not start: {m.group(0)}")
            return _accepting(self.listen, self.port)
        if not wait_for(ready, 15):
            self.stop()
            raise RuntimeError(f"Postfix did not accept on {self.listen}:{self.port}:\n{self.log()}")
        return self

    def _make_queue_dirs(self):
        """Make the queue's directories as Postfix's own table (postfix-files in
        the meta_directory) says, and leave the quick-start mark, so that
        `postfix start` skips its integrity check: that check takes two seconds
        and the tree is new and made right here."""
        table = os.path.join(POSTFIX_META, "postfix-files")
        try:
            with open(table) as f:
                lines = f.read().splitlines()
        except OSError:
            return                      # postfix start will make them, slowly
        owner, group = pwd.getpwnam("postfix"), grp.getgrnam("postdrop")
        for line in lines:
            fields = line.split(":")
            if len(fields) < 5 or fields[1] != "d" or not fields[0].startswith("$queue_directory"):
                continue
            path = self.queue_dir + fields[0][len("$queue_directory"):]
            os.makedirs(path, exist_ok=True)
            uid = 0 if fields[2] == "root" else owner.pw_uid
            gid = group.gr_gid if fields[3] == "$setgid_group" else (0 if fields[2] == "root" else -1)
            os.chown(path, uid, gid)
            os.chmod(path, int(fields[4], 8))
        open(os.path.join(self.queue_dir, "quick-start"), "w").close()

    def stop(self):
        if self.running:
            self.running = False
            r = self._postfix("stop", check=False)
            if r.returncode != 0:
                self._kill_master()
            # `postfix stop` returns before master has exited; wait so that a
            # next instance can bind the same address.
            wait_for(lambda: not self._master_pid(), 10)
            self._kill_master()

    def _master_pid(self):
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def _kill_master(self):
        pid = self._master_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- what the test looks at

    def log(self):
        """Postfix's log (maillog_file) so far."""
        return _read(self.log_path)

    def mailbox_files(self, address=None):
        """Delivered message files, oldest first; address: only those whose
        Delivered-To: names it (case-insensitive)."""
        files = _maildir_files(self.maildir)
        if address:
            files = [p for p in files if _delivered_to(p, address)]
        return files

    def wait_for_messages(self, n=1, timeout=10, address=None):
        """Wait until at least n messages are delivered (to address, when given); return
        their bytes, oldest first. Fails with the log when they do not arrive."""
        got = wait_for(lambda: len(self.mailbox_files(address)) >= n, timeout)
        files = self.mailbox_files(address)
        if not got:
            raise AssertionError("Postfix delivered %d of %d message(s)%s in %ss; queue:\n%s\nlog:\n%s" % (
                len(files), n, f" to {address}" if address else "", timeout, self.queue(), self.log()[-6000:]))
        return _read_bytes(files)

    def queue(self):
        """`postqueue -p` of this instance: what is still queued, with the reasons."""
        r = subprocess.run([POSTQUEUE, "-c", self.config_dir, "-p"], capture_output=True, text=True, timeout=30)
        return r.stdout + r.stderr

    def flush(self):
        """Retry every deferred message now."""
        r = subprocess.run([POSTQUEUE, "-c", self.config_dir, "-f"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("postqueue -f failed: " + r.stderr)

    def send(self, sender, recipients, data):
        """Submit a message through this instance's sendmail (the reverse direction:
        Postfix delivers it, to relayhost for domains not its own)."""
        if isinstance(recipients, str):
            recipients = [recipients]
        if isinstance(data, str):
            data = data.encode()
        r = subprocess.run([POSTFIX_SENDMAIL, "-C", self.config_dir, "-f", sender, "-i", "--"] + list(recipients),
                           input=data, capture_output=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("Postfix sendmail failed (exit %d): %s" % (r.returncode, r.stderr.decode("utf-8", "replace")))


class DovecotLmtp:
    """A private Dovecot serving LMTP on a unix socket (self.socket_path) and on
    TCP address:port (a free port unless given), delivering for ANY recipient
    into self.maildir/RECIPIENT/ (the full address as LMTP names it) as the user
    nobody. users: only these full addresses exist; the others get
    550 5.1.1 at RCPT. Its log (self.log()) has a line per connection.
    auth_users ({name: password}): also serve these credentials on
    self.auth_socket, for PostfixPeer(sasl_path=...); without it no password
    is accepted there.
    """

    def __init__(self, address="127.0.0.1", port=None, users=None, auth_users=None, extra=""):
        for path, pkg in ((DOVECOT, "dovecot-core"), (DOVECOT_LMTP, "dovecot-lmtpd")):
            _require(path, pkg)
        for user in ("dovecot", "dovenull", "nobody"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise RuntimeError(f"the system user {user!r} does not exist: install the Debian package dovecot-core")
        self.address = address
        self.port = port or free_port(address)
        self.dir = tempfile.mkdtemp(prefix="ferry-dovecot-")
        os.chmod(self.dir, 0o755)
        self.base_dir = os.path.join(self.dir, "run")
        self.socket_path = os.path.join(self.base_dir, "lmtp")
        self.maildir = os.path.join(self.dir, "mail")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.auth_socket = os.path.join(self.base_dir, "auth-peer")
        self.proc = None
        self._probe_connects = 0
        nobody = pwd.getpwnam("nobody")
        os.mkdir(self.maildir, 0o755)
        os.chown(self.maildir, nobody.pw_uid, nobody.pw_gid)
        os.mkdir(os.path.join(self.dir, "state"), 0o755)
        if users is None:
            userdb = f"driver = static\n  args = uid={nobody.pw_uid} gid={nobody.pw_gid} home={self.maildir}/%u allow_all_users=yes"
        else:
            # A passwd-file userdb: only the listed users exist.
            pw = os.path.join(self.dir, "users")
            with open(pw, "w") as f:
                for u in users:
                    if not re.fullmatch(r"[A-Za-z0-9._+=-]+@[A-Za-z0-9.-]+", u):
                        raise ValueError(f"DovecotLmtp: {u!r} is not a plain address for a Maildir name")
                    f.write(f"{u}::{nobody.pw_uid}:{nobody.pw_gid}::{self.maildir}/{u}::\n")
            userdb = f"driver = passwd-file\n  args = {pw}"
        # Without auth_users the passdb has no entries: nothing authenticates.
        passwd = os.path.join(self.dir, "auth-passwd")
        with open(passwd, "w") as f:
            for name, password in (auth_users or {}).items():
                if ":" in name or "\n" in name + password:
                    raise ValueError(f"DovecotLmtp: {name!r} cannot go in a passwd-file")
                f.write(f"{name}:{{PLAIN}}{password}\n")
        os.chmod(passwd, 0o600)
        os.chown(passwd, pwd.getpwnam("dovecot").pw_uid, -1)     # the auth process reads it as dovecot
        with open(self.conf, "w") as f:
            f.write(f"""\
# A private Dovecot for Ferry's tests: LMTP only, everything under {self.dir}.
instance_name = ferry-lmtp-{os.path.basename(self.dir)}
base_dir = {self.base_dir}
hostname = lmtp.peer.test
state_dir = {self.dir}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = lmtp
listen = {address}
ssl = no
mail_location = maildir:{self.maildir}/%u
first_valid_uid = 1
auth_mechanisms = plain login
# A refused password is answered at once (Dovecot waits 2 s by default).
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  {userdb}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = {address}
    port = {self.port}
  }}
}}
# No auth penalty either: Dovecot's anvil would delay each attempt from an
# address after a failure, by up to 15 s.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener {os.path.basename(self.auth_socket)} {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@lmtp.peer.test
}}
{extra}
""")

    def start(self):
        with open(os.path.join(self.dir, "stderr"), "wb") as err:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=err)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited with %s:\n%s%s" % (
                    self.proc.returncode, _read(os.path.join(self.dir, "stderr")), self.log()))
            return os.path.exists(self.socket_path) and _accepting(self.address, self.port)
        if not wait_for(ready, 15):
            self.stop()
            raise RuntimeError(f"dovecot's LMTP did not accept on {self.address}:{self.port}:\n{self.log()}")
        # The probe's connection reaches the log through Dovecot's log process:
        # wait for its end so connections() does not count it.
        wait_for(lambda: "Disconnect from" in self.log(), 5)
        self._probe_connects = self._connects()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def log(self):
        """Dovecot's log (log_path, info included) so far."""
        return _read(self.log_path)

    def connections(self):
        """How many LMTP connections Dovecot has accepted since start() returned
        (its "Connect from" log lines, less start()'s own readiness probe)."""
        return self._connects() - self._probe_connects

    def _connects(self):
        return len(re.findall(r"lmtp\(\d+\): Info: Connect from", self.log()))

    def mailbox_files(self, user):
        # Dovecot lowercases user names (auth_username_format = %Lu), so does the Maildir path.
        base = os.path.join(self.maildir, user.lower())
        files = glob.glob(os.path.join(base, "new", "*")) + glob.glob(os.path.join(base, "cur", "*"))
        return sorted(files, key=lambda p: (os.stat(p).st_mtime, p))

    def wait_for_messages(self, user, n=1, timeout=10):
        """Wait until user (the full address) has at least n messages; return their
        bytes, oldest first. Fails with the log when they do not arrive."""
        got = wait_for(lambda: len(self.mailbox_files(user)) >= n, timeout)
        files = self.mailbox_files(user)
        if not got:
            raise AssertionError("Dovecot delivered %d of %d message(s) to %s in %ss; log:\n%s" % (
                len(files), n, user, timeout, self.log()[-6000:]))
        return _read_bytes(files)
