#!/usr/bin/env bash
# tradeauth benchmarks, in one run on this machine (server and load generator share it).
#   bench/run.sh            full run: writes bench/results/latest.json and BENCHMARKS.md
#   bench/run.sh --smoke    seconds, not minutes, on the debug build: every scenario runs,
#                           nothing is written, and only "ran without errors" is checked
#                           (never a timing)
# Scenarios: /healthz (the floor), /auth/verify (Bearer and access cookie) and /auth/me
# (wrk, 64 connections), the /login and /account pages (wrk, one connection), refresh
# rotations with 32 chains, login latency next to the bare Argon2id hash, passkey sign-in
# latency (soft passkey), /auth/verify p99 while 64 clients send wrong passwords, RSS idle
# and with 100k sessions + 100k revocations, start-to-ready, login/refresh/passkey login with
# 1k and 1M users, signed requests (RFC 9421, Ed25519, every signature unique) at
# /auth/verify; then the core scenarios again on PostgreSQL + Redis when they are
# reachable. OAuth: client-credentials tokens/s and /oauth2/introspect (wrk, 64
# connections), code exchange p50 (driver), on both backends; beside them panva's
# oidc-provider (bench/oidc-peer, one Node process, production mode) with the same load
# generator: its discovery document (its floor), client-credentials tokens, introspection.
set -euo pipefail
cd "$(dirname "$0")/.."

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
if [ $SMOKE = 1 ]; then
    DUR=1s; N_LOGIN=4; FLOOD=2; SESS=1000; REV=1000; SMALL=100; BIG=2000; ROUNDS=2; RSECS_ROUND=1; N_PASSKEY=4; N_CODE=4
else
    DUR=${BENCH_DURATION:-10s}; N_LOGIN=40; FLOOD=10; SESS=100000; REV=100000; SMALL=1000; BIG=1000000; ROUNDS=5; RSECS_ROUND=3; N_PASSKEY=200; N_CODE=200
fi
# The passkey scenarios sign as a page on this origin (the soft passkey writes it into
# clientDataJSON), so the server's RP ID is `localhost` whatever port it listens on.
ORIGIN=http://localhost:8080

if ! command -v wrk >/dev/null 2>&1; then
    echo "== installing wrk"
    if [ "$(id -u)" = 0 ]; then apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null); fi
fi
command -v wrk >/dev/null || { echo "bench: wrk is required" >&2; exit 1; }
command -v node >/dev/null || { echo "bench: node is required (the oidc-provider peer)" >&2; exit 1; }
if [ ! -d bench/oidc-peer/node_modules/oidc-provider ]; then
    echo "== installing the oidc-provider peer (npm ci, bench/oidc-peer/package-lock.json)"
    npm ci --prefix bench/oidc-peer --no-audit --no-fund --silent
fi

if [ $SMOKE = 1 ]; then
    # The smoke run only proves every scenario still runs: the debug build (which CI has
    # already) is enough, and saves a release build.
    echo "== building (debug, smoke run)"
    cargo build --quiet --bin tradeauth --example bench_driver
    BIN=target/debug/tradeauth
    DRV=target/debug/examples/bench_driver
else
    echo "== building (release)"
    cargo build --release --quiet --bin tradeauth --example bench_driver
    BIN=target/release/tradeauth
    DRV=target/release/examples/bench_driver
