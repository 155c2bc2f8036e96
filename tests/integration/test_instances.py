"""Several Ferry instances side by side (issue 17 item 3): two ferryd started with
nothing but their own config file (no pid_file line) run at once, each keeps its
pid file, control socket and queue lock under its own spool_dir, and
`ferryctl -c CONF` reaches each one's running queue process."""
import os
import shutil
import subprocess
import tempfile
import unittest

from ferrytest import FERRYD, FERRYCTL, free_port, servfail_resolver, wait_for, SmtpLines


def write_conf(d, ip, port):
    conf = os.path.join(d, "ferry.conf")
    with open(conf, "w") as f:
        f.write(f"""hostname = {ip}.example.test
listen = smtp {ip}:{port}
spool_dir = {d}/spool
data_dir = {d}/db
mail_dir = {d}/mail
local_domains = example.test
local_recipients = any
user = nobody
log = stderr
log_level = info
spf_check = no
dmp_check = off
dmarc_check = no
resolver = {servfail_resolver()}
""")
    return conf


class SideBySide(unittest.TestCase):
    def test_two_instances_with_only_their_config(self):
        procs, dirs = [], []
        try:
            for ip in ("127.0.0.26", "127.0.0.27"):
                d = tempfile.mkdtemp(prefix="ferry-inst-")
                os.chmod(d, 0o755)
                dirs.append(d)
                port = free_port()
                conf = write_conf(d, ip, port)
                log = open(os.path.join(d, "log"), "ab")
                p = subprocess.Popen([FERRYD, "-c", conf, "-f"], stdout=log, stderr=log, cwd=d)
                procs.append((p, conf, d, ip, port))

            def up(entry):
                p, _, d, ip, port = entry
                if p.poll() is not None:
                    raise AssertionError(open(os.path.join(d, "log")).read())
                return "queue process ready" in open(os.path.join(d, "log")).read()
            for e in procs:
                self.assertTrue(wait_for(lambda: up(e), 15), open(os.path.join(e[2], "log")).read())
            for p, conf, d, ip, port in procs:
                self.assertIsNone(p.poll(), open(os.path.join(d, "log")).read())
                pidfile = os.path.join(d, "spool", "ferryd.pid")
                self.assertEqual(open(pidfile).read().strip(), str(p.pid))
                self.assertTrue(os.path.exists(os.path.join(d, "spool", "control.sock")))
                s = SmtpLines(port, host=ip)
                self.assertIn(f"{ip}.example.test", s.greeting[1][0])
                s.close()
                # ferryctl reaches this instance's running queue process (offline it
                # would say "not running" and take the lock itself).
                out = subprocess.run([FERRYCTL, "-c", conf, "queue", "flush"], capture_output=True, text=True,
                                     timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertNotIn("not running", out.stdout + out.stderr)
                out = subprocess.run([FERRYCTL, "-c", conf, "queue", "list"], capture_output=True, text=True,
                                     timeout=30)
                self.assertEqual(out.returncode, 0, out.stderr)
            # stopping one leaves the other running and removes only its own pid file
            p0, _, d0, _, _ = procs[0]
            p0.terminate()
            p0.wait(15)
            self.assertFalse(os.path.exists(os.path.join(d0, "spool", "ferryd.pid")))
            self.assertIsNone(procs[1][0].poll())
            self.assertTrue(os.path.exists(os.path.join(procs[1][2], "spool", "ferryd.pid")))
        finally:
            for p, *_ in procs:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            for d in dirs:
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
