"""dkimpy as an oracle, run by Debian's own /usr/bin/python3 (where python3-dkim and
python3-nacl live), whatever interpreter runs the tests.

  verify RECORDS.json < msg         prints pass or fail (keys from the JSON map, no DNS)
  sign SEL DOMAIN KEYFILE ALGO HEADER_CANON BODY_CANON [length] < msg   prints the DKIM-Signature field
  arcsign SEL DOMAIN KEYFILE SRVID < msg   prints the message with dkimpy's next ARC set on top
  arcverify RECORDS.json < msg      prints dkimpy's chain result (pass, fail or none)
  edkey                             prints "private-base64 public-base64" of a new ed25519 key
"""
import base64
import json
import sys

import dkim


def records_dns(path):
    """A dkimpy dnsfunc answering TXT lookups from a JSON map of name -> record."""
    records = json.load(open(path))

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        text = records.get(name.rstrip("."))
        return text.encode() if text else None
    return dnsfunc


def main():
    cmd = sys.argv[1]
    if cmd == "verify":
        print("pass" if dkim.verify(sys.stdin.buffer.read(), dnsfunc=records_dns(sys.argv[2])) else "fail")
    elif cmd == "sign":
        sel, domain, keyfile, algo, hc, bc = sys.argv[2:8]
        length = len(sys.argv) > 8 and sys.argv[8] == "length"      # l= (RFC 6376 3.5)
        sig = dkim.sign(sys.stdin.buffer.read(), sel.encode(), domain.encode(), open(keyfile, "rb").read(),
                        canonicalize=(hc.encode(), bc.encode()), signature_algorithm=algo.encode(),
                        length=length)
        sys.stdout.buffer.write(sig)
    elif cmd == "arcsign":
        sel, domain, keyfile, srv = sys.argv[2:6]
        msg = sys.stdin.buffer.read()
        fields = dkim.arc_sign(msg, sel.encode(), domain.encode(), open(keyfile, "rb").read(), srv.encode())
        if not fields:
            sys.exit("dkimpy added no ARC set")
        sys.stdout.buffer.write(b"".join(fields) + msg)
    elif cmd == "arcverify":
        cv, _, why = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=records_dns(sys.argv[2]))
        print((cv or b"fail").decode(), why)    # dkimpy gives None for a chain it stops on
    elif cmd == "edkey":
        import nacl.signing
        sk = nacl.signing.SigningKey.generate()
        print(base64.b64encode(bytes(sk)).decode(), base64.b64encode(bytes(sk.verify_key)).decode())
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
