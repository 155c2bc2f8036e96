"""Postfix (Debian's, the installed one) with OpenDKIM as its milter, a private
peer for the interop suite, and the Dovecot beside it.

Built on tests/integration/peers.py's PostfixPeer (its own config_directory,
queue, data directory, log and Maildirs in a temporary directory; the system
instance is never started or read beyond /etc/postfix's meta files). What the
matrix needs on top:

- MX routing through the suite's nsd: Postfix resolves with the C library, which
  reads /etc/resolv.conf, so `postfix start-fg` runs in a private mount namespace
  in which that file names the nsd (as interop_peers.py does for Exim and
  OpenSMTPD); the OpenDKIM milter runs in the same session, so stopping the peer
  stops both. OpenDKIM resolves with libunbound, given its own configuration
  (forward to the nsd, query loopback, do not answer test. locally).
- Two listeners on its address: port 25 (the MX: message_size_limit 1M, for the
  oversize cell) and 587 (submission: AUTH checked by Dovecot's auth socket,
  offered only under TLS, main.cf's 4M). The test client submits on 587 (it is in mynetworks, so it may
  relay without AUTH); Ferry relays through 587 with AUTH in the smart-host cell.
- retry-me@ is refused with 451 until release_retry() (a check_recipient_access
  table, reread by `postfix reload`).
- OpenDKIM signs mail from the test client (its InternalHosts, 127.0.0.1) for
  postfix.test with the selector pf1, and verifies everything else, adding
  Authentication-Results: mx.postfix.test.
- Sender-dependent relaying: mail from relay@postfix.test goes through Ferry's
  submission port with AUTH (the smart-host cell, peer -> Ferry); everything else
  by MX."""
import os
import re
import subprocess

from interop_peers import _Peer, _accepting, dkim_keypair
from peers import POSTCONF, PostfixPeer
from ferrytest import wait_for

OPENDKIM = "/usr/sbin/opendkim"
MILTER_PORT = 8891


