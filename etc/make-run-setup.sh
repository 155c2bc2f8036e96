#!/bin/sh
# What `make run` needs besides the build, made once under ./var (run from the
# directory ferryd will run in): a self-signed certificate for localhost (for
# STARTTLS on 2525/2587 and implicit TLS on 2465) and DKIM keys for localhost
# (rsa-sha256 and ed25519-sha256, both active). Existing files are kept.
set -e
FERRYCTL=${FERRYCTL:-bin/ferryctl}
mkdir -p var/tls var/dkim/localhost
if [ ! -f var/tls/cert.pem ] || [ ! -f var/tls/key.pem ]; then
    echo "make run: making a self-signed certificate for localhost in var/tls/"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null
fi
if [ ! -f var/dkim/localhost/active ]; then
    echo "make run: making DKIM keys for localhost in var/dkim/localhost/"
    "$FERRYCTL" dkim keygen --domain localhost --selector rsa1 --out var/dkim/localhost/rsa1.key >/dev/null
    "$FERRYCTL" dkim keygen --domain localhost --selector ed1 --algo ed25519-sha256 \
        --out var/dkim/localhost/ed1.key >/dev/null
    printf 'rsa1\ned1\n' > var/dkim/localhost/active
fi
# Private keys are never world-readable (SECURITY.md, "Keys"). The TLS key is
# read by the parent alone, the DKIM keys by the key process alone (both as root
# when started as root): 0600, whoever runs make run.
chmod 600 var/tls/key.pem var/dkim/localhost/*.key
if [ "$(id -u)" = 0 ]; then
    chmod 755 var var/tls var/dkim var/dkim/localhost
fi
