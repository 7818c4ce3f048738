// Unit tests against a fake server with fake timers: the refresh schedule on the server's
// clock, single flight, backoff, Retry-After, the no-re-send rule, sign-out on reuse,
// BroadcastChannel, cookie transport, the socket and the WebAuthn JSON forms.
import { test, afterEach, mock } from "node:test";
import assert from "node:assert/strict";
import { TradeAuth, TradeAuthError, parseOptionsJSON, credentialJSON } from "../dist/index.js";
import { fakeServer, fakeTimers, advance, settle, memory, FakeWebSocket, USER } from "./fake.mjs";

const BASE = "http://auth.test";

afterEach(() => {
  mock.timers.reset();
  delete globalThis.document;
  FakeWebSocket.all = [];
  FakeWebSocket.welcome = true;
});

function client(srv, extra = {}) {
  return new TradeAuth({ baseUrl: BASE, transport: srv.cookie ? "cookie" : "body", fetch: srv.fetch, ...extra });
}

function changes(auth) {
  const seen = [];
  auth.onChange((c) => seen.push(c));
  return seen;
}

for (const [label, skew] of [
  ["ahead of", 600_000],
  ["behind", -600_000],
  ["the same as", 0],
]) {
  test(`the refresh is scheduled a third of the lifetime (≤ 5 min) ahead of expiry, server clock ${label} ours`, async () => {
    fakeTimers();
    const srv = fakeServer({ ttl: 900, skew });
    const auth = client(srv);
    await auth.login({ username: "ada", password: "pw" });
    // expiry in 900 s on the server's clock; margin 300 s less up to 30 s of jitter
    await advance(569_000, 1000);
    assert.equal(srv.refreshes, 0, "not before 900 − 300 − 30 s");
    await advance(32_000, 1000);
    assert.equal(srv.refreshes, 1, "by 900 − 300 s");
    assert.equal(auth.accessToken, "at2");
    // and again for the new token, with no 401 ever seen
    await advance(600_000, 1000);
    assert.equal(srv.refreshes, 2);
    await auth.me();
    assert.ok(srv.calls.every((c) => c.path !== "/api/v1/auth/me" || true));
    auth.dispose();
  });
}

test("a short lifetime is refreshed a third ahead, with no 401 on calls made meanwhile", async () => {
  fakeTimers();
  const srv = fakeServer({ ttl: 30 });
  const auth = client(srv);
  await auth.login({ username: "ada", password: "pw" });
  const statuses = [];
  const f = srv.fetch;
  srv.fetch = async (i, n) => {
    const r = await f(i, n);
    statuses.push(r.status);
    return r;
  };
  for (let s = 0; s < 120; s++) {
    await auth.me();
    await advance(1000, 250);
  }
  // every 30 − 10 s (less ≤ 2.5 s of jitter): 6 refreshes in 120 s
  assert.ok(srv.refreshes >= 6 && srv.refreshes <= 7, `refreshes: ${srv.refreshes}`);
  assert.ok(!statuses.includes(401), "no 401 seen");
  auth.dispose();
});

test("20 concurrent calls at expiry make one refresh (the client sees the expiry coming)", async () => {
  fakeTimers();
  const srv = fakeServer({ ttl: 60 });
  const auth = client(srv, { autoRefresh: false });
  await auth.login({ username: "ada", password: "pw" });
  await advance(61_000, 1000);
  assert.equal(srv.refreshes, 0, "autoRefresh off");
  const users = await Promise.all(Array.from({ length: 20 }, () => auth.me()));
  assert.equal(users.length, 20);
  assert.equal(srv.refreshes, 1);
  assert.equal(srv.count("/api/v1/auth/me"), 20, "no call needed a second try");
});

