#!/usr/bin/env python3
"""make bench: SMTP intake and local delivery throughput, side by side with
Postfix's smtp-sink on the same machine, both driven by Postfix's smtp-source.

smtp-sink accepts and discards (no disk): it is the ceiling that the client,
the loopback and the machine allow. Ferry fsyncs every message into its spool
before the 250 (group commit) and then delivers it into a Maildir. The figures
are printed, never asserted: speed is measured, not tested.

Environment: BENCH_MESSAGES (default 5000), BENCH_SESSIONS (20), BENCH_SIZE (4096).
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration"))
from ferrytest import Ferry, free_port, wait_for  # noqa: E402

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "5000"))
SESSIONS = int(os.environ.get("BENCH_SESSIONS", "20"))
SIZE = int(os.environ.get("BENCH_SIZE", "4096"))
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


def quiet(f):
    """Debug logging would measure the log, not the MTA."""
    with open(f.conf) as c:
        text = c.read().replace("log_level = debug", "log_level = warn")
    with open(f.conf, "w") as c:
        c.write(text)
    return f


def source(port, messages=MESSAGES, sessions=SESSIONS, rcpt="bench@localhost"):
    """Run smtp-source; return elapsed seconds."""
    t0 = time.monotonic()
    subprocess.run([SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(SIZE),
                    "-f", "bench@example.org", "-t", rcpt, f"127.0.0.1:{port}"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def start_sink(port):
    user = ["-u", "nobody"] if os.geteuid() == 0 else []     # smtp-sink refuses to run as root
    sink = subprocess.Popen([SINK] + user + ["-c", f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return sink


def bench_sink():
    port = free_port()
    sink = start_sink(port)
    try:
        return source(port)
    finally:
        sink.terminate()
        sink.wait()


def bench_remote():
    """Ferry relays everything to smtp-sink (relayhost, no TLS): intake, then the
    queue's SMTP client with connection reuse. Returns (seconds until the queue is
    empty, messages left)."""
    port = free_port()
    sink = start_sink(port)
    f = Ferry(extra="max_connections_per_ip = 1000\nmax_connection_rate = 0\nrelay_networks = 127.0.0.0/8\n"
                    f"relayhost = [127.0.0.1]:{port}\nrelayhost_tls = none\ndkim_verify = no\n")
    quiet(f)
    f.start()
    try:
        t0 = time.monotonic()
        source(f.port, rcpt="bench@remote.example")
        done = wait_for(lambda: not [n for n in f.queue_files() if n.endswith(".env")], timeout=600, interval=0.1)
        total = time.monotonic() - t0
        return total, len([n for n in f.queue_files() if n.endswith(".env")]), bool(done)
    finally:
        f.cleanup()
        sink.terminate()
        sink.wait()


def count_mail(f):
    d = os.path.join(f.maildir, "bench", "new")
    return len(os.listdir(d)) if os.path.isdir(d) else 0


def bench_ferry():
    f = Ferry(extra="max_connections_per_ip = 1000\nmax_connection_rate = 0\n")
    quiet(f)
    f.start()
    try:
        t0 = time.monotonic()
        intake = source(f.port)
        done = wait_for(lambda: count_mail(f) >= MESSAGES, timeout=600, interval=0.1)
        total = time.monotonic() - t0
        return intake, total, count_mail(f), bool(done)
    finally:
        f.cleanup()


# The whole of "org", so the DMARC tree walk's _dmarc.org gets an authoritative
# NXDOMAIN (cached) as it would from a real resolver.
POLICY_ZONE = """$ORIGIN org.
$TTL 3600
@ IN SOA ns.example.org. hostmaster.example.org. 1 3600 900 604800 3600
@ IN NS ns.example.org.
ns.example IN A 127.0.0.1
example IN TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc.example IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.org"
"""


def bench_policy():
    """Intake from a stranger (not in relay_networks) with SPF at MAIL FROM, DKIM
    verification and DMARC at the end of data, all answered by a real nsd through
    Ferry's DNS cache (warm after the first message), against the same intake with
    the three checks off. smtp-source writes From: <bench@example.org>, whose SPF
    passes and whose DMARC policy is reject, so every message takes the whole
    path; its messages are unsigned, so DKIM costs a header scan, not a key.
    Returns (seconds with the checks, seconds without)."""
    from dnsserver import DnsServer
    ns = DnsServer({"org": POLICY_ZONE}).start()
    results = []
    try:
        for checks in (True, False):
            extra = "max_connections_per_ip = 1000\nmax_connection_rate = 0\n"
            extra += (f"resolver = 127.0.0.1:{ns.port}\nspf_check = yes\ndkim_verify = yes\ndmarc_check = yes\n"
                      if checks else "spf_check = no\ndkim_verify = no\ndmarc_check = no\n")
            f = Ferry(extra=extra)
            quiet(f)
            f.start()
            try:
                results.append(source(f.port))
            finally:
                f.cleanup()
    finally:
        ns.stop()
    return results[0], results[1]


def bench_drain():
    """The queue's SMTP client alone: MESSAGES are queued while the relay host is
    down (each deferred once), then smtp-sink starts and a flush sends them all.
    Returns (seconds from the flush until the queue is empty, messages left)."""
    port = free_port()
    f = Ferry(extra="max_connections_per_ip = 1000\nmax_connection_rate = 0\nrelay_networks = 127.0.0.0/8\n"
                    f"relayhost = [127.0.0.1]:{port}\nrelayhost_tls = none\ndkim_verify = no\n"
                    "retry_min = 1h\nretry_max = 2h\n")
    quiet(f)
    f.start()
    sink = None
    try:
        source(f.port, rcpt="bench@remote.example")
        envs = lambda: [n for n in f.queue_files() if n.endswith(".env")]
        wait_for(lambda: len(envs()) >= MESSAGES, timeout=60)
        time.sleep(2)       # the first attempts (connection refused) are over
        sink = start_sink(port)
        t0 = time.monotonic()
        r = f.ferryctl("queue", "flush")
        if r.returncode != 0:
            raise RuntimeError(r.stderr)
        done = wait_for(lambda: not envs(), timeout=600, interval=0.05)
        return time.monotonic() - t0, len(envs()), bool(done)
    finally:
        f.cleanup()
        if sink:
            sink.terminate()
            sink.wait()


def main():
    for tool in (SOURCE, SINK):
        if not os.access(tool, os.X_OK):
            print(f"bench: {tool} is missing (Debian package postfix; `make bench` installs it)")
            return 1
    print(f"bench: {MESSAGES} messages of {SIZE} octets over {SESSIONS} parallel sessions, one recipient each")
    sink = bench_sink()
    print(f"  smtp-sink (Postfix, discards, no disk)   {sink:7.2f} s  {MESSAGES / sink:9.0f} msg/s")
    intake, total, delivered, ok = bench_ferry()
    print(f"  ferryd intake (fsync'd before each 250)  {intake:7.2f} s  {MESSAGES / intake:9.0f} msg/s")
    print(f"  ferryd intake + Maildir delivery         {total:7.2f} s  {delivered / total:9.0f} msg/s"
          f"  ({delivered} of {MESSAGES} delivered)")
    print(f"  ferryd intake relative to smtp-sink      {sink / intake * 100:6.1f} %")
    with_checks, without = bench_policy()
    print(f"  ferryd intake, SPF + DKIM + DMARC on     {with_checks:7.2f} s  {MESSAGES / with_checks:9.0f} msg/s")
    print(f"  ferryd intake, the same checks off       {without:7.2f} s  {MESSAGES / without:9.0f} msg/s"
          f"  (policy costs {(with_checks - without) / MESSAGES * 1e6:+.0f} us per message)")
    remote, left, ok2 = bench_remote()
    print(f"  ferryd intake + SMTP relay to smtp-sink  {remote:7.2f} s  {(MESSAGES - left) / remote:9.0f} msg/s"
          f"  ({MESSAGES - left} of {MESSAGES} relayed)")
    drain, left2, ok3 = bench_drain()
    print(f"  ferryd queue drain to smtp-sink (flush)  {drain:7.2f} s  {(MESSAGES - left2) / drain:9.0f} msg/s"
          f"  ({MESSAGES - left2} of {MESSAGES} sent; connection reuse, 10 per destination)")
    return 0 if ok and ok2 and ok3 else 1


if __name__ == "__main__":
    sys.exit(main())