fi
work=$(mktemp -d)
OUT="$work/results.jsonl"
PID=""
EXTRA_PIDS=""
cleanup() {
    for p in $PID $EXTRA_PIDS; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

record() { echo "$1" >>"$OUT"; echo "   $1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_server() { # $1: database URL; $2...: extra VAR=value
    local url=$1; shift
    SERVER_URL=$url; SERVER_ENV=("$@")
    PORT=$(free_port)
    env TRADEAUTH_LISTEN=127.0.0.1:$PORT TRADEAUTH_DATABASE_URL="$url" TRADEAUTH_RATE_LIMIT=off \
        TRADEAUTH_LOCKOUT_THRESHOLD=1000 TRADEAUTH_LOG_FORMAT=json RUST_LOG=warn \
        TRADEAUTH_PUBLIC_URL=$ORIGIN TRADEAUTH_ALLOWED_ORIGINS=$ORIGIN TRADEAUTH_WEBAUTHN_RP_ID=localhost "$@" \
        "$BIN" serve >"$work/server.log" 2>&1 &
    PID=$!
    BASE="http://127.0.0.1:$PORT"
    for _ in $(seq 1 300); do curl -fs "$BASE/readyz" >/dev/null 2>&1 && return; sleep 0.05; done
    echo "server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$PID/status"; }

# wrk: requests/s, p50 and p99 (ms), errors
wrk_json() { # $1 name, $2 path, $3 header or "", $4 connections (default 64)
    local name=$1 path=$2 header=${3:-} conns=${4:-64}
    local args=(-t"$((conns < 2 ? 1 : 2))" -c"$conns" -d"$DUR" --latency)
    [ -n "$header" ] && args+=(-H "$header")
    # A POST with a form body: WRK_SCRIPT=bench/post.lua, WRK_BODY and WRK_AUTH exported.
    [ -n "${WRK_SCRIPT:-}" ] && args+=(-s "$WRK_SCRIPT")
    wrk "${args[@]}" "$BASE$path" >"$work/wrk.txt"
    python3 - "$name" "$work/wrk.txt" <<'PY'
import json, re, sys
name, text = sys.argv[1], open(sys.argv[2]).read()
def ms(v):
    n, unit = float(re.match(r"([\d.]+)", v).group(1)), re.sub(r"[\d.]", "", v)
    return n * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
errors = re.search(r"Socket errors:.*", text)
print(json.dumps({f"{name}_rps": rps, f"{name}_p50_ms": p50, f"{name}_p99_ms": p99,
                  f"{name}_errors": int(non2xx.group(1)) if non2xx else 0}))
PY
}

login_token() { # $1 user, $2 password
    curl -fs "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"$1\",\"password\":\"$2\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# A cookie-mode login (as a page on $ORIGIN would make it): prints the Cookie header value
# with every cookie it set, or with only the access cookie when $3 is "access".
cookie_login() { # $1 user, $2 password, $3 "all" or "access"
    curl -fs -D - -o /dev/null "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
        -H "Origin: $ORIGIN" \
        -d "{\"username\":\"$1\",\"password\":\"$2\",\"token_transport\":\"cookie\"}" |
        python3 -c '
import sys
which = sys.argv[1]
pairs = [l.split(":", 1)[1].strip().split(";")[0] for l in sys.stdin if l.lower().startswith("set-cookie:")]
# On plain http with TRADEAUTH_COOKIE_SECURE=false the names lose the __Host- prefix.
pairs = [p for p in pairs if which == "all" or p.split("=")[0].endswith("tradeauth_at")]
assert pairs, "the cookie-mode login set no cookie"
print("; ".join(pairs))' "$3"
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# OAuth at tradeauth: a confidential first-party client (client credentials and code) made
# with the CLI on the running server's database (no admin sign-in: a password hash would
# leave its work area in the RSS figures); its tokens/s, introspections/s, code exchange p50.
oauth_scenarios() { # $1 prefix ("" or "pg_")
    local p=$1 client cid secret basic cc_token cookies
    client=$(env TRADEAUTH_DATABASE_URL="$SERVER_URL" TRADEAUTH_PUBLIC_URL=$ORIGIN TRADEAUTH_LOG_FORMAT=json \
        RUST_LOG=warn "${SERVER_ENV[@]}" "$BIN" client create --name bench --redirect-uri http://127.0.0.1/cb \
        --first-party --grant-type authorization_code --grant-type client_credentials)
    cid=$(echo "$client" | json_field client_id)
    secret=$(echo "$client" | json_field client_secret)
    basic="Basic $(printf '%s:%s' "$cid" "$secret" | base64 -w0)"
    cc_token=$(curl -fs "$BASE/oauth2/token" -H "Authorization: $basic" -d grant_type=client_credentials | json_field access_token)
    [ "$(curl -fs "$BASE/oauth2/introspect" -H "Authorization: $basic" -d "token=$cc_token" | json_field active)" = True ] ||
        { echo "bench: /oauth2/introspect does not find the client-credentials token active" >&2; exit 1; }
    echo "-- ${p}OAuth: client-credentials tokens, introspection (wrk), code exchange"
    record "$(export WRK_SCRIPT=bench/post.lua WRK_BODY=grant_type=client_credentials WRK_AUTH="$basic"; wrk_json "${p}oauth_cc" /oauth2/token)"
    record "$(export WRK_SCRIPT=bench/post.lua WRK_BODY="token=$cc_token" WRK_AUTH="$basic"; wrk_json "${p}oauth_introspect" /oauth2/introspect)"
    cookies=$(cookie_login loadtest@bench.example bench-Password-1 all)
    record "$("$DRV" code-exchange "$BASE" "$cid" "$secret" http://127.0.0.1/cb "$cookies" "$N_CODE" | sed "s/\"oauth/\"${p}oauth/g")"
}

core_scenarios() { # $1 prefix ("" or "pg_")
    local p=$1
    curl -fs "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
        -d '{"email":"loadtest@bench.example","password":"bench-Password-1"}' >/dev/null
    local token
    token=$(login_token loadtest@bench.example bench-Password-1)
    local at_cookie session_cookies code
    at_cookie=$(cookie_login loadtest@bench.example bench-Password-1 access)
    session_cookies=$(cookie_login loadtest@bench.example bench-Password-1 all)
    code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/v1/auth/verify" -H "Cookie: $at_cookie")
    [ "$code" = 204 ] || { echo "bench: /auth/verify with the access cookie answered $code" >&2; exit 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' "$BASE/account" -H "Cookie: $session_cookies")
    [ "$code" = 200 ] || { echo "bench: /account with the session cookies answered $code" >&2; exit 1; }
    echo "-- ${p}wrk /healthz, /auth/verify (Bearer, cookie), /auth/me"
    record "$(wrk_json "${p}healthz" /healthz)"
    record "$(wrk_json "${p}verify" /api/v1/auth/verify "Authorization: Bearer $token")"
    record "$(wrk_json "${p}verify_cookie" /api/v1/auth/verify "Cookie: $at_cookie")"
    record "$(wrk_json "${p}me" /api/v1/auth/me "Authorization: Bearer $token")"
    echo "-- ${p}pages /login and /account (wrk, one connection)"
    record "$(wrk_json "${p}login_page" /login "" 1)"
    record "$(wrk_json "${p}account_page" /account "Cookie: $session_cookies" 1)"
    oauth_scenarios "$p"
    echo "-- ${p}refresh chains, login latency"
    # Three rounds each, median taken: one stall of the shared host lands in one round.
    for r in 1 2 3; do
        record "$("$DRV" refresh "$BASE" loadtest@bench.example bench-Password-1 32 "$RSECS_ROUND" | sed "s/\"refresh/\"${p}rr${r}_refresh/g")"
        record "$("$DRV" login "$BASE" loadtest@bench.example bench-Password-1 "$((N_LOGIN / 2))" | sed "s/\"login/\"${p}rr${r}_login/g; s/\"bare/\"${p}rr${r}_bare/g")"
        record "$("$DRV" passkey "$BASE" loadtest@bench.example bench-Password-1 "$N_PASSKEY" | sed "s/\"passkey/\"${p}rr${r}_passkey/g")"
    done
    local cache=in-process
    [ -n "$p" ] && cache=Redis
    echo "-- ${p}signed requests at /auth/verify (every signature unique; replay cache: $cache)"
    record "$("$DRV" signed "$BASE" "$token" "${DUR%s}" 64 | sed "s/\"signed/\"${p}signed/g")"
    echo "-- ${p}verify during a login flood"
    record "$("$DRV" flood "$BASE" "$token" "$FLOOD" 64 | sed "s/\"verify/\"${p}verify/g; s/\"flood/\"${p}flood/g")"
}

