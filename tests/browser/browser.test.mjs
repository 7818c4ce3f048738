// Headless Chromium through the harness: tradeauth's pages over HTTPS behind nginx, the
// cookie and cross-site set-up the browser-session tests rely on, the virtual WebAuthn
// authenticator, axe-core and the CSP-violation collector (each shown able to fail).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import {
  addVirtualAuthenticator,
  assertNoCspViolations,
  axeCheck,
  consoleErrors,
  cspViolations,
  formatAxe,
  launchBrowser,
  newPage,
  screenshot,
  setUserVerified,
  startPageServer,
  startStack,
} from './harness.mjs';

/** navigator.credentials.create in the page with a minimal options object: {id, type, uv}. */
const createCredential = (page, rpId) =>
  page.evaluate(async (id) => {
    const cred = await navigator.credentials.create({
      publicKey: {
        challenge: crypto.getRandomValues(new Uint8Array(32)),
        rp: { name: 'harness', id },
        user: { id: new Uint8Array([1, 2, 3, 4]), name: 'ann@example.com', displayName: 'Ann' },
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
        authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
        attestation: 'none',
        timeout: 10_000,
      },
    });
    return { id: cred.id, type: cred.type, uv: (new Uint8Array(cred.response.getAuthenticatorData())[32] & 4) !== 0 };
  }, rpId);

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

