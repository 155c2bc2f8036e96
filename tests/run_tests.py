#!/usr/bin/env python3
"""Run every Ferry test and print one closing line: "N passed, N failed".

Unit tests: each $BUILD/tests/test_* program (Check) is run; its summary line
"NN%: Checks: N, Failures: F, Errors: E" is added up.
Integration tests: every tests/integration/test_*.py module is loaded with
unittest and run; each test method counts once.
Interop tests (tests/interop/, also `make interop`): Ferry against Exim and
OpenSMTPD unpacked by tests/interop/fetch-peers.sh, and the installed Postfix,
OpenDKIM and Dovecot on private configurations. They are a phase of their own,
not an integration module, because they are the one part that may be skipped:
when the peers cannot be installed (their download failed, or not root) the
phase prints why and counts nothing; once they run, a failure or a skip inside
counts as a failure like anywhere else.
"""
import os
import re
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
# Leaks inside libdb after a recovery are not ours (tests/lsan.supp says why);
# inherited by the unit tests and by every daemon the integration tests start.
os.environ.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "lsan.supp"))
CHECK_RE = re.compile(r"(\d+)%: Checks: (\d+), Failures: (\d+), Errors: (\d+)")


def run_unit():
    passed = failed = 0
    tdir = os.path.join(ROOT, BUILD, "tests")
    progs = sorted(p for p in os.listdir(tdir) if p.startswith("test_")) if os.path.isdir(tdir) else []
    for prog in progs:
        path = os.path.join(tdir, prog)
        if not os.access(path, os.X_OK) or os.path.isdir(path):
            continue
        env = dict(os.environ, CK_FORK="yes")
        t0 = time.time()
        res = subprocess.run([path], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        m = CHECK_RE.search(res.stdout)
        if not m:
            print(f"unit {prog}: no Check summary (exit {res.returncode})")
            print(res.stdout[-3000:], res.stderr[-3000:])
            failed += 1
            continue
        checks, fails, errs = int(m.group(2)), int(m.group(3)), int(m.group(4))
        passed += checks - fails - errs
        failed += fails + errs
        status = "ok" if fails + errs == 0 and res.returncode == 0 else "FAILED"
        print(f"unit {prog}: {checks} checks, {fails + errs} failed [{status}] ({time.time() - t0:.1f}s)")
        if fails + errs:
            for line in res.stdout.splitlines():
                if ":F:" in line or ":E:" in line:
                    print("   ", line)
    return passed, failed


class CountingResult(unittest.TextTestResult):
    pass


def run_integration():
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    loader = unittest.TestLoader()
    suite = loader.discover(os.path.join(ROOT, "tests", "integration"), pattern="test_*.py",
                            top_level_dir=os.path.join(ROOT, "tests", "integration"))
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=CountingResult)
    result = runner.run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # A skipped integration test is a failure: the project installs everything it needs.
    bad += len(result.skipped)
    for test, why in result.skipped:
        print(f"SKIPPED counts as failed: {test}: {why}")
    return result.testsRun - bad, bad


def run_interop():
    here = os.path.join(ROOT, "tests", "interop")
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    sys.path.insert(0, here)
    from interop_peers import peers_missing
    why = peers_missing()
    if why:
        print(f"interop: SKIPPED, not counted: {why}")
        return 0, 0
    t0 = time.time()
    suite = unittest.TestLoader().discover(here, pattern="test_*.py", top_level_dir=here)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=CountingResult).run(suite)
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses) + len(result.skipped)
    # A failed setUpModule is an error with no test run: nothing passed, not -1.
    passed = max(result.testsRun - bad, 0)
    print(f"interop: {passed} passed, {bad} failed in {time.time() - t0:.0f}s; "
          f"see tests/interop/RESULTS.md")
    return passed, bad


def main():
    args = sys.argv[1:]
    passed = failed = 0
    only = [a for a in args if a in ("--unit-only", "--integration-only", "--interop-only")]
    phases = [("--unit-only", run_unit), ("--integration-only", run_integration), ("--interop-only", run_interop)]
    for flag, run in phases:
        if only and flag not in only:
            continue
        p, f = run()
        passed += p
        failed += f
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