echo "== SQLite"
record "$("$DRV" ready "$BIN" "$work/ready.db" | sed 's/start_to_ready_ms/start_to_ready_first_ms/')"
record "$("$DRV" ready "$BIN" "$work/ready.db")"
start_server "sqlite://$work/a.db"
record "{\"rss_idle_kb\": $(rss_kb)}"
core_scenarios ""
record "{\"rss_after_scenarios_kb\": $(rss_kb)}"
stop_server

echo "-- RSS with $SESS sessions and $REV revocations"
record "$("$DRV" seed-sessions "$work/a.db" "$SESS" "$REV")"
start_server "sqlite://$work/a.db"
record "{\"rss_loaded_kb\": $(rss_kb)}"
# One login, so the figure includes the password hasher's work area (kept after use).
login_token loadtest@bench.example bench-Password-1 >/dev/null
record "{\"rss_loaded_login_kb\": $(rss_kb)}"
stop_server

# 1k and 1M users: both servers run side by side and are measured in alternating rounds,
# so a change in the shared machine's speed moves both alike.
echo "-- login, refresh and passkey login with $SMALL and $BIG users, $ROUNDS alternating rounds"
declare -A UBASE UPID
for n in $SMALL $BIG; do
    rm -f "$work"/u$n.db*
    start_server "sqlite://$work/u$n.db"; stop_server
    record "$("$DRV" seed-users "$work/u$n.db" "$n" | sed "s/seeded_users/users_$n/; s/\"seconds\"/\"seed_seconds_$n\"/")"
