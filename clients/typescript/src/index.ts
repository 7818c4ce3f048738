// @tradeauth/client: the platform's browser and Node client (API.md, "The TypeScript client").
// One refresh at a time per tab, results shared across tabs over BroadcastChannel, no locks:
// the server's grace window makes racing tabs converge on the same tokens.
import type {
  ApiKeyBody,
  CreatedKeyBody,
  ErrorBody,
  EventBody,
  Registered,
  SessionBody,
  TokenBody,
  UserBody,
} from "./api-types.js";

export type * from "./api-types.js";

/** Every list endpoint's answer. */
export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

export interface ListOptions {
  cursor?: string;
  limit?: number;
}

/** A passkey as the server lists it (API.md, "Passkeys"). */
export interface Passkey {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  backup_eligible: boolean;
  backed_up: boolean;
}

/** Where body transport keeps its tokens: `localStorage`, `sessionStorage` or your own (may be async). */
export interface TokenStorage {
  getItem(key: string): string | null | undefined | Promise<string | null | undefined>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/** The part of a WebSocket the client uses (the browser's, or the `ws` package's in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => any) | null;
  onmessage: ((ev: { data: any }) => any) | null;
  onclose: ((ev: { code: number; reason: string }) => any) | null;
  onerror: ((ev: any) => any) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface TradeAuthOptions {
  /** The server's root, e.g. `https://auth.example.com`. */
  baseUrl: string;
  /** `cookie`: tokens in HttpOnly cookies (browsers); `body`: tokens in `storage` (Node, CLIs). */
  transport: "cookie" | "body";
  /** Default: in memory. */
  storage?: TokenStorage;
  fetch?: typeof fetch;
  WebSocket?: WebSocketConstructor;
  /** Refresh ahead of expiry (default true). */
  autoRefresh?: boolean;
  /** Share sign-in, refresh and sign-out with other tabs: true, a channel name, or false.
   * Default: true in a browser, false elsewhere. */
  broadcast?: boolean | string;
  /** WebAuthn (default `navigator.credentials`). */
  credentials?: Pick<CredentialsContainer, "create" | "get">;
}

export type AuthChangeType = "signed_in" | "refreshed" | "signed_out";

export interface AuthChange {
  type: AuthChangeType;
  /** For `signed_out`: `logout`, `logout_all`, `session_revoked` or the refresh error's code. */
  reason?: string;
}

export interface LoginOptions {
  username?: string;
  email?: string;
  password: string;
  rememberMe?: boolean;
  totpCode?: string;
  recoveryCode?: string;
}

export interface RegisterOptions {
  email: string;
  password: string;
  username?: string;
  fullName?: string;
  /** Sent as `Idempotency-Key`: the registration may then be re-sent once after a network failure. */
  idempotencyKey?: string;
}

export interface ApiKeyOptions {
  name: string;
  permissionTier?: number;
  expiresAt?: string;
  allowedIps?: string[];
}

export interface SocketHandlers {
  onMessage?(message: any): void;
  onOpen?(): void;
  onClose?(code: number, reason: string): void;
}

export interface TradeAuthSocket {
  send(message: unknown): void;
  close(): void;
  /** The current underlying WebSocket (replaced on reconnect). */
  readonly raw: WebSocketLike | undefined;
}

/** Any failure: the API's error body, or status 0 and `network_error` when nothing was answered. */
export class TradeAuthError extends Error {
  override name = "TradeAuthError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds to wait, on a 429. */
    readonly retryAfter?: number,
    readonly body?: ErrorBody,
  ) {
    super(message);
  }
}

interface Session {
  /** Access and refresh token (body transport only). */
  at?: string;
  rt?: string;
  /** `access_expires_at` in ms on the server's clock; 0 when unknown (cookie mode after a reload). */
  exp: number;
  /** The access token's lifetime, ms. */
  ttl: number;
  csrf?: string;
  uid?: string;
  user?: UserBody;
}

