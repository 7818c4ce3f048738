#!/usr/bin/env bash
# Signed requests (RFC 9421) through a real nginx: auth_request to tradeauth with the
# example config of deploy/nginx-forward-auth.conf, an upstream that checks each body
# against X-Auth-Content-Digest with deploy/content_digest.py, and a bot that signs with
# the PyPI and npm `http-message-signatures` packages (tests/nginx/signed_client.py).
# Needs nginx, python3 (with tests/signers/requirements.txt), node (npm ci --prefix
# tests/js) and curl; run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."

require() {
    if ! command -v "$1" >/dev/null 2>&1; then
        if [ "${TRADEAUTH_TEST_REQUIRE_SERVICES:-}" = 1 ]; then
            echo "signed nginx test: $1 is not installed" >&2; exit 1
        fi
        echo "!!! signed nginx test SKIPPED: $1 is not installed (set TRADEAUTH_TEST_REQUIRE_SERVICES=1 to fail instead)" >&2
        exit 0
    fi
}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || require nginx
require python3
require node
require curl
python3 -c 'import http_message_signatures' || { echo "signed nginx test: pip install -r tests/signers/requirements.txt" >&2; exit 1; }
[ -d tests/js/node_modules/http-message-signatures ] || { echo "signed nginx test: npm ci --prefix tests/js" >&2; exit 1; }

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
    TRADEAUTH_SECRET_KEY="$(python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')" \
    TRADEAUTH_LOG_FORMAT=json TRADEAUTH_RATE_LIMIT=off "$BIN" serve >"$work/tradeauth.log" 2>&1 &
pids+=($!)
python3 tests/nginx/signed_upstream.py "$APP_PORT" &
pids+=($!)

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

python3 tests/nginx/signed_client.py "http://127.0.0.1:$NGINX_PORT" || {
    echo "--- nginx error.log" >&2; cat "$work/error.log" >&2 || true
    echo "--- tradeauth log (last 20 lines)" >&2; tail -20 "$work/tradeauth.log" >&2 || true
    exit 1
}
