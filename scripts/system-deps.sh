#!/usr/bin/env bash
# System packages the test suite talks to: Dovecot (IMAP), Chromium (browser tests), openssl (the test
# Dovecot's certificate).
# Idempotent: installs only what is missing. Needs root (apt-get); without root it says what is missing.
set -euo pipefail
missing=()
command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package enables a system Dovecot service; tests run their own instance on a free port.
if [ -x /usr/sbin/dovecot ] && pgrep -x dovecot >/dev/null 2>&1; then
  pkill -x dovecot || true
fi