done
for n in $SMALL $BIG; do
    start_server "sqlite://$work/u$n.db"
    UBASE[$n]=$BASE; UPID[$n]=$PID; EXTRA_PIDS="$EXTRA_PIDS $PID"; PID=""
done
for r in $(seq 1 "$ROUNDS"); do
    for n in $SMALL $BIG; do
        record "$("$DRV" login "${UBASE[$n]}" "seed$((n - 1))@bench.example" bench-Password-1 "$((N_LOGIN / ROUNDS))" | sed "s/\"login_/\"users${n}_r${r}_login_/g; s/\"bare_hash_ms\"/\"users${n}_r${r}_bare_hash_ms\"/")"
        record "$("$DRV" refresh "${UBASE[$n]}" "seed$((n / 2))@bench.example" bench-Password-1 4 "$RSECS_ROUND" | sed "s/\"refresh_/\"users${n}_r${r}_refresh_/g")"
        # A user of its own each round (one passkey each), in the middle of the table.
        record "$("$DRV" passkey "${UBASE[$n]}" "seed$((n / 3 + r))@bench.example" bench-Password-1 "$N_PASSKEY" | sed "s/\"passkey_/\"users${n}_r${r}_passkey_/g")"
    done
done
for n in $SMALL $BIG; do kill "${UPID[$n]}"; wait "${UPID[$n]}" 2>/dev/null || true; done
EXTRA_PIDS=""

echo "== the oidc-provider peer (bench/oidc-peer)"
PORT=$(free_port)
PEER_ID=bench-peer
PEER_SECRET=bench-peer-secret-0123456789abcdef
env NODE_ENV=production PORT=$PORT CLIENT_ID=$PEER_ID CLIENT_SECRET=$PEER_SECRET \
    node bench/oidc-peer/peer.mjs >"$work/peer.log" 2>&1 &
PID=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do curl -fs "$BASE/.well-known/openid-configuration" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fs "$BASE/.well-known/openid-configuration" >/dev/null || { echo "the peer did not start:" >&2; cat "$work/peer.log" >&2; exit 1; }
record "{\"peer_rss_idle_kb\": $(rss_kb)}"
basic="Basic $(printf '%s:%s' "$PEER_ID" "$PEER_SECRET" | base64 -w0)"
# The peer introspects only tokens it stores: an opaque one (resource urn:bench:opaque).
peer_token=$(curl -fs "$BASE/token" -H "Authorization: $basic" -d grant_type=client_credentials -d resource=urn:bench:opaque | json_field access_token)
[ "$(curl -fs "$BASE/token/introspection" -H "Authorization: $basic" -d "token=$peer_token" | json_field active)" = True ] ||
    { echo "bench: the peer does not introspect its token as active" >&2; exit 1; }
record "$(wrk_json peer_discovery /.well-known/openid-configuration)"
record "$(export WRK_SCRIPT=bench/post.lua WRK_BODY=grant_type=client_credentials WRK_AUTH="$basic"; wrk_json peer_cc /token)"
record "$(export WRK_SCRIPT=bench/post.lua WRK_BODY="token=$peer_token" WRK_AUTH="$basic"; wrk_json peer_introspect /token/introspection)"
stop_server

if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    echo "== PostgreSQL + Redis"
    schema="bench_$(date +%s)_$$"
    psql -h 127.0.0.1 -U postgres -d test -qc "CREATE SCHEMA $schema" >/dev/null
    start_server "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3D$schema" \
        TRADEAUTH_REDIS_URL=redis://127.0.0.1:6379 TRADEAUTH_REDIS_PREFIX="$schema:"
    core_scenarios "pg_"
    stop_server
    psql -h 127.0.0.1 -U postgres -d test -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
else
    echo "!!! PostgreSQL or Redis unreachable: their scenarios are skipped"
fi

