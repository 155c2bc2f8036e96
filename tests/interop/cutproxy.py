"""The fault injector of the mid-DATA cells: a TCP proxy on its own loopback
address that passes an SMTP session between two real servers and, once armed,
cuts the next session after the client has sent a given number of octets.

The endpoints stay real (Ferry and a peer, TLS and all: the proxy only counts
octets, it cannot read them), so the cut lands mid-DATA when the message is much
larger than what precedes it: a 300 KB message cut after 100 KB is cut in its
body whatever the greeting, EHLO, STARTTLS handshake and envelope took. The
proxy connects to the server from the client's own address (a source bind on
loopback), so the server sees the same client as without it (SPF, relay rights).
Every session after the cut one passes whole: the retry goes through."""
import socket
import threading


class CutProxy:
    def __init__(self, address, port=25):
        self.address, self.port = address, port
        self.upstream = None          # (host, port) to forward to
        self.cut_after = None         # armed: octets from the client before the cut
        self.cuts = 0                 # sessions cut so far
        self.sessions = 0
        self.lock = threading.Lock()
        self.sock = None

    def start(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.address, self.port))
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
            self.sock = None

    def arm(self, upstream, cut_after):
        """Forward to upstream (host, port); cut the next session after cut_after octets from the client."""
        with self.lock:
            self.upstream, self.cut_after = upstream, cut_after

    def _accept(self):
        while True:
            try:
                client, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                upstream, limit = self.upstream, self.cut_after
                self.cut_after = None           # only the first session after arm() is cut
                self.sessions += 1
            threading.Thread(target=self._session, args=(client, peer[0], upstream, limit), daemon=True).start()

    def _session(self, client, client_ip, upstream, limit):
        try:
            server = socket.socket()
            server.bind((client_ip, 0))
            server.settimeout(30)
            server.connect(upstream)
            server.settimeout(None)
        except (OSError, TypeError):
            client.close()
            return
        def close_both():
            for s in (client, server):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        def pump(src, dst, budget):
            sent = 0
            try:
                while True:
                    data = src.recv(16384)
                    if not data:
                        dst.shutdown(socket.SHUT_WR)
                        return
                    if budget is not None and sent + len(data) >= budget:
                        dst.sendall(data[:max(0, budget - sent)])
                        with self.lock:
                            self.cuts += 1
                        close_both()
                        return
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                close_both()

        up = threading.Thread(target=pump, args=(client, server, limit), daemon=True)
        up.start()
        pump(server, client, None)
        up.join(60)
        client.close()
        server.close()
