// Compiled (never run) by `npm test`: the public API has the contract's shape, so a change
// that breaks a caller's code fails the build.
import {
  TradeAuth,
  TradeAuthError,
  type AuthChange,
  type Page,
  type Passkey,
  type SessionBody,
  type TokenStorage,
  type UserBody,
  type WebSocketConstructor,
} from "../dist/index.js";

declare const storage: TokenStorage;
declare const WS: WebSocketConstructor;

export async function shape(): Promise<void> {
  const auth = new TradeAuth({ baseUrl: "https://auth.example.com", transport: "cookie" });
  const bot = new TradeAuth({ baseUrl: "https://auth.example.com", transport: "body", storage, fetch, WebSocket: WS });
  const u: UserBody = await auth.login({ username: "ada", password: "pw", rememberMe: true, totpCode: "123456" });
  await auth.login({ email: u.email, password: "pw" });
  await auth.loginWithPasskey({ username: "ada" });
  await auth.loginWithPasskey();
  const reg = await auth.register({ email: "a@example.com", password: "pw", username: "ada", fullName: "Ada" });
  const verify: boolean = reg.verification_required;
  await auth.refresh();
  await auth.logout();
  await auth.logoutAll();
  const me: UserBody = await auth.me();
  const sessions: Page<SessionBody> = await auth.sessions.list();
  await auth.sessions.revoke(sessions.items[0].id);
  const events = await auth.events.list({ limit: 10 });
  const type: string = events.items[0].type;
  const pk: Passkey = await auth.passkeys.register({ name: "laptop" });
  await auth.passkeys.list();
  await auth.passkeys.rename(pk.id, "work");
  await auth.passkeys.remove(pk.id);
  const key = await bot.apiKeys.create({ name: "bot", permissionTier: 2, allowedIps: ["10.0.0.0/8"] });
  const secret: string | null | undefined = key.key; // absent for a signing key with an uploaded public key
  await bot.apiKeys.list();
  await bot.apiKeys.revoke(key.id);
  const res: Response = await auth.fetch("/api/v1/orders", { method: "POST", headers: { "Idempotency-Key": "k" } });
  const sock = bot.socket({ onMessage: (m) => m, onClose: (code: number) => code });
  sock.send({ type: "ping" });
  sock.close();
  const off: () => void = auth.onChange((c: AuthChange) => {
    const t: "signed_in" | "refreshed" | "signed_out" = c.type;
    const r: string | undefined = c.reason;
    void t, r;
  });
  off();
  try {
    await auth.me();
  } catch (e) {
    if (e instanceof TradeAuthError) {
      const status: number = e.status;
      const code: string = e.code;
      const wait: number | undefined = e.retryAfter;
      void status, code, wait;
    }
  }
  auth.dispose();
  void verify, me, type, secret, res;
}