python3 - "$OUT" "$SMOKE" <<'PY'
import json, math, platform, subprocess, sys, datetime, os
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
r = {}
for row in rows:
    r.update(row)
smoke = sys.argv[2] == "1"
# Rounds (users{n}_r{i}_..., rr{i}_...): the median of the rounds' figures, errors summed.
import re, statistics
rounds = {}
for k in [k for k in r if re.match(r"users\d+_r\d+_", k)]:
    m = re.match(r"users(\d+)_r(\d+)_(.+)", k)
    rounds.setdefault(f"users{m.group(1)}_{m.group(3)}", []).append(r.pop(k))
for k in [k for k in r if re.match(r"(pg_)?rr\d+_", k)]:
    m = re.match(r"(pg_)?rr(\d+)_(.+)", k)
    rounds.setdefault(f"{m.group(1) or ''}{m.group(3)}", []).append(r.pop(k))
for k, vs in rounds.items():
    r[k] = sum(vs) if k.endswith("_errors") else statistics.median(vs)
bad = [k for k, v in r.items() if isinstance(v, float) and math.isnan(v)]
errors = {k: v for k, v in r.items() if k.endswith(("_errors", "_failures")) and v}
if bad or errors:
    print("benchmark scenarios failed:", bad, errors, file=sys.stderr)
    sys.exit(1)
if smoke:
    print(f"bench smoke: {len(r)} figures from every scenario, no errors")
    sys.exit(0)
def ratio(a, b):
    return round(r[a] / r[b], 3) if a in r and b in r and r[b] else None
r["ratio_verify_to_healthz"] = ratio("verify_rps", "healthz_rps")
r["ratio_me_to_healthz"] = ratio("me_rps", "healthz_rps")
r["pg_ratio_verify_to_healthz"] = ratio("pg_verify_rps", "pg_healthz_rps")
r["pg_ratio_me_to_healthz"] = ratio("pg_me_rps", "pg_healthz_rps")
r["ratio_verify_cookie_to_healthz"] = ratio("verify_cookie_rps", "healthz_rps")
r["pg_ratio_verify_cookie_to_healthz"] = ratio("pg_verify_cookie_rps", "pg_healthz_rps")
r["ratio_signed_verify_to_healthz"] = ratio("signed_verify_rps", "healthz_rps")
r["pg_ratio_signed_verify_to_healthz"] = ratio("pg_signed_verify_rps", "pg_healthz_rps")
for p in ("", "pg_"):
    r[p + "ratio_oauth_introspect_to_healthz"] = ratio(p + "oauth_introspect_rps", p + "healthz_rps")
    r[p + "ratio_oauth_cc_to_healthz"] = ratio(p + "oauth_cc_rps", p + "healthz_rps")
r["peer_ratio_introspect_to_discovery"] = ratio("peer_introspect_rps", "peer_discovery_rps")
r["peer_ratio_cc_to_discovery"] = ratio("peer_cc_rps", "peer_discovery_rps")
r["login_p50_minus_bare_hash_ms"] = round(r["login_p50_ms"] - r["bare_hash_ms"], 3)
if "users1000_login_p50_ms" in r and "users1000000_login_p50_ms" in r:
    r["users_1m_vs_1k_login_p50"] = ratio("users1000000_login_p50_ms", "users1000_login_p50_ms")
    r["users_1m_vs_1k_refresh_p50"] = ratio("users1000000_refresh_p50_ms", "users1000_refresh_p50_ms")
    r["users_1m_vs_1k_passkey_login_p50"] = ratio("users1000000_passkey_login_p50_ms", "users1000_passkey_login_p50_ms")
r["rss_idle_mb"] = round(r["rss_idle_kb"] / 1024, 1)
r["peer_rss_idle_mb"] = round(r["peer_rss_idle_kb"] / 1024, 1)
r["rss_loaded_mb"] = round(r["rss_loaded_kb"] / 1024, 1)
r["rss_loaded_login_mb"] = round(r["rss_loaded_login_kb"] / 1024, 1)
r["rss_after_scenarios_mb"] = round(r["rss_after_scenarios_kb"] / 1024, 1)
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
meta = {"date": datetime.date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release()}
numbers = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in sorted(r.items()) if isinstance(v, (int, float))}
# The figures BENCHMARKS.md showed before issue 24 (kept as they were), for "no worse".
baseline_file = "bench/results/baseline-2026-11-22.json"
baseline = json.load(open(baseline_file)) if os.path.exists(baseline_file) else {}
def f(k, unit=""):
    v = numbers.get(k)
    return "n/a" if v is None else f"{v:,}{unit}"
