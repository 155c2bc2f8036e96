"""delivery/smtp_client against scripted SMTP servers (Python sockets in a thread),
through tests/tools/smtp_send: the exact bytes each server received (commands,
parameters, dot-stuffing, CRLF) and the per-recipient results printed.

Servers: accept all (with and without PIPELINING), 4xx for one recipient, 5xx at
MAIL, HELO only, a SIZE limit, no 8BITMIME, DSN parameters, a close in the middle
of the transaction, a slow server (timeout), and fallback from dead or refusing
targets to the next one."""
import os
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from ferrytest import ROOT

TOOL = os.path.join(ROOT, os.environ.get("BUILD", "build"), "tests", "tools", "smtp_send")

FULL_EHLO = ["PIPELINING", "SIZE 1000000", "8BITMIME", "SMTPUTF8", "DSN", "ENHANCEDSTATUSCODES"]


class Script:
    """How one scripted server answers. Replies are full lines without CRLF."""

    def __init__(self, **kw):
        self.greeting = "220 mx.test ESMTP"
        self.ehlo = FULL_EHLO            # None: EHLO is refused (a HELO-only server)
        self.mail = "250 2.1.0 Ok"
        self.rcpt = {}                   # address -> reply; default 250
        self.data = "354 End data with <CR><LF>.<CR><LF>"
        self.final = "250 2.0.0 Ok: queued as 42"
        self.close_at = None             # "MAIL", "RCPT", "DATA", "body": close instead of replying
        self.delay_at = None             # (command, seconds): sleep before replying
        self.stall_body = 0              # seconds to stop reading after 354
        self.max_messages = None         # close at the MAIL after this many messages
        self.idle_421_after = None       # answer 421 to the MAIL after this many messages
        self.stall_tls = 0               # answer STARTTLS 220, then say nothing for this long
        self.__dict__.update(kw)


class Server:
    def __init__(self, script):
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.received = b""              # every byte of every connection
        self.messages = []               # the raw DATA bytes, terminator included
        self.pipelined = None            # RCPT already buffered when MAIL was read
        self.connections = 0
        self.peers = []                  # client addresses, one per connection
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        self.stopping = False
        while not self.stopping:
            try:
                conn, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            self.peers.append(peer[0])
            try:
                self.session(conn)
            except (OSError, ConnectionError):
                pass
            finally:
                conn.close()

    def session(self, conn):
        s = self.script
        conn.settimeout(10)
        buf = b""

        def line():
            nonlocal buf
            while b"\r\n" not in buf:
                d = conn.recv(65536)
                if not d:
                    raise ConnectionError("closed")
                self.received += d
                buf += d
            l, buf = buf.split(b"\r\n", 1)
            return l.decode("utf-8", "replace")

        def reply(cmd, text):
            if s.delay_at and s.delay_at[0] == cmd:
                time.sleep(s.delay_at[1])
            if s.close_at == cmd:
                raise ConnectionError("scripted close")
            conn.sendall(text.encode() + b"\r\n")

        conn.sendall(s.greeting.encode() + b"\r\n")
        if not s.greeting.startswith("2"):
            line()
            return
        while True:
            l = line()
            verb = l.split(" ", 1)[0].upper()
            if verb == "EHLO":
                if s.ehlo is None:
                    reply("EHLO", "502 5.5.2 Error: command not recognized")
                else:
                    lines = ["mx.test"] + s.ehlo
                    reply("EHLO", "\r\n".join(f"250{'-' if i < len(lines) - 1 else ' '}{x}"
                                              for i, x in enumerate(lines)))
            elif verb == "HELO":
                reply("HELO", "250 mx.test")
            elif verb == "MAIL":
                if s.max_messages is not None and len(self.messages) >= s.max_messages:
                    raise ConnectionError("scripted close after max_messages")
                if s.idle_421_after is not None and len(self.messages) >= s.idle_421_after:
                    conn.sendall(b"421 4.4.2 mx.test idle timeout, closing\r\n")
                    return
                time.sleep(0.2)
                if self.pipelined is None:
                    self.pipelined = b"RCPT TO" in buf
                    if not self.pipelined:
                        conn.setblocking(False)
                        try:
                            more = conn.recv(65536)
                            self.received += more
                            buf += more
                            self.pipelined = b"RCPT TO" in more
                        except BlockingIOError:
                            pass
                        conn.setblocking(True)
                        conn.settimeout(10)
                reply("MAIL", s.mail)
            elif verb == "RCPT":
                addr = l.split("<", 1)[1].split(">", 1)[0]
                reply("RCPT", s.rcpt.get(addr, "250 2.1.5 Ok"))
            elif verb == "DATA":
                reply("DATA", s.data)
                if not s.data.startswith("354"):
                    continue
                if s.stall_body:
                    time.sleep(s.stall_body)
                    return
                data = b""
                while not (data == b".\r\n" or data.endswith(b"\r\n.\r\n")):
                    if s.close_at == "body" and len(data) > 0:
                        raise ConnectionError("scripted close")
                    while not buf:
                        d = conn.recv(65536)
                        if not d:
                            raise ConnectionError("closed")
                        self.received += d
                        buf += d
                    take = buf.find(b"\r\n") + 2 if b"\r\n" in buf else len(buf)
                    data += buf[:take]
                    buf = buf[take:]
                self.messages.append(data)
                reply("final", s.final)
            elif verb == "BDAT":
                parts = l.split()
                size = int(parts[1])
                while len(buf) < size:
                    d = conn.recv(65536)
                    if not d:
                        raise ConnectionError("closed")
                    self.received += d
                    buf += d
                self.messages.append(buf[:size])
                buf = buf[size:]
                self.bdat_last = len(parts) > 2 and parts[2].upper() == "LAST"
                reply("final", s.final)
            elif verb == "STARTTLS" and s.stall_tls:
                reply("STARTTLS", "220 2.0.0 Ready to start TLS")
                time.sleep(s.stall_tls)
                return
            elif verb == "RSET":
                reply("RSET", "250 2.0.0 Ok")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            else:
                reply(verb, "502 5.5.2 Error: command not recognized")

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


