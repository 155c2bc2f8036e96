"""The scenarios of `make bench` measured for Ferry alone (no Postfix counterpart,
or a cost counted rather than timed), and the BENCH.md writer.

- instructions per message (callgrind, every ferryd process, a run of BENCH_CG
  messages minus a run of 10, so start-up and shutdown cancel out): stable on a
  loaded machine, where wall-clock figures are not;
- fsyncs per message (strace -ff, the smtp process alone and all processes);
- intake with SPF + DKIM verify + DMARC against a warm cache (a real nsd);
- idle connections held: resident memory per connection, and the greeting and
  EHLO latency of a fresh client meanwhile;
- queue start with BENCH_QUEUE messages on disk, and bench_scheduler's pass.
"""
import glob
import os
import re
import signal
import socket
import statistics
import subprocess
import time
import zlib

from envfile import envelope_bytes, message_bytes
from ferrytest import Ferry, FERRYD, ROOT, sockets_of, wait_for, _qid

CG = int(os.environ.get("BENCH_CG", "300"))
IDLE = [int(x) for x in os.environ.get("BENCH_IDLE", "5000 20000").split()]
QUEUE = int(os.environ.get("BENCH_QUEUE", "100000"))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))

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
POLICY_ON = "spf_check = yes\ndkim_verify = yes\ndmarc_check = yes\nmax_connection_rate = 0\nmax_connections_per_ip = 1000\n"


def start(f, prefix=(), timeout=120):
    """Start ferryd, optionally under a tool (valgrind, strace), waiting for the
    queue process to be ready."""
    f.log = open(f.log_path, "ab")
    f.proc = subprocess.Popen(list(prefix) + [FERRYD, "-c", f.conf, "-f"], stdout=f.log, stderr=f.log, cwd=f.dir)
    if not wait_for(lambda: "queue process ready" in f.read_log() and f._accepting(), timeout, 0.2):
        f.stop()
        raise RuntimeError("ferryd did not start:\n" + f.read_log()[-3000:])
    return f


def smtp_pid(f):
    pids = re.findall(r"started the smtp process, pid (\d+)", f.read_log())
    return pids[-1] if pids else None


def drained(f, rcpt):
    """Every message delivered (relayed or into the Maildir) and gone from the queue."""
    return lambda: not [n for n in f.queue_files() if n.endswith(".msg")]


def callgrind_total(sink, conf, relay_networks, n, source, rcpt):
    """Instructions executed by (the smtp process, every ferryd process) for a run of n messages."""
    f = Ferry(extra=conf, relay_networks=relay_networks)
    out = os.path.join(f.dir, "cg")
    os.mkdir(out)
    os.chmod(out, 0o777)
    try:
        start(f, ["valgrind", "--tool=callgrind", "--trace-children=yes", "--dump-instr=no",
                  f"--callgrind-out-file={out}/cg.%p"], timeout=300)
        source(f.port, n, 10, rcpt)
        wait_for(drained(f, rcpt), timeout=600, interval=0.2)
        pid = smtp_pid(f)
        f.stop(timeout=120)
        per = {}
        for path in glob.glob(os.path.join(out, "cg.*")):
            with open(path, errors="replace") as c:
                m = re.search(r"^(?:summary|totals): (\d+)", c.read(), re.M)
            if m:
                per[path.rsplit(".", 1)[1]] = int(m.group(1))
        return per.get(pid, 0), sum(per.values())
    finally:
        f.cleanup()


def instructions_per_message(sink, conf, relay_networks, source, rcpt):
    a = callgrind_total(sink, conf, relay_networks, 10, source, rcpt)
    b = callgrind_total(sink, conf, relay_networks, CG + 10, source, rcpt)
    return (b[0] - a[0]) / CG, (b[1] - a[1]) / CG


def fsync_rounds(intervals):
    """How many times the process waited for fsyncs, counting fsyncs that
    overlap in time (issued from several threads at once) as one round."""
    rounds, end = 0, None
    for t0, t1 in sorted(intervals):
        if end is None or t0 > end:
            rounds += 1
            end = t1
        else:
            end = max(end, t1)
    return rounds