def check(ok):
    return "met" if ok else "**missed**"
g = numbers.get
# A figure this run did not produce (PostgreSQL unreachable, a capability not on this
# branch) says so instead of "missed".
NOT_MEASURED = "not measured"
def at_least(k, t): return NOT_MEASURED if g(k) is None else check(g(k) >= t)
def at_most(k, t): return NOT_MEASURED if g(k) is None else check(g(k) <= t)
def within(k, pct): return NOT_MEASURED if g(k) is None else check(abs(g(k) - 1) <= pct / 100)
targets = [
    ("/auth/verify (Bearer) req/s ÷ /healthz req/s", f("ratio_verify_to_healthz"), "≥ 0.85", at_least("ratio_verify_to_healthz", 0.85)),
    ("/auth/verify with the access cookie req/s ÷ /healthz req/s", f("ratio_verify_cookie_to_healthz"), "≥ 0.80", at_least("ratio_verify_cookie_to_healthz", 0.80)),
    ("/auth/me req/s ÷ /healthz req/s (SQLite)", f("ratio_me_to_healthz"), "≥ 0.75", at_least("ratio_me_to_healthz", 0.75)),
    ("refresh rotations/s, 32 chains, SQLite", f("refresh_per_sec"), "≥ 8,000", at_least("refresh_per_sec", 8000)),
    ("refresh rotations/s, 32 chains, PostgreSQL", f("pg_refresh_per_sec"), "≥ 4,000", at_least("pg_refresh_per_sec", 4000)),
    ("passkey login p50 (start + finish)", f("passkey_login_p50_ms", " ms"), "≤ 3 ms", at_most("passkey_login_p50_ms", 3)),
    ("passkey login p50, PostgreSQL + Redis", f("pg_passkey_login_p50_ms", " ms"), "≤ 3 ms", at_most("pg_passkey_login_p50_ms", 3)),
    ("signed requests (RFC 9421, Ed25519, unique) at /auth/verify ÷ /healthz, in-process replay cache", f("ratio_signed_verify_to_healthz"), "≥ 0.35", at_least("ratio_signed_verify_to_healthz", 0.35)),
    ("signed requests at /auth/verify ÷ /healthz, Redis replay cache (PostgreSQL run)", f("pg_ratio_signed_verify_to_healthz"), "≥ 0.25", at_least("pg_ratio_signed_verify_to_healthz", 0.25)),
    ("`/oauth2/introspect` (confidential client, a valid token) ÷ /healthz", f("ratio_oauth_introspect_to_healthz"), "≥ 0.50", at_least("ratio_oauth_introspect_to_healthz", 0.50)),
    ("client-credentials tokens/s (`/oauth2/token`, signed JWT) ÷ /healthz", f("ratio_oauth_cc_to_healthz"), "≥ 0.20", at_least("ratio_oauth_cc_to_healthz", 0.20)),
    ("authorization code exchange p50 (`/oauth2/token`)", f("oauth_code_exchange_p50_ms", " ms"), "≤ 5 ms", at_most("oauth_code_exchange_p50_ms", 5)),
    ("`/login` page p50 (one connection)", f("login_page_p50_ms", " ms"), "≤ 2 ms", at_most("login_page_p50_ms", 2)),
    ("`/account` page p50, signed in (one connection)", f("account_page_p50_ms", " ms"), "≤ 2 ms", at_most("account_page_p50_ms", 2)),
    ("login p50 − bare hash time", f("login_p50_minus_bare_hash_ms", " ms"), "≤ 2 ms", at_most("login_p50_minus_bare_hash_ms", 2)),
    ("/auth/verify p99 during the login flood", f("verify_during_flood_p99_ms", " ms"), "≤ 10 ms", at_most("verify_during_flood_p99_ms", 10)),
    ("RSS idle (pages, WebAuthn and OIDC compiled in)", f("rss_idle_mb", " MB"), "≤ 30 MB", at_most("rss_idle_mb", 30)),
    ("RSS with 100k sessions + 100k revocations, after a login", f("rss_loaded_login_mb", " MB"), "≤ 100 MB", at_most("rss_loaded_login_mb", 100)),
    ("start to ready (existing database)", f("start_to_ready_ms", " ms"), "≤ 300 ms", at_most("start_to_ready_ms", 300)),
    ("1M vs 1k users, login p50", f("users_1m_vs_1k_login_p50"), "within 20 %", within("users_1m_vs_1k_login_p50", 20)),
    ("1M vs 1k users, refresh p50", f("users_1m_vs_1k_refresh_p50"), "within 20 %", within("users_1m_vs_1k_refresh_p50", 20)),
    ("1M vs 1k users, passkey login p50", f("users_1m_vs_1k_passkey_login_p50"), "within 20 %", within("users_1m_vs_1k_passkey_login_p50", 20)),
]
# "Every figure of BENCHMARKS.md today: no worse": the previous run's target figures against
# this run's. Ratios and latencies are compared; 10 % is allowed for the shared host's noise
# (and 0.5 ms on figures of a few milliseconds).
no_worse = []
for k, higher_better in [("ratio_verify_to_healthz", True), ("ratio_me_to_healthz", True),
                         ("pg_ratio_verify_to_healthz", True), ("pg_ratio_me_to_healthz", True),
                         ("refresh_per_sec", True), ("pg_refresh_per_sec", True),
                         ("login_p50_minus_bare_hash_ms", False), ("verify_during_flood_p99_ms", False),
                         ("rss_idle_mb", False), ("rss_loaded_login_mb", False), ("start_to_ready_ms", False),
                         ("users_1m_vs_1k_login_p50", None), ("users_1m_vs_1k_refresh_p50", None)]:
    before, now = baseline.get(k), numbers.get(k)
    if before is None or now is None:
        ok = None
    elif higher_better is None:
        ok = abs(now - 1) <= max(abs(before - 1), 0.2)
    elif higher_better:
        ok = now >= before * 0.9
    else:
        ok = now <= max(before * 1.1, before + 0.5)
    no_worse.append((k, before, now, ok))
