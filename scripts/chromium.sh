#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; `playwright install` needs the
# internet, apt does not need Playwright's download server).
#
# Installs the `chromium` package when no chromium is on PATH and prints its path on stdout
# (everything else goes to stderr):
#
#   export RETAIN_TEST_CHROMIUM="$(scripts/chromium.sh)"
#
# Idempotent: an installed chromium is just reported. Exits non-zero, saying why on stderr,
# when it cannot (not root, no apt-get, the install fails).
set -euo pipefail

say() { echo "chromium.sh: $*" >&2; }
die() { say "$*"; exit 1; }

found() { command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null; }

if path="$(found)"; then
    echo "$path"
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "chromium is not installed and installing it needs root (uid $(id -u)); or set RETAIN_TEST_CHROMIUM to a Chromium you have"
command -v apt-get >/dev/null 2>&1 || die "chromium is not installed and there is no apt-get to install it"
say "installing chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >&2 || die "apt-get update failed"
apt-get install -y -q chromium >&2 || die "apt-get install chromium failed"
path="$(found)" || die "chromium was installed but is not on PATH"
echo "$path"
