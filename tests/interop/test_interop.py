"""Ferry against Exim 4, OpenSMTPD and Postfix, both directions, and Dovecot
LMTP (issue 17, items 1, 2, 5).

One nsd (127.0.0.23:53) serves exim.test, opensmtpd.test, postfix.test and
ferry.test (MX, A, SPF, DMARC, DKIM keys); the peers and Ferry each have their
own loopback address, port 25 (interop_matrix.py lists them). A cell is one test
method, test_<case>_<peer>_<direction>; "out" is Ferry -> peer, "in" is peer ->
Ferry. A cell that a peer's own limit makes impossible asserts that limit
instead (so it still fails if the peer changes) and is reported as an exception
with its reason (RFC-NOTES.md "Interop"). Every run rewrites
tests/interop/RESULTS.md. The cases live in cells_core.py (delivery features)
and cells_faults.py (mid-DATA drops, smart hosts with AUTH, LMTP)."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from cells_core import CoreCells                                    # noqa: E402
from cells_faults import FaultCells                                 # noqa: E402
from cutproxy import CutProxy                                       # noqa: E402
from dnsserver import DnsServer                                     # noqa: E402
from ferrytest import FERRYCTL, Ferry, make_signing_key             # noqa: E402
from interop_matrix import (AUX_ADDR, CUT_ADDR, DNS_ADDR, FERRY_ADDR, FERRY_USERS, LMTP_PORT,  # noqa: E402
                            PEER_ADDR, RELAY_PASS, RELAY_USER, SMART_PASS, SMART_USER, USERS, Helpers,
                            state, write_results)
from interop_peers import EximPeer, OpenSmtpdPeer, package_versions, peers_missing  # noqa: E402
from interop_postfix import PostfixInterop                          # noqa: E402
from peers import DovecotLmtp                                       # noqa: E402
from tlscerts import make_ca_and_server                             # noqa: E402


def zone(origin, body):
    return (f"$ORIGIN {origin}.\n$TTL 60\n@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 900 604800 5\n"
            f"@ IN NS ns\nns IN A {DNS_ADDR}\n" + body)


def txt(value):
    return " ".join('"%s"' % value[i:i + 200] for i in range(0, len(value), 200))


def peer_zone(name, address, dkim=None):
    """A peer's domain: MX, SPF for its address, DMARC p=none, its DKIM key, and
    cut.<domain> whose MX is the cut proxy."""
    body = (f"@ IN MX 10 mx\nmx IN A {address}\n@ IN TXT \"v=spf1 ip4:{address} -all\"\n"
            "_dmarc IN TXT \"v=DMARC1; p=none\"\ncut IN MX 10 cutproxy.ferry.test.\n")
    if dkim:
        body += f"{dkim[0]}._domainkey IN TXT {txt(dkim[1])}\n"
    return zone(name, body)


def start_ferry(d, keydir):
    ca, fcert, fkey = make_ca_and_server(d, name="ferry", cn="mx.ferry.test", ip=FERRY_ADDR)
    state["trace_dir"] = trace = os.path.join(d, "traces")
    os.mkdir(trace, 0o777)
    os.chmod(trace, 0o777)
    vmap = os.path.join(d, "virtual")
    with open(vmap, "w") as fh:
        fh.write(f"@lmtp.ferry.test lmtp:inet:{AUX_ADDR}:{LMTP_PORT}\n"
                 f"@cut-lmtp.ferry.test lmtp:inet:{CUT_ADDR}:{LMTP_PORT}\n")
    subprocess.run([FERRYCTL, "map", "build", "--type", "virtual", vmap], check=True, capture_output=True)
    # Ferry's credentials at each peer's submission (the smart-host cell, Ferry -> peer).
    state["smart_auth_file"] = os.path.join(d, "smart.auth")
    with open(state["smart_auth_file"], "w") as fh:
        fh.write(f"{SMART_USER} {SMART_PASS}\n")
    os.chmod(state["smart_auth_file"], 0o600)
    f = Ferry(extra=f"hostname = mx.ferry.test\nlisten = smtp {FERRY_ADDR}:25 trace={trace}\n"
                    f"listen = submission {FERRY_ADDR}:587\nresolver = {DNS_ADDR}:53\n"
                    f"smtp_source_ipv4 = {FERRY_ADDR}\ntls_cert = {fcert}\ntls_key = {fkey}\n"
                    f"dkim_key_dir = {keydir}\nmessage_size_limit = 2M\nretry_min = 1h\nretry_max = 2h\n"
                    f"smtp_tls_ca_file = {ca}\nspf_check = yes\ndmarc_check = yes\nvirtual_map = {vmap}\n",
              domains="ferry.test cut.ferry.test lmtp.ferry.test cut-lmtp.ferry.test", local_recipients="known",
              relay_networks="127.0.0.1/32")
    os.chmod(f.dir, 0o755)
    os.makedirs(f.maildir, exist_ok=True)
    os.chmod(f.maildir, 0o777)
    for u in FERRY_USERS:
        for sub in ("", "new", "cur", "tmp"):
            p = os.path.join(f.maildir, u, sub)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o777)
    # The peers' login at Ferry's submission (the smart-host cell, peer -> Ferry).
    r = subprocess.run([FERRYCTL, "-c", f.conf, "user", "add", RELAY_USER], input=RELAY_PASS + "\n",
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("ferryctl user add: " + r.stderr)
    for peer in PEER_ADDR:
        subprocess.run([FERRYCTL, "-c", f.conf, "user", "addr", RELAY_USER, "add", f"relay@{peer}.test"],
                       check=True, capture_output=True)
    return ca, f


def setUpModule():
    why = peers_missing()
    if why:
        raise RuntimeError("interop peers unavailable: " + why)
    try:
        start_all()
    except BaseException as e:
        # unittest does not call tearDownModule when setUpModule fails.
        state["setup_error"] = (str(e).splitlines() or [type(e).__name__])[0][:300]
        tearDownModule()
        raise


def start_all():
    d = state["dir"] = tempfile.mkdtemp(prefix="ferry-interop-")
    os.chmod(d, 0o755)
    keydir, _, ferry_txt = make_signing_key(d, "ferry.test", "ferry1")
    ca, ferry = start_ferry(d, keydir)
    state["ca"] = ca
    _, ecert, ekey = make_ca_and_server(d, name="exim", cn="mx.exim.test", ip=PEER_ADDR["exim"])
    _, ocert, okey = make_ca_and_server(d, name="opensmtpd", cn="mx.opensmtpd.test", ip=PEER_ADDR["opensmtpd"],
                                        ec=True)
    _, pcert, pkey = make_ca_and_server(d, name="postfix", cn="mx.postfix.test", ip=PEER_ADDR["postfix"])
    auths = dict(smart_auth=(SMART_USER, SMART_PASS), relay_auth=(RELAY_USER, RELAY_PASS))
    exim = EximPeer(PEER_ADDR["exim"], DNS_ADDR, USERS, ecert, ekey, ca,
                    size_limit="${if eq{$sender_host_address}{127.0.0.1}{4M}{1M}}", **auths)
    osmtpd = OpenSmtpdPeer(PEER_ADDR["opensmtpd"], DNS_ADDR, USERS, ocert, okey, ca, size_limit=1048576, **auths)
    # Dovecot: the LMTP cell's server, and the password check of Postfix's AUTH.
    state["dovecot"] = dovecot = DovecotLmtp(address=AUX_ADDR, port=LMTP_PORT,
                                             auth_users={SMART_USER: SMART_PASS}).start()
    postfix = PostfixInterop(PEER_ADDR["postfix"], AUX_ADDR, DNS_ADDR, USERS, pcert, pkey, ca,
                             sasl_path=dovecot.auth_socket, relay_via="[mx.ferry.test]:587",
                             relay_auth=(RELAY_USER, RELAY_PASS), domains=("cut.postfix.test",))
    zones = {
        "ferry.test": zone("ferry.test", f"@ IN MX 10 mx\nmx IN A {FERRY_ADDR}\n"
                                         f"ferry1._domainkey IN TXT {txt(ferry_txt)}\n"
                                         f"cutproxy IN A {CUT_ADDR}\ncut IN MX 10 cutproxy\n"),
        "exim.test": peer_zone("exim.test", PEER_ADDR["exim"], ("exim1", exim.dkim_txt)),
        "opensmtpd.test": peer_zone("opensmtpd.test", PEER_ADDR["opensmtpd"]),
        "postfix.test": peer_zone("postfix.test", PEER_ADDR["postfix"], ("pf1", postfix.dkim_txt)),
    }
    state["dns"] = DnsServer(zones, address=DNS_ADDR, port=53).start()
    state["cut"] = CutProxy(CUT_ADDR).start()
    state["cut_lmtp"] = CutProxy(CUT_ADDR, LMTP_PORT).start()
    state["ferry"] = ferry.start()
    state["peers"] = {}
    for p in (exim, osmtpd, postfix):
        state["peers"][p.name] = p          # stopped by tearDownModule even if start fails
        p.start()
    state["versions"] = {k: p.version() for k, p in state["peers"].items()}
    state["versions"]["dovecot"] = dovecot_version()


def dovecot_version():
    r = subprocess.run(["/usr/sbin/dovecot", "--version"], capture_output=True, text=True)
    return "Dovecot " + (r.stdout.split() or ["?"])[0]


def tearDownModule():
    for p in state.get("peers", {}).values():
        p.cleanup()
    for key in ("dovecot", "ferry"):
        if key in state:
            state[key].cleanup()
    for key in ("cut", "cut_lmtp"):
        if key in state:
            state[key].stop()
    if "dns" in state:
        state["dns"].stop()
    if "dir" in state:
        shutil.rmtree(state["dir"], ignore_errors=True)
    write_results(package_versions())


class Interop(CoreCells, FaultCells, Helpers, unittest.TestCase):
    pass


if __name__ == "__main__":
    unittest.main()