type Peer = { t: "signed_in" | "refreshed"; s: Session } | { t: "signed_out"; uid?: string; reason?: string };

const KEY = "tradeauth.session";
const FATAL = ["refresh_token_reused", "invalid_refresh_token"];
const g = globalThis as any;

function later(ms: number, fn: () => void): any {
  const t: any = setTimeout(fn, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
  t?.unref?.();
  return t;
}

async function toError(res: Response): Promise<TradeAuthError> {
  let b: any = {};
  try {
    b = await res.json();
  } catch {
    // no JSON body (a proxy's page, a 414)
  }
  const ra = Number(res.headers.get("retry-after")) || b.retry_after || undefined;
  return new TradeAuthError(res.status, b.code ?? `http_${res.status}`, b.error ?? res.statusText, ra, b);
}

const enc = (buf: ArrayBuffer | ArrayBufferView): string =>
  btoa(
    String.fromCharCode(
      ...new Uint8Array(ArrayBuffer.isView(buf) ? buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) : buf),
    ),
  )
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

const dec = (s: string): ArrayBuffer =>
  Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)).buffer;

/** WebAuthn options from their JSON form: the browser's parser, or the same conversion by hand. */
export function parseOptionsJSON(kind: "Creation" | "Request", o: any): any {
  const P = g.PublicKeyCredential;
  const native = P?.[`parse${kind}OptionsFromJSON`];
  if (native) return native.call(P, o);
  const r = { ...o, challenge: dec(o.challenge) };
  if (o.user) r.user = { ...o.user, id: dec(o.user.id) };
  for (const k of ["excludeCredentials", "allowCredentials"])
    if (o[k]) r[k] = o[k].map((c: any) => ({ ...c, id: dec(c.id) }));
  return r;
}

/** A credential's JSON form (`RegistrationResponseJSON` / `AuthenticationResponseJSON`). */
export function credentialJSON(c: any): any {
  if (typeof c.toJSON === "function") return c.toJSON();
  const r = c.response;
  const out: any = {};
  for (const k of ["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"])
    if (r[k]) out[k] = enc(r[k]);
  if (r.getTransports) out.transports = r.getTransports();
  if (r.getPublicKeyAlgorithm) out.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
  const pk = r.getPublicKey?.();
  if (pk) out.publicKey = enc(pk);
  if (!out.authenticatorData && r.getAuthenticatorData) out.authenticatorData = enc(r.getAuthenticatorData());
  return {
    id: c.id,
    rawId: enc(c.rawId),
    type: c.type,
    response: out,
    clientExtensionResults: c.getClientExtensionResults?.() ?? {},
    authenticatorAttachment: c.authenticatorAttachment ?? undefined,
  };
}

export class TradeAuth {
  private readonly base: string;
  private readonly cookie: boolean;
  private readonly store: TokenStorage;
  private readonly f: typeof fetch;
  private readonly auto: boolean;
  private s?: Session;
  /** Server clock minus local clock, ms. */
  private skew = 0;
  /** Bumped on every new token set: a 401 on an older one just retries. */
  private gen = 0;
  /** Bumped on sign-out: a refresh that lands after it is dropped. */
  private epoch = 0;
  private flight?: Promise<void>;
  private timer: any;
  /** When the timer fires, on the server's clock. */
  private due = Infinity;
  private fails = 0;
  private disposed = false;
  private readonly listeners = new Set<(c: AuthChange) => void>();
  private readonly sockets = new Set<AuthSocket>();
  private readonly bc?: BroadcastChannel;
  private readonly wake?: () => void;
  private readonly ready: Promise<void>;

