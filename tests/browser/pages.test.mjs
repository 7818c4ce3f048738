// The hosted pages in headless Chromium, through nginx over HTTPS with the secure cookie
// defaults: every control found by its accessible name (the contract's), axe-core with
// zero violations and no CSP violation after each page load, and each console action's
// effect checked through the API.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { assertAccessible, assertNoCspViolations, launchBrowser, newPage, screenshot, startStack } from './harness.mjs';

const PASSWORD = 'x7Kp2mQa-Trd9';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of a base32 secret, as an authenticator app. */
function totp(base32, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = crypto.createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** After a page load: no accessibility violation, no CSP violation. */
async function clean(page) {
  await assertAccessible(page);
  await assertNoCspViolations(page);
}

describe('hosted pages through nginx over HTTPS', () => {
  let stack;
  before(async () => {
    stack = await startStack({ label: 'browser-pages' });
  });
  after(() => stack?.stop());

  test('register, verify by the mailed link, sign in, and use every console action', async (t) => {
    const email = 'pages-user@example.com';
    const { context, page } = await newPage(browser, { t });

    await page.goto(`${stack.origin}/register`);
    await clean(page);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByLabel('Full name (optional)').fill('Page User');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/login\?done=registered/);
    await clean(page);
    assert.match(await page.getByRole('status').innerText(), /account is ready/);

    // The mailed link: a GET only shows a button; the button verifies.
    const link = await stack.mailLink({ to: email, contains: '/verify-email' });
    await page.goto(link);
    await clean(page);
    await page.getByRole('button', { name: 'Verify email' }).click();
    assert.match(await page.getByRole('status').innerText(), /verified/);

    // A wrong password: the API's message in role=alert, no enumeration.
    await page.goto(`${stack.origin}/login?return_to=https://evil.example/`);
    await page.getByLabel('Email or username').fill(email);
    await page.getByLabel('Password').fill('wrong-password-1');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    assert.match(await page.getByRole('alert').first().innerText(), /invalid username or password/);
    await clean(page);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    // A return_to off this origin is ignored: the console.
    await page.waitForURL(`${stack.origin}/account`);
    await clean(page);
    await screenshot(page, 'account');
    const jar = await context.cookies(stack.origin);
    assert.deepEqual(jar.map((c) => c.name).sort(), ['__Host-tradeauth_at', '__Host-tradeauth_csrf', '__Host-tradeauth_rt']);

    // Profile.
    await page.getByLabel('Full name').fill('Ada Lovelace');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(/done=profile/);
    assert.equal(await page.getByLabel('Full name').inputValue(), 'Ada Lovelace');

    // Another session (from the API), revoked from the console: its token stops working.
    const other = (await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } })).json();
    await page.reload();
    const sessions = page.getByRole('region', { name: 'Sessions' });
    assert.equal(await sessions.getByText('This device').count(), 1);
    const revokeButtons = sessions.getByRole('button', { name: /^Revoke session/ });
    assert.equal(await revokeButtons.count(), 2);
    // The row that is not "This device".
    const rows = sessions.locator('li');
    for (let i = 0; i < (await rows.count()); i++) {
      if ((await rows.nth(i).getByText('This device').count()) === 0) {
        await rows.nth(i).getByRole('button', { name: /^Revoke session/ }).click();
        break;
      }
    }
    await page.waitForURL(/done=session/);
    const me = await stack.request('/api/v1/auth/me', { headers: { authorization: `Bearer ${other.access_token}` } });
    assert.equal(me.status, 401, 'the revoked session is over');

    // An API key: the secret shown once, with a copy button, and it works.
    await page.getByLabel('Name', { exact: true }).fill('bot');
    await page.getByRole('button', { name: 'Create key' }).click();
    const key = (await page.locator('#new-api-key').innerText()).trim();
    assert.match(key, /^ta_/);
    await assert.doesNotReject(page.getByRole('button', { name: 'Copy' }).waitFor());
    await clean(page);
    const byKey = await stack.request('/api/v1/auth/me', { headers: { 'x-api-key': key } });
    assert.equal(byKey.status, 200);
    await page.goto(`${stack.origin}/account`);
    await page.getByRole('button', { name: 'Revoke key bot' }).click();
    await page.waitForURL(/done=key_revoked/);
    assert.equal((await stack.request('/api/v1/auth/me', { headers: { 'x-api-key': key } })).status, 401);

    // Two-factor: QR and text URL, a code from the secret, recovery codes once.
    await page.getByRole('button', { name: 'Set up two-factor' }).click();
    await clean(page);
    const qr = page.getByRole('img', { name: 'QR code of the authenticator setup link' });
    assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml;base64,/);
    const url = new URL(await page.locator('#otpauth-url').innerText());
    const secret = url.searchParams.get('secret');
    await page.getByLabel('Authentication code').fill(totp(secret));
    await page.getByRole('button', { name: 'Turn on two-factor' }).click();
    const codes = await page.locator('#recovery-codes li').allInnerTexts();
    assert.ok(codes.length >= 8, `recovery codes: ${codes}`);
    await clean(page);

    // Sign out, then back in with the TOTP step (a recovery code this time).
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(/\/login\?done=signed_out/);
    assert.deepEqual((await context.cookies(stack.origin)).filter((c) => c.name.startsWith('__Host-tradeauth')), []);
    await page.getByLabel('Email or username').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Authentication code').waitFor();
    await clean(page);
    assert.equal(await page.locator('input[name=password]').count(), 0, 'the password is not in the second step');
    await page.getByLabel('Authentication code').fill('000000');
    await page.getByRole('button', { name: 'Verify' }).click();
    assert.match(await page.getByRole('alert').innerText(), /invalid/i);
    await page.getByLabel('Recovery code').fill(codes[0]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL(`${stack.origin}/account`);

    // Password change: the new one works, then "Sign out everywhere" ends this session.
    await page.getByLabel('Current password').fill(PASSWORD);
    await page.getByLabel('New password').fill(`${PASSWORD}-2`);
    await page.getByRole('button', { name: 'Change password' }).click();
    await page.waitForURL(/done=password/);
    const events = await page.getByRole('region', { name: 'Security events' }).innerText();
    assert.match(events, /password\.changed/);
    assert.match(events, /login\.succeeded/);
    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    await page.waitForURL(/\/login/);
    await page.goto(`${stack.origin}/account`);
    await page.waitForURL(/\/login\?return_to=%2Faccount/);
  });

  test('forgot and reset password by the mailed link', async (t) => {
    const email = 'pages-reset@example.com';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);
    const { page } = await newPage(browser, { t });
    await page.goto(`${stack.origin}/forgot-password`);
    await clean(page);
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    assert.match(await page.getByRole('status').innerText(), /reset link is on its way/);
    const link = await stack.mailLink({ to: email, contains: '/reset-password' });
    await page.goto(link);
    await clean(page);
    await page.getByLabel('New password').fill('short');
    await page.getByRole('button', { name: 'Set password' }).click();
    assert.match(await page.getByRole('alert').innerText(), /password/);
    await page.getByLabel('New password').fill(`${PASSWORD}-new`);
    await page.getByRole('button', { name: 'Set password' }).click();
    await page.waitForURL(/done=password_reset/);
    const login = await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: email, password: `${PASSWORD}-new` } });
    assert.equal(login.status, 200);
  });

  test('a form posted from another site changes nothing', async (t) => {
    const email = 'pages-csrf@example.com';
    assert.equal((await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);
    const { page } = await newPage(browser, { t });
    await page.goto(`${stack.origin}/login`);
    await page.getByLabel('Email or username').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${stack.origin}/account`);
    const csrf = await page.locator('input[name=csrf_token]').first().inputValue();

    // Even knowing the CSRF token, a cross-site form cannot save the profile (and the
    // access cookie is Lax: a cross-site POST does not carry it at all).
    stack.putAttackerPage('profile.html', `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>x</title></head><body>
<form method="post" action="${stack.origin}/account/profile"><input type="hidden" name="csrf_token" value="${csrf}"><input type="hidden" name="full_name" value="Hacked"></form>
<script>document.forms[0].submit();</script></body></html>`);
    await page.goto(`${stack.attackerOrigin}/profile.html`);
    await page.waitForURL(/\/(account|login)/);
    await page.goto(`${stack.origin}/account`);
    assert.notEqual(await page.getByLabel('Full name').inputValue(), 'Hacked');
  });
});