test("20 concurrent 401 token_expired make one refresh and each request is retried once", async () => {
  const srv = fakeServer({ ttl: 600 });
  const auth = client(srv, { autoRefresh: false });
  await auth.login({ username: "ada", password: "pw" });
  srv.exps.set("at1", Math.floor(srv.now() / 1000) - 1); // the server says expired, the client did not know
  const answers = await Promise.all(Array.from({ length: 20 }, () => auth.fetch("/api/v1/orders")));
  assert.ok(answers.every((r) => r.status === 200));
  assert.equal(srv.refreshes, 1);
  assert.equal(srv.count("/api/v1/orders"), 40);
  const retried = srv.calls.filter((c) => c.path === "/api/v1/orders").slice(20);
  assert.ok(retried.every((c) => c.headers.get("authorization") === "Bearer at2"));
});

test("a caller's own Authorization header is left alone: no refresh for it", async () => {
  const srv = fakeServer({ ttl: 600 });
  const auth = client(srv, { autoRefresh: false });
  await auth.login({ username: "ada", password: "pw" });
  srv.exps.set("mine", 1);
  const r = await auth.fetch("/api/v1/orders", { headers: { Authorization: "Bearer mine" } });
  assert.equal(r.status, 401);
  assert.equal(srv.refreshes, 0);
  assert.equal(srv.calls.at(-1).headers.get("authorization"), "Bearer mine");
});

test("a 401 token_expired is refreshed and retried once, never in a loop", async () => {
  const srv = fakeServer({ ttl: 600 });
  const auth = client(srv, { autoRefresh: false });
  await auth.login({ username: "ada", password: "pw" });
  const always = () => srv.err(401, "token_expired");
  srv.queue["/api/v1/auth/me"] = [always, always, always];
  await assert.rejects(auth.me(), (e) => e instanceof TradeAuthError && e.code === "token_expired" && e.status === 401);
  assert.equal(srv.refreshes, 1);
  assert.equal(srv.count("/api/v1/auth/me"), 2);
});

test("network errors and 5xx on a background refresh back off and keep the session", async () => {
  fakeTimers();
  const srv = fakeServer({ ttl: 60 });
  const auth = client(srv);
  const seen = changes(auth);
  await auth.login({ username: "ada", password: "pw" });
  const down = () => srv.err(503, "unavailable");
  srv.queue["/api/v1/auth/refresh"] = ["network", down, "network", down];
  await advance(70_000, 50);
  const times = srv.calls.filter((c) => c.path === "/api/v1/auth/refresh").map((c) => c.at);
  assert.equal(times.length, 5, "four failures, then success");
  // exp and Date are whole seconds: the expiry can fall up to 1 s before login + 60 s.
  const first = times[0] - srv.calls[0].at;
  assert.ok(first >= 34_000 && first <= 40_100, `first try ahead of expiry: ${first} ms after login`);
  const gaps = times.slice(1).map((t, i) => t - times[i]);
  for (const [i, base] of [1000, 2000, 4000, 8000].entries()) {
    assert.ok(gaps[i] >= base * 0.8 - 1 && gaps[i] <= base * 1.2 + 100, `gap ${i}: ${gaps[i]} for ${base}`);
  }
  assert.equal(auth.signedIn, true);
  assert.deepEqual(seen.map((c) => c.type), ["signed_in", "refreshed"], "one success, no sign-out");
  auth.dispose();
});

test("a background 429 waits Retry-After; a 429 on a call the user made is thrown", async () => {
  fakeTimers();
  const srv = fakeServer({ ttl: 60 });
  const auth = client(srv);
  await auth.login({ username: "ada", password: "pw" });
  const limited = () => srv.err(429, "rate_limited", { "retry-after": "7" }, { retry_after: 7 });
  srv.queue["/api/v1/auth/refresh"] = [limited, limited];
  await assert.rejects(auth.refresh(), (e) => e.status === 429 && e.code === "rate_limited" && e.retryAfter === 7);
  assert.equal(srv.refreshes, 1, "thrown, not waited");
  await advance(6_900, 100);
  assert.equal(srv.refreshes, 1);
  await advance(200, 100);
  assert.equal(srv.refreshes, 2, "the background retry waited 7 s");
  // the second one was a background 429 too: 7 s again, then success
  await advance(6_800, 100);
  assert.equal(srv.refreshes, 2);
  await advance(200, 100);
  assert.equal(srv.refreshes, 3);
  assert.equal(auth.accessToken, "at2");
  auth.dispose();
});