  readonly sessions = {
    list: (o?: ListOptions) => this.api<Page<SessionBody>>("GET", "/auth/sessions" + query(o)),
    revoke: (id: string) => this.api<void>("DELETE", `/auth/sessions/${encodeURIComponent(id)}`),
  };
  readonly events = {
    list: (o?: ListOptions) => this.api<Page<EventBody>>("GET", "/auth/events" + query(o)),
  };
  readonly apiKeys = {
    create: (o: ApiKeyOptions) =>
      this.api<CreatedKeyBody>("POST", "/auth/api-keys", {
        name: o.name,
        permission_tier: o.permissionTier,
        expires_at: o.expiresAt,
        allowed_ips: o.allowedIps,
      }),
    list: (o?: ListOptions) => this.api<Page<ApiKeyBody>>("GET", "/auth/api-keys" + query(o)),
    revoke: (id: string) => this.api<void>("DELETE", `/auth/api-keys/${encodeURIComponent(id)}`),
  };
  readonly passkeys = {
    register: async ({ name }: { name: string }): Promise<Passkey> => {
      const start = await this.api<any>("POST", "/auth/passkeys/register/start", {});
      const cred = await this.webauthn().create({ publicKey: parseOptionsJSON("Creation", start.options.publicKey) });
      return this.api<Passkey>("POST", "/auth/passkeys/register/finish", {
        challenge_id: start.challenge_id,
        name,
        credential: credentialJSON(cred),
      });
    },
    list: (o?: ListOptions) => this.api<Page<Passkey>>("GET", "/auth/passkeys" + query(o)),
    rename: (id: string, name: string) =>
      this.api<Passkey>("PATCH", `/auth/passkeys/${encodeURIComponent(id)}`, { name }),
    remove: (id: string) => this.api<void>("DELETE", `/auth/passkeys/${encodeURIComponent(id)}`),
  };

  constructor(o: TradeAuthOptions) {
    this.base = o.baseUrl.replace(/\/+$/, "");
    this.cookie = o.transport === "cookie";
    const mem = new Map<string, string>();
    this.store = o.storage ?? {
      getItem: (k) => mem.get(k),
      setItem: (k, v) => void mem.set(k, v),
      removeItem: (k) => void mem.delete(k),
    };
    this.f = o.fetch ?? ((i, n) => fetch(i, n));
    this.ws = o.WebSocket ?? g.WebSocket;
    this.creds = o.credentials;
    this.auto = o.autoRefresh !== false;
    const b = o.broadcast ?? !!g.document;
    if (b && typeof BroadcastChannel === "function") {
      this.bc = new BroadcastChannel(typeof b === "string" ? b : `tradeauth:${this.base}`);
      (this.bc as any).unref?.();
      this.bc.onmessage = (e) => this.peer(e.data);
    }
    if (g.document?.addEventListener) {
      this.wake = () => g.document.visibilityState !== "hidden" && this.check();
      g.document.addEventListener("visibilitychange", this.wake);
      g.addEventListener?.("online", this.wake);
      g.addEventListener?.("pageshow", this.wake);
    }
    this.ready = this.load();
  }

  /** @internal */ readonly ws?: WebSocketConstructor;
  private readonly creds?: Pick<CredentialsContainer, "create" | "get">;

  /** Reads the stored session, synchronously when the storage is (so `signedIn` is right at once). */
  private load(): Promise<void> {
    const got = (raw: string | null | undefined) => {
      try {
        if (raw) this.s = JSON.parse(raw);
      } catch {
        // unreadable: signed out
      }
      const csrf = this.cookie && this.csrf();
      if (!this.s && csrf) this.s = { exp: 0, ttl: 0, csrf };
      this.plan();
    };
    try {
      const r = this.store.getItem(KEY);
      if (r && typeof (r as any).then === "function") return (r as Promise<string>).then(got, () => got(null));
      got(r as string | null);
    } catch {
      got(null);
    }
    return Promise.resolve();
  }

  /** True while the client holds a session (it may still turn out revoked). */
  get signedIn(): boolean {
    return !!this.s;
  }

  /** The user as of the last sign-in, refresh or `me()`. */
  get user(): UserBody | undefined {
    return this.s?.user;
  }