numbers["figures_no_worse_than_before"] = sum(1 for *_, ok in no_worse if ok)
numbers["figures_compared_with_before"] = sum(1 for *_, ok in no_worse if ok is not None)
json.dump(numbers, open("bench/results/latest.json", "w"), indent=2, sort_keys=True)
open("bench/results/latest.json", "a").write("\n")
targets.append(("every target figure of the previous BENCHMARKS.md", f"{numbers['figures_no_worse_than_before']} of {numbers['figures_compared_with_before']}", "no worse",
                check(numbers["figures_no_worse_than_before"] == numbers["figures_compared_with_before"] > 0)))
lines = ["# Benchmarks", "",
    f"Measured {meta['date']} on this project's machine: {meta['cpu']}, {meta['cores']} cores, Linux {meta['kernel']}.",
    "Server and load generator share the cores, so the figures that matter are the ratios within one run.",
    "Reproduce with `bench/run.sh` (release build, SQLite, rate limits off; then PostgreSQL + Redis);",
    "every figure is in `bench/results/latest.json`.", "",
    "## Targets", "", "| figure | measured | target | |", "|---|---|---|---|"]
lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets]
lines += ["", "OAuth beside panva's `oidc-provider` (bench/oidc-peer, one Node process, production mode, "
          "same load generator; each as a ratio of its own floor: tradeauth's `/healthz`, the peer's discovery document):", "",
          "| figure | tradeauth (SQLite) | tradeauth (PostgreSQL + Redis) | oidc-provider |", "|---|---|---|---|",
          f"| floor req/s | {f('healthz_rps')} | {f('pg_healthz_rps')} | {f('peer_discovery_rps')} |",
          f"| client-credentials tokens/s (signed JWT) | {f('oauth_cc_rps')} | {f('pg_oauth_cc_rps')} | {f('peer_cc_rps')} |",
          f"| … ÷ floor | {f('ratio_oauth_cc_to_healthz')} | {f('pg_ratio_oauth_cc_to_healthz')} | {f('peer_ratio_cc_to_discovery')} |",
          f"| introspections/s (valid token) | {f('oauth_introspect_rps')} | {f('pg_oauth_introspect_rps')} | {f('peer_introspect_rps')} |",
          f"| … ÷ floor | {f('ratio_oauth_introspect_to_healthz')} | {f('pg_ratio_oauth_introspect_to_healthz')} | {f('peer_ratio_introspect_to_discovery')} |",
          f"| code exchange p50 ms | {f('oauth_code_exchange_p50_ms')} | {f('pg_oauth_code_exchange_p50_ms')} | not measured |",
          f"| RSS idle MB | {f('rss_idle_mb')} | | {f('peer_rss_idle_mb')} |"]