class PostfixInterop(PostfixPeer):
    name = "postfix"
    domain = "postfix.test"
    submit_port = 587

    # The interop peers' Maildir layout and namespace start, shared with Exim and OpenSMTPD.
    mailbox_files = _Peer.mailbox_files
    wait_message = _Peer.wait_message
    _spawn = _Peer._spawn

    def __init__(self, address, aux_address, dns_address, users, tls_cert, tls_key, ca, sasl_path,
                 relay_via, relay_auth, domains=()):
        """aux_address: where the OpenDKIM milter listens. relay_via "[host]:port" and
        relay_auth (user, password): the smart-host route for relay@postfix.test."""
        self.address, self.users = address, list(users)
        self.domains_all = (self.domain,) + tuple(domains)
        self.milter = f"inet:{aux_address}:{MILTER_PORT}"
        self.proc = None
        extra = "\n".join([
            "myhostname = mx.postfix.test",
            "message_size_limit = 4194304",
            "smtpd_recipient_restrictions = check_recipient_access texthash:$config_directory/retry",
            f"smtpd_milters = {self.milter}",
            f"non_smtpd_milters = {self.milter}",
            "milter_default_action = tempfail",
            "smtpd_tls_auth_only = yes",
            "smtpd_tls_received_header = yes",
            "smtp_tls_loglevel = 1",
            "smtp_sasl_auth_enable = yes",
            "smtp_sender_dependent_authentication = yes",
            "sender_dependent_relayhost_maps = texthash:$config_directory/sender_relay",
            "smtp_sasl_password_maps = texthash:$config_directory/sasl_passwd",
            "smtp_sasl_security_options = noanonymous",
            "smtp_sasl_tls_security_options = noanonymous",
        ])
        super().__init__(listen=address, port=25, domains=self.domains_all, users=None, tls_cert=tls_cert,
                         tls_key=tls_key, relay_tls="may", relay_ca=ca, myhostname="mx.postfix.test",
                         mynetworks="127.0.0.1/32", sasl_path=sasl_path, extra=extra)
        self.resolv = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write(f"nameserver {dns_address}\noptions attempts:1 timeout:2\n")
        self.retry_file = os.path.join(self.config_dir, "retry")
        with open(self.retry_file, "w") as f:
            f.write(f"retry-me@{self.domain} 451 4.3.0 try again later\n")
        # One Maildir per address (bøb too: SMTPUTF8), named as the other peers name theirs.
        with open(os.path.join(self.config_dir, "mailboxes"), "w") as f:
            for d in self.domains_all:
                for u in self.users + ["retry-me", "postmaster", "relay"]:
                    f.write(f"{u}@{d} {u}@{d}/\n")
        with open(os.path.join(self.config_dir, "sender_relay"), "w") as f:
            f.write(f"relay@{self.domain} {relay_via}\n")
        with open(os.path.join(self.config_dir, "sasl_passwd"), "w") as f:
            f.write(f"relay@{self.domain} {relay_auth[0]}:{relay_auth[1]}\n")
        os.chmod(os.path.join(self.config_dir, "sasl_passwd"), 0o600)
        # The MX refuses over 1M (the oversize cell: smtpd checks SIZE= and the
        # octets it reads against its own limit); submission has main.cf's 4M.
        master = os.path.join(self.config_dir, "master.cf")
        with open(master) as f:
            text = f.read()
        mx = re.search(rf"^{re.escape(address)}:25 +inet .* smtpd$", text, re.M)
        if not mx:
            raise RuntimeError("PostfixInterop: no smtpd line for port 25 in master.cf")
        with open(master, "w") as f:
            f.write(text[:mx.end()] + "\n  -o message_size_limit=1048576" + text[mx.end():]
                    + f"{address}:587 inet n - n - - smtpd\n")
        self._opendkim_setup(aux_address, dns_address)
        past = os.stat(os.path.join(self.config_dir, "main.cf")).st_mtime
        for name in os.listdir(self.config_dir):
            os.utime(os.path.join(self.config_dir, name), (past, past))

    def _opendkim_setup(self, aux_address, dns_address):
        key = os.path.join(self.dir, "dkim.key")
        self.dkim_txt = dkim_keypair(key, 0o600)
        unbound = os.path.join(self.dir, "unbound.conf")
        with open(unbound, "w") as f:
            # It also answers test. itself (an RFC 6761 special-use name) unless told not to.
            f.write(f"server:\n    do-not-query-localhost: no\n    local-zone: \"test.\" nodefault\n"
                    f"forward-zone:\n    name: \".\"\n    forward-addr: {dns_address}\n")
        self.opendkim_conf = os.path.join(self.dir, "opendkim.conf")
        with open(self.opendkim_conf, "w") as f:
            f.write(f"""\
# OpenDKIM for the private Postfix of Ferry's interop suite.
Mode sv
Domain {self.domain}
Selector pf1
KeyFile {key}
Canonicalization relaxed/relaxed
Socket inet:{MILTER_PORT}@{aux_address}
InternalHosts 127.0.0.1
# Debian's OpenDKIM resolves with libunbound, which reads its own configuration,
# not resolv.conf.
ResolverConfiguration {unbound}
AuthservID mx.{self.domain}
PidFile {self.dir}/opendkim.pid
Syslog no
UMask 007
# The key is under /tmp, which others can write: OpenDKIM would refuse it.
RequireSafeKeys false
""")

    def version(self):
        r = subprocess.run([POSTCONF, "-c", self.config_dir, "-h", "mail_version"], capture_output=True, text=True,
                           timeout=20)
        return "Postfix " + (r.stdout.strip() or "?")

    def start(self):
        if _accepting(self.address):
            raise RuntimeError(f"{self.address}:25 is already taken by another server: postfix cannot start")
        self._make_queue_dirs()
        run = os.path.join(self.dir, "run.sh")
        with open(run, "w") as f:
            # Both in the namespace and in the session start_new_session made.
            f.write(f"{OPENDKIM} -f -x {self.opendkim_conf} &\n"
                    f"exec /usr/sbin/postfix -c {self.config_dir} start-fg\n")
        out = open(os.path.join(self.dir, "stdout"), "wb")
        self._spawn([(self.resolv, "/etc/resolv.conf")], ["/bin/sh", run], out)
        self.running = True

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"postfix exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            return _accepting(self.address) and _accepting(self.address, 587)
        if not wait_for(ready, 20):
            self.stop()
            raise RuntimeError(f"postfix did not accept on {self.address}:\n{self.log()[-4000:]}")
        return self

    def stop(self):
        super().stop()                  # postfix stop, and wait for master
        _Peer.stop(self)                # then the session: OpenDKIM, the shell

    def log(self):
        with open(os.path.join(self.dir, "stdout"), "rb") as f:
            out = f.read().decode("utf-8", "replace")
        return super().log() + out

    def release_retry(self):
        with open(self.retry_file, "w") as f:
            f.write("nobody-at-all@invalid OK\n")
        self._postfix("reload")

    def schedule_all(self):
        self.flush()
