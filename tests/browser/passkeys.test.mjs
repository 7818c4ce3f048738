// Passkeys in headless Chromium with Chrome's virtual authenticator (DevTools
// `WebAuthn.addVirtualAuthenticator`), through nginx over HTTPS on https://localhost (the
// RP ID is `localhost`, the host of TRADEAUTH_PUBLIC_URL): a user signs up, verifies, signs
// in with the password, adds a passkey in /account, signs out, signs back in with the
// "Sign in with a passkey" button and lands on /account; an authenticator that does not
// verify the user is refused with a message in role="alert".

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  addVirtualAuthenticator,
  assertAccessible,
  assertNoCspViolations,
  launchBrowser,
  newPage,
  screenshot,
  setUserVerified,
  startStack,
} from './harness.mjs';

const PASSWORD = 'x7Kp2mQa-Trd9';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

/** After a page load: no accessibility violation, no CSP violation. */
async function clean(page) {
  await assertAccessible(page);
  await assertNoCspViolations(page);
}

/** The API as the page's own session sees it (cookie mode). */
const api = (page, path) =>
  page.evaluate(async (p) => {
    const r = await fetch(p, { credentials: 'same-origin' });
    return { status: r.status, body: await r.json().catch(() => null) };
  }, path);

describe('passkeys in the hosted pages', () => {
  let stack;
  before(async () => {
    stack = await startStack({ label: 'browser-passkeys' });
  });
  after(() => stack?.stop());

  test('add a passkey in /account, sign out, sign in with it; without user verification it is refused', async (t) => {
    const email = 'passkey-user@example.com';
    const { context, page } = await newPage(browser, { t });
    const authenticator = await addVirtualAuthenticator(page, { hasUserVerification: true, isUserVerified: true, hasResidentKey: true });

    // Sign up and verify by the mailed link.
    await page.goto(`${stack.origin}/register`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(/\/login\?done=registered/);
    const link = await stack.mailLink({ to: email, contains: '/verify-email' });
    await page.goto(link);
    await page.getByRole('button', { name: 'Verify email' }).click();
    assert.match(await page.getByRole('status').innerText(), /verified/);

    // Sign in with the password.
    await page.goto(`${stack.origin}/login`);
    await page.getByLabel('Email or username').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${stack.origin}/account`);

    // Add a passkey.
    const passkeys = page.getByRole('region', { name: 'Passkeys' });
    await passkeys.getByLabel('Passkey name').fill('This laptop');
    await passkeys.getByRole('button', { name: 'Add passkey' }).click();
    await passkeys.getByText('This laptop').waitFor();
    await clean(page);
    await screenshot(page, 'account-passkeys');
    const held = await authenticator.getCredentials();
    assert.equal(held.length, 1);
    assert.equal(held[0].rpId, 'localhost');
    assert.equal(held[0].isResidentCredential, true, 'a discoverable credential where the authenticator keeps one');
    const listed = await api(page, '/api/v1/auth/passkeys');
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.items.map((p) => p.name), ['This laptop']);
    assert.equal(await passkeys.getByRole('button', { name: 'Rename passkey This laptop' }).count(), 1);
    assert.equal(await passkeys.getByRole('button', { name: 'Remove passkey This laptop' }).count(), 1);

    // Sign out, then back in with the passkey alone (no username: discoverable).
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(/\/login\?done=signed_out/);
    assert.deepEqual((await context.cookies(stack.origin)).filter((c) => c.name.startsWith('__Host-tradeauth')), []);
    const counter = held[0].signCount;
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.waitForURL(`${stack.origin}/account`);
    await clean(page);
    assert.equal((await authenticator.getCredentials())[0].signCount, counter + 1);
    const jar = await context.cookies(stack.origin);
    assert.deepEqual(jar.map((c) => c.name).sort(), ['__Host-tradeauth_at', '__Host-tradeauth_csrf', '__Host-tradeauth_rt']);
    const events = await api(page, '/api/v1/auth/events');
    const logins = events.body.items.filter((e) => e.type === 'login.succeeded');
    assert.equal(logins[0].details.method, 'passkey');
    assert.equal(logins[1].details.method, 'password');
    const used = await api(page, '/api/v1/auth/passkeys');
    assert.ok(used.body.items[0].last_used_at, 'the passkey shows its use');

    // Signed out again: an authenticator that does not verify the user gets nowhere.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.waitForURL(/\/login\?done=signed_out/);
    await setUserVerified(authenticator, false);
    await page.getByLabel('Email or username').fill(email);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.ok((await alert.innerText()).trim().length > 0, 'the refusal is explained');
    assert.match(page.url(), /\/login/);
    assert.deepEqual((await context.cookies(stack.origin)).filter((c) => c.name.startsWith('__Host-tradeauth')), []);
    await clean(page);

    // And an assertion whose UV flag is cleared after the authenticator (so it reaches the
    // server) is refused there, with the API's message.
    await setUserVerified(authenticator, true);
    await authenticator.setResponseOverrideBits({ isBadUV: true });
    await page.reload();
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await page.getByRole('alert').filter({ hasText: /passkey could not be verified/ }).waitFor();
    assert.match(page.url(), /\/login/);
    assert.deepEqual((await context.cookies(stack.origin)).filter((c) => c.name.startsWith('__Host-tradeauth')), []);
    await screenshot(page, 'login-passkey-refused');
  });
});