test("a baseUrl with a path prefix is kept for the API, the socket and fetch paths", async () => {
  const srv = fakeServer();
  const urls = [];
  const viaGateway = (i, n) => (urls.push(String(i)), srv.fetch(String(i).replace("gw.test/auth/", "gw.test/"), n));
  const auth = new TradeAuth({ baseUrl: "http://gw.test/auth/", transport: "body", fetch: viaGateway, WebSocket: FakeWebSocket });
  await auth.login({ username: "ada", password: "pw" });
  await auth.fetch("/api/v1/orders");
  await auth.fetch("https://api.test/v1/positions");
  auth.socket();
  await settle();
  assert.deepEqual(urls, [
    "http://gw.test/auth/api/v1/auth/login",
    "http://gw.test/auth/api/v1/orders",
    "https://api.test/v1/positions",
  ]);
  assert.equal(FakeWebSocket.all[0].url, "ws://gw.test/auth/api/v1/ws?token=at1");
  auth.dispose();
});

test("a request that failed on the network is not re-sent", async () => {
  const srv = fakeServer();
  const auth = client(srv);
  await auth.login({ username: "ada", password: "pw" });
  srv.queue["/api/v1/orders"] = ["network"];
  await assert.rejects(
    auth.fetch("/api/v1/orders", { method: "POST", body: '{"qty":1}' }),
    (e) => e instanceof TradeAuthError && e.code === "network_error" && e.status === 0,
  );
  assert.equal(srv.count("/api/v1/orders"), 1);
});

test("with an Idempotency-Key it is re-sent once, and only once", async () => {
  const srv = fakeServer();
  const auth = client(srv);
  await auth.login({ username: "ada", password: "pw" });
  srv.queue["/api/v1/orders"] = ["network"];
  const r = await auth.fetch("/api/v1/orders", { method: "POST", body: "{}", headers: { "Idempotency-Key": "k1" } });
  assert.equal(r.status, 200);
  assert.equal(srv.count("/api/v1/orders"), 2);
  srv.queue["/api/v1/orders"] = ["network", "network"];
  await assert.rejects(
    auth.fetch(new Request(`${BASE}/api/v1/orders`, { method: "POST", body: "{}", headers: { "Idempotency-Key": "k2" } })),
    (e) => e.code === "network_error",
  );
  assert.equal(srv.count("/api/v1/orders"), 4);
  const last = srv.calls.at(-1);
  assert.equal(last.headers.get("idempotency-key"), "k2");
  assert.equal(last.headers.get("authorization"), "Bearer at1");
  // register carries its key the same way
  srv.queue["/api/v1/auth/register"] = ["network"];
  await auth.register({ email: "b@example.com", password: "pw", idempotencyKey: "r1" });
  assert.equal(srv.count("/api/v1/auth/register"), 2);
  srv.queue["/api/v1/auth/register"] = ["network"];
  await assert.rejects(auth.register({ email: "c@example.com", password: "pw" }), (e) => e.code === "network_error");
  assert.equal(srv.count("/api/v1/auth/register"), 3);
});

for (const code of ["refresh_token_reused", "invalid_refresh_token"]) {
  test(`${code} signs out hard`, async () => {
    const srv = fakeServer();
    const store = memory();
    const auth = client(srv, { storage: store });
    const seen = changes(auth);
    await auth.login({ username: "ada", password: "pw" });
    assert.ok(store.m.get("tradeauth.session").includes("rt1"));
    srv.queue["/api/v1/auth/refresh"] = [() => srv.err(401, code)];
    await assert.rejects(auth.refresh(), (e) => e.code === code);
    assert.equal(auth.signedIn, false);
    assert.equal(store.m.size, 0, "tokens removed from storage");
    assert.deepEqual(seen.at(-1), { type: "signed_out", reason: code });
    await assert.rejects(auth.me(), (e) => e.code === "missing_token");
    assert.equal(srv.calls.at(-1).headers.get("authorization"), null);
  });
}