def send(targets, rcpts, message, *extra, timeout_ms=None, expect_rc=0):
    """targets: [(host, port)]; rcpts: [addr or (addr, [extra args])]. Returns
    (header line, {addr: (result, relayed, text, reply)}, order)."""
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(message)
        path = f.name
    try:
        args = [TOOL, "--helo", "client.test", "--from", "alice@client.test"]
        for host, port in targets:
            args += ["--target", f"{host}=127.0.0.1:{port}"]
        for r in rcpts:
            if isinstance(r, tuple):
                args += ["--rcpt", r[0]] + r[1]
            else:
                args += ["--rcpt", r]
        if timeout_ms:
            args += ["--timeout", str(timeout_ms), "--connect-timeout", str(timeout_ms)]
        args += list(extra) + [path]
        p = subprocess.run(args, capture_output=True, timeout=60)
    finally:
        os.unlink(path)
    assert p.returncode == expect_rc, f"smtp_send exited {p.returncode}: {p.stderr!r} {p.stdout!r}"
    send.stderr = p.stderr.decode()
    out = p.stdout.decode()
    lines = out.splitlines()
    res, order = {}, []
    i = 1
    while i < len(lines):
        addr, result, relayed = lines[i].split(" ")
        addr = addr.strip("<>")
        text = lines[i + 1].split(": ", 1)[1] if ": " in lines[i + 1] else ""
        reply = lines[i + 2].split(": ", 1)[1] if ": " in lines[i + 2] else ""
        res[addr] = (result, relayed == "relayed=1", text, reply)
        order.append(addr)
        i += 3
    return lines[0], res, order


