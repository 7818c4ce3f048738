#!/usr/bin/env bash
# nginx auth_request in front of tradeauth and a tiny upstream, on loopback, with the
# example config of deploy/nginx-forward-auth.conf. Checks that an unauthenticated request
# is refused, a valid token passes with the X-Auth-* headers forwarded, a logged-out
# token is refused, and a cookie session's POST to the service needs its X-CSRF-Token
# (the CSRF rules judge the original method). Needs nginx, python3 and curl; run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."

require() {
    if ! command -v "$1" >/dev/null 2>&1; then
        if [ "${TRADEAUTH_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
            echo "nginx test: $1 is not installed" >&2; exit 1
        fi
        echo "!!! nginx test SKIPPED: $1 is not installed (set TRADEAUTH_TEST_REQUIRE_SERVICES=1 to fail instead)" >&2
        exit 0
    fi
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || require nginx
require python3
require curl

BIN=${TRADEAUTH_BIN:-target/debug/tradeauth}
[ -x "$BIN" ] || cargo build --quiet
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AUTH_PORT=$(free_port); APP_PORT=$(free_port); NGINX_PORT=$(free_port)

TRADEAUTH_LISTEN=127.0.0.1:$AUTH_PORT TRADEAUTH_DATABASE_URL="sqlite://$work/t.db" \
    TRADEAUTH_TRUSTED_PROXIES=127.0.0.1/32 \
    TRADEAUTH_LOG_FORMAT=json TRADEAUTH_RATE_LIMIT=off "$BIN" serve >"$work/tradeauth.log" 2>&1 &
pids+=($!)
python3 tests/nginx/upstream.py "$APP_PORT" &
pids+=($!)

# The documented example, pointed at this run's ports and a private prefix.
sed -e "s/127.0.0.1:8080/127.0.0.1:$AUTH_PORT/; s/127.0.0.1:9000/127.0.0.1:$APP_PORT/; s/listen 8000;/listen 127.0.0.1:$NGINX_PORT;/" \
    deploy/nginx-forward-auth.conf >"$work/site.conf"
cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    fastcgi_temp_path $work/fastcgi;
    uwsgi_temp_path $work/uwsgi;
    scgi_temp_path $work/scgi;
    include $work/site.conf;
}
CONF
"$NGINX" -p "$work" -c "$work/nginx.conf"

for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$AUTH_PORT/healthz" >/dev/null && curl -s "http://127.0.0.1:$APP_PORT/" >/dev/null && break
    sleep 0.1
done

base="http://127.0.0.1:$NGINX_PORT"
fail() { echo "nginx test FAILED: $*" >&2; cat "$work/error.log" >&2 || true; exit 1; }
status() { curl -s -o "$work/body.out" -w '%{http_code}' "$@"; }

[ "$(status "$base/orders")" = 401 ] || fail "an unauthenticated request was not refused"

curl -fs "$base/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"email":"nginx@example.com","password":"x7Kp2mQa-Trd9"}' >/dev/null || fail "register through nginx"
curl -fs "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"username":"nginx@example.com","password":"x7Kp2mQa-Trd9"}' >"$work/login.json" || fail "login through nginx"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$work/login.json")
user=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["user"]["id"])' "$work/login.json")

[ "$(status "$base/orders" -H "authorization: Bearer $token")" = 200 ] || fail "a valid token did not pass"
python3 - "$work/body.out" "$user" <<'PY' || fail "the X-Auth-* headers were not forwarded"
import json, sys
got = json.load(open(sys.argv[1]))
assert got.get("x-auth-user-id") == sys.argv[2], got
assert got.get("x-auth-tier") == "2" and got.get("x-auth-role") == "trader", got
assert got.get("x-auth-session-id"), got
PY

curl -fs -X POST "$base/api/v1/auth/logout" -H "authorization: Bearer $token" >/dev/null || fail "logout through nginx"
[ "$(status "$base/orders" -H "authorization: Bearer $token")" = 401 ] || fail "a logged-out token was not refused"

# A browser session (cookie mode) through nginx: reads pass with the cookie alone; a POST
# to the service behind nginx needs the session's X-CSRF-Token, and a foreign site fails.
curl -fs -D "$work/cookie.h" "$base/api/v1/auth/login" -H 'content-type: application/json' \
    -H 'sec-fetch-site: same-origin' \
    -d '{"username":"nginx@example.com","password":"x7Kp2mQa-Trd9","token_transport":"cookie"}' >"$work/cookie.json" \
    || fail "cookie-mode login through nginx"
cookie=$(sed -n 's/^set-cookie: \(__Host-tradeauth_at=[^;]*\);.*/\1/Ip' "$work/cookie.h" | tr -d '\r')
csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$work/cookie.json")
[ -n "$cookie" ] && [ -n "$csrf" ] || fail "cookie-mode login set no access cookie or CSRF token"
[ "$(status "$base/orders" -H "cookie: $cookie")" = 200 ] || fail "a cookie session could not read through nginx"
code=$(curl -s -o /dev/null -D "$work/refused.h" -w '%{http_code}' -X POST "$base/orders" \
    -H "cookie: $cookie" -H 'sec-fetch-site: same-origin' -d 'qty=1')
[ "$code" = 403 ] || fail "a cookie POST without X-CSRF-Token passed nginx ($code)"
grep -qi '^x-auth-error: csrf_failed' "$work/refused.h" || fail "X-Auth-Error did not say csrf_failed"
[ "$(status -X POST "$base/orders" -H "cookie: $cookie" -H 'sec-fetch-site: cross-site' \
    -H 'origin: https://evil.example' -H "x-csrf-token: $csrf" -d 'qty=1')" = 403 ] \
    || fail "a cross-site cookie POST passed nginx"
[ "$(status -X POST "$base/orders" -H "cookie: $cookie" -H 'sec-fetch-site: same-origin' \
    -H "x-csrf-token: $csrf" -d 'qty=1')" = 200 ] || fail "a cookie POST with its CSRF token was refused"

echo "nginx forward-auth: 5 passed, 0 failed"
