"""A real authoritative DNS server for the tests: Debian's nsd on 127.0.0.1, on a
free high port, serving zone files the test writes, in a private directory."""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

NSD = "/usr/sbin/nsd"


def free_udp_port():
    # nsd needs the port free for both UDP and TCP
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                    return port
                except OSError:
                    continue
    raise RuntimeError("no free port")


def _query_packet(name, qtype=6, qid=0x4242):
    q = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", qtype, 1)


class DnsServer:
    """zones: {"example.test": "zone file text"}; start(), stop(), .port.
    address/port: where nsd listens (default 127.0.0.1 on a free high port; the
    interop peers need port 53 on an address of their own, as resolv.conf has no port)."""

    def __init__(self, zones, address="127.0.0.1", port=None):
        self.zones = zones
        self.dir = tempfile.mkdtemp(prefix="ferry-nsd-")
        os.chmod(self.dir, 0o755)
        self.address = address
        self.port = port or free_udp_port()
        self.proc = None

    def start(self):
        conf = [
            "server:",
            f"    ip-address: {self.address}",
            f"    port: {self.port}",
            '    username: ""',
            f'    zonesdir: "{self.dir}"',
            f'    pidfile: "{self.dir}/nsd.pid"',
            '    database: ""',
            f'    logfile: "{self.dir}/nsd.log"',
            f'    xfrdfile: "{self.dir}/xfrd.state"',
            f'    zonelistfile: "{self.dir}/zone.list"',
            "    server-count: 1",
            "    verbosity: 1",
            "remote-control:",
            "    control-enable: no",
        ]
        for name, text in self.zones.items():
            fn = name.rstrip(".") + ".zone"
            with open(os.path.join(self.dir, fn), "w") as f:
                f.write(text)
            conf += ["zone:", f"    name: {name}", f"    zonefile: {fn}"]
        with open(os.path.join(self.dir, "nsd.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.proc = subprocess.Popen([NSD, "-d", "-c", os.path.join(self.dir, "nsd.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr"), "w"))
        first = next(iter(self.zones))
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nsd exited: " + self.log())
            if self._answers(first):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nsd did not answer: " + self.log())

    def _answers(self, name):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(_query_packet(name), (self.address, self.port))
                data = s.recv(4096)
            except OSError:
                return False
        # an authoritative answer (AA set) for the SOA of the zone
        return len(data) >= 12 and data[:2] == b"\x42\x42" and (data[2] & 0x04)

    def log(self):
        out = ""
        for fn in ("nsd.log", "stderr"):
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
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
