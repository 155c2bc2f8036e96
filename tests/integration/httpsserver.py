"""nginx from Debian as the test HTTPS server (MTA-STS policy hosts, TLS-RPT
endpoints): one private instance on a loopback address, serving files from a
directory with a test CA's certificate. Run without a master process, its pid,
logs and temporary files in its own directory; stopped by its pid."""
import os
import shutil
import socket
import subprocess
import time

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class NginxServer:
    def __init__(self, d, addr, port, cert, key, extra_locations=""):
        self.dir, self.addr, self.port = d, addr, port
        self.root = os.path.join(d, "www")
        os.makedirs(self.root, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    types {{ text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    server {{
        listen {addr}:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {self.root};
        {extra_locations}
    }}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-c", conf, "-p", d], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((addr, port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("nginx exited: " + self.proc.stderr.read().decode(errors="replace"))
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start")

    def put(self, path, data):
        full = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
