#!/usr/bin/env bash
# The browser tests: headless Debian Chromium (playwright-core, never a downloaded browser)
# against the real tradeauth binary, behind nginx over HTTPS where a test asks for it.
#
#   TRADEAUTH_BIN=target/debug/tradeauth bash tests/browser/run.sh [test files...]
#
# Installs what is missing (Debian's chromium, nginx, openssl, node; the npm packages with
# `npm ci`), builds nothing (the binary comes from TRADEAUTH_BIN, default
# target/debug/tradeauth), runs without a terminal or stdin (CI=true), and fails when a
# piece is missing: a browser test is never skipped. Screenshots and logs go to
# tests/browser/artifacts/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export DEBIAN_FRONTEND=noninteractive

die() { echo "browser tests: $*" >&2; exit 1; }

apt_updated=
apt_install() {
    # $1: the file or command to look for, rest: the Debian packages providing it.
    local want=$1; shift
    if [ -x "$want" ] || command -v "$want" >/dev/null 2>&1; then return; fi
    echo "== installing $* (for the browser tests)"
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo -n)
    if [ -z "$apt_updated" ]; then
        "${sudo[@]}" apt-get update -qq >/dev/null || die "apt-get update failed"
        apt_updated=1
    fi
    "${sudo[@]}" apt-get install -y -qq "$@" </dev/null >/dev/null || die "could not install $*"
    [ -x "$want" ] || command -v "$want" >/dev/null 2>&1 || die "$want still missing after installing $*"
}

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -z "${CHROMIUM_PATH:-}" ]; then apt_install /usr/bin/chromium chromium; fi
[ -x "$chromium" ] || die "Chromium is not at $chromium (apt-get install chromium, or set CHROMIUM_PATH)"
if [ -z "${NGINX_PATH:-}" ] && ! [ -x /usr/sbin/nginx ]; then apt_install /usr/sbin/nginx nginx-light; fi
apt_install openssl openssl
apt_install node nodejs npm
command -v npm >/dev/null 2>&1 || apt_install npm npm

bin=${TRADEAUTH_BIN:-target/debug/tradeauth}
case $bin in /*) ;; *) bin="$root/$bin" ;; esac
[ -x "$bin" ] || die "no tradeauth binary at $bin: build it first (cargo build) or set TRADEAUTH_BIN"
export TRADEAUTH_BIN=$bin

echo "== npm ci (tests/browser)"
# playwright-core downloads nothing on install; the variable makes sure of it.
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$here" --no-audit --no-fund --loglevel=error </dev/null >/dev/null \
    || die "npm ci failed"

echo "== $("$chromium" --version 2>/dev/null || echo "chromium (version unknown)"), $(nginx -v 2>&1 || /usr/sbin/nginx -v 2>&1), node $(node --version)"
cd "$here"
mkdir -p artifacts
if [ $# -eq 0 ]; then set -- ./*.test.mjs; fi
# One test file at a time: each starts its own Chromium and servers, and the machine is small.
exec node --test --test-concurrency=1 --test-timeout=300000 --test-force-exit "$@" </dev/null