def fsyncs_per_message(sink, conf, n, source):
    """Per message: fsync/fdatasync calls of the smtp process (all its threads),
    those on its event-loop thread, its serial fsync rounds (fsync_rounds), the
    calls of every ferryd process; and messages per group-commit batch."""
    f = Ferry(extra=conf, relay_networks="127.0.0.0/8")
    out = os.path.join(f.dir, "st")
    os.mkdir(out)
    call = re.compile(r"^(\d+\.\d+) (?:fsync|fdatasync|syncfs)\(.*<(\d+\.\d+)>$", re.M)
    try:
        start(f, ["strace", "-qq", "-ff", "-ttt", "-T", "-e", "trace=fsync,fdatasync,syncfs,sync_file_range",
                  "-o", f"{out}/st"], timeout=120)
        def syncs(path):
            """fsync-like calls as (start, end) (sync_file_range only starts writeback: not counted)."""
            with open(path) as s:
                return [(float(a), float(a) + float(b)) for a, b in call.findall(s.read())]
        before = {path: len(syncs(path)) for path in glob.glob(os.path.join(out, "st.*"))}
        source(f.port, n, 10, "bench@remote.example")
        wait_for(drained(f, "bench@remote.example"), timeout=600, interval=0.2)
        time.sleep(0.5)
        pid = smtp_pid(f)
        tids = set(os.listdir(f"/proc/{pid}/task")) if pid and os.path.isdir(f"/proc/{pid}/task") else {pid}
        smtp = loop = total = 0
        intervals = []
        for path in glob.glob(os.path.join(out, "st.*")):
            calls = syncs(path)[before.get(path, 0):]
            total += len(calls)
            tid = path.rsplit(".", 1)[1]
            if tid in tids:
                smtp += len(calls)
                intervals += calls
                if tid == pid:
                    loop += len(calls)
        # The smtp process says how many batches it made as it stops; strace,
        # not ferryd, is f.proc, so the signal goes to ferryd's parent process.
        parent = re.search(r"ferryd\[(\d+)\] parent", f.read_log())
        if parent:
            os.kill(int(parent.group(1)), signal.SIGTERM)
            wait_for(lambda: "group commit:" in f.read_log(), timeout=30, interval=0.2)
        m = re.search(r"group commit: (\d+) messages in (\d+) batches", f.read_log())
        per_batch = int(m.group(1)) / int(m.group(2)) if m else float("nan")
        return smtp / n, total / n, loop / n, fsync_rounds(intervals) / n, per_batch
    finally:
        f.cleanup()


def policy_rates(sink, source, n, reps, conf_of):
    """msg/s at 10 sessions from a stranger with SPF + DKIM + DMARC on and off,
    against a real nsd through Ferry's cache (warm after the first message)."""
    from dnsserver import DnsServer
    ns = DnsServer({"org": POLICY_ZONE}).start()
    on, off = [], []
    try:
        for rep in range(reps):
            for checks in ((True, False) if rep % 2 == 0 else (False, True)):
                extra = conf_of(sink.port, f"resolver = 127.0.0.1:{ns.port}\n" + (
                    POLICY_ON if checks else POLICY_ON.replace("yes", "no")))
                f = start(Ferry(extra=extra))
                try:
                    source(f.port, 5, 5, "bench@localhost")          # warm the cache
                    (on if checks else off).append(n / source(f.port, n, 10, "bench@localhost"))
                finally:
                    f.cleanup()
        cg = None
        if CG:
            extra = conf_of(sink.port, f"resolver = 127.0.0.1:{ns.port}\n" + POLICY_ON)
            cg = instructions_per_message(sink, extra, "192.0.2.1/32", source, "bench@localhost")
    finally:
        ns.stop()
    return statistics.median(on), statistics.median(off), cg


