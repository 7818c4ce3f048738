// @tradeauth/client (clients/typescript) in headless Chromium, through nginx over HTTPS with
// the secure cookie defaults: the package's built ESM module is served on tradeauth's own
// origin (by the browser's request interception) and used the way a browser app would —
// cookie transport with no token readable by the page, two tabs refreshing at once after
// the access token expired (both stay signed in, no `refresh.reuse_detected`), sign-out in
// one tab reaching the other, and a passkey registered and used through the package with
// Chrome's virtual authenticator.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import { REPO_ROOT, addVirtualAuthenticator, launchBrowser, newContext, startStack } from './harness.mjs';

const PASSWORD = 'x7Kp2mQa-Trd9';
const CLIENT = path.join(REPO_ROOT, 'clients/typescript');
const DIST = path.join(CLIENT, 'dist');
const ACCESS_TTL_S = 4;

/** Builds the package when its `dist/` is missing (CI builds it before, a fresh clone not). */
function ensureBuilt() {
  if (fs.existsSync(path.join(DIST, 'index.js'))) return;
  for (const args of [['ci', '--no-audit', '--no-fund'], ['run', 'build']]) {
    const r = spawnSync('npm', args, { cwd: CLIENT, stdio: 'inherit' });
    assert.equal(r.status, 0, `npm ${args.join(' ')} in clients/typescript`);
  }
}

let browser;
before(async () => {
  ensureBuilt();
  browser = await launchBrowser();
});
after(() => browser?.close());

