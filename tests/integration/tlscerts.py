"""Test certificates made with the openssl command line: a CA and a server
certificate for mx.example.test and 127.0.0.1 signed by it."""
import os
import subprocess


def make_ca_and_server(d, name="server", cn="mx.example.test", ip="127.0.0.1", ec=False):
    """Returns (ca_cert, cert, key) paths in d; the key is readable by the daemon's user.
    The certificate names cn and the address ip; its key is RSA 2048, or P-256 with ec."""
    ca_key, ca_cert = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    if not os.path.exists(ca_cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", ca_key, "-out", ca_cert, "-days", "2", "-subj", "/CN=Ferry Test CA"],
                       check=True, capture_output=True)
    key, csr, cert = (os.path.join(d, f"{name}.{ext}") for ext in ("key", "csr", "pem"))
    ext = os.path.join(d, f"{name}.ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName=DNS:{cn},IP:{ip}\n")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if ec else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req"] + newkey + ["-nodes", "-keyout", key, "-out", csr,
                                                  "-subj", f"/CN={cn}"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    os.chmod(key, 0o644)        # tests run the daemon's children as nobody
    return ca_cert, cert, key