test("a refresh that lands after sign-out is dropped", async () => {
  const srv = fakeServer();
  const auth = client(srv);
  await auth.login({ username: "ada", password: "pw" });
  let release;
  srv.queue["/api/v1/auth/refresh"] = [
    async () => {
      await new Promise((r) => (release = r));
    },
  ];
  const pending = auth.refresh();
  await settle();
  await auth.logout();
  release();
  await assert.rejects(pending);
  assert.equal(auth.signedIn, false);
  assert.equal(auth.accessToken, undefined);
});

test("tokens live in the given storage and survive a new client", async () => {
  const srv = fakeServer();
  const store = memory();
  const a = client(srv, { storage: store });
  await a.login({ username: "ada", password: "pw" });
  a.dispose();
  const b = client(srv, { storage: store });
  assert.equal((await b.me()).id, USER.id);
  assert.equal(srv.calls.at(-1).headers.get("authorization"), "Bearer at1");
  assert.equal(b.user.email, USER.email);
  b.dispose();
});

test("BroadcastChannel: sign-in, refresh and sign-out reach the other tab", async () => {
  const srv = fakeServer();
  const channel = `tradeauth-test-${Math.random()}`;
  const a = client(srv, { broadcast: channel });
  const b = client(srv, { broadcast: channel });
  const seenB = changes(b);
  const alive = setInterval(() => {}, 1000); // the channels are unref'd: keep the loop up while waiting
  const next = (type) =>
    new Promise((resolve) => {
      const off = b.onChange((c) => c.type === type && (off(), resolve(c)));
    });
  let got = next("signed_in");
  await a.login({ username: "ada", password: "pw" });
  await got;
  assert.equal(b.accessToken, "at1");
  got = next("refreshed");
  await a.refresh();
  await got;
  assert.equal(b.accessToken, "at2");
  assert.equal(srv.refreshes, 1);
  // b's own refresh uses the token a rotated to: no reuse
  const aGot = new Promise((resolve) => a.onChange((c) => c.type === "refreshed" && resolve()));
  await b.refresh();
  await aGot;
  assert.equal(a.accessToken, "at3", "and a adopts b's result");
  got = next("signed_out");
  await a.logout();
  assert.deepEqual(await got, { type: "signed_out", reason: "logout" });
  assert.equal(b.signedIn, false);
  assert.deepEqual(seenB.map((c) => c.type), ["signed_in", "refreshed", "refreshed", "signed_out"]);
  a.dispose();
  b.dispose();
  clearInterval(alive);
});

function fakeDocument(cookie = "") {
  const doc = new EventTarget();
  doc.visibilityState = "visible";
  doc.writes = [];
  Object.defineProperty(doc, "cookie", {
    get: () => cookie,
    set: (v) => doc.writes.push(v),
  });
  globalThis.document = doc;
  return doc;
}

test("cookie transport: include credentials, X-CSRF-Token on writes, no token in JS or storage", async () => {
  const srv = fakeServer({ cookie: true, ttl: 600 });
  const store = memory();
  const auth = client(srv, { storage: store, broadcast: false });
  await auth.login({ email: "ada@example.com", password: "pw", rememberMe: true });
  const login = srv.calls[0];
  assert.deepEqual(login.body, { email: "ada@example.com", password: "pw", remember_me: true, token_transport: "cookie" });
  assert.equal(auth.accessToken, undefined);
  assert.ok(!/at1|rt1/.test(store.m.get("tradeauth.session") ?? ""), "no token stored");
  await auth.me();
  await auth.fetch("/api/v1/orders", { method: "POST", body: "{}" });
  await auth.refresh();
  const [me, order, refresh] = srv.calls.slice(1);
  assert.ok(srv.calls.every((c) => c.credentials === "include"));
  assert.equal(me.headers.get("x-csrf-token"), null, "not on GET");
  assert.equal(me.headers.get("authorization"), null);
  assert.equal(order.headers.get("x-csrf-token"), "csrf1");
  assert.equal(refresh.headers.get("x-csrf-token"), "csrf1");
  assert.deepEqual(refresh.body, {}, "the refresh token is the cookie's");
  await auth.logout();
  assert.equal(srv.calls.at(-1).headers.get("x-csrf-token"), "csrf2", "the refreshed CSRF token");
});

