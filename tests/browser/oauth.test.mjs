// Sign in with tradeauth in headless Chromium, through nginx over HTTPS: a relying party
// sends the user to /oauth2/authorize, the user signs in on the hosted login page and
// answers the consent page by its accessible names, and the browser lands on the relying
// party's redirect URI with a code. Chromium applies the pages' `form-action 'self'` to the
// redirects that follow a form's submission, so this is where a redirect chain that only
// works without a browser would show; axe-core and the CSP listener check each page.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import { assertAccessible, assertNoCspViolations, launchBrowser, newPage, screenshot, startStack } from './harness.mjs';

const ADMIN = 'oauth-admin@example.com';
const PASSWORD = 'x7Kp2mQa-Trd9';
const REDIRECT_URI = 'http://127.0.0.1:9/cb';

let browser, stack;
before(async () => {
  browser = await launchBrowser();
  stack = await startStack({ label: 'browser-oauth', env: { ADMIN_EMAIL: ADMIN, ADMIN_PASSWORD: PASSWORD } });
});
after(async () => {
  await stack?.stop();
  await browser?.close();
});

const b64url = (buf) => Buffer.from(buf).toString('base64url');

test('authorize → login page → consent page → back to the relying party with a code', async (t) => {
  const login = await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: ADMIN, password: PASSWORD } });
  assert.equal(login.status, 200, login.text);
  const admin = login.json().access_token;
  const created = await stack.request('/api/v1/admin/oauth-clients', {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}` },
    json: { name: 'Partner dashboard', client_type: 'confidential', redirect_uris: [REDIRECT_URI] },
  });
  assert.equal(created.status, 201, created.text);
  const client = created.json();

  const { page } = await newPage(browser, { t });
  // The relying party's redirect URI: nothing serves it; the browser's request is caught.
  const arrived = new Promise((resolve) => {
    page.route('http://127.0.0.1:9/**', (route) => {
      resolve(route.request().url());
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'relying party' });
    });
  });
  const verifier = b64url(crypto.randomBytes(32));
  const challenge = b64url(crypto.createHash('sha256').update(verifier).digest());
  const authorize = new URL(`${stack.origin}/oauth2/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: client.client_id, redirect_uri: REDIRECT_URI, scope: 'openid email trade:read',
    state: 'xyz', nonce: 'n1', code_challenge: challenge, code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);

  await page.goto(authorize.toString());
  await page.waitForURL(/\/login\?/);
  await assertAccessible(page);
  await page.getByLabel('Email or username').fill(ADMIN);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();

  await page.getByRole('heading', { name: 'Allow Partner dashboard?' }).waitFor();
  await assertAccessible(page);
  await assertNoCspViolations(page);
  await screenshot(page, 'oauth-consent');
  await page.getByRole('button', { name: 'Allow', exact: true }).click();

  const back = new URL(await arrived);
  assert.equal(back.origin + back.pathname, REDIRECT_URI);
  assert.equal(back.searchParams.get('state'), 'xyz');
  assert.equal(back.searchParams.get('iss'), stack.origin);
  const code = back.searchParams.get('code');
  assert.ok(code);

  // The code works at the token endpoint (the relying party's server side).
  const basic = Buffer.from(`${encodeURIComponent(client.client_id)}:${encodeURIComponent(client.client_secret)}`).toString('base64');
  const token = await stack.request('/oauth2/token', {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }).toString(),
  });
  assert.equal(token.status, 200, token.text);
  assert.ok(token.json().id_token);

  // Consent is remembered: a second request with the session goes straight back (a plain
  // navigation, no form), and the console lists the app under "Connected apps".
  await page.goto(`${stack.origin}/account`);
  await page.getByRole('heading', { name: 'Connected apps' }).waitFor();
  const apps = page.getByRole('region', { name: 'Connected apps' });
  assert.ok(await apps.getByText('Partner dashboard').isVisible());
  // The authorization is a session too, listed under the client's name.
  assert.ok(await page.getByRole('region', { name: 'Sessions' }).getByText('Partner dashboard').isVisible());
  await assertAccessible(page);
  await apps.getByRole('button', { name: 'Revoke access' }).click();
  await page.waitForURL(/done=app_revoked/);
  assert.match(await page.getByRole('status').innerText(), /no longer has access/);
});

test('a first-party client: sign-in leads straight back, past the form-action rule', async (t) => {
  const login = await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: ADMIN, password: PASSWORD } });
  const admin = login.json().access_token;
  const created = await stack.request('/api/v1/admin/oauth-clients', {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}` },
    json: { name: 'Own dashboard', client_type: 'public', redirect_uris: [REDIRECT_URI], first_party: true },
  });
  assert.equal(created.status, 201, created.text);
  const { page } = await newPage(browser, { t });
  const arrived = new Promise((resolve) => {
    page.route('http://127.0.0.1:9/**', (route) => {
      resolve(route.request().url());
      route.fulfill({ status: 200, contentType: 'text/plain', body: 'relying party' });
    });
  });
  const challenge = b64url(crypto.createHash('sha256').update('v'.repeat(43)).digest());
  const authorize = new URL(`${stack.origin}/oauth2/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: created.json().client_id, redirect_uri: REDIRECT_URI, scope: 'openid',
    state: 's2', code_challenge: challenge, code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  await page.goto(authorize.toString());
  await page.getByLabel('Email or username').fill(ADMIN);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const back = new URL(await arrived);
  assert.equal(back.searchParams.get('state'), 's2');
  assert.ok(back.searchParams.get('code'));
  await assertNoCspViolations(page);
});