/** Serves the app shell and the package's files under `${origin}/app/` in this context. */
async function serveApp(context, origin) {
  await context.route(`${origin}/app/**`, async (route) => {
    const rel = new URL(route.request().url()).pathname.replace(/^\/app\//, '');
    if (rel === '' || rel === 'index.html') {
      return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>app</title><h1>app</h1>' });
    }
    const file = path.join(DIST, path.normalize(rel));
    if (!file.startsWith(DIST) || !fs.existsSync(file)) return route.fulfill({ status: 404, body: 'not found' });
    return route.fulfill({ contentType: 'text/javascript', body: fs.readFileSync(file) });
  });
}

/** A tab with the app loaded and a `window.ta` client (cookie transport) with a change log. */
async function openTab(context, origin) {
  const page = await context.newPage();
  await page.goto(`${origin}/app/index.html`);
  await page.evaluate(async () => {
    const { TradeAuth } = await import('/app/index.js');
    window.ta = new TradeAuth({ baseUrl: location.origin, transport: 'cookie' });
    window.changes = [];
    window.ta.onChange((c) => window.changes.push(c));
  });
  return page;
}

/** Runs `fn(ta)` in the page; resolves to {ok, value} or {ok: false, code, status}. */
const inPage = (page, fn, arg) =>
  page.evaluate(
    async ({ src, arg }) => {
      try {
        // eslint-disable-next-line no-new-func
        const value = await new Function('ta', 'arg', `return (${src})(ta, arg);`)(window.ta, arg);
        return { ok: true, value };
      } catch (e) {
        return { ok: false, code: e.code, status: e.status, message: String(e.message) };
      }
    },
    { src: fn.toString(), arg },
  );

describe('@tradeauth/client in Chromium, cookie transport, through nginx over HTTPS', () => {
  let stack;
  before(async () => {
    stack = await startStack({ label: 'browser-client', env: { TRADEAUTH_ACCESS_TTL: `${ACCESS_TTL_S}s` } });
  });
  after(() => stack?.stop());

  test('no token in JavaScript, two tabs refresh at once, sign-out reaches the other tab', async (t) => {
    const email = 'client-tabs@example.com';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);
    const context = await newContext(browser, { t });
    await serveApp(context, stack.origin);

    const a = await openTab(context, stack.origin);
    const login = await inPage(a, (ta, arg) => ta.login({ email: arg.email, password: arg.password }), { email, password: PASSWORD });
    assert.ok(login.ok, JSON.stringify(login));
    assert.equal(login.value.email, email);
    // The page holds no token: not in the client, not in a readable cookie, not in storage.
    const exposed = await a.evaluate(() => ({
      accessToken: window.ta.accessToken ?? null,
      cookies: document.cookie,
      storage: JSON.stringify({ ...localStorage, ...sessionStorage }),
    }));
    assert.equal(exposed.accessToken, null);
    assert.doesNotMatch(exposed.cookies, /tradeauth_(at|rt)=/);
    assert.match(exposed.cookies, /__Host-tradeauth_csrf=/);
    assert.doesNotMatch(exposed.storage, /eyJ/, 'no JWT in web storage');
    const names = (await context.cookies(stack.origin)).map((c) => `${c.name}:${c.httpOnly}`).sort();
    assert.deepEqual(names, ['__Host-tradeauth_at:true', '__Host-tradeauth_csrf:false', '__Host-tradeauth_rt:true']);

    // A second tab of the same browser is signed in by the cookies.
    const b = await openTab(context, stack.origin);
    const me = await inPage(b, (ta) => ta.me());
    assert.ok(me.ok, JSON.stringify(me));
    assert.equal(me.value.email, email);

    // After the access token expired, both tabs call at once: both stay signed in, and no
    // refresh token was presented twice.
    await sleep((ACCESS_TTL_S + 1) * 1000);
    const [ra, rb] = await Promise.all([inPage(a, (ta) => ta.me()), inPage(b, (ta) => ta.me())]);
    assert.ok(ra.ok && rb.ok, JSON.stringify({ ra, rb }));
    // A write with the CSRF token the package sends for us.
    const renamed = await inPage(a, (ta) => ta.fetch('/api/v1/auth/me', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ full_name: 'Tab A' }) }).then((r) => r.status));
    assert.deepEqual(renamed, { ok: true, value: 200 });
    const events = await inPage(a, (ta) => ta.events.list().then((p) => p.items.map((e) => e.type)));
    assert.ok(events.ok, JSON.stringify(events));
    assert.ok(!events.value.includes('refresh.reuse_detected'), events.value.join(', '));
    assert.equal(await b.evaluate(() => window.ta.signedIn), true);

    // Sign-out in tab A reaches tab B.
    const out = await inPage(a, (ta) => ta.logout());
    assert.ok(out.ok, JSON.stringify(out));
    await b.waitForFunction(() => window.changes.some((c) => c.type === 'signed_out'), null, { timeout: 5000 });
    assert.equal(await b.evaluate(() => window.ta.signedIn), false);
    const after = await inPage(b, (ta) => ta.me());
    assert.equal(after.ok, false);
    assert.equal(after.status, 401, JSON.stringify(after));
    assert.deepEqual((await context.cookies(stack.origin)).filter((c) => /tradeauth_(at|rt)/.test(c.name)), []);
  });

  test('a passkey registered and used through the package', async (t) => {
    const email = 'client-passkey@example.com';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);
    const context = await newContext(browser, { t });
    await serveApp(context, stack.origin);
    const page = await openTab(context, stack.origin);
    const authenticator = await addVirtualAuthenticator(page);

    assert.ok((await inPage(page, (ta, arg) => ta.login({ email: arg.email, password: arg.password }), { email, password: PASSWORD })).ok);
    const added = await inPage(page, (ta) => ta.passkeys.register({ name: 'Laptop' }));
    assert.ok(added.ok, JSON.stringify(added));
    assert.equal(added.value.name, 'Laptop');
    assert.equal((await authenticator.getCredentials()).length, 1);
    assert.ok((await inPage(page, (ta) => ta.logout())).ok);

    const signedIn = await inPage(page, (ta) => ta.loginWithPasskey());
    assert.ok(signedIn.ok, JSON.stringify(signedIn));
    assert.equal(signedIn.value.email, email);
    const me = await inPage(page, (ta) => ta.me());
    assert.equal(me.value.email, email);
    const events = await inPage(page, (ta) => ta.events.list().then((p) => p.items.filter((e) => e.type === 'login.succeeded').map((e) => e.details?.method)));
    assert.equal(events.value[0], 'passkey', JSON.stringify(events.value));
  });
});
