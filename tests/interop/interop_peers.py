"""Exim 4 and OpenSMTPD from Debian as private peers for the interop suite.

Debian's exim4-daemon-light and opensmtpd conflict with the installed postfix,
so tests/interop/fetch-peers.sh unpacks their packages into build/peers (or
$FERRY_PEERS) and the daemons run from there: each on its own loopback address,
port 25, with its configuration, spool, log and Maildirs in a temporary
directory, stopped afterwards. Nothing of the system is changed: each daemon
runs in a private mount namespace (unshare -m) in which /etc/resolv.conf names
the suite's nsd (port 53 on its own loopback address, since resolv.conf has no
port), so MX and A records and DKIM keys come from the test DNS; OpenSMTPD's
compiled-in paths (/var/spool/smtpd, /usr/libexec/opensmtpd, its control socket
under /run, its chroot /var/lib/opensmtpd/empty) are bind-mounted from the
temporary directory and the unpacked tree in that namespace only.

Exim keeps its compiled-in paths out of the way with -C (the configuration),
exim_path (its re-exec), spool_directory, log_file_path and pid_file_path. As
root with a -C file not in its TRUSTED_CONFIG_LIST, the processes Exim re-execs
drop root ("exim user lost privilege for using -C option"), so every delivery
runs as the Exim user: the Maildir transport delivers as Debian-exim."""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

from ferrytest import ROOT, wait_for

PEERS = os.environ.get("FERRY_PEERS", os.path.join(ROOT, "build", "peers"))
EXIM = os.path.join(PEERS, "usr", "sbin", "exim4")
SMTPD = os.path.join(PEERS, "usr", "sbin", "smtpd")
SMTPCTL = os.path.join(PEERS, "usr", "sbin", "smtpctl")


