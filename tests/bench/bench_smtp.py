#!/usr/bin/env python3
"""make bench: Ferry side by side with a private Postfix (tests/bench/postfix_instance.py),
both driven by Postfix's smtp-source and both relaying to one smtp-sink. Runs of
the two alternate (Ferry first on even rounds, Postfix first on odd ones) and each
scenario is repeated BENCH_REPS times; the table gives medians and the
Ferry/Postfix ratio. Scenarios without a Postfix counterpart (policy checks, idle
connections, queue start) are measured for Ferry alone. The method and the
latest table go to BENCH.md (BENCH_MD=path to write elsewhere, or "" for none).

Figures are printed, never asserted: speed is measured, not tested.

Environment: BENCH_N messages per intake run (default 5000; the 1-session run
sends N/5), BENCH_REPS (3), BENCH_SIZE (10240), BENCH_IDLE ("5000 20000"),
BENCH_QUEUE (100000 messages for the queue start), BENCH_CG (messages under
callgrind, 300; 0 skips).
"""
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
sys.path.insert(0, HERE)
from ferrytest import Ferry, free_port, wait_for  # noqa: E402
from postfix_instance import Postfix  # noqa: E402
import bench_extra  # noqa: E402
from cpu_account import Accounting  # noqa: E402

N = int(os.environ.get("BENCH_N", "5000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
SIZE = int(os.environ.get("BENCH_SIZE", "10240"))
SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
TRUSTED = "127.0.0.0/8"


ACCT = None        # cpu_account.Accounting while main() runs; None: no CPU figures


def source(port, messages, sessions, rcpt):
    """Run smtp-source (one connection per message, as a relay client would);
    return elapsed seconds."""
    t0 = time.monotonic()
    subprocess.run([SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(SIZE),
                    "-f", "bench@example.org", "-t", rcpt, f"127.0.0.1:{port}"],
                   check=True, stdout=subprocess.DEVNULL, preexec_fn=ACCT.preexec("load") if ACCT else None)
    return time.monotonic() - t0


class Sink:
    def __init__(self):
        self.port = free_port()
        user = ["-u", "nobody"] if os.geteuid() == 0 else []     # smtp-sink refuses to run as root
        self.proc = subprocess.Popen([SINK] + user + [f"127.0.0.1:{self.port}", "1024"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=ACCT.preexec("load") if ACCT else None)
        time.sleep(0.3)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def ferry_conf(sink_port, extra=""):
    """Ferry's bench settings; a key in extra replaces the line of the same key."""
    base = (f"relayhost = [127.0.0.1]:{sink_port}\nrelayhost_tls = none\ndkim_verify = no\n"
            "log_level = info\nsmtp_max_sessions = 1000\n")
    keys = {line.split("=", 1)[0].strip() for line in extra.splitlines() if "=" in line}
    return "".join(line + "\n" for line in base.splitlines() if line.split("=", 1)[0].strip() not in keys) + extra


def ferry_queued(f):
    return len([n for n in f.queue_files() if n.endswith(".msg")])


def maildir_count(path):
    return len(os.listdir(path)) if os.path.isdir(path) else 0


def measured(port, scenario, sessions, n, done):
    """One run against an MTA already started and in ACCT's "mta" group: the
    rate (msg/s; intake alone, or until done() says everything was delivered)
    and the CPU per message over the same interval (cpu_account)."""
    rcpt = "bench@localhost" if scenario == "maildir" else "bench@remote.example"
    before = ACCT.snapshot() if ACCT else None
    t0 = time.monotonic()
    elapsed = source(port, n, sessions, rcpt)
    if scenario != "intake":
        elapsed = time.monotonic() - t0 if wait_for(done, timeout=600, interval=0.05) else float("nan")
    cpu = Accounting.per_message(before, ACCT.snapshot() if ACCT else None, n)
    return n / elapsed, cpu


def run_ferry(sink, scenario, sessions, n):
    f = Ferry(extra=ferry_conf(sink.port), relay_networks=TRUSTED).start()
    try:
        if ACCT:
            ACCT.add_tree("mta", f.proc.pid)
        box = os.path.join(f.maildir, "bench", "new")
        done = (lambda: ferry_queued(f) == 0) if scenario == "relay" else (lambda: maildir_count(box) >= n)
        return measured(f.port, scenario, sessions, n, done)
    finally:
        f.cleanup()


def run_postfix(sink, scenario, sessions, n):
    p = Postfix(free_port(), sink.port).start()
    try:
        if ACCT and p.master_pid():
            ACCT.add_tree("mta", p.master_pid())
        done = (lambda: p.queued() == 0) if scenario == "relay" else (lambda: p.delivered() >= n)
        return measured(p.port, scenario, sessions, n, done)
    finally:
        p.cleanup()


def median_cpu(runs):
    """The per-message CPU split of the median run (by rate), or None."""
    cpus = [c for _, c in sorted(runs, key=lambda r: r[0]) if c]
    return cpus[len(cpus) // 2] if cpus else None


def side_by_side(sink, label, scenario, sessions, n):
    fruns, pruns = [], []
    for rep in range(REPS):
        order = (run_ferry, run_postfix) if rep % 2 == 0 else (run_postfix, run_ferry)
        for run in order:
            (fruns if run is run_ferry else pruns).append(run(sink, scenario, sessions, n))
    ferry, postfix = [r for r, _ in fruns], [r for r, _ in pruns]
    fm, pm = statistics.median(ferry), statistics.median(postfix)
    row = (label, fm, pm, fm / pm if pm else float("nan"), ferry, postfix, median_cpu(fruns), median_cpu(pruns))
    print(f"  {label:42s} Ferry {fm:7.0f}  Postfix {pm:7.0f} msg/s  ratio {row[3]:5.2f}"
          f"   (Ferry {' '.join('%.0f' % x for x in ferry)}; Postfix {' '.join('%.0f' % x for x in postfix)})",
          flush=True)
    for who, cpu in (("Ferry", row[6]), ("Postfix", row[7])):
        if cpu:
            print(f"  {'':42s} {who} CPU per message: MTA {cpu['mta']:.0f} us, smtp-source+sink {cpu['load']:.0f} us, "
                  f"rest {cpu['rest']:.0f} us; machine idle {100 * cpu['idle']:.0f}%", flush=True)
    return row


def fsync_rate(directory, seconds=2.0):
    """Synchronous 4 KB writes per second on the disk under directory."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    block = b"x" * 4096
    count, t0 = 0, time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            count += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return count / (time.monotonic() - t0)


def create_cost(directory, rounds=5, files=2000):
    """Microseconds per file creation on the spool's disk after rounds*files
    creates and deletes: a mail queue's churn. Where it is high (ext4 without a
    journal looks at every inode freed in the last minute before it reuses one)
    every file an MTA creates per message costs that much CPU."""
    sub = tempfile.mkdtemp(prefix="create-probe-", dir=directory)
    spent = 0.0
    try:
        for _ in range(rounds):
            spent = 0.0
            for i in range(files):
                t0 = time.perf_counter()
                fd = os.open(os.path.join(sub, str(i)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                spent += time.perf_counter() - t0
                os.close(fd)
            for i in range(files):
                os.unlink(os.path.join(sub, str(i)))
    finally:
        shutil.rmtree(sub, ignore_errors=True)
    return spent / files * 1e6


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main():
    for tool in (SOURCE, SINK):
        if not os.access(tool, os.X_OK):
            print(f"bench: {tool} is missing (Debian package postfix; `make bench` installs it)")
            return 1
    nofile = raise_nofile()         # ferryd and the idle clients inherit it
    scratch = tempfile.mkdtemp(prefix="ferry-bench-")
    machine = {
        "nproc": os.cpu_count(),
        "fsync_per_s": fsync_rate(scratch),
        "create_us": create_cost(scratch),
        "load_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nofile": nofile,
    }
    print(f"bench: {N} messages of {SIZE} octets, 1 recipient, {REPS} alternating rounds; "
          f"{machine['nproc']} CPUs, {machine['fsync_per_s']:.0f} fsync'd 4 KB writes/s, "
          f"a file create {machine['create_us']:.0f} us under churn, "
          f"load {machine['load_before'][0]:.2f}", flush=True)
    global ACCT
    acct = Accounting()
    if acct.available:
        ACCT = acct
    else:
        print(f"bench: no CPU figures: {acct.reason}", flush=True)
    machine["cpu_note"] = acct.reason
    rows = []
    sink = Sink()
    try:
        for sessions in (1, 10, 50, 200):
            n = max(N // 5, 100) if sessions == 1 else N
            rows.append(side_by_side(sink, f"intake, {sessions} sessions (relayed to smtp-sink)",
                                     "intake", sessions, n))
        rows.append(side_by_side(sink, "end-to-end relay to smtp-sink, 50 sessions", "relay", 50, N))
        rows.append(side_by_side(sink, "local Maildir delivery, 50 sessions", "maildir", 50, N))
        alone = bench_extra.ferry_alone(sink, N, SIZE, source, ferry_conf, scratch)
    finally:
        sink.stop()
        shutil.rmtree(scratch, ignore_errors=True)
        ACCT = None
        acct.close()
    machine["load_after"] = os.getloadavg()
    report = bench_extra.format_report(machine, rows, alone, N, SIZE, REPS)
    print(report)
    out = os.environ.get("BENCH_MD", os.path.join(os.path.dirname(os.path.dirname(HERE)), "BENCH.md"))
    if out:
        bench_extra.write_bench_md(out, report)
        print(f"bench: table written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
