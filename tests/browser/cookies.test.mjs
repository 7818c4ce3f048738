// Browser sessions (cookie mode) in headless Chromium, through nginx over HTTPS with the
// secure defaults (__Host- cookies): a page signs in holding no token, calls tradeauth and
// a service behind forward-auth, refreshes in two tabs at once and signs out; a page on
// another site tries a form post and a credentialed fetch against logout and refresh, and
// the session survives.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { launchBrowser, newContext, startStack } from './harness.mjs';

const PASSWORD = 'x7Kp2mQa-Trd9';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** In the page: fetch with credentials, returning {status, body, xAuthError}. */
const call = (page, path, { method = 'GET', csrf, json } = {}) =>
  page.evaluate(
    async ({ path, method, csrf, json }) => {
      const headers = {};
      if (csrf) headers['X-CSRF-Token'] = csrf;
      if (json) headers['Content-Type'] = 'application/json';
      const r = await fetch(path, { method, credentials: 'include', headers, body: json ? JSON.stringify(json) : undefined });
      const text = await r.text();
      let body = null;
      try {
        body = JSON.parse(text);
      } catch {}
      return { status: r.status, body, xAuthError: r.headers.get('x-auth-error') };
    },
    { path, method, csrf, json },
  );

/** The CSRF token as a page reads it after a reload: from the readable cookie. */
const csrfFromCookie = (page) =>
  page.evaluate(() => document.cookie.split('; ').find((c) => c.startsWith('__Host-tradeauth_csrf='))?.split('=')[1]);