  /** The current access token (body transport; undefined in cookie mode). */
  get accessToken(): string | undefined {
    return this.s?.at;
  }

  /** The server's clock, ms since the epoch, as read from its `Date` headers. */
  serverNow(): number {
    return Date.now() + this.skew;
  }

  onChange(listener: (change: AuthChange) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async login(o: LoginOptions): Promise<UserBody> {
    return this.signIn("/auth/login", {
      username: o.username,
      email: o.email,
      password: o.password,
      remember_me: o.rememberMe,
      totp_code: o.totpCode,
      recovery_code: o.recoveryCode,
    });
  }

  async loginWithPasskey(o: { username?: string; rememberMe?: boolean } = {}): Promise<UserBody> {
    const start = await this.api<any>("POST", "/auth/passkeys/login/start", { username: o.username }, false);
    const cred = await this.webauthn().get({ publicKey: parseOptionsJSON("Request", start.options.publicKey) });
    return this.signIn("/auth/passkeys/login/finish", {
      challenge_id: start.challenge_id,
      credential: credentialJSON(cred),
      remember_me: o.rememberMe,
    });
  }

  /** Creates the account; it does not sign in (the server may want the email verified first). */
  register(o: RegisterOptions): Promise<Registered> {
    return this.api<Registered>(
      "POST",
      "/auth/register",
      { email: o.email, password: o.password, username: o.username, full_name: o.fullName },
      false,
      o.idempotencyKey ? { "idempotency-key": o.idempotencyKey } : undefined,
    );
  }

  /** Refreshes now; concurrent callers share one request. */
  refresh(): Promise<void> {
    return (this.flight ??= this.doRefresh().finally(() => (this.flight = undefined)));
  }

  async logout(): Promise<void> {
    await this.end("logout", () => this.api("POST", "/auth/logout", this.cookie ? {} : { refresh_token: this.s?.rt }));
  }

  async logoutAll(): Promise<void> {
    await this.end("logout_all", () => this.api("POST", "/auth/logout-all"));
  }

  async me(): Promise<UserBody> {
    const u = await this.api<UserBody>("GET", "/auth/me");
    if (this.s && (!this.s.uid || this.s.uid === u.id)) {
      this.s.user = u;
      this.s.uid = u.id;
    }
    return u;
  }

  /**
   * An authenticated `fetch` for the platform's own APIs (a path starting with `/` is appended
   * to `baseUrl`). Refreshes first when the token is due, and once on a 401 `token_expired`;
   * a request that fails on the network is re-sent once only if it has an `Idempotency-Key`.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    return this.call(input, init, true);
  }

  /** Opens `/api/v1/ws`: reauth after each refresh, reconnect after 4001, sign out after 4003. */
  socket(h: SocketHandlers = {}): TradeAuthSocket {
    if (!this.ws) throw new TradeAuthError(0, "websocket_unavailable", "pass a WebSocket implementation");
    const s = new AuthSocket(this, h, this.cookie);
    this.sockets.add(s);
    void s.open();
    return s;
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    this.bc?.close();
    if (this.wake) {
      g.document.removeEventListener("visibilitychange", this.wake);
      g.removeEventListener?.("online", this.wake);
      g.removeEventListener?.("pageshow", this.wake);
    }
    for (const s of this.sockets) s.close();
    this.listeners.clear();
  }

  // ---- internals -------------------------------------------------------------------------

  private webauthn() {
    const c = this.creds ?? g.navigator?.credentials;
    if (!c) throw new TradeAuthError(0, "webauthn_unavailable", "WebAuthn is not available here");
    return c as Pick<CredentialsContainer, "create" | "get">;
  }

  private async signIn(path: string, body: Record<string, unknown>): Promise<UserBody> {
    if (this.cookie) body.token_transport = "cookie";
    await this.ready;
    const t = await this.api<TokenBody>("POST", path, body, false);
    this.epoch++;
    await this.adopt(t, "signed_in");
    return t.user;
  }

  private async end(reason: string, call: () => Promise<unknown>) {
    await this.ready;
    try {
      await call();
    } catch (e) {
      // already dead on the server: signing out locally is all there is to do
      if (!(e instanceof TradeAuthError && e.status === 401)) throw e;
    } finally {
      await this.signOut(reason);
    }
  }

  private async doRefresh(): Promise<void> {
    await this.ready;
    let s = this.s;
    if (!s) throw new TradeAuthError(401, "missing_token", "not signed in");
    if (!this.cookie) {
      // another process or tab sharing the storage may have rotated already
      try {
        const raw = await this.store.getItem(KEY);
        const st: Session | undefined = raw ? JSON.parse(raw) : undefined;
        if (st?.rt && st.uid === s.uid && st.exp > s.exp) s = this.s = st;
      } catch {
        // keep ours
      }
    }
    const epoch = this.epoch;
    let res: Response;
    try {
      res = await this.call("/api/v1/auth/refresh", this.json("POST", this.cookie ? {} : { refresh_token: s.rt }), false);
    } catch (e) {
      this.retry();
      throw e;
    }
    if (epoch !== this.epoch || !this.s) throw new TradeAuthError(401, "signed_out", "signed out meanwhile");
    if (res.ok) {
      this.fails = 0;
      const t: TokenBody = await res.json();
      // a tab's broadcast may have brought a newer set meanwhile
      if (!this.s || t.access_expires_at * 1000 >= this.s.exp) await this.adopt(t, "refreshed");
      return;
    }
    const err = await toError(res);
    if (FATAL.includes(err.code)) await this.signOut(err.code);
    else if (res.status === 429) this.later((err.retryAfter ?? 1) * 1000);
    else if (res.status >= 500) this.retry();
    throw err;
  }

  /** Backoff after a network error or 5xx: 1 s, 2 s, 4 s ... 60 s, ±20 %. */
  private retry() {
    this.later(Math.min(60_000, 1000 * 2 ** this.fails++) * (0.8 + Math.random() * 0.4));
  }

  /** The next background refresh, `ms` from now. */
  private later(ms: number) {
    clearTimeout(this.timer);
    if (!this.s || !this.auto || this.disposed) return;
    this.due = this.serverNow() + ms;
    this.timer = later(ms, () => this.background());
  }

  private background() {
    this.due = Infinity;
    this.refresh().catch(() => {
      // scheduled again by doRefresh where that makes sense
    });
  }

  /** Ahead of expiry: a third of the lifetime, at most 5 min, less up to a quarter of that. */
  private plan() {
    const s = this.s;
    if (!s?.exp) return;
    const margin = Math.min(s.ttl / 3, 300_000);
    this.later(s.exp - margin - Math.random() * Math.min(margin / 4, 30_000) - this.serverNow());
  }

  /** On visibility or network return: refresh if one is due or a retry is waiting. */
  private check() {
    if (this.s && this.due < Infinity && (this.serverNow() >= this.due || this.fails > 0)) {
      clearTimeout(this.timer);
      this.background();
    }
  }

  private async adopt(t: TokenBody & { csrf_token?: string }, type: AuthChangeType) {
    // a token body is the fallback clock when `Date` is not readable (a cross-origin page)
    if (!this.dated) this.skew = (t.access_expires_at - t.expires_in) * 1000 - Date.now() + 500;
    this.s = {
      at: t.access_token,
      rt: t.refresh_token,
      exp: t.access_expires_at * 1000,
      ttl: t.expires_in * 1000,
      csrf: t.csrf_token ?? this.s?.csrf,
      uid: t.user?.id,
      user: t.user,
    };
    this.gen++;
    this.fails = 0;
    try {
      await this.store.setItem(KEY, JSON.stringify(this.s));
    } catch {
      // a full or broken storage: the session still works in memory
    }
    if (this.disposed) return;
    this.plan();
    this.post({ t: type, s: this.s });
    this.emit({ type });
    for (const k of this.sockets) k.reauth();
  }

  private dated = false;

  private async signOut(reason: string, tell = true) {
    const uid = this.s?.uid;
    const had = !!this.s;
    this.epoch++;
    this.s = undefined;
    this.due = Infinity;
    clearTimeout(this.timer);
    try {
      await this.store.removeItem(KEY);
    } catch {
      // storage gone: memory is cleared anyway
    }
    if (this.cookie && g.document)
      for (const n of ["__Host-tradeauth_csrf", "tradeauth_csrf"])
        g.document.cookie = `${n}=; Max-Age=0; Path=/${n[0] === "_" ? "; Secure" : ""}`;
    if (tell) this.post({ t: "signed_out", uid, reason });
    for (const k of this.sockets) k.close();
    if (had) this.emit({ type: "signed_out", reason });
  }

  private post(m: Peer) {
    try {
      this.bc?.postMessage(m);
    } catch {
      // closed
    }
  }

  private peer(m: Peer) {
    if (this.disposed) return;
    if (m.t === "signed_out") {
      if (this.s && (!m.uid || !this.s.uid || m.uid === this.s.uid)) void this.signOut(m.reason ?? "signed_out", false);
      return;
    }
    const mine = this.s;
    if (m.t === "refreshed" && (!mine || (mine.uid && mine.uid !== m.s.uid) || m.s.exp < mine.exp)) return;
    if (m.t === "signed_in") this.epoch++;
    this.s = m.s;
    this.gen++;
    void this.store.setItem(KEY, JSON.stringify(m.s));
    this.plan();
    this.emit({ type: m.t });
    for (const k of this.sockets) k.reauth();
  }

  private emit(c: AuthChange) {
    for (const l of [...this.listeners]) {
      try {
        l(c);
      } catch {
        // a listener's error is its own
      }
    }
  }

  private csrf(): string | undefined {
    if (this.s?.csrf) return this.s.csrf;
    const m = /(?:^|;\s*)(?:__Host-)?tradeauth_csrf=([^;]*)/.exec(g.document?.cookie ?? "");
    return m?.[1] ? decodeURIComponent(m[1]) : undefined;
  }

  private json(method: string, body?: unknown, headers?: Record<string, string>): RequestInit {
    return body === undefined
      ? { method, headers }
      : { method, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
  }

  private async api<T>(
    method: string,
    path: string,
    body?: unknown,
    authed = true,
    headers?: Record<string, string>,
  ): Promise<T> {
    const res = await this.call("/api/v1" + path, this.json(method, body, headers), authed);
    if (!res.ok) throw await toError(res);
    return res.status === 204 ? (undefined as T) : res.json();
  }

  /** @internal Refreshes first when the access token is past (or within 1 s of) expiry. */
  async fresh(): Promise<void> {
    await this.ready;
    const s = this.s;
    if (s?.exp && this.serverNow() >= s.exp - 1000) await this.refresh();
  }

  private async call(input: string | URL | Request, init: RequestInit = {}, authed: boolean): Promise<Response> {
    await this.ready;
    const req = input instanceof Request;
    const str = String(input);
    const url = req ? input.url : str[0] === "/" ? this.base + str : new URL(str, this.base + "/").href;
    const base = new Headers(req ? input.headers : undefined);
    new Headers(init.headers).forEach((v, k) => base.set(k, v));
    const method = (init.method ?? (req ? input.method : "GET")).toUpperCase();
    const unsafe = !/^(GET|HEAD|OPTIONS)$/.test(method);
    // a caller's own Authorization is the caller's business: no refresh for it
    if (base.has("authorization")) authed = false;
    let again = base.has("idempotency-key");
    let expired = authed;
    for (;;) {
      if (authed) await this.fresh();
      const gen = this.gen;
      const h = new Headers(base);
      const s = this.s;
      if (authed && s?.at) h.set("authorization", `Bearer ${s.at}`);
      const csrf = this.cookie && unsafe && this.csrf();
      if (csrf) h.set("x-csrf-token", csrf);
      const opts: RequestInit = { ...init, headers: h, method };
      if (this.cookie) opts.credentials = "include";
      let res: Response;
      try {
        res = await this.f(req ? new Request(input.clone(), opts) : url, opts);
      } catch (e: any) {
        if (again) {
          again = false;
          continue;
        }
        throw new TradeAuthError(0, "network_error", e?.message ?? String(e));
      }
      const date = Date.parse(res.headers.get("date") ?? "");
      if (date) {
        // `Date` has whole seconds: the server's time lies in [date, date + 1 s)
        this.skew = date + 500 - Date.now();
        this.dated = true;
      }
      if (res.status === 401 && expired && this.s) {
        let code;
        try {
          code = (await res.clone().json()).code;
        } catch {
          // not ours
        }
        if (code === "token_expired" || (this.cookie && code === "missing_token")) {
          expired = false;
          // a 401 on a token that has since been replaced needs no refresh of its own
          if (gen === this.gen) {
            try {
              await this.refresh();
            } catch (e) {
              if (e instanceof TradeAuthError && e.status === 401) return res;
              throw e;
            }
          }
          continue;
        }
      }
      return res;
    }
  }
}

function query(o?: ListOptions): string {
  const q = new URLSearchParams();
  if (o?.cursor) q.set("cursor", o.cursor);
  if (o?.limit) q.set("limit", String(o.limit));
  const s = q.toString();
  return s ? "?" + s : "";
}

class AuthSocket implements TradeAuthSocket {
  raw: WebSocketLike | undefined;
  private closed = false;
  private tries = 0;
  private gen = -1;
  /** A reconnect waiting (kept referenced: a bot whose socket dropped should not exit meanwhile). */
  private timer: any;
  constructor(
    private readonly a: TradeAuth,
    private readonly h: SocketHandlers,
    private readonly cookie: boolean,
  ) {}

  async open(): Promise<void> {
    const a: any = this.a;
    try {
      await a.fresh();
    } catch {
      // the upgrade will fail and back off, or the client has signed out
    }
    if (this.closed) return;
    if (!a.s) return this.close();
    const W: WebSocketConstructor = a.ws;
    const u = new URL(a.base + "/api/v1/ws");
    u.protocol = u.protocol.replace("http", "ws");
    if (!this.cookie) u.searchParams.set("token", a.s.at);
    this.gen = a.gen;
    const ws = (this.raw = new W(u.href));
    ws.onopen = () => this.h.onOpen?.();
    ws.onerror = () => {};
    ws.onmessage = (e) => {
      let m;
      try {
        m = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (m.type === "welcome") this.tries = 0;
      this.h.onMessage?.(m);
    };
    ws.onclose = (e) => {
      if (ws !== this.raw) return;
      this.h.onClose?.(e.code, e.reason);
      if (this.closed) return;
      if (e.code === 4003) {
        this.closed = true;
        void a.signOut("session_revoked");
      } else if (e.code === 4001) {
        // expired without a reauth: refresh (unless that already happened) and reconnect
        (a.gen === this.gen ? a.refresh() : Promise.resolve()).catch(() => {}).then(() => this.open());
      } else this.timer = setTimeout(() => void this.open(), Math.min(30_000, 500 * 2 ** this.tries++));
    };
  }

  reauth(): void {
    const a: any = this.a;
    if (!this.cookie && a.s?.at && this.raw?.readyState === 1) {
      this.gen = a.gen;
      this.send({ type: "reauth", token: a.s.at });
    }
  }

  send(m: unknown): void {
    this.raw?.send(typeof m === "string" ? m : JSON.stringify(m));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    (this.a as any).sockets.delete(this);
    if (this.raw && this.raw.readyState < 2) this.raw.close(1000);
  }
}