describe('through nginx over HTTPS', () => {
  let stack;
  before(async () => {
    stack = await startStack({ label: 'browser-nginx' });
  });
  after(() => stack?.stop());

  test('Chromium loads /docs over HTTPS and takes a screenshot', async (t) => {
    const { page } = await newPage(browser, { t });
    const response = await page.goto(`${stack.origin}/docs`);
    assert.equal(response.status(), 200);
    assert.equal((await response.securityDetails())?.subjectName, 'localhost');
    // The page renders /openapi.json with its own script: wait for an operation to show.
    await page.locator('details').first().waitFor();
    assert.match(await page.locator('#api').innerText(), /\/api\/v1\/auth\/login/);
    const file = await screenshot(page, 'docs');
    const png = fs.readFileSync(file);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.ok(png.length > 10_000, `a screenshot of a rendered page, not a blank one (${png.length} bytes)`);
    await assertNoCspViolations(page);
    const { errors } = await consoleErrors(page);
    assert.deepEqual(errors, []);
  });

  test('a page calls the service behind forward-auth and holds a WebSocket through nginx', async (t) => {
    const email = 'browser@example.com';
    const password = 'x7Kp2mQa-Trd9';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password } })).status, 201);
    const login = await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: email, password } });
    assert.equal(login.status, 200, login.text);
    const { access_token: token, user } = login.json();

    const { page } = await newPage(browser, { t });
    await page.goto(`${stack.origin}/healthz`);
    const service = await page.evaluate(async (tok) => {
      const call = async (headers) => {
        const r = await fetch('/service/orders', { headers });
        return { status: r.status, body: r.status === 200 ? await r.json() : null };
      };
      return { without: await call({}), with: await call({ authorization: `Bearer ${tok}` }) };
    }, token);
    assert.equal(service.without.status, 401);
    assert.equal(service.with.status, 200);
    assert.equal(service.with.body.headers['x-auth-user-id'], user.id);

    const socket = await page.evaluate(
      (url) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url);
          const got = [];
          ws.onmessage = (m) => {
            got.push(JSON.parse(m.data));
            if (got.length === 1) ws.send(JSON.stringify({ type: 'ping' }));
            else {
              ws.close();
              resolve(got);
            }
          };
          ws.onerror = () => reject(new Error('WebSocket error'));
          setTimeout(() => reject(new Error(`WebSocket: ${JSON.stringify(got)} after 10 s`)), 10_000);
        }),
      `${stack.origin.replace('https:', 'wss:')}/api/v1/ws?token=${encodeURIComponent(token)}`,
    );
    assert.equal(socket[0].type, 'welcome');
    assert.equal(socket[0].user_id, user.id);
    assert.deepEqual(socket[1], { type: 'pong' });
  });

  test('the virtual authenticator works on the HTTPS origin behind nginx despite the test certificate', async (t) => {
    const { page } = await newPage(browser, { t });
    const authenticator = await addVirtualAuthenticator(page);
    await page.goto(`${stack.origin}/healthz`);
    assert.equal(await page.evaluate(() => isSecureContext), true);
    const created = await createCredential(page, 'localhost');
    assert.equal(created.uv, true);
    assert.equal((await authenticator.getCredentials()).length, 1);
  });

  test('a __Host- cookie set over HTTPS is kept, HttpOnly, and sent same-origin', async (t) => {
    const { context, page } = await newPage(browser, { t });
    const set = await page.goto(`${stack.origin}/__harness/cookie`);
    assert.equal(set.status(), 200);
    const cookies = await context.cookies(stack.origin);
    const probe = cookies.find((c) => c.name === '__Host-harness');
    assert.ok(probe, `cookies: ${JSON.stringify(cookies)}`);
    assert.equal(probe.secure, true);
    assert.equal(probe.httpOnly, true);
    assert.equal(probe.sameSite, 'Strict');

    await page.goto(`${stack.origin}/healthz`);
    assert.equal(await page.evaluate(() => document.cookie), '', 'HttpOnly: no script reads it');
    const echoed = await page.evaluate(async () => (await fetch('/__harness/echo', { method: 'POST' })).text());
    assert.match(echoed, /^sec-fetch-site=same-origin$/m);
    assert.match(echoed, /^cookie=.*__Host-harness=1/m);
  });

  test('the attacker origin is another site: its form post arrives cross-site, without the Strict cookie', async (t) => {
    const { page } = await newPage(browser, { t });
    await page.goto(`${stack.origin}/__harness/cookie`);
    stack.putAttackerPage('post.html', `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Win a prize</title></head><body>
<form method="post" action="${stack.origin}/__harness/echo"><input type="hidden" name="x" value="1"></form>
<script>document.forms[0].submit();</script></body></html>`);
    await page.goto(`${stack.attackerOrigin}/post.html`);
    await page.waitForURL(`${stack.origin}/__harness/echo`);
    const echoed = await page.locator('body').innerText();
    assert.match(echoed, /^method=POST$/m);
    assert.match(echoed, /^sec-fetch-site=cross-site$/m);
    assert.match(echoed, new RegExp(`^origin=${stack.attackerOrigin.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(echoed, /^cookie=$/m);
  });
});

describe('pages of a tiny server (no tradeauth)', () => {
  let site;
  before(async () => {
    const csp = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";
    site = await startPageServer({
      '/blank': '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Blank</title></head><body><main><h1>Blank</h1></main></body></html>',
      '/clean': {
        headers: { 'content-security-policy': csp },
        body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title><script src="/app.js"></script></head>
<body><main><h1>Sign in</h1><form method="post" action="/clean">
<label for="email">Email</label> <input id="email" name="email" type="email" autocomplete="username">
<button type="submit">Sign in</button></form></main></body></html>`,
      },
      '/app.js': { headers: { 'content-type': 'text/javascript' }, body: 'window.appLoaded = true;' },
      '/dirty': {
        headers: { 'content-security-policy': csp },
        body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dirty</title></head>
<body><main><h1>Dirty</h1><input name="q" type="text"><img src="/nothing.png">
<script>window.inlineRan = true;</script></main></body></html>`,
      },
    });
  });
  after(() => site?.stop());

  test('the virtual authenticator creates and uses a passkey on http://localhost; without user verification it refuses', async (t) => {
    const { page } = await newPage(browser, { t });
    const authenticator = await addVirtualAuthenticator(page, { hasUserVerification: true, isUserVerified: true });
    await page.goto(`${site.origin}/blank`);
    assert.equal(await page.evaluate(() => typeof PublicKeyCredential), 'function');
    assert.equal(await page.evaluate(() => PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable()), true);

    const created = await createCredential(page, 'localhost');
    assert.equal(created.type, 'public-key');
    assert.equal(created.uv, true);
    const [stored] = await authenticator.getCredentials();
    assert.equal(stored.rpId, 'localhost');
    assert.equal(stored.isResidentCredential, true);
    const counter = stored.signCount;

    const get = (id) =>
      page.evaluate(async (credId) => {
        const b64 = credId.replace(/-/g, '+').replace(/_/g, '/');
        const raw = Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
        try {
          const a = await navigator.credentials.get({
            publicKey: {
              challenge: crypto.getRandomValues(new Uint8Array(32)),
              rpId: 'localhost',
              allowCredentials: [{ type: 'public-key', id: raw }],
              userVerification: 'required',
              timeout: 5_000,
            },
          });
          return { ok: true, id: a.id };
        } catch (e) {
          return { ok: false, name: e.name };
        }
      }, id);
    assert.deepEqual(await get(created.id), { ok: true, id: created.id });
    assert.equal((await authenticator.getCredentials())[0].signCount, counter + 1);

    await setUserVerified(authenticator, false);
    assert.deepEqual(await get(created.id), { ok: false, name: 'NotAllowedError' });
    assert.equal((await authenticator.getCredentials())[0].signCount, counter + 1, 'a refused ceremony signs nothing');
  });

  test('axe-core finds no violation on a clean page and reports the faults of a bad one', async (t) => {
    const { page } = await newPage(browser, { t });
    await page.goto(`${site.origin}/clean`);
    const clean = await axeCheck(page);
    assert.deepEqual(clean, [], formatAxe(clean));
    await page.goto(`${site.origin}/dirty`);
    const ids = (await axeCheck(page)).map((v) => v.id);
    assert.ok(ids.includes('label'), ids.join(', '));
    assert.ok(ids.includes('image-alt'), ids.join(', '));
  });

  test('the CSP collector sees no violation on a clean page and records an inline script that a policy blocks', async (t) => {
    const { page } = await newPage(browser, { t });
    await page.goto(`${site.origin}/clean`);
    assert.equal(await page.evaluate(() => window.appLoaded), true);
    assert.deepEqual(await cspViolations(page), []);
    await assertNoCspViolations(page);

    await page.goto(`${site.origin}/dirty`);
    assert.equal(await page.evaluate(() => window.inlineRan), undefined, 'the policy blocked the inline script');
    const seen = await cspViolations(page);
    assert.equal(seen.length, 1, JSON.stringify(seen));
    assert.equal(seen[0].effectiveDirective, 'script-src-elem');
    assert.equal(seen[0].blockedURI, 'inline');
    assert.equal(seen[0].documentURI, `${site.origin}/dirty`);
    await assert.rejects(assertNoCspViolations(page), /1 CSP violation/);

    // Collected per page, across navigations: the next page does not wipe the record.
    await page.goto(`${site.origin}/clean`);
    assert.equal((await cspViolations(page)).length, 1);
  });
});