describe('cookie mode through nginx over HTTPS', () => {
  let stack;
  before(async () => {
    stack = await startStack({ label: 'browser-cookies' });
  });
  after(() => stack?.stop());

  test('a page signs in with no token in JavaScript, uses tradeauth and a service, refreshes in two tabs and signs out', async (t) => {
    const email = 'cookie-tabs@example.com';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);

    const context = await newContext(browser, { t });
    const page = await context.newPage();
    await page.goto(`${stack.origin}/healthz`);
    const login = await call(page, '/api/v1/auth/login', {
      method: 'POST',
      json: { username: email, password: PASSWORD, token_transport: 'cookie' },
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.token_type, 'cookie');
    assert.equal(login.body.access_token, undefined);
    assert.equal(login.body.refresh_token, undefined);

    // Only the CSRF cookie is visible to script; the token cookies are HttpOnly and __Host-.
    const visible = await page.evaluate(() => document.cookie);
    assert.equal(visible, `__Host-tradeauth_csrf=${login.body.csrf_token}`);
    const jar = await context.cookies(stack.origin);
    const byName = Object.fromEntries(jar.map((c) => [c.name, c]));
    for (const name of ['__Host-tradeauth_at', '__Host-tradeauth_rt']) {
      assert.equal(byName[name]?.httpOnly, true, name);
      assert.equal(byName[name]?.secure, true, name);
      assert.equal(byName[name]?.path, '/', name);
    }
    assert.equal(byName['__Host-tradeauth_at'].sameSite, 'Lax');
    assert.equal(byName['__Host-tradeauth_rt'].sameSite, 'Strict');
    assert.equal(byName['__Host-tradeauth_rt'].expires, -1, 'a browser-session cookie without remember_me');

    // After a reload the page finds its CSRF token in the readable cookie.
    await page.reload();
    const csrf = await csrfFromCookie(page);
    assert.equal(csrf, login.body.csrf_token);

    const me = await call(page, '/api/v1/auth/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.email, email);

    // The service behind nginx: reads with the cookie alone; a POST needs the CSRF token.
    assert.equal((await call(page, '/service/orders')).status, 200);
    const refused = await call(page, '/service/orders', { method: 'POST', json: { qty: 1 } });
    assert.equal(refused.status, 403);
    assert.equal(refused.xAuthError, 'csrf_failed');
    const placed = await call(page, '/service/orders', { method: 'POST', csrf, json: { qty: 1 } });
    assert.equal(placed.status, 200);
    assert.equal(placed.body.headers['x-auth-user-id'], me.body.id);

    // Two tabs refresh at the same moment: both succeed and end with the same cookies.
    const second = await context.newPage();
    await second.goto(`${stack.origin}/healthz`);
    const rtBefore = (await context.cookies(stack.origin)).find((c) => c.name === '__Host-tradeauth_rt').value;
    const [a, b] = await Promise.all([
      call(page, '/api/v1/auth/refresh', { method: 'POST', csrf }),
      call(second, '/api/v1/auth/refresh', { method: 'POST', csrf }),
    ]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    const rtAfter = (await context.cookies(stack.origin)).find((c) => c.name === '__Host-tradeauth_rt').value;
    assert.notEqual(rtAfter, rtBefore, 'rotated');
    assert.equal((await call(page, '/api/v1/auth/me')).status, 200);
    assert.equal((await call(second, '/api/v1/auth/me')).status, 200);
    // The next refresh (the current cookie) still works: nothing was counted as reuse.
    assert.equal((await call(second, '/api/v1/auth/refresh', { method: 'POST', csrf })).status, 200);

    // Sign out: the cookies are gone and the session is over.
    const out = await call(page, '/api/v1/auth/logout', { method: 'POST', csrf });
    assert.equal(out.status, 204);
    const left = (await context.cookies(stack.origin)).filter((c) => c.name.startsWith('__Host-tradeauth_'));
    assert.deepEqual(left, []);
    assert.equal((await call(second, '/api/v1/auth/me')).status, 401);
  });

  test('a page on another site cannot sign the user out or refresh, by form post or credentialed fetch', async (t) => {
    const email = 'cookie-csrf@example.com';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);
    const context = await newContext(browser, { t });
    const page = await context.newPage();
    await page.goto(`${stack.origin}/healthz`);
    const login = await call(page, '/api/v1/auth/login', {
      method: 'POST',
      json: { username: email, password: PASSWORD, token_transport: 'cookie' },
    });
    assert.equal(login.status, 200);
    const cookiesBefore = await context.cookies(stack.origin);

    // Cross-site form posts (they navigate the victim's tab) to logout and refresh.
    for (const target of ['/api/v1/auth/logout', '/api/v1/auth/refresh']) {
      const name = `post${target.replace(/\W/g, '_')}.html`;
      stack.putAttackerPage(name, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Prize</title></head><body>
<form method="post" action="${stack.origin}${target}"><input type="hidden" name="x" value="1"></form>
<script>document.forms[0].submit();</script></body></html>`);
      const attacker = await context.newPage();
      const landed = attacker.waitForResponse((r) => r.url() === `${stack.origin}${target}`);
      await attacker.goto(`${stack.attackerOrigin}/${name}`);
      const response = await landed;
      // Refused one way or another: no cookie arrives cross-site (Lax/Strict), and the
      // form body is not the JSON a refresh takes.
      assert.ok([400, 401, 403].includes(response.status()), `${target}: ${response.status()}`);
      await attacker.close();
    }

    // A credentialed fetch from the attacker's page (no-cors: the attacker reads nothing,
    // but the request is sent), and one guessing a CSRF header (blocked by CORS preflight).
    const attacker = await context.newPage();
    stack.putAttackerPage('fetch.html', '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>x</title></head><body>hi</body></html>');
    await attacker.goto(`${stack.attackerOrigin}/fetch.html`);
    const attempts = await attacker.evaluate(async (origin) => {
      const out = [];
      for (const path of ['/api/v1/auth/logout', '/api/v1/auth/refresh']) {
        try {
          await fetch(origin + path, { method: 'POST', mode: 'no-cors', credentials: 'include' });
          out.push(`${path}: sent`);
        } catch (e) {
          out.push(`${path}: ${e.message}`);
        }
        try {
          await fetch(origin + path, { method: 'POST', credentials: 'include', headers: { 'X-CSRF-Token': 'guess' } });
          out.push(`${path}: read`);
        } catch (e) {
          out.push(`${path}: blocked`);
        }
      }
      return out;
    }, stack.origin);
    assert.ok(attempts.every((a) => !a.endsWith(': read')), attempts.join('; '));

    // The session survived all of it: same cookies, and it still works.
    const cookiesAfter = await context.cookies(stack.origin);
    const value = (jar, name) => jar.find((c) => c.name === name)?.value;
    for (const name of ['__Host-tradeauth_at', '__Host-tradeauth_rt', '__Host-tradeauth_csrf']) {
      assert.equal(value(cookiesAfter, name), value(cookiesBefore, name), name);
    }
    const me = await call(page, '/api/v1/auth/me');
    assert.equal(me.status, 200);
    const csrf = await csrfFromCookie(page);
    assert.equal((await call(page, '/api/v1/auth/refresh', { method: 'POST', csrf })).status, 200);
  });
});