def peers_missing():
    """None when both peers can run here, else the reason they cannot."""
    for path in (EXIM, SMTPD):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: run tests/interop/fetch-peers.sh (make deps does)"
    import pwd
    for user in ("Debian-exim", "opensmtpd", "opensmtpq"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"the system user {user} does not exist: run tests/interop/fetch-peers.sh as root"
    if os.geteuid() != 0:
        return "the peers bind port 25 and need a mount namespace: run as root"
    return None


def package_versions():
    """{package: version} of the unpacked peers, from the VERSIONS file fetch-peers.sh writes."""
    out = {}
    try:
        with open(os.path.join(PEERS, "VERSIONS")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2:
                    out[parts[0]] = parts[1]
    except OSError:
        pass
    return out


def dkim_keypair(key, mode):
    """Write a new RSA 2048 private key to key (with mode); return its DKIM TXT record."""
    import base64
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
    os.chmod(key, mode)
    pub = subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode()


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _accepting(host, port=25):
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            return s.recv(512).startswith(b"220")
    except OSError:
        return False


class _Peer:
    """What both peers share: the temporary tree, the namespace, the Maildirs."""
    name = "peer"
    domain = "peer.test"

    def __init__(self, address, dns_address, users, tls_cert, tls_key, ca, size_limit):
        self.address = address
        # Its domain, and the one whose MX is the mid-DATA cut proxy.
        self.domains = [self.domain, "cut." + self.domain]
        self.users = list(users)
        self.tls_cert, self.tls_key, self.ca = tls_cert, tls_key, ca
        self.size_limit = size_limit
        self.dir = tempfile.mkdtemp(prefix=f"ferry-{self.name}-")
        os.chmod(self.dir, 0o755)
        self.maildir = os.path.join(self.dir, "mail")
        os.mkdir(self.maildir, 0o777)
        os.chmod(self.maildir, 0o777)
        self.resolv = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write(f"nameserver {dns_address}\noptions attempts:1 timeout:2\n")
        self.retry_file = os.path.join(self.dir, "retry-refused")
        self.proc = None

    def _spawn(self, mounts, argv, out):
        """Run argv in a private mount namespace where each (source, target) of
        mounts is bind-mounted; its output goes to out."""
        script = " && ".join(f"mount --bind '{s}' '{t}'" for s, t in mounts)
        script += " && exec " + " ".join(f"'{a}'" for a in argv)
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        out.close()

    def start(self):
        if _accepting(self.address):
            raise RuntimeError(f"{self.address}:25 is already taken by another server: {self.name} cannot start")
        self._start()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            return _accepting(self.address)
        if not wait_for(ready, 20):
            self.stop()
            raise RuntimeError(f"{self.name} did not accept on {self.address}:25:\n{self.log()[-4000:]}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            # The daemon and everything it forked are in the session start_new_session made.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc:
            # Children of the daemon left behind (a queue runner) go too.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def release_retry(self):
        """The recipient refused with 4xx so far (retry-me) is accepted from now on."""
        open(self.retry_file + ".released", "w").close()

    def mailbox_files(self, address):
        base = os.path.join(self.maildir, address.lower())
        files = glob.glob(os.path.join(base, "new", "*")) + glob.glob(os.path.join(base, "cur", "*"))
        return sorted(files, key=lambda p: (os.stat(p).st_mtime, p))

    def wait_message(self, address, marker, timeout=20):
        """The bytes of the first message for address containing marker, or None."""
        def find():
            for p in self.mailbox_files(address):
                with open(p, "rb") as f:
                    data = f.read()
                if marker.encode() in data:
                    return data
            return None
        return wait_for(find, timeout, 0.1)


_EXIM_CONF = """\
# A private Exim for Ferry's interop suite; everything under {dir}.
exim_path = {exim}
keep_environment =
primary_hostname = mx.{domain}
qualify_domain = {domain}
spool_directory = {dir}/spool
log_file_path = {dir}/log/%slog
pid_file_path = {dir}/exim.pid
daemon_smtp_ports = 25 : 587
local_interfaces = {address}
exim_user = Debian-exim
exim_group = Debian-exim
never_users = root
domainlist local_domains = {domain} : cut.{domain}
hostlist relay_from_hosts = 127.0.0.1
host_lookup =
rfc1413_hosts =
acl_smtp_rcpt = acl_rcpt
acl_smtp_data = acl_data
tls_certificate = {cert}
tls_privatekey = {key}
tls_advertise_hosts = *
chunking_advertise_hosts = *
dsn_advertise_hosts = *
smtputf8_advertise_hosts = *
accept_8bitmime = true
message_size_limit = {size_limit}
delay_warning =
log_selector = +tls_cipher +tls_peerdn +tls_certificate_verified +dkim_verbose +received_recipients \\
    +outgoing_interface +smtp_protocol_error +smtp_syntax_error

begin acl
acl_rcpt:
  defer   local_parts = retry-me
          condition = ${{if exists{{{retry}.released}}{{no}}{{yes}}}}
          message = 4.3.0 try again later
  deny    domains = +local_domains
          !local_parts = {users}
          message = 5.1.1 no such user here
  accept  domains = +local_domains
  accept  hosts = +relay_from_hosts
  accept  authenticated = *
  deny    message = relay not permitted

acl_data:
  warn    add_header = :at_start:${{authresults{{mx.{domain}}}}}
  accept

begin routers
# The smart-host cell, peer -> Ferry: mail from relay@ goes through Ferry's
# submission port with AUTH.
via_ferry:
  driver = manualroute
  senders = relay@{domain}
  domains = !+local_domains
  route_list = * mx.ferry.test byname
  transport = ferry_submission
  no_more
local:
  driver = accept
  domains = +local_domains
  local_parts = {users}
  transport = maildir
remote:
  driver = dnslookup
  domains = !+local_domains
  transport = remote_smtp
  no_more

begin transports
maildir:
  driver = appendfile
  directory = {dir}/mail/${{lc:$local_part_data@$domain_data}}
  maildir_format
  create_directory
  user = Debian-exim
  delivery_date_add
  envelope_to_add
  return_path_add
ferry_submission:
  driver = smtp
  port = 587
  interface = {address}
  hosts_require_tls = *
  hosts_require_auth = *
  tls_verify_certificates = {ca}
  tls_verify_hosts = *
remote_smtp:
  driver = smtp
  interface = {address}
  hosts_try_chunking = *
  tls_verify_certificates = {ca}
  tls_try_verify_hosts = *
  dkim_domain = {domain}
  dkim_selector = exim1
  dkim_private_key = {dir}/dkim.key
  dkim_canon = relaxed

begin retry
*   *   F,1h,1s

begin authenticators
# Server: Ferry logs in (the smart-host cell, Ferry -> peer), only under TLS.
# Client: Exim logs in to Ferry's submission.
plain:
  driver = plaintext
  public_name = PLAIN
  server_advertise_condition = ${{if def:tls_in_cipher}}
  server_condition = ${{if and{{{{eq{{$auth2}}{{{smart_user}}}}}{{eq{{$auth3}}{{{smart_pass}}}}}}}}}
  server_set_id = $auth2
  client_send = ^{relay_user}^{relay_pass}
"""


class EximPeer(_Peer):
    """Exim 4 from build/peers on address:25 for exim.test. users: the local parts
    that exist (the others get 550 5.1.1 at RCPT); retry-me gets 451 until
    release_retry(). It signs what it relays with DKIM (exim1._domainkey.exim.test:
    dkim_txt), adds Authentication-Results (its DKIM verdicts) to what it receives,
    and routes other domains by MX through the suite's DNS."""
    name = "exim"
    domain = "exim.test"

    def __init__(self, address, dns_address, users, tls_cert, tls_key, ca, size_limit=1048576,
                 smart_auth=("", ""), relay_auth=("", "")):
        super().__init__(address, dns_address, users, tls_cert, tls_key, ca, size_limit)
        import pwd
        exim = pwd.getpwnam("Debian-exim")
        for sub in ("spool", "log"):
            os.mkdir(os.path.join(self.dir, sub), 0o750)
            os.chown(os.path.join(self.dir, sub), exim.pw_uid, exim.pw_gid)
        self.dkim_txt = dkim_keypair(os.path.join(self.dir, "dkim.key"), 0o644)
        self.conf = os.path.join(self.dir, "exim.conf")
        with open(self.conf, "w") as f:
            f.write(_EXIM_CONF.format(exim=EXIM, dir=self.dir, domain=self.domain, address=address,
                                      cert=tls_cert, key=tls_key, ca=ca, size_limit=size_limit,
                                      retry=self.retry_file, smart_user=smart_auth[0],
                                      smart_pass=smart_auth[1], relay_user=relay_auth[0], relay_pass=relay_auth[1],
                                      users=" : ".join(u for u in self.users + ["retry-me", "postmaster", "relay"])))

    def version(self):
        r = subprocess.run([EXIM, "-C", self.conf, "-bV"], capture_output=True, text=True, timeout=20)
        m = re.search(r"Exim version (\S+)", r.stdout)
        return "Exim " + (m.group(1) if m else "?")

    def _start(self):
        out = open(os.path.join(self.dir, "stdout"), "wb")
        # -bdf: the daemon in the foreground; -q1s: a queue run every second (retries).
        self._spawn([(self.resolv, "/etc/resolv.conf")], [EXIM, "-C", self.conf, "-bdf", "-q1s"], out)

    def log(self):
        return _read(os.path.join(self.dir, "log", "mainlog")) + _read(os.path.join(self.dir, "log", "paniclog")) \
            + _read(os.path.join(self.dir, "stdout"))


class OpenSmtpdPeer(_Peer):
    """OpenSMTPD from build/peers on address:25 for opensmtpd.test, run in the
    foreground (smtpd -d). users: the local parts that exist (the others are
    refused at RCPT); retry-me gets 451 (a builtin filter whose table is
    re-read by `smtpctl update table`) until release_retry(). Other domains are
    relayed by MX through the suite's DNS. It offers no STARTTLS: Debian's
    6.8.0p2 built with OpenSSL 3 fails every server-side TLS handshake (its
    privilege-separated key engine; OpenSMTPD issues #1171 and #1239), see
    RFC-NOTES.md "Interop"; as a client it uses STARTTLS."""
    name = "opensmtpd"
    domain = "opensmtpd.test"

    def __init__(self, address, dns_address, users, tls_cert, tls_key, ca, size_limit=1048576,
                 smart_auth=("", ""), relay_auth=("", "")):
        super().__init__(address, dns_address, users, tls_cert, tls_key, ca, size_limit)
        for sub in ("varspool", "run", "varlib/opensmtpd/empty", "certs"):
            os.makedirs(os.path.join(self.dir, sub), 0o755)
        self.certs = os.path.join(self.dir, "certs")
        shutil.copy(ca, os.path.join(self.certs, "ca-certificates.crt"))
        self.conf = os.path.join(self.dir, "smtpd.conf")
        # smtpd refuses a key readable by others.
        shutil.copy(tls_key, os.path.join(self.dir, "tls.key"))
        os.chmod(os.path.join(self.dir, "tls.key"), 0o600)
        tls_key = os.path.join(self.dir, "tls.key")
        with open(os.path.join(self.dir, "vusers"), "w") as f:
            for d in self.domains:
                for u in self.users + ["retry-me", "postmaster", "relay"]:
                    f.write(f"{u}@{d} nobody\n")
        with open(os.path.join(self.dir, "domains"), "w") as f:
            f.write("".join(d + "\n" for d in self.domains))
        # Its smart host (the smart-host cell, peer -> Ferry) and the users it would
        # take AUTH from on 587, where it offers STARTTLS (the handshake fails: see
        # the class comment) and AUTH only after it.
        with open(os.path.join(self.dir, "secrets"), "w") as f:
            f.write(f"ferry {relay_auth[0]}:{relay_auth[1]}\n")
        with open(os.path.join(self.dir, "creds"), "w") as f:
            f.write(f"{smart_auth[0]} {smart_auth[1]}\n")
        for name in ("secrets", "creds"):
            os.chmod(os.path.join(self.dir, name), 0o640)
        with open(self.retry_file, "w") as f:
            f.write(f"retry-me@{self.domain}\n")
        d = self.dir
        with open(self.conf, "w") as f:
            f.write(f"""\
# A private OpenSMTPD for Ferry's interop suite; everything under {d}.
pki mx.{self.domain} cert "{tls_cert}"
pki mx.{self.domain} key "{tls_key}"
ca testca cert "{ca}"
smtp max-message-size {size_limit}
table vusers file:{d}/vusers
table domains file:{d}/domains
table secrets file:{d}/secrets
table creds file:{d}/creds
table retryrcpt file:{self.retry_file}
filter "retry" phase rcpt-to match rcpt-to <retryrcpt> reject "451 4.3.0 try again later"
listen on {address} port 25 hostname mx.{self.domain} filter "retry"
listen on {address} port 587 hostname mx.{self.domain} tls pki mx.{self.domain} auth <creds>
action "local" maildir "{self.maildir}/%{{rcpt:lowercase}}" virtual <vusers>
action "out" relay helo mx.{self.domain} src {address}
action "via-ferry" relay host smtp+tls://ferry@mx.ferry.test:587 auth <secrets> helo mx.{self.domain} src {address}
match from any for domain <domains> action "local"
match from src 127.0.0.1 mail-from "relay@{self.domain}" for any action "via-ferry"
match from src 127.0.0.1 for any action "out"
match from local for any action "out"
""")

    def version(self):
        r = subprocess.run([SMTPD, "-h"], capture_output=True, text=True, timeout=20)
        m = re.search(r"OpenSMTPD (\S+)", r.stdout + r.stderr)
        return "OpenSMTPD " + (m.group(1) if m else "?")

    def _start(self):
        out = open(os.path.join(self.dir, "log"), "wb")
        mounts = [(os.path.join(self.dir, "varspool"), "/var/spool"),
                  (os.path.join(PEERS, "usr", "libexec"), "/usr/libexec"),
                  (os.path.join(self.dir, "run"), "/run"),
                  (os.path.join(self.dir, "varlib"), "/var/lib"),
                  (self.resolv, "/etc/resolv.conf"),
                  # It verifies its smart host against its compiled-in CA file only
                  # (/etc/ssl/certs/ca-certificates.crt, which may not exist here:
                  # the directory, from the openssl package, does).
                  (self.certs, "/etc/ssl/certs")]
        self._spawn(mounts, [SMTPD, "-d", "-v", "-f", self.conf], out)

    def release_retry(self):
        with open(self.retry_file, "w") as f:
            f.write("nobody-at-all@invalid\n")
        # smtpctl reaches smtpd's control socket in the daemon's namespace.
        r = subprocess.run(self._smtpctl() + ["update", "table", "retryrcpt"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise RuntimeError("smtpctl update table failed: " + r.stdout + r.stderr)

    def _smtpctl(self):
        # smtpctl reaches smtpd's socket in the daemon's namespace, and insists on
        # running with the group opensmtpq (it is installed setgid).
        import grp
        return ["nsenter", "-t", str(self.proc.pid), "-m", "-G", str(grp.getgrnam("opensmtpq").gr_gid), SMTPCTL]

    def schedule_all(self):
        """Retry every queued message now (OpenSMTPD's own backoff is minutes)."""
        subprocess.run(self._smtpctl() + ["schedule", "all"],
                       capture_output=True, text=True, timeout=20)

    def log(self):
        return _read(os.path.join(self.dir, "log"))
