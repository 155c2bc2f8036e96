"""CPU time per message, by whom: the MTA under test (every process it has or
starts), the load generator (smtp-source and smtp-sink) and the rest of the
machine (kernel threads writing the disk, softirq work charged to no process,
this harness).

Each group is a control group, so CPU time of processes that exit during a run
(Postfix's smtpd and cleanup, Ferry's delivery workers) still counts. The cgroup
v1 cpuacct controller is used where it is mounted (nanoseconds, user+system),
else a cgroup v2 directory (cpu.stat usage_usec). Where neither can be created
(not root, a read-only hierarchy) `available` is False with the reason, and the
bench prints its table without the CPU columns.

Why it is in the bench: on a machine whose CPUs are saturated, throughput is
cores / (CPU per message of everyone involved); the split tells how much of a
message's cost is the MTA's at all (issue 16 asks what is in the way).
"""
import os
import time

V1 = "/sys/fs/cgroup/cpuacct"
V2_ROOTS = ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")


class Group:
    def __init__(self, path, v1):
        self.path, self.v1 = path, v1

    def usage_ns(self):
        if self.v1:
            with open(os.path.join(self.path, "cpuacct.usage")) as f:
                return int(f.read())
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) * 1000
        raise OSError("cpu.stat has no usage_usec")

    def add(self, pid):
        """Move pid into the group (its later children follow it)."""
        try:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(pid))
            return True
        except OSError:
            return False    # exited meanwhile

    def remove(self):
        try:
            os.rmdir(self.path)
        except OSError:
            pass


def descendants(pid):
    """pid and every process below it (from /proc's parent links)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                parent[int(d)] = int(s[s.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def busy_ns():
    """CPU time spent by the whole machine, not idle (all CPUs)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]            # idle + iowait
    tick = 1e9 / os.sysconf("SC_CLK_TCK")
    return int((sum(fields[:8]) - idle) * tick), int(sum(fields[:8]) * tick)


class Accounting:
    """Two groups, "mta" and "load", under one bench-owned directory."""

    def __init__(self):
        self.available, self.reason, self.groups = False, "", {}
        base, v1 = None, False
        if os.path.isfile(os.path.join(V1, "cpuacct.usage")):
            base, v1 = V1, True
        else:
            for root in V2_ROOTS:
                try:
                    with open(os.path.join(root, "cgroup.controllers")) as f:
                        if "cpu" in f.read().split() and os.path.isfile(os.path.join(root, "cgroup.procs")):
                            base = root
                            break
                except OSError:
                    continue
        if not base:
            self.reason = "no cpuacct (cgroup v1) or cpu (cgroup v2) controller is mounted"
            return
        try:
            for name in ("mta", "load"):
                path = os.path.join(base, f"ferry-bench-{os.getpid()}-{name}")
                os.makedirs(path, exist_ok=True)
                self.groups[name] = Group(path, v1)
                self.groups[name].usage_ns()
            self.available = True
        except OSError as e:
            self.reason = f"cannot make a control group under {base}: {e.strerror}"
            self.close()

    def add_tree(self, name, pid):
        if self.available:
            for p in descendants(pid):
                self.groups[name].add(p)

    def preexec(self, name):
        """A preexec_fn for subprocess: the child joins the group before exec."""
        if not self.available:
            return None
        g = self.groups[name]
        return lambda: g.add(os.getpid())

    def snapshot(self):
        if not self.available:
            return None
        busy, total = busy_ns()
        return {"mta": self.groups["mta"].usage_ns(), "load": self.groups["load"].usage_ns(),
                "busy": busy, "total": total, "t": time.monotonic()}

    @staticmethod
    def per_message(before, after, n):
        """µs per message for the MTA, the load generator and the rest of the
        machine, and the machine's idle share over the interval."""
        if not before or not after:
            return None
        mta = (after["mta"] - before["mta"]) / 1000 / n
        load = (after["load"] - before["load"]) / 1000 / n
        busy = (after["busy"] - before["busy"]) / 1000 / n
        total = after["total"] - before["total"]
        idle = 1 - (after["busy"] - before["busy"]) / total if total else float("nan")
        return {"mta": mta, "load": load, "rest": max(busy - mta - load, 0.0), "idle": idle}

    def close(self):
        for g in self.groups.values():
            # Whatever is still in it goes back to the root group first.
            root = os.path.dirname(g.path)
            try:
                with open(os.path.join(g.path, "cgroup.procs")) as f:
                    pids = f.read().split()
                for p in pids:
                    with open(os.path.join(root, "cgroup.procs"), "w") as f:
                        f.write(p)
            except OSError:
                pass
            g.remove()
        self.groups = {}
