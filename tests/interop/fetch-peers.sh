#!/bin/sh
# Fetch Debian's Exim 4 and OpenSMTPD for the interop suite into a private tree
# (build/peers, or $FERRY_PEERS), without installing them: Debian's postfix,
# exim4-daemon-light and opensmtpd each conflict with mail-transport-agent, and
# Postfix is the one installed. The packages are unpacked with dpkg -x; the
# suite runs the daemons from there on private configurations. Their shared
# libraries are ordinary packages (install-deps.sh installs them); the system
# users the daemons switch to are created here.
# Idempotent and silent when everything is present. Called by install-deps.sh.
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${FERRY_PEERS:-$ROOT/build/peers}
PKGS="exim4-daemon-light exim4-base exim4-config opensmtpd"
USERS="Debian-exim opensmtpd opensmtpq"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

need_users=""
for u in $USERS; do
    getent passwd "$u" >/dev/null 2>&1 || need_users="$need_users $u"
done
if [ -x "$DEST/usr/sbin/exim4" ] && [ -x "$DEST/usr/sbin/smtpd" ] && [ -s "$DEST/VERSIONS" ] \
        && [ -z "$need_users" ]; then
    exit 0
fi

for u in $need_users; do
    echo "interop peers: creating the system user $u"
    $SUDO useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin "$u"
done

if [ ! -x "$DEST/usr/sbin/exim4" ] || [ ! -x "$DEST/usr/sbin/smtpd" ] || [ ! -s "$DEST/VERSIONS" ]; then
    echo "interop peers: fetching $PKGS into $DEST"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"            # apt's _apt user writes the downloads here
    trap 'rm -rf "$tmp"' EXIT
    fetch() { (cd "$tmp" && apt-get download -q $PKGS >"$tmp/log" 2>&1); }
    if ! fetch; then
        # A fresh machine may not have the package lists yet.
        $SUDO apt-get update -qq >/dev/null 2>&1 || true
        if ! fetch; then
            echo "interop peers: cannot download $PKGS with apt-get download:" >&2
            tail -5 "$tmp/log" >&2
            echo "interop peers: the interop suite (make interop) will be skipped" >&2
            exit 1
        fi
    fi
    rm -rf "$DEST.new"
    mkdir -p "$DEST.new"
    for deb in "$tmp"/*.deb; do
        dpkg-deb -x "$deb" "$DEST.new"
        dpkg-deb -f "$deb" Package Version | paste -sd' ' | sed 's/^Package: //; s/ Version: / /' \
            >>"$DEST.new/VERSIONS"
    done
    rm -rf "$DEST"
    mv "$DEST.new" "$DEST"
fi
