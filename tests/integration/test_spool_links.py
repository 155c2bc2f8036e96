"""Security review #1: the daemon's user owns the spool, data_dir and mail_dir and
can put a symbolic link where ferryd (as root) expects a directory. ferryd must
refuse such a link, at start and on SIGHUP, and never chown, chmod or empty what
it points to. Needs root (the suite runs as root; children run as nobody)."""
import os
import signal
import unittest

from ferrytest import Ferry, SmtpLines, wait_for


class PlantedLinks(unittest.TestCase):
    def setUp(self):
        if os.getuid() != 0:
            self.fail("this test needs root (CI and make test run as root)")
        self.f = Ferry()
        self.addCleanup(self.f.cleanup)
        # A directory of root's with a marker file: what the link points to.
        self.target = os.path.join(self.f.dir, "root-only")
        os.mkdir(self.target, 0o700)
        self.marker = os.path.join(self.target, "marker")
        with open(self.marker, "w") as fh:
            fh.write("root's\n")
        self.before = os.stat(self.target)

    def plant(self, path):
        """What the daemon's user can do: move the directory aside, put a link in its place."""
        os.rename(path, path + ".bak")
        os.symlink(self.target, path)

    def assert_target_untouched(self):
        st = os.stat(self.target)
        self.assertEqual((st.st_uid, st.st_gid, oct(st.st_mode)),
                         (self.before.st_uid, self.before.st_gid, oct(self.before.st_mode)))
        self.assertTrue(os.path.exists(self.marker))

    def assert_start_refused(self, path):
        with self.assertRaises(RuntimeError) as cm:
            self.f.start()
        self.assertIn("%s is a symbolic link or not a directory: refusing to use it" % path, str(cm.exception))
        self.assert_target_untouched()

    def prepared(self):
        self.f.start()
        self.f.stop()

    def test_held_link_refused_at_start(self):
        self.prepared()
        self.plant(os.path.join(self.f.spool, "held"))
        self.assert_start_refused(os.path.join(self.f.spool, "held"))

    def test_maildrop_link_refused_at_start(self):
        self.prepared()
        self.plant(os.path.join(self.f.spool, "maildrop"))
        self.assert_start_refused(os.path.join(self.f.spool, "maildrop"))

    def test_incoming_link_refused_and_target_not_emptied(self):
        self.prepared()
        self.plant(os.path.join(self.f.spool, "incoming"))
        self.assert_start_refused(os.path.join(self.f.spool, "incoming"))

    def test_data_dir_link_refused_at_start(self):
        self.prepared()
        self.plant(os.path.join(self.f.dir, "db"))
        self.assert_start_refused(os.path.join(self.f.dir, "db"))

    def test_held_link_refused_on_reload(self):
        self.f.start()
        self.plant(os.path.join(self.f.spool, "held"))
        self.f.proc.send_signal(signal.SIGHUP)
        refused = "reload refused: %s is a symbolic link" % os.path.join(self.f.spool, "held")
        self.assertTrue(wait_for(lambda: refused in self.f.read_log(), 10), self.f.read_log())
        self.assert_target_untouched()
        self.assertIsNone(self.f.proc.poll())
        s = SmtpLines(self.f.port)      # still serving with the running configuration
        self.assertEqual(s.greeting[0], 220, s.greeting)


if __name__ == "__main__":
    unittest.main()