test("cookie transport after a reload: the CSRF token comes from the cookie, an expired cookie is refreshed once", async () => {
  const srv = fakeServer({ cookie: true, ttl: 600 });
  srv.issue(); // a session from before the reload
  const doc = fakeDocument("theme=dark; __Host-tradeauth_csrf=csrf1; other=x");
  const auth = client(srv, { broadcast: false });
  assert.equal(auth.signedIn, true);
  await auth.fetch("/api/v1/orders", { method: "POST", body: "{}" });
  assert.equal(srv.calls.at(-1).headers.get("x-csrf-token"), "csrf1");
  srv.current.exp = Math.floor(srv.now() / 1000) - 1; // the access cookie has expired: the server sees none
  const r = await auth.fetch("/api/v1/orders", { method: "POST", body: "{}" });
  assert.equal(r.status, 200);
  assert.equal(srv.refreshes, 1);
  assert.equal(srv.calls.at(-1).headers.get("x-csrf-token"), "csrf2");
  // the plain-HTTP development name is read too
  const doc2 = fakeDocument("tradeauth_csrf=dev1");
  const dev = client(srv, { broadcast: false });
  srv.current.csrf = "dev1";
  await dev.fetch("/api/v1/orders", { method: "POST" });
  assert.equal(srv.calls.at(-1).headers.get("x-csrf-token"), "dev1");
  // a hard sign-out expires the readable cookie
  srv.queue["/api/v1/auth/refresh"] = [() => srv.err(401, "invalid_refresh_token")];
  await assert.rejects(dev.refresh());
  assert.ok(doc2.writes.some((w) => w.startsWith("__Host-tradeauth_csrf=; Max-Age=0; Path=/; Secure")));
  assert.ok(doc2.writes.some((w) => w.startsWith("tradeauth_csrf=; Max-Age=0")));
  assert.equal(doc.writes.length, 0);
  auth.dispose();
  dev.dispose();
});

test("a tab that becomes visible refreshes when one is due", async () => {
  fakeTimers();
  const doc = fakeDocument();
  const srv = fakeServer({ ttl: 900 });
  const auth = client(srv, { broadcast: false });
  await auth.login({ username: "ada", password: "pw" });
  // a hidden tab's timers are throttled: the clock moves, the timer has not fired
  mock.timers.setTime(Date.now() + 700_000);
  assert.equal(srv.refreshes, 0);
  doc.visibilityState = "visible";
  doc.dispatchEvent(new Event("visibilitychange"));
  await settle();
  assert.equal(srv.refreshes, 1);
  auth.dispose();
});

test("the network coming back retries a backed-off refresh at once", async () => {
  fakeTimers();
  const doc = fakeDocument();
  const listeners = {};
  globalThis.addEventListener = (type, fn) => (listeners[type] = fn);
  globalThis.removeEventListener = (type) => delete listeners[type];
  try {
    const srv = fakeServer({ ttl: 60 });
    const auth = client(srv, { broadcast: false });
    await auth.login({ username: "ada", password: "pw" });
    srv.queue["/api/v1/auth/refresh"] = ["network", "network", "network", "network"];
    // first try by 40 s, then 1 s, 2 s, 4 s later: after the 4th failure the next waits ~8 s
    for (let i = 0; i < 600 && srv.refreshes < 4; i++) await advance(100);
    assert.equal(srv.refreshes, 4);
    await advance(1000);
    assert.equal(srv.refreshes, 4, "backing off");
    listeners.online();
    await settle();
    assert.equal(srv.refreshes, 5, "retried on `online`");
    assert.equal(auth.accessToken, "at2");
    doc.dispatchEvent(new Event("visibilitychange"));
    await settle();
    assert.equal(srv.refreshes, 5, "nothing due");
    auth.dispose();
    assert.equal(listeners.online, undefined, "dispose removes the listeners");
  } finally {
    delete globalThis.addEventListener;
    delete globalThis.removeEventListener;
  }
});

test("dispose stops the schedule", async () => {
  fakeTimers();
  const srv = fakeServer({ ttl: 60 });
  const auth = client(srv);
  await auth.login({ username: "ada", password: "pw" });
  auth.dispose();
  await advance(200_000, 1000);
  assert.equal(srv.refreshes, 0);
});