lines += ["", f"Against the previous full run (`{baseline_file}`; 10 % allowed for noise, 0.5 ms on latencies):", "",
          "| figure | before | now | |", "|---|---|---|---|"]
lines += [f"| `{k}` | {'n/a' if b is None else f'{b:,}'} | {'n/a' if n is None else f'{n:,}'} | {'n/a' if ok is None else check(ok)} |" for k, b, n, ok in no_worse]
lines += ["", "## All figures", "", "| figure | SQLite | PostgreSQL + Redis |", "|---|---|---|"]
for name, key in [("/healthz req/s", "healthz_rps"), ("/auth/verify req/s", "verify_rps"),
                  ("/auth/verify with the access cookie req/s", "verify_cookie_rps"), ("/auth/me req/s", "me_rps"),
                  ("/auth/verify ÷ /healthz", "ratio_verify_to_healthz"), ("/auth/verify (cookie) ÷ /healthz", "ratio_verify_cookie_to_healthz"),
                  ("/auth/me ÷ /healthz", "ratio_me_to_healthz"),
                  ("/healthz p99 ms", "healthz_p99_ms"), ("/auth/verify p99 ms", "verify_p99_ms"),
                  ("/auth/verify (cookie) p99 ms", "verify_cookie_p99_ms"), ("/auth/me p99 ms", "me_p99_ms"),
                  ("/login page p50 ms (one connection)", "login_page_p50_ms"), ("/login page p99 ms", "login_page_p99_ms"),
                  ("/account page p50 ms (one connection)", "account_page_p50_ms"), ("/account page p99 ms", "account_page_p99_ms"),
                  ("passkey login p50 ms (start + finish)", "passkey_login_p50_ms"), ("passkey login p99 ms", "passkey_login_p99_ms"),
                  ("refresh rotations/s (32 chains)", "refresh_per_sec"), ("refresh p50 ms", "refresh_p50_ms"),
                  ("login p50 ms", "login_p50_ms"), ("login p99 ms", "login_p99_ms"), ("bare Argon2id hash ms", "bare_hash_ms"),
                  ("/auth/verify p50 ms during flood", "verify_during_flood_p50_ms"), ("/auth/verify p99 ms during flood", "verify_during_flood_p99_ms"),
                  ("wrong-password logins/s during flood", "flood_logins_per_sec"),
                  ("signed /auth/verify req/s (Ed25519, unique signatures)", "signed_verify_rps"),
                  ("signed /auth/verify p99 ms", "signed_verify_p99_ms"),
                  ("signed /auth/verify req/s ÷ /healthz req/s", "ratio_signed_verify_to_healthz")]:
    lines.append(f"| {name} | {f(key)} | {f('pg_' + key)} |")
lines += ["", f"Start to ready: {f('start_to_ready_first_ms', ' ms')} on an empty database (migrations and key generation), "
          f"{f('start_to_ready_ms', ' ms')} on an existing one. RSS: {f('rss_idle_mb', ' MB')} idle, "
          f"{f('rss_loaded_mb', ' MB')} after loading {f('seeded_revocations')} revocations beside {f('seeded_sessions')} sessions "
          f"and {f('rss_loaded_login_mb', ' MB')} once a login has made the password hasher's work area; "
          f"{f('rss_after_scenarios_mb', ' MB')} at the end of the SQLite load scenarios.",
          f"With 1k users: login p50 {f('users1000_login_p50_ms', ' ms')}, refresh p50 {f('users1000_refresh_p50_ms', ' ms')}; "
          f"with 1M users: login p50 {f('users1000000_login_p50_ms', ' ms')}, refresh p50 {f('users1000000_refresh_p50_ms', ' ms')}. "
          f"Passkey login p50: {f('users1000_passkey_login_p50_ms', ' ms')} with 1k users, {f('users1000000_passkey_login_p50_ms', ' ms')} with 1M.", ""]
notes = "bench/notes.md"
if os.path.exists(notes):
    lines += [open(notes).read()]
open("BENCHMARKS.md", "w").write("\n".join(lines))
print("wrote bench/results/latest.json and BENCHMARKS.md")
PY