def rss_kb(pids):
    """Proportional resident memory (Pss) summed over pids: a page shared by
    several of them (the holder forked from the smtp process, libraries) counts
    once in all, where VmRSS would count it in each."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as s:
                total += int(re.search(r"^Pss:\s+(\d+)", s.read(), re.M).group(1))
        except (OSError, AttributeError):
            pass
    return total


def descendants(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    kids = {}
    for p, pp in zip(out[::2], out[1::2]):
        kids.setdefault(int(pp), []).append(int(p))
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    return seen


def fresh_client_ms(port):
    """Connect, greeting, EHLO: (ms to the 220, ms to the end of the EHLO reply)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        data = b""
        while b"\r\n" not in data:
            data += s.recv(4096)
        t1 = time.monotonic()
        s.sendall(b"EHLO fresh.example\r\n")
        data = b""
        while not re.search(rb"(^|\n)250 [^\n]*\n", data):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        t2 = time.monotonic()
        s.sendall(b"QUIT\r\n")
    return (t1 - t0) * 1000, (t2 - t0) * 1000


def hold(port, count, first):
    """Child mode (python3 bench_extra.py hold PORT COUNT FIRST): open count
    connections from 127.0.0.60-.69, read each greeting, print "ready", and hold
    them until stdin closes. Several children share the load, as one process may
    not have descriptors enough for all of them."""
    import sys
    socks = []
    for i in range(first, first + count):
        s = socket.socket()
        s.bind((f"127.0.0.{60 + i % 10}", 0))
        s.settimeout(30)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    for s in socks:                 # every one greeted: the session exists whole
        if not s.recv(512).startswith(b"220"):
            print("refused", flush=True)
            return 1
    print("ready", flush=True)
    sys.stdin.read()
    return 0


def idle_connections(counts, conf_of):
    """Hold count idle connections (greeted, then silent). A connection costs a
    descriptor; past half of RLIMIT_NOFILE the smtp process parks idle ones in
    its connection holder (smtpd/smtp_park.h), which has as many again, so a
    count is cut only beyond about twice the hard limit, and the row says so.
    Resident memory is Pss summed over every ferryd process, the holder
    included (rss_kb)."""
    import resource
    import sys
    results = []
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    for want in counts:
        count = min(want, 2 * hard - 1024)
        f = start(Ferry(extra=conf_of(1, f"smtp_max_sessions = {count + 100}\nsmtp_idle_session_limit = 1h\n"
                                         "smtp_timeout = 1h\n"), relay_networks="127.0.0.0/8"))
        kids = []
        try:
            time.sleep(0.5)
            base = rss_kb(descendants(f.proc.pid))
            per_kid = 5000
            for first in range(0, count, per_kid):
                k = subprocess.Popen([sys.executable, os.path.abspath(__file__), "hold", str(f.port),
                                      str(min(per_kid, count - first)), str(first)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, "tests", "integration")))
                kids.append(k)
                if k.stdout.readline().strip() != "ready":
                    raise RuntimeError("idle connections were refused")
            time.sleep(1.5)     # the last ones idle long enough to be parked
            procs = descendants(f.proc.pid)
            held = rss_kb(procs)
            split = sorted((sockets_of(p) for p in procs), reverse=True)
            print(f"  idle {count}: sockets per ferryd process {split[:3]}", flush=True)
            lat = [fresh_client_ms(f.port) for _ in range(20)]
            results.append((count, (held - base) * 1024 / count,
                            statistics.median(x[0] for x in lat), max(x[0] for x in lat),
                            statistics.median(x[1] for x in lat), max(x[1] for x in lat)))
            if count < want:
                print(f"  idle: {want} connections asked, {count} held (RLIMIT_NOFILE hard limit {hard})", flush=True)
        finally:
            for k in kids:
                k.stdin.close()
                k.wait()
            f.cleanup()
    return results


