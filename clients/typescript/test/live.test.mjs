// Live tests: the client against the real tradeauth binary, started on a free port with a
// fresh SQLite file and a short access-token lifetime. The binary is $TRADEAUTH_BIN, else
// the repository's target/debug/tradeauth (build it first: `cargo build`).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { TradeAuth, TradeAuthError } from "../dist/index.js";
import { generate, OUTPUT } from "../scripts/gen-types.mjs";

const BIN = process.env.TRADEAUTH_BIN ?? new URL("../../../target/debug/tradeauth", import.meta.url).pathname;
const PASSWORD = "correct-Horse-battery-92!";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function serve(env) {
  assert.ok(existsSync(BIN), `no tradeauth binary at ${BIN}: run \`cargo build\` or set TRADEAUTH_BIN`);
  const dir = await mkdtemp(join(tmpdir(), "tradeauth-ts-"));
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("TRADEAUTH_") && k !== "ADMIN_EMAIL" && k !== "ADMIN_PASSWORD"),
  );
  const child = spawn(BIN, ["serve"], {
    env: {
      ...clean,
      TRADEAUTH_LISTEN: "127.0.0.1:0",
      TRADEAUTH_DATABASE_URL: `sqlite://${join(dir, "tradeauth.db")}`,
      TRADEAUTH_LOG_FORMAT: "json",
      TRADEAUTH_RATE_LIMIT: "off",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = [];
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tradeauth did not start:\n${log.join("\n")}`)), 30_000);
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        log.push(line);
        try {
          const v = JSON.parse(line);
          if (v.message === "tradeauth listening") {
            clearTimeout(timer);
            resolve(v.port);
          }
        } catch {
          // not JSON
        }
      });
    }
    child.on("exit", (code) => reject(new Error(`tradeauth exited (${code}):\n${log.join("\n")}`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    log,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r() : child.on("exit", r)));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fetch that records every answer: path, status, time. */
function recorder() {
  const calls = [];
  const f = async (input, init) => {
    const res = await fetch(input, init);
    calls.push({
      path: new URL(input instanceof Request ? input.url : String(input)).pathname,
      status: res.status,
      at: Date.now(),
      retryAfter: Number(res.headers.get("retry-after")),
      remaining: res.headers.get("ratelimit-remaining"),
    });
    return res;
  };
  return { calls, fetch: f, refreshes: () => calls.filter((c) => c.path === "/api/v1/auth/refresh") };
}

function memory() {
  const m = new Map();
  return { m, getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) };
}

let n = 0;
async function newUser(base) {
  const email = `trader${++n}-${process.pid}@example.com`;
  const reg = await new TradeAuth({ baseUrl: base, transport: "body" }).register({ email, password: PASSWORD });
  assert.equal(reg.user.email, email);
  return email;
}

describe("against the real server (access TTL 6 s)", () => {
  let srv;
  before(async () => {
    srv = await serve({ TRADEAUTH_ACCESS_TTL: "6s" });
  });
  after(() => srv?.stop());

  test("the wire types are the server's: src/api-types.ts is what /openapi.json generates", async () => {
    const doc = await (await fetch(`${srv.base}/openapi.json`)).json();
    assert.equal(generate(doc), await readFile(OUTPUT, "utf8"), "run `npm run gen-types -- <base>/openapi.json`");
  });

  test("refreshes ahead of expiry: no 401 is ever seen", async () => {
    const email = await newUser(srv.base);
    const rec = recorder();
    const auth = new TradeAuth({ baseUrl: srv.base, transport: "body", fetch: rec.fetch });
    const seen = [];
    auth.onChange((c) => seen.push(c.type));
    const user = await auth.login({ email, password: PASSWORD });
    const first = auth.accessToken;
    for (let i = 0; i < 18; i++) {
      assert.equal((await auth.me()).id, user.id);
      await sleep(500);
    }
    // 6 s tokens refreshed 2 s (+ ≤ 0.5 s) ahead: twice in 9 s
    assert.ok(rec.refreshes().length >= 2, `refreshes: ${rec.refreshes().length}`);
    assert.ok(rec.calls.every((c) => c.status !== 401), JSON.stringify(rec.calls.filter((c) => c.status >= 400)));
    assert.notEqual(auth.accessToken, first);
    assert.deepEqual(seen.slice(0, 3), ["signed_in", "refreshed", "refreshed"]);
    auth.dispose();
  });

  test("20 concurrent calls at expiry make one refresh", async () => {
    const email = await newUser(srv.base);
    const rec = recorder();
    const auth = new TradeAuth({ baseUrl: srv.base, transport: "body", fetch: rec.fetch, autoRefresh: false });
    await auth.login({ email, password: PASSWORD });
    const stale = auth.accessToken;
    await sleep(7_500); // `exp` is whole seconds and checked with `exp < now`: valid up to 7 s
    const raw = await fetch(`${srv.base}/api/v1/auth/me`, { headers: { authorization: `Bearer ${stale}` } });
    const body = await raw.json();
    assert.equal(body.code, "token_expired", `the token has expired: ${JSON.stringify(body)}`);
    const users = await Promise.all(Array.from({ length: 20 }, () => auth.me()));
    assert.equal(new Set(users.map((u) => u.email)).size, 1);
    assert.equal(rec.refreshes().length, 1);
    assert.equal(rec.calls.filter((c) => c.path === "/api/v1/auth/me").length, 20);
    auth.dispose();
  });

  test("refresh_token_reused signs the thief out, and then the victim", async () => {
    const email = await newUser(srv.base);
    const store = memory();
    const victim = new TradeAuth({ baseUrl: srv.base, transport: "body", storage: store, autoRefresh: false });
    await victim.login({ email, password: PASSWORD });
    const stolen = memory();
    stolen.m.set("tradeauth.session", store.m.get("tradeauth.session"));
    await victim.refresh();
    await victim.refresh();
    const thief = new TradeAuth({ baseUrl: srv.base, transport: "body", storage: stolen, autoRefresh: false });
    const thiefSaw = [];
    thief.onChange((c) => thiefSaw.push(c));
    await assert.rejects(thief.refresh(), (e) => e instanceof TradeAuthError && e.code === "refresh_token_reused");
    assert.equal(thief.signedIn, false);
    assert.deepEqual(thiefSaw, [{ type: "signed_out", reason: "refresh_token_reused" }]);
    assert.equal(stolen.m.size, 0);
    // the whole session was revoked: the victim's next refresh ends it too
    const victimSaw = [];
    victim.onChange((c) => victimSaw.push(c));
    await assert.rejects(victim.refresh(), (e) => e.code === "invalid_refresh_token");
    assert.deepEqual(victimSaw, [{ type: "signed_out", reason: "invalid_refresh_token" }]);
    assert.equal(store.m.size, 0);
  });

  test("the socket survives refreshes (reauth) and closes with 4003 on revocation, which signs out", async () => {
    const email = await newUser(srv.base);
    const auth = new TradeAuth({ baseUrl: srv.base, transport: "body", WebSocket });
    await auth.login({ email, password: PASSWORD });
    const messages = [];
    const closes = [];
    const sock = auth.socket({ onMessage: (m) => messages.push(m), onClose: (code) => closes.push(code) });
    for (let i = 0; i < 50 && !messages.length; i++) await sleep(100);
    assert.equal(messages[0]?.type, "welcome");
    const firstSocket = sock.raw;
    await sleep(9_000); // past the first token's expiry, two refreshes
    assert.deepEqual(closes, [], "not closed at the old token's expiry");
    assert.ok(messages.filter((m) => m.type === "reauthed").length >= 2, JSON.stringify(messages));
    assert.equal(sock.raw, firstSocket, "the same connection");
    // a refresh may land in the same instant, so its "reauthed" can arrive around the pong
    const sent = messages.length;
    sock.send({ type: "ping" });
    for (let i = 0; i < 30 && !messages.slice(sent).some((m) => m.type === "pong"); i++) await sleep(100);
    assert.ok(messages.slice(sent).some((m) => m.type === "pong"), JSON.stringify(messages.slice(sent)));
    // another device revokes this session
    const other = new TradeAuth({ baseUrl: srv.base, transport: "body" });
    await other.login({ email, password: PASSWORD });
    const mine = (await other.sessions.list()).items.find((s) => !s.current);
    const signedOut = new Promise((resolve) => auth.onChange((c) => c.type === "signed_out" && resolve(c)));
    await other.sessions.revoke(mine.id);
    assert.deepEqual(await signedOut, { type: "signed_out", reason: "session_revoked" });
    assert.deepEqual(closes, [4003]);
    assert.equal(auth.signedIn, false);
    await sleep(500);
    assert.equal(sock.raw, firstSocket, "no reconnect after 4003");
    other.dispose();
    auth.dispose();
  });

  test("the API surface: me, sessions, events, API keys, logout-all", async () => {
    const email = await newUser(srv.base);
    const auth = new TradeAuth({ baseUrl: srv.base, transport: "body" });
    await auth.login({ username: email, password: PASSWORD });
    assert.equal((await auth.me()).email, email);
    const sessions = await auth.sessions.list();
    assert.equal(sessions.items.filter((s) => s.current).length, 1);
    const key = await auth.apiKeys.create({ name: "bot", permissionTier: 1 });
    assert.match(key.key, /^ta_/);
    assert.equal(key.permission_tier, 1);
    const keys = await auth.apiKeys.list({ limit: 10 });
    assert.deepEqual(keys.items.map((k) => k.id), [key.id]);
    const viaKey = await fetch(`${srv.base}/api/v1/auth/me`, { headers: { "x-api-key": key.key } });
    assert.equal(viaKey.status, 200);
    await auth.apiKeys.revoke(key.id);
    const events = await auth.events.list();
    assert.ok(events.items.some((e) => e.type === "api_key.created"));
    await assert.rejects(auth.sessions.revoke("00000000-0000-4000-8000-000000000000"), (e) => e.status === 404 && e.code === "not_found");
    await assert.rejects(auth.login({ email, password: "wrong-password-1" }), (e) => e.code === "invalid_credentials");
    await auth.logoutAll();
    assert.equal(auth.signedIn, false);
    await assert.rejects(auth.me(), (e) => e.code === "missing_token" && e.status === 401);
  });
});

describe("against the real server with a refresh limit of 6/min", () => {
  let srv;
  before(async () => {
    srv = await serve({ TRADEAUTH_ACCESS_TTL: "4s", TRADEAUTH_RATE_LIMIT: "on", TRADEAUTH_RATE_LIMIT_REFRESH: "6/min" });
  });
  after(() => srv?.stop());

  test("a background refresh that gets 429 waits Retry-After; a user's refresh gets it thrown", async () => {
    const email = await newUser(srv.base);
    const rec = recorder();
    const auth = new TradeAuth({ baseUrl: srv.base, transport: "body", fetch: rec.fetch });
    await auth.login({ email, password: PASSWORD });
    // use up the bucket, then leave it to the schedule (due ~2.5 s after the last token)
    do await auth.refresh();
    while (rec.refreshes().at(-1).remaining !== "0");
    const used = rec.refreshes().length;
    const refreshed = new Promise((resolve) => auth.onChange((c) => c.type === "refreshed" && resolve()));
    await refreshed;
    const tries = rec.refreshes().slice(used);
    assert.ok(tries.length >= 2 && tries[0].status === 429, JSON.stringify(tries));
    for (let i = 1; i < tries.length; i++) {
      const gap = tries[i].at - tries[i - 1].at;
      assert.ok(gap >= tries[i - 1].retryAfter * 1000 - 50, `attempt ${i} came ${gap} ms after a Retry-After of ${tries[i - 1].retryAfter} s`);
    }
    assert.equal(tries.at(-1).status, 200);
    assert.equal(auth.signedIn, true);
    assert.equal((await auth.me()).email, email);
    // a refresh the user asks for is not waited: the 429 is thrown
    let limited;
    for (let i = 0; i < 10 && !limited; i++) await auth.refresh().catch((e) => (limited = e));
    assert.ok(limited instanceof TradeAuthError, "the limit was reached");
    assert.equal(limited.status, 429);
    assert.equal(limited.code, "rate_limited");
    assert.ok(limited.retryAfter >= 1, `retryAfter ${limited.retryAfter}`);
    assert.equal(auth.signedIn, true);
    auth.dispose();
  });
});