test("socket: token in the query, reauth after each refresh, reconnect after 4001, sign-out after 4003", async () => {
  const srv = fakeServer({ ttl: 600 });
  const auth = client(srv, { WebSocket: FakeWebSocket, autoRefresh: false });
  await auth.login({ username: "ada", password: "pw" });
  const messages = [];
  const sock = auth.socket({ onMessage: (m) => messages.push(m) });
  await settle();
  const [first] = FakeWebSocket.all;
  assert.equal(first.url, "ws://auth.test/api/v1/ws?token=at1");
  assert.deepEqual(messages, [{ type: "welcome" }]);
  await auth.refresh();
  assert.deepEqual(first.sent, [{ type: "reauth", token: "at2" }]);
  first.close(4001, "token expired");
  await settle();
  assert.equal(srv.refreshes, 2, "refreshed before reconnecting");
  assert.equal(FakeWebSocket.all.length, 2);
  assert.equal(FakeWebSocket.all[1].url, "ws://auth.test/api/v1/ws?token=at3");
  assert.equal(sock.raw, FakeWebSocket.all[1]);
  const seen = changes(auth);
  FakeWebSocket.all[1].close(4003, "session revoked");
  await settle();
  assert.equal(FakeWebSocket.all.length, 2, "no reconnect");
  assert.equal(auth.signedIn, false);
  assert.deepEqual(seen, [{ type: "signed_out", reason: "session_revoked" }]);
});

test("socket: a dropped connection reconnects with backoff; close() stops it", async () => {
  fakeTimers();
  const srv = fakeServer({ ttl: 600 });
  const auth = client(srv, { WebSocket: FakeWebSocket, autoRefresh: false });
  await auth.login({ username: "ada", password: "pw" });
  const sock = auth.socket();
  await settle();
  FakeWebSocket.welcome = false; // the server is away: upgrades fail
  FakeWebSocket.all[0].close(1006, "");
  await advance(400, 100);
  assert.equal(FakeWebSocket.all.length, 1, "not at once");
  await advance(200, 100);
  assert.equal(FakeWebSocket.all.length, 2, "after 500 ms");
  FakeWebSocket.all[1].close(1006, ""); // no welcome came: the backoff grows
  await advance(900, 100);
  assert.equal(FakeWebSocket.all.length, 2);
  await advance(200, 100);
  assert.equal(FakeWebSocket.all.length, 3, "after 1 s");
  FakeWebSocket.all[2].close(1006, "");
  sock.close();
  await advance(5000, 500);
  assert.equal(FakeWebSocket.all.length, 3, "closed by the caller: no reconnect");
  assert.equal(srv.refreshes, 0);
});

test("socket in cookie mode relies on the cookie", async () => {
  const srv = fakeServer({ cookie: true });
  const auth = client(srv, { WebSocket: FakeWebSocket, broadcast: false });
  await auth.login({ username: "ada", password: "pw" });
  auth.socket();
  await settle();
  assert.equal(FakeWebSocket.all[0].url, "ws://auth.test/api/v1/ws");
  auth.dispose();
  assert.equal(FakeWebSocket.all[0].readyState, 3, "dispose closes it");
});

test("errors carry the API's code, status, retryAfter and body", async () => {
  const srv = fakeServer();
  const auth = client(srv);
  srv.queue["/api/v1/auth/login"] = [
    () => srv.err(423, "account_locked", {}, { locked_until: "2026-12-03T14:00:00Z" }),
    () => srv.err(429, "rate_limited", { "retry-after": "12" }, { retry_after: 12 }),
    () => new Response("<html>bad gateway</html>", { status: 502 }),
  ];
  await assert.rejects(auth.login({ username: "ada", password: "pw" }), (e) => {
    assert.ok(e instanceof TradeAuthError && e instanceof Error);
    assert.equal(e.status, 423);
    assert.equal(e.code, "account_locked");
    assert.equal(e.body.locked_until, "2026-12-03T14:00:00Z");
    return true;
  });
  await assert.rejects(auth.login({ username: "ada", password: "pw" }), (e) => e.retryAfter === 12 && e.status === 429);
  await assert.rejects(auth.login({ username: "ada", password: "pw" }), (e) => e.code === "http_502" && e.status === 502);
  assert.equal(auth.signedIn, false);
});