def queue_start(count, sink_conf, source):
    """Seconds from ferryd's start to "queue process ready" with count messages
    in queue/ (one real message cloned under fresh queue IDs)."""
    f = start(Ferry(extra=sink_conf + "retry_min = 1h\nretry_max = 2h\n", relay_networks="127.0.0.0/8"))
    try:
        source(f.port, 1, 1, "bench@remote.example")
        wait_for(lambda: [n for n in f.queue_files() if n.endswith(".msg")], timeout=30)
        f.stop()
        qdir = os.path.join(f.spool, "queue")
        [msg] = [n for n in os.listdir(qdir) if n.endswith(".msg")]
        qid = msg[:-4]
        env_bytes = envelope_bytes(os.path.join(qdir, qid + ".env"))
        msg_bytes = message_bytes(os.path.join(qdir, msg))
        for _ in range(count - 1):
            new = _qid()
            body = env_bytes[:env_bytes.rindex(b"end ")].replace(qid.encode(), new.encode())
            env = body + b"end %08x\n" % zlib.crc32(body)       # the envelope's checksum line
            with open(os.path.join(qdir, new + ".msg"), "wb") as m:    # one file, as the spool commits
                m.write(msg_bytes + env + b"FERRY-ENV-AT %016x %08x %s\n" % (len(msg_bytes), len(env), new.encode()))
        subprocess.run(["chown", "-R", "nobody:", qdir], check=False)
        os.truncate(f.log_path, 0)
        t0 = time.monotonic()
        start(f, timeout=600)
        took = time.monotonic() - t0
        m = re.search(r"queue process ready: (\d+) messages", f.read_log())
        return took, int(m.group(1)) if m else -1
    finally:
        f.cleanup()


def scheduler_pass():
    exe = os.path.join(BUILD, "bench", "bench_scheduler")
    if not os.access(exe, os.X_OK):
        return []
    return subprocess.run([exe], capture_output=True, text=True).stdout.strip().splitlines()