MSG = (b"Subject: test\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n.\r\nlast line without end")
MSG_ON_WIRE = (b"Subject: test\r\n\r\nline one\r\n..leading dot\r\n...two dots\r\n..\r\n"
               b"last line without end\r\n.\r\n")


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SmtpClient(unittest.TestCase):
    def serve(self, **kw):
        srv = Server(Script(**kw))
        self.addCleanup(srv.stop)
        return srv

    def test_accept_all_pipelined(self):
        srv = self.serve()
        head, res, order = send([("mx.test", srv.port)], ["bob@b.test", "carol@b.test"], MSG)
        self.assertEqual(head.split(" txn=")[0], f"remote=mx.test ip=127.0.0.1 tried=1")
        self.assertEqual(order, ["bob@b.test", "carol@b.test"])
        for a in order:
            result, relayed, text, reply = res[a]
            self.assertEqual(result, "ok")
            self.assertEqual(reply, "250 2.0.0 Ok: queued as 42")
            self.assertEqual(text, "2.0.0 host mx.test[127.0.0.1] said: 250 2.0.0 Ok: queued as 42 "
                                   "(in reply to end of DATA)")
            self.assertFalse(relayed)
        self.assertTrue(srv.pipelined, "MAIL, RCPT and DATA were not sent together")
        self.assertEqual(srv.messages, [MSG_ON_WIRE])
        self.assertEqual(srv.received,
                         b"EHLO client.test\r\n"
                         b"MAIL FROM:<alice@client.test> SIZE=%d\r\n" % len(MSG) +
                         b"RCPT TO:<bob@b.test>\r\nRCPT TO:<carol@b.test>\r\nDATA\r\n" + MSG_ON_WIRE +
                         b"QUIT\r\n")

    def test_no_pipelining_one_at_a_time(self):
        srv = self.serve(ehlo=["SIZE", "8BITMIME"])
        head, res, _ = send([("mx.test", srv.port)], ["bob@b.test"], b"hi\r\n")
        self.assertEqual(res["bob@b.test"][0], "ok")
        self.assertFalse(srv.pipelined, "the client pipelined to a server without PIPELINING")
        self.assertEqual(srv.received, b"EHLO client.test\r\nMAIL FROM:<alice@client.test> SIZE=4\r\n"
                                       b"RCPT TO:<bob@b.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")

    def test_one_recipient_deferred_one_refused(self):
        for ehlo in (FULL_EHLO, ["8BITMIME"]):
            with self.subTest(pipelining="PIPELINING" in ehlo):
                srv = self.serve(ehlo=ehlo, rcpt={"later@b.test": "450 4.2.1 mailbox busy",
                                                  "nobody@b.test": "550-5.1.1 no such user\r\n550 5.1.1 really"})
                _, res, _ = send([("mx.test", srv.port)], ["bob@b.test", "later@b.test", "nobody@b.test"], b"x\r\n")
                self.assertEqual(res["bob@b.test"][0], "ok")
                self.assertEqual(res["later@b.test"][:1], ("defer",))
                self.assertEqual(res["later@b.test"][2], "4.2.1 host mx.test[127.0.0.1] said: "
                                                         "450 4.2.1 mailbox busy (in reply to RCPT TO)")
                self.assertEqual(res["later@b.test"][3], "450 4.2.1 mailbox busy")
                self.assertEqual(res["nobody@b.test"][0], "fail")
                self.assertEqual(res["nobody@b.test"][3], "550 5.1.1 no such user 5.1.1 really")
                self.assertTrue(res["nobody@b.test"][2].startswith("5.1.1 "))
                self.assertEqual(len(srv.messages), 1)

    def test_all_recipients_refused_no_data(self):
        srv = self.serve(ehlo=["8BITMIME"], rcpt={"a@b.test": "550 5.1.1 no"})
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n")
        self.assertEqual(res["a@b.test"][0], "fail")
        self.assertNotIn(b"DATA", srv.received)
        self.assertTrue(srv.received.endswith(b"RCPT TO:<a@b.test>\r\nQUIT\r\n"))

    def test_mail_refused(self):
        for ehlo in (FULL_EHLO, ["8BITMIME"]):
            with self.subTest(pipelining="PIPELINING" in ehlo):
                srv = self.serve(ehlo=ehlo, mail="553 5.7.1 sender rejected",
                                 data="554 5.5.1 Error: no valid recipients",
                                 rcpt={"a@b.test": "503 5.5.1 need MAIL", "b@b.test": "503 5.5.1 need MAIL"})
                _, res, _ = send([("mx.test", srv.port)], ["a@b.test", "b@b.test"], b"x\r\n")
                for a in ("a@b.test", "b@b.test"):
                    self.assertEqual(res[a][0], "fail")
                    self.assertEqual(res[a][2], "5.7.1 host mx.test[127.0.0.1] said: 553 5.7.1 sender rejected "
                                                "(in reply to MAIL FROM)")
                self.assertEqual(srv.messages, [])
                self.assertTrue(srv.received.endswith(b"QUIT\r\n"))
                self.assertEqual(srv.connections, 1)

    def test_temporary_mail_failure_defers(self):
        srv = self.serve(ehlo=["8BITMIME"], mail="451 4.3.0 try later")
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n")
        self.assertEqual(res["a@b.test"][0], "defer")
        self.assertEqual(res["a@b.test"][3], "451 4.3.0 try later")

    def test_helo_only_server(self):
        srv = self.serve(ehlo=None)
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n", "--ret", "full", "--envid", "e1")
        self.assertEqual(res["a@b.test"][0], "ok")
        # no ESMTP parameters to a server that did not take EHLO
        self.assertEqual(srv.received, b"EHLO client.test\r\nHELO client.test\r\nMAIL FROM:<alice@client.test>\r\n"
                                       b"RCPT TO:<a@b.test>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")

    def test_final_reply_applies_to_all(self):
        srv = self.serve(final="552 5.3.4 message too big for policy")
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test", "b@b.test"], b"x\r\n")
        for a in ("a@b.test", "b@b.test"):
            self.assertEqual(res[a][0], "fail")
            self.assertEqual(res[a][3], "552 5.3.4 message too big for policy")

    def test_size_limit_refused_early(self):
        srv = self.serve(ehlo=["SIZE 10", "PIPELINING", "8BITMIME"])
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x" * 11 + b"\r\n")
        self.assertEqual(res["a@b.test"][0], "fail")
        self.assertTrue(res["a@b.test"][2].startswith("5.3.4 "), res["a@b.test"][2])
        self.assertEqual(res["a@b.test"][3], "")
        self.assertNotIn(b"MAIL", srv.received)

    def test_8bit_and_smtputf8(self):
        srv = self.serve(ehlo=["PIPELINING"])
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"caf\xc3\xa9\r\n", "--8bit")
        self.assertEqual(res["a@b.test"][0], "fail")
        self.assertTrue(res["a@b.test"][2].startswith("5.6.3 "), res["a@b.test"][2])
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n", "--smtputf8")
        self.assertEqual(res["a@b.test"][0], "fail")
        self.assertTrue(res["a@b.test"][2].startswith("5.6.7 "), res["a@b.test"][2])
        self.assertNotIn(b"MAIL", srv.received)
        srv2 = self.serve()
        _, res, _ = send([("mx.test", srv2.port)], ["a@b.test"], b"caf\xc3\xa9\r\n", "--8bit", "--smtputf8")
        self.assertEqual(res["a@b.test"][0], "ok")
        self.assertIn(b"MAIL FROM:<alice@client.test> SIZE=7 BODY=8BITMIME SMTPUTF8\r\n", srv2.received)
        self.assertEqual(srv2.messages, [b"caf\xc3\xa9\r\n.\r\n"])

    def test_requiretls_never_leaves_in_clear(self):
        srv = self.serve(ehlo=FULL_EHLO + ["REQUIRETLS"])
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n", "--requiretls")
        self.assertEqual(res["a@b.test"][0], "fail")
        self.assertTrue(res["a@b.test"][2].startswith("5.7.10 "), res["a@b.test"][2])
        self.assertNotIn(b"MAIL", srv.received)

    def test_dsn_parameters(self):
        rcpts = [("a@b.test", ["--notify", "SUCCESS,FAILURE", "--orcpt", "A+x@b.test"]),
                 ("c@b.test", ["--notify", "NEVER"])]
        srv = self.serve()
        _, res, _ = send([("mx.test", srv.port)], rcpts, b"x\r\n", "--ret", "hdrs", "--envid", "id=1")
        self.assertIn(b"MAIL FROM:<alice@client.test> SIZE=3 RET=HDRS ENVID=id+3D1\r\n"
                      b"RCPT TO:<a@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A+2Bx@b.test\r\n"
                      b"RCPT TO:<c@b.test> NOTIFY=NEVER\r\n", srv.received)
        self.assertFalse(res["a@b.test"][1])
        # a peer without DSN gets none of them, and Ferry owes the success DSN itself
        srv2 = self.serve(ehlo=["PIPELINING"])
        _, res, _ = send([("mx.test", srv2.port)], rcpts, b"x\r\n", "--ret", "hdrs", "--envid", "id=1")
        self.assertIn(b"MAIL FROM:<alice@client.test>\r\nRCPT TO:<a@b.test>\r\nRCPT TO:<c@b.test>\r\n",
                      srv2.received)
        self.assertTrue(res["a@b.test"][1])
        self.assertFalse(res["c@b.test"][1])

    def test_close_mid_transaction(self):
        for where in ("RCPT", "DATA", "body", "final"):
            with self.subTest(close_at=where):
                srv = self.serve(close_at=where, rcpt={"x@b.test": "550 5.1.1 no"})
                _, res, _ = send([("mx.test", srv.port)], ["x@b.test", "a@b.test"], b"hello\r\nworld\r\n")
                self.assertEqual(res["a@b.test"][0], "defer", res)
                self.assertTrue(res["a@b.test"][2].startswith("4.4.2 lost the connection with mx.test[127.0.0.1]"),
                                res["a@b.test"][2])
                # a refusal received before the close stands
                if where != "RCPT":
                    self.assertEqual(res["x@b.test"][0], "fail")
                # no other target is tried once the transaction began
                self.assertEqual(srv.connections, 1)

    def test_slow_server_times_out(self):
        srv = self.serve(delay_at=("final", 3))
        t0 = time.time()
        head, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n", timeout_ms=700)
        self.assertLess(time.time() - t0, 3)
        self.assertEqual(res["a@b.test"][0], "defer")
        self.assertEqual(res["a@b.test"][2], "4.4.2 timeout waiting for the reply to the end of the message data "
                                             "from mx.test[127.0.0.1]")

    def test_stalled_tls_handshake_is_a_failed_handshake(self):
        # The server takes STARTTLS and never answers the ClientHello: the hook
        # TLS-RPT counts with hears of it (timed out, from which local address),
        # and the target fails like any failed handshake.
        srv = self.serve(ehlo=FULL_EHLO + ["STARTTLS"], stall_tls=5)
        head, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n", "--tls", "must", timeout_ms=700)
        self.assertIn("tls=handshake timed out", head)
        self.assertEqual(res["a@b.test"][:1], ("defer",))
        self.assertEqual(res["a@b.test"][2], "4.7.5 TLS handshake with mx.test[127.0.0.1] timed out")
        self.assertIn("hook: handshake-failed target=0 timed_out=1 local=127.0.0.1\n", send.stderr)

    def test_stalled_data_times_out(self):
        srv = self.serve(ehlo=["PIPELINING", "SIZE"], stall_body=4)
        body = b"y" * 998 + b"\r\n"
        t0 = time.time()
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], body * 16000, timeout_ms=700)
        self.assertLess(time.time() - t0, 4)
        self.assertEqual(res["a@b.test"][0], "defer")
        self.assertEqual(res["a@b.test"][2], "4.4.2 timeout sending the message data to mx.test[127.0.0.1] "
                                             "(no progress for 700 ms)")

    def test_source_address(self):
        srv = self.serve()
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], b"x\r\n", "--source", "127.0.0.2")
        self.assertEqual(res["a@b.test"][0], "ok")
        self.assertEqual(srv.peers, ["127.0.0.2"])

    def test_slow_greeting_moves_to_next_target(self):
        slow = self.serve(delay_at=("EHLO", 3))
        good = self.serve()
        head, res, _ = send([("slow.test", slow.port), ("good.test", good.port)], ["a@b.test"], b"x\r\n",
                            timeout_ms=700)
        self.assertEqual(head.split(" txn=")[0], "remote=good.test ip=127.0.0.1 tried=2")
        self.assertEqual(res["a@b.test"][0], "ok")

    def test_fallback_over_dead_and_refusing_targets(self):
        refusing = self.serve(greeting="554 5.7.1 no service for you")
        good = self.serve()
        head, res, _ = send([("dead.test", dead_port()), ("refusing.test", refusing.port), ("good.test", good.port)],
                            ["a@b.test"], b"x\r\n")
        self.assertEqual(head.split(" txn=")[0], "remote=good.test ip=127.0.0.1 tried=3")
        self.assertEqual(res["a@b.test"][0], "ok")
        self.assertEqual(len(good.messages), 1)
        self.assertEqual(refusing.received, b"QUIT\r\n")

    def test_all_targets_fail(self):
        # a temporary failure anywhere keeps the message for a retry
        refusing = self.serve(greeting="554 5.7.1 no service")
        head, res, _ = send([("refusing.test", refusing.port), ("dead.test", dead_port())], ["a@b.test"], b"x\r\n")
        self.assertEqual(res["a@b.test"][0], "defer")
        self.assertTrue(res["a@b.test"][2].startswith("4.4.1 cannot connect to dead.test[127.0.0.1]"),
                        res["a@b.test"][2])
        # only permanent failures: a bounce
        r2 = self.serve(greeting="554 5.7.1 no service")
        head, res, _ = send([("refusing.test", r2.port)], ["a@b.test"], b"x\r\n")
        self.assertEqual(res["a@b.test"][0], "fail")
        self.assertEqual(res["a@b.test"][2], "5.7.1 host refusing.test[127.0.0.1] refused to talk to us: "
                                             "554 5.7.1 no service")

    def test_chunking_sends_one_bdat_last_unstuffed(self):
        """A peer offering CHUNKING gets the stored octets as they are in one
        BDAT ... LAST after the RCPT replies: no dot-stuffing, no DATA."""
        srv = self.serve(ehlo=["PIPELINING", "CHUNKING", "8BITMIME"], rcpt={"gone@b.test": "550 5.1.1 no"})
        stored = b"Subject: t\r\n\r\n.leading dot\r\nbody\r\n"
        head, res, order = send([("mx.test", srv.port)], ["bob@b.test", "gone@b.test"], stored)
        self.assertEqual(res["bob@b.test"][0], "ok", res)
        self.assertIn("(in reply to BDAT LAST)", res["bob@b.test"][2])
        self.assertEqual(res["gone@b.test"][0], "fail", res)
        self.assertEqual(srv.messages, [stored])
        self.assertTrue(srv.bdat_last)
        self.assertNotIn(b"DATA\r\n", srv.received)
        self.assertIn(b"BDAT %d LAST\r\n" % len(stored), srv.received)

    def test_chunking_with_every_rcpt_refused_sends_no_bdat(self):
        srv = self.serve(ehlo=["PIPELINING", "CHUNKING"], rcpt={"gone@b.test": "550 5.1.1 no"})
        _, res, _ = send([("mx.test", srv.port)], ["gone@b.test"], b"x\r\n")
        self.assertEqual(res["gone@b.test"][0], "fail")
        self.assertNotIn(b"BDAT", srv.received)
        self.assertEqual(srv.messages, [])

    def test_large_message_streams(self):
        body = b"".join(b".line %06d " % i + b"x" * 60 + b"\r\n" for i in range(20000))
        srv = self.serve(ehlo=["PIPELINING", "SIZE 0", "8BITMIME"])   # SIZE 0: no fixed limit
        _, res, _ = send([("mx.test", srv.port)], ["a@b.test"], body)
        self.assertEqual(res["a@b.test"][0], "ok")
        self.assertEqual(srv.messages, [b"".join(b"." + l + b"\r\n" for l in body.split(b"\r\n")[:-1]) + b".\r\n"])

    def run_repeat(self, srv, rcpts, n, *extra):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(MSG)
            path = f.name
        self.addCleanup(os.unlink, path)
        args = [TOOL, "--helo", "client.test", "--from", "alice@client.test",
                "--target", f"mx.test=127.0.0.1:{srv.port}", "--repeat", str(n)]
        for r in rcpts:
            args += ["--rcpt", r]
        p = subprocess.run(args + list(extra) + [path], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return [l for l in p.stdout.decode().splitlines() if l.startswith("remote=")], p.stdout.decode()

    def test_connection_reuse(self):
        """Three messages, one connection: MAIL follows the previous final reply
        directly (no RSET), and QUIT comes once, at the end."""
        srv = self.serve()
        heads, out = self.run_repeat(srv, ["a@b.test"], 3)
        self.assertEqual(len(heads), 3, out)
        self.assertEqual([h.split(" txn=")[1].split(" ")[0] for h in heads], ["1", "2", "3"])
        self.assertNotIn("unattempted=1", out)
        self.assertEqual(out.count("<a@b.test> ok"), 3, out)
        self.assertEqual(srv.connections, 1)
        self.assertEqual(len(srv.messages), 3)
        self.assertEqual(srv.received.count(b"EHLO"), 1)
        self.assertEqual(srv.received.count(b"QUIT"), 1)
        self.assertNotIn(b"RSET", srv.received)

    def test_reuse_after_rejected_transaction_sends_rset(self):
        """A transaction that ends without a final dot (every RCPT refused) leaves
        the server's transaction open: the next one begins with RSET."""
        srv = self.serve(ehlo=["SIZE 1000000", "8BITMIME"], rcpt={"bad@b.test": "550 5.1.1 no such user"})
        heads, out = self.run_repeat(srv, ["bad@b.test"], 2)
        self.assertEqual(len(heads), 2, out)
        self.assertEqual(out.count("<bad@b.test> fail"), 2, out)
        self.assertEqual(srv.connections, 1)
        self.assertEqual(srv.received.count(b"RSET\r\n"), 1)
        self.assertLess(srv.received.index(b"RSET"), srv.received.rindex(b"MAIL FROM"))
        self.assertEqual(srv.messages, [])

    def test_reused_session_closed_by_peer_is_not_attempted(self):
        """The server closes the connection instead of answering the second MAIL:
        that message reports unattempted (to be retried on a new connection)."""
        srv = self.serve(ehlo=["SIZE 1000000", "8BITMIME"], max_messages=1)
        heads, out = self.run_repeat(srv, ["a@b.test"], 2, "--timeout", "3000")
        self.assertEqual(len(heads), 2, out)
        self.assertIn("unattempted=0", heads[0])
        self.assertIn("unattempted=1", heads[1])
        self.assertIn("open=0", heads[1])
        self.assertEqual(out.count("<a@b.test> ok"), 1, out)
        self.assertEqual(out.count("<a@b.test> defer"), 1, out)
        self.assertEqual(len(srv.messages), 1)
    def test_421_to_mail_on_a_reused_session_is_not_attempted(self):
        """RFC 5321 §3.8: a server that timed the cached connection out answers
        421; the message was not taken and goes again on a new connection."""
        srv = self.serve(ehlo=["SIZE 1000000", "8BITMIME"], idle_421_after=1)
        heads, out = self.run_repeat(srv, ["a@b.test"], 2, "--timeout", "3000")
        self.assertEqual(len(heads), 2, out)
        self.assertIn("unattempted=1", heads[1])
        self.assertIn("4.4.2 the reused connection was closed by the server (421)", out)


if __name__ == "__main__":
    unittest.main()