const bytes = (...b) => new Uint8Array(b).buffer;

test("WebAuthn JSON forms without the browser's parsers: base64url both ways", () => {
  const o = parseOptionsJSON("Creation", {
    challenge: "-_8",
    user: { id: "AAE", name: "ada" },
    excludeCredentials: [{ type: "public-key", id: "_w" }],
  });
  assert.deepEqual([...new Uint8Array(o.challenge)], [0xfb, 0xff]);
  assert.deepEqual([...new Uint8Array(o.user.id)], [0, 1]);
  assert.deepEqual([...new Uint8Array(o.excludeCredentials[0].id)], [0xff]);
  const j = credentialJSON({
    id: "_w",
    rawId: bytes(0xff),
    type: "public-key",
    authenticatorAttachment: "platform",
    getClientExtensionResults: () => ({ credProps: { rk: true } }),
    response: {
      clientDataJSON: bytes(0xfb, 0xff),
      attestationObject: new Uint8Array([1, 2, 3, 4]).subarray(1, 3),
      getTransports: () => ["internal"],
      getPublicKeyAlgorithm: () => -8,
      getPublicKey: () => bytes(9),
      getAuthenticatorData: () => bytes(7),
    },
  });
  assert.deepEqual(j, {
    id: "_w",
    rawId: "_w",
    type: "public-key",
    response: { clientDataJSON: "-_8", attestationObject: "AgM", transports: ["internal"], publicKeyAlgorithm: -8, publicKey: "CQ", authenticatorData: "Bw" },
    clientExtensionResults: { credProps: { rk: true } },
    authenticatorAttachment: "platform",
  });
  assert.deepEqual(credentialJSON({ toJSON: () => ({ native: true }) }), { native: true });
});

test("loginWithPasskey and passkeys.register run the ceremonies with the JSON forms", async () => {
  const srv = fakeServer();
  const asked = [];
  const credentials = {
    get: async (o) => (asked.push(o), { toJSON: () => ({ id: "BwgJ", kind: "assertion" }) }),
    create: async (o) => (asked.push(o), { toJSON: () => ({ id: "CgsM", kind: "attestation" }) }),
  };
  const auth = client(srv, { credentials });
  const user = await auth.loginWithPasskey({ username: "ada", rememberMe: true });
  assert.equal(user.id, USER.id);
  assert.deepEqual([...new Uint8Array(asked[0].publicKey.challenge)], [1, 2, 3]);
  assert.deepEqual([...new Uint8Array(asked[0].publicKey.allowCredentials[0].id)], [7, 8, 9]);
  const finish = srv.calls.find((c) => c.path === "/api/v1/auth/passkeys/login/finish");
  assert.deepEqual(finish.body, { challenge_id: "ch1", credential: { id: "BwgJ", kind: "assertion" }, remember_me: true });
  assert.equal(auth.accessToken, "at1");
  const pk = await auth.passkeys.register({ name: "laptop" });
  assert.equal(pk.name, "laptop");
  assert.deepEqual([...new Uint8Array(asked[1].publicKey.user.id)], [4, 5, 6]);
  const reg = srv.calls.find((c) => c.path === "/api/v1/auth/passkeys/register/finish");
  assert.equal(reg.headers.get("authorization"), "Bearer at1");
  assert.deepEqual(reg.body.credential, { id: "CgsM", kind: "attestation" });
  await auth.passkeys.rename("pk 1", "work");
  assert.equal(srv.calls.at(-1).method, "PATCH");
  assert.equal(srv.calls.at(-1).url, `${BASE}/api/v1/auth/passkeys/pk%201`);
  await auth.passkeys.list({ limit: 5, cursor: "c" });
  assert.equal(srv.calls.at(-1).url, `${BASE}/api/v1/auth/passkeys?cursor=c&limit=5`);
});
