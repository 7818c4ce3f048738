// A fake tradeauth for the unit tests: a `fetch` that answers the native API from memory,
// with its own clock (`skew` ms ahead of the local one) in every `Date` header.
import { mock } from "node:test";

export const USER = {
  id: "0190b5c4-0000-7000-8000-000000000001",
  email: "ada@example.com",
  username: "ada",
  full_name: null,
  permission_tier: 2,
  role: "trader",
  is_active: true,
  is_verified: true,
  mfa_enabled: false,
  created_at: "2026-01-01T00:00:00Z",
  last_login_at: null,
};

export function fakeServer({ ttl = 900, skew = 0, cookie = false } = {}) {
  const srv = {
    ttl,
    skew,
    cookie,
    calls: [],
    refreshes: 0,
    gen: 0,
    /** path → answers to give before the normal ones: "network", or (call) => Response */
    queue: {},
    /** access tokens → expiry (epoch seconds, server clock) */
    exps: new Map(),
    current: null,
    previous: null,
    now: () => Date.now() + srv.skew,
  };
  const json = (status, body, headers = {}) =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json", date: new Date(srv.now()).toUTCString(), ...headers },
    });
  const err = (status, code, headers = {}, extra = {}) => json(status, { error: code, code, ...extra }, headers);
  srv.json = json;
  srv.err = err;
  srv.issue = () => {
    srv.gen++;
    const exp = Math.floor(srv.now() / 1000) + srv.ttl;
    const t = { at: `at${srv.gen}`, rt: `rt${srv.gen}`, csrf: `csrf${srv.gen}`, exp };
    srv.previous = srv.current;
    srv.current = t;
    srv.exps.set(t.at, exp);
    const b = {
      token_type: cookie ? "cookie" : "bearer",
      expires_in: srv.ttl,
      access_expires_at: exp,
      refresh_expires_at: exp + 86400,
      permission_tier: 2,
      user: USER,
    };
    if (cookie) b.csrf_token = t.csrf;
    else Object.assign(b, { access_token: t.at, refresh_token: t.rt });
    return b;
  };
  srv.fetch = async (input, init) => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    const text = req.method === "GET" || req.method === "HEAD" ? "" : await req.text();
    const call = {
      at: Date.now(),
      method: req.method,
      path: url.pathname,
      url: req.url,
      headers: req.headers,
      body: text ? JSON.parse(text) : undefined,
      credentials: init?.credentials,
    };
    srv.calls.push(call);
    const q = srv.queue[url.pathname];
    if (url.pathname === "/api/v1/auth/refresh") srv.refreshes++;
    if (q?.length) {
      const o = q.shift();
      if (o === "network") throw new TypeError("fetch failed");
      const r = await o(call);
      if (r) return r;
    }
    const unsafe = !["GET", "HEAD"].includes(req.method);
    if (cookie && unsafe && url.pathname !== "/api/v1/auth/login" && srv.current) {
      if (req.headers.get("x-csrf-token") !== srv.current.csrf) return err(403, "csrf_failed");
    }
    switch (url.pathname) {
      case "/api/v1/auth/login":
      case "/api/v1/auth/passkeys/login/finish":
        return json(200, srv.issue());
      case "/api/v1/auth/register":
        return json(201, { user: USER, verification_required: false });
      case "/api/v1/auth/passkeys/login/start":
      case "/api/v1/auth/passkeys/register/start":
        return json(200, {
          challenge_id: "ch1",
          options: {
            publicKey: {
              challenge: "AQID",
              rpId: "localhost",
              user: { id: "BAUG", name: "ada", displayName: "ada" },
              allowCredentials: [{ type: "public-key", id: "BwgJ" }],
            },
          },
        });
      case "/api/v1/auth/refresh": {
        if (cookie) {
          if (!srv.current) return err(401, "invalid_refresh_token");
          return json(200, srv.issue());
        }
        const rt = call.body?.refresh_token;
        if (!srv.current || rt !== srv.current.rt)
          return err(401, rt && rt === srv.previous?.rt ? "refresh_token_reused" : "invalid_refresh_token");
        return json(200, srv.issue());
      }
    }
    // everything else needs a live access token
    let exp;
    if (cookie) {
      exp = srv.current?.exp;
      if (!exp || srv.now() >= exp * 1000) return err(401, "missing_token"); // the cookie is gone
    } else {
      const auth = req.headers.get("authorization");
      if (!auth) return err(401, "missing_token");
      exp = srv.exps.get(auth.slice(7));
      if (!exp) return err(401, "invalid_token");
      if (srv.now() >= exp * 1000) return err(401, "token_expired");
    }
    switch (url.pathname) {
      case "/api/v1/auth/me":
        return json(200, USER);
      case "/api/v1/auth/logout":
      case "/api/v1/auth/logout-all":
        srv.current = null;
        return new Response(null, { status: 204 });
      case "/api/v1/auth/passkeys/register/finish":
        return json(201, { id: "pk1", name: call.body.name, created_at: USER.created_at, last_used_at: null, backup_eligible: true, backed_up: false });
      default:
        return json(200, { ok: true, path: url.pathname });
    }
  };
  srv.count = (path) => srv.calls.filter((c) => c.path === path).length;
  return srv;
}

/** Lets promises and fetch bodies settle (setImmediate is not faked). */
export async function settle(n = 20) {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** Moves the faked clock by `ms`, in steps, letting promises run between them. */
export async function advance(ms, step = 100) {
  for (let t = 0; t < ms; t += step) {
    mock.timers.tick(Math.min(step, ms - t));
    await settle(3);
  }
}

export function fakeTimers(now = 1_780_000_000_000) {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now });
}

export function memory() {
  const m = new Map();
  return { m, getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) };
}

/** A WebSocket double: records what is sent, lets the test close it with a code. */
export class FakeWebSocket {
  static all = [];
  /** Whether a new connection is greeted (a refused upgrade is not). */
  static welcome = true;
  readyState = 0;
  sent = [];
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  constructor(url) {
    this.url = url;
    FakeWebSocket.all.push(this);
    if (FakeWebSocket.welcome) queueMicrotask(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.onmessage?.({ data: JSON.stringify({ type: "welcome" }) });
    });
  }
  send(d) {
    this.sent.push(JSON.parse(d));
  }
  close(code = 1000, reason = "") {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}
