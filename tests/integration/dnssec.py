"""DNSSEC for the integration tests: zones signed with ldns-keygen/ldns-signzone,
served by nsd (dnsserver.DnsServer), and a private validating unbound in front of
it whose trust anchors are the signed zones' keys. Ferry's DNS client is pointed
at the unbound (`resolver = 127.0.0.1:PORT`) and sees the AD bit exactly as it
would behind a real validating resolver.

    with DnssecResolver(signed={"dane.test": zone_text}, unsigned={"plain.test": text}) as r:
        r.port, r.resolver  # "127.0.0.1:PORT"

Unsigned zones are reachable but insecure (no trust anchor covers them); a
signed zone can be made bogus (its records changed after signing) with
bogus={"name.": ...} to see SERVFAIL. unbound runs in the foreground with its own
config in a temporary directory; Debian's unbound service is never used."""
import glob
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from dnsserver import DnsServer, free_udp_port

UNBOUND = "/usr/sbin/unbound"


def sign_zone(d, origin, text, tamper=None):
    """Sign text (a zone file for origin) in directory d; returns (signed text, DS lines).
    tamper(signed_text) may change the signed zone (to make it bogus)."""
    origin = origin.rstrip(".")
    zf = os.path.join(d, origin + ".zone")
    with open(zf, "w") as f:
        f.write(text)
    keys = []
    for ksk in (False, True):
        args = ["ldns-keygen", "-a", "ECDSAP256SHA256"] + (["-k"] if ksk else []) + [origin]
        out = subprocess.run(args, cwd=d, check=True, capture_output=True, text=True).stdout.strip()
        keys.append(os.path.join(d, out))
    # Inception an hour back: unbound and nsd share this clock, but be generous.
    inception = time.strftime("%Y%m%d%H%M%S", time.gmtime(time.time() - 3600))
    subprocess.run(["ldns-signzone", "-i", inception, "-f", zf + ".signed", zf] + keys,
                   cwd=d, check=True, capture_output=True)
    with open(zf + ".signed") as f:
        signed = f.read()
    if tamper:
        signed = tamper(signed)
    with open(keys[1] + ".ds") as f:
        ds = f.read()
    return signed, ds


def _query(port, name, qtype, qid=0x5151):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    pkt = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1) + q + struct.pack(">HH", qtype, 1)
    pkt += b"\x00\x00\x29\x04\xd0\x00\x00\x80\x00\x00\x00"  # EDNS0, DO
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        try:
            s.sendto(pkt, ("127.0.0.1", port))
            data = s.recv(4096)
        except OSError:
            return None
    return data if len(data) >= 12 and data[:2] == struct.pack(">H", qid) else None


class DnssecResolver:
    def __init__(self, signed=None, unsigned=None, bogus=None):
        self.signed = signed or {}
        self.unsigned = unsigned or {}
        self.bogus = bogus or {}      # name -> (zone text, tamper function)
        self.dir = tempfile.mkdtemp(prefix="ferry-dnssec-")
        os.chmod(self.dir, 0o755)
        self.port = free_udp_port()
        self.resolver = f"127.0.0.1:{self.port}"
        self.nsd = None
        self.proc = None
        self.stderr = None

    def start(self):
        zones, anchors = {}, []
        for name, text in self.signed.items():
            zones[name], ds = sign_zone(self.dir, name, text)
            anchors.append(ds)
        for name, (text, tamper) in self.bogus.items():
            zones[name], ds = sign_zone(self.dir, name, text, tamper)
            anchors.append(ds)
        zones.update(self.unsigned)
        self.nsd = DnsServer(zones).start()
        ta = os.path.join(self.dir, "anchors.ds")
        with open(ta, "w") as f:
            f.write("".join(anchors))
        conf = [
            "server:",
            "    interface: 127.0.0.1",
            f"    port: {self.port}",
            "    do-daemonize: no",
            '    username: ""',
            '    chroot: ""',
            f'    directory: "{self.dir}"',
            f'    pidfile: "{self.dir}/unbound.pid"',
            "    use-syslog: no",
            f'    logfile: "{self.dir}/unbound.log"',
            "    verbosity: 1",
            "    num-threads: 1",
            "    do-ip6: no",
            "    access-control: 127.0.0.0/8 allow",
            "    do-not-query-localhost: no",
            '    module-config: "validator iterator"',
            "    val-permissive-mode: no",
            "    qname-minimisation: no",
            "    cache-max-ttl: 5",
            "    cache-max-negative-ttl: 5",
        ]
        if anchors:
            conf.append(f'    trust-anchor-file: "{ta}"')
        for name in zones:
            # .test is one of unbound's built-in blocked zones (RFC 6761): open it.
            tld = name.rstrip(".").split(".")[-1]
            conf.append(f'    local-zone: "{tld}." nodefault')
        for name in zones:
            conf += ["stub-zone:", f'    name: "{name}"', f"    stub-addr: 127.0.0.1@{self.nsd.port}"]
        conf += ["remote-control:", "    control-enable: no"]
        cf = os.path.join(self.dir, "unbound.conf")
        with open(cf, "w") as f:
            f.write("\n".join(l for l in conf if l) + "\n")
        check = subprocess.run(["unbound-checkconf", cf], capture_output=True, text=True)
        if check.returncode != 0:
            self.stop()
            raise RuntimeError("unbound config: " + check.stdout + check.stderr)
        self.stderr = open(os.path.join(self.dir, "stderr"), "w")
        self.proc = subprocess.Popen([UNBOUND, "-d", "-c", cf], stdout=subprocess.DEVNULL, stderr=self.stderr)
        first = next(iter(zones))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited: " + self.log())
            if _query(self.port, first, 6):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("unbound did not answer: " + self.log())

    def ad(self, name, qtype):
        """(rcode, AD bit) of the resolver's answer, for the tests' own checks."""
        data = _query(self.port, name, qtype)
        if not data:
            return None
        return data[3] & 0x0F, bool(data[3] & 0x20)

    def log(self):
        out = ""
        for fn in ("unbound.log", "stderr"):
            try:
                out += open(os.path.join(self.dir, fn)).read()
            except OSError:
                pass
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.stderr:
            self.stderr.close()
        if self.nsd:
            self.nsd.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
