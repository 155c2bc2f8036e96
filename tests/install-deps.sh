#!/bin/sh
# Install the Debian packages Ferry builds and tests with, when any is missing.
# Idempotent and silent when everything is present. Needs root (or sudo) only
# when something must be installed.
set -e
PKGS="build-essential pkg-config clang libssl-dev libevent-dev libldns-dev libdb5.3-dev
zlib1g-dev libidn2-dev libxml2-dev libxml2-utils libzip-dev check python3 nsd ldnsutils swaks openssl
python3-spf python3-dnspython python3-dkim python3-nacl opendkim opendkim-tools libopendmarc-dev
libnet-ssleay-perl unbound datefudge
postfix libsasl2-modules dovecot-core dovecot-lmtpd passwd util-linux
libgnutls-dane0 libgnutls30 libidn12 libidn2-0 libnsl2 libpcre2-8-0 libevent-2.1-7 libpam0g libcrypt1"
# The second line: the shared libraries of Exim and OpenSMTPD, which the interop
# suite runs unpacked (tests/interop/fetch-peers.sh), never installed.
FETCH_PEERS="$(dirname "$0")/interop/fetch-peers.sh"

# The daemon's accounts (README "Setting up"): the smtp process runs as ferry, the
# queue process as ferryq, which also holds ferry's group (the shared spool).
# The privilege-separation tests need them; other tests run as nobody.
if [ "$(id -u)" = 0 ] && command -v useradd >/dev/null 2>&1; then
    getent passwd ferry >/dev/null || useradd --system --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ferry
    getent passwd ferryq >/dev/null || useradd --system --user-group --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin ferryq
fi

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done
if [ -z "$missing" ]; then
    # A failed fetch is reported by the script; make interop then says it skips.
    sh "$FETCH_PEERS" || true
    exit 0
fi

echo "make deps: installing$missing"
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "make deps: missing packages:$missing; run as root or install them with apt-get" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nsd's and unbound's packages start system services where systemd runs; the tests start
# their own on free high ports (unbound's on 127.0.0.1:53 does not disturb them).
# Postfix and Dovecot are peers the tests run privately (tests/integration/peers.py),
# never as system services: Postfix is installed with "No configuration", which
# leaves it without a main.cf so no system instance starts.
case " $missing " in *" postfix "*)
    echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections ;;
esac
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# Dovecot's package enables and starts its service where systemd runs.
case " $missing " in *" dovecot-core "*)
    if [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    fi ;;
esac
sh "$FETCH_PEERS" || true