def ferry_alone(sink, n, size, source, conf_of, scratch):
    r = {}
    plain = conf_of(sink.port)
    if CG:
        r["cg_intake"] = instructions_per_message(sink, plain, "127.0.0.0/8", source, "bench@remote.example")
        print(f"  instructions/message, relay intake: smtp {r['cg_intake'][0]:,.0f}, all {r['cg_intake'][1]:,.0f}",
              flush=True)
    r["fsyncs"] = fsyncs_per_message(sink, plain, min(n, 500), source)
    print(f"  fsyncs/message: smtp {r['fsyncs'][0]:.2f} (on its event loop {r['fsyncs'][2]:.2f}, serial rounds "
          f"{r['fsyncs'][3]:.2f}), all processes {r['fsyncs'][1]:.2f}; {r['fsyncs'][4]:.2f} messages per batch",
          flush=True)
    r["policy"] = policy_rates(sink, source, max(n // 5, 100), 3, conf_of)
    print(f"  policy on/off: {r['policy'][0]:.0f} / {r['policy'][1]:.0f} msg/s; cg {r['policy'][2]}", flush=True)
    r["idle"] = idle_connections(IDLE, conf_of)
    for row in r["idle"]:
        print("  idle %d: %.0f B/conn, greeting %.1f ms (max %.1f), EHLO %.1f ms (max %.1f)" % row, flush=True)
    if QUEUE:
        r["queue"] = queue_start(QUEUE, conf_of(1), source)
        print(f"  queue start with {r['queue'][1]} messages: {r['queue'][0]:.1f} s", flush=True)
    r["sched"] = scheduler_pass()
    return r


def format_report(machine, rows, alone, n, size, reps):
    la, lb = machine["load_before"], machine["load_after"]
    out = [f"Run {machine['date']}: {machine['nproc']} CPUs, {machine['fsync_per_s']:.0f} fsync'd 4 KB writes/s "
           f"on the spool's disk, a file create {machine['create_us']:.0f} µs there after 10 000 creates and deletes, "
           f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} before and "
           f"{lb[0]:.2f} {lb[1]:.2f} {lb[2]:.2f} after; {n} messages of {size} octets per run "
           f"(N/5 at 1 session), 1 recipient, one connection per message, {reps} alternating rounds.", "",
           "| scenario | Ferry msg/s | Postfix msg/s | Ferry/Postfix | Ferry runs | Postfix runs |",
           "|---|---:|---:|---:|---|---|"]
    for label, fm, pm, ratio, fr, pr, _, _ in rows:
        out.append(f"| {label} | {fm:.0f} | {pm:.0f} | {ratio:.2f} | {' '.join('%.0f' % x for x in fr)} | "
                   f"{' '.join('%.0f' % x for x in pr)} |")
    if any(r[6] or r[7] for r in rows):
        out += ["", "CPU per message in the median run, in µs of CPU time (all CPUs; user + system): the MTA "
                "(every process it has or starts), the load generator (smtp-source + smtp-sink), and the rest "
                "of the machine (kernel threads writing the disk, interrupts, this script); and how idle the "
                "CPUs were. With the CPUs saturated, msg/s is about CPUs / (the three summed).", "",
                "| scenario | Ferry: MTA / load / rest | idle | Postfix: MTA / load / rest | idle |",
                "|---|---:|---:|---:|---:|"]

        def split(c):
            return (f"{c['mta']:.0f} / {c['load']:.0f} / {c['rest']:.0f} | {100 * c['idle']:.0f}%" if c
                    else "- | -")
        for r in rows:
            out.append(f"| {r[0]} | {split(r[6])} | {split(r[7])} |")
    elif machine.get("cpu_note"):
        out += ["", f"(No CPU split: {machine['cpu_note']}.)"]
    out += ["", "| Ferry alone | figure |", "|---|---|"]
    if "cg_intake" in alone:
        out.append(f"| instructions per message, relay intake (callgrind) | smtp process {alone['cg_intake'][0]:,.0f}; "
                   f"all processes incl. relaying {alone['cg_intake'][1]:,.0f} |")
    out.append(f"| fsyncs per message, relay intake, 10 sessions (strace) | smtp process {alone['fsyncs'][0]:.2f} "
               f"(on its event loop {alone['fsyncs'][2]:.2f}; serial rounds, overlapping fsyncs counted once: "
               f"{alone['fsyncs'][3]:.2f}); all processes incl. relaying {alone['fsyncs'][1]:.2f}; "
               f"{alone['fsyncs'][4]:.2f} messages per group-commit batch |")
    on, off, cg = alone["policy"]
    out.append(f"| intake from a stranger, 10 sessions, SPF + DKIM verify + DMARC on / off | {on:.0f} / {off:.0f} msg/s |")
    if cg:
        out.append(f"| instructions per message with SPF + DKIM + DMARC (callgrind) | smtp process {cg[0]:,.0f}; "
                   f"all processes incl. Maildir delivery {cg[1]:,.0f} |")
    for count, per, g, gmax, e, emax in alone["idle"]:
        out.append(f"| {count} idle connections held | {per:,.0f} B resident per connection (all ferryd processes); "
                   f"fresh client: greeting {g:.1f} ms median, {gmax:.1f} max; EHLO reply {e:.1f} ms median, "
                   f"{emax:.1f} max |")
    if "queue" in alone:
        out.append(f"| queue start, {alone['queue'][1]} messages on disk | {alone['queue'][0]:.1f} s to ready |")
    for line in alone["sched"]:
        out.append(f"| bench_scheduler | {line} |")
    return "\n".join(out)


MARK = "<!-- bench table: written by make bench -->"


def write_bench_md(path, report):
    """BENCH.md keeps the method (hand-written, above the mark) and the latest
    table; the table before it moves to "Previous run"."""
    head, previous = "# Ferry benchmarks\n\n(method not yet written)\n\n", ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        if MARK in text:
            head, rest = text.split(MARK, 1)
            latest = rest.split("## Previous run", 1)[0]
            previous = latest.replace("## Latest run", "").strip()
    with open(path, "w") as f:
        f.write(head + MARK + "\n\n## Latest run\n\n" + report + "\n")
        if previous:
            f.write("\n## Previous run\n\n" + previous + "\n")


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 5 and sys.argv[1] == "hold":
        sys.exit(hold(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
