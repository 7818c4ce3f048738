// The /admin console in headless Chromium, through nginx over HTTPS: an admin (the
// ADMIN_EMAIL bootstrap account) finds a user, locks out and unlocks, disables and enables,
// revokes their sessions, deletes them after the confirmation step, reads and filters the
// audit log, exports it as CSV and rotates the signing keys — every control found by its
// accessible name, axe-core and the CSP listener clean after each page load, and each
// effect checked through the API.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { assertAccessible, assertNoCspViolations, launchBrowser, newPage, screenshot, startStack } from './harness.mjs';

const PASSWORD = 'x7Kp2mQa-Trd9';
const ADMIN = 'root-admin@example.com';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(() => browser?.close());

async function clean(page) {
  await assertAccessible(page);
  await assertNoCspViolations(page);
}

describe('the admin console through nginx over HTTPS', () => {
  let stack;
  before(async () => {
    stack = await startStack({
      label: 'browser-admin',
      env: { ADMIN_EMAIL: ADMIN, ADMIN_PASSWORD: PASSWORD, TRADEAUTH_LOCKOUT_THRESHOLD: '3' },
    });
  });
  after(() => stack?.stop());

  async function api(path, { token, ...options } = {}) {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    return stack.request(path, { ...options, headers: { ...headers, ...(options.headers ?? {}) } });
  }

  test('an admin manages a user, the audit log and the signing keys from the pages', async (t) => {
    const email = 'admin-target@example.com';
    assert.equal((await api('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } })).status, 201);
    const adminLogin = (await api('/api/v1/auth/login', { method: 'POST', json: { username: ADMIN, password: PASSWORD } })).json();
    const adminToken = adminLogin.access_token;
    const target = (await api('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } })).json();
    // Lock the target out with wrong passwords.
    for (let i = 0; i < 3; i++) {
      await api('/api/v1/auth/login', { method: 'POST', json: { username: email, password: 'wrong-password-0' } });
    }

    const { context, page } = await newPage(browser, { t, acceptDownloads: true });
    await page.goto(`${stack.origin}/admin`);
    await page.waitForURL(/\/login\?return_to=%2Fadmin/);
    await page.getByLabel('Email or username').fill(ADMIN);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.waitForURL(`${stack.origin}/admin`);
    await clean(page);
    await screenshot(page, 'admin');

    // Search and filters.
    await page.getByLabel('Search').fill('admin-target');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/q=admin-target/);
    await clean(page);
    const users = page.getByRole('region', { name: 'Users' });
    assert.equal(await users.getByRole('link', { name: email }).count(), 1);
    assert.equal(await users.getByRole('link', { name: ADMIN }).count(), 0);
    await page.getByLabel('Tier', { exact: true }).selectOption('4');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForURL(/tier=4/);
    assert.equal(await page.getByRole('link', { name: email }).count(), 0);
    await page.getByLabel('Tier', { exact: true }).selectOption('');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: email }).click();
    await page.waitForURL(/\/admin\/users\//);
    await clean(page);
    const userUrl = page.url();
    const id = userUrl.split('/').pop();

    // Lockout and unlock.
    assert.match(await page.getByRole('region', { name: 'Account' }).innerText(), /locked until/);
    assert.equal((await api('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } })).status, 423);
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.waitForURL(/done=unlocked/);
    assert.match(await page.getByRole('status').innerText(), /unlocked/);
    assert.match(await page.getByRole('region', { name: 'Account' }).innerText(), /not locked/);
    assert.equal((await api('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } })).status, 200);

    // Tier and verification.
    await page.getByLabel('Tier').selectOption('2');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.waitForURL(/done=saved/);
    const afterSave = (await api(`/api/v1/admin/users/${id}`, { token: adminToken })).json();
    assert.equal(afterSave.permission_tier, 2);

    // Sessions: listed, then all revoked.
    const sessions = page.getByRole('region', { name: 'Sessions' });
    assert.ok((await sessions.locator('li').count()) >= 1);
    await page.getByRole('button', { name: 'Revoke all sessions' }).click();
    await page.waitForURL(/done=sessions/);
    assert.equal((await api('/api/v1/auth/me', { token: target.access_token })).status, 401);

    // Disable and enable.
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.waitForURL(/done=disabled/);
    await clean(page);
    assert.equal((await api('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } })).status, 403);
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.waitForURL(/done=enabled/);
    assert.equal((await api('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } })).status, 200);

    // The audit log: filtered by user and type, exported as CSV.
    await page.goto(`${stack.origin}/admin/audit`);
    await clean(page);
    await page.getByLabel('User id').fill(id);
    await page.getByLabel('Type').fill('user.updated');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/type=user.updated/);
    await clean(page);
    const table = await page.getByRole('region', { name: 'Events table' }).innerText();
    assert.match(table, /user\.updated/);
    assert.doesNotMatch(table, /login\.failed/);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export CSV' }).click()]);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\r\n');
    assert.equal(csv[0], 'id,type,at,user_id,actor_id,ip,user_agent,details');
    assert.ok(csv.length >= 4, `unlock, tier, disable, enable: ${csv.length - 1} rows`);
    assert.ok(csv.slice(1).every((l) => l.includes(',user.updated,') && l.includes(id)));

    // Delete, after the confirmation step.
    await page.goto(userUrl);
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { name: `Delete ${email}?` }).waitFor();
    await clean(page);
    assert.equal((await api(`/api/v1/admin/users/${id}`, { token: adminToken })).status, 200, 'not yet');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL(/\/admin\?done=deleted/);
    assert.equal((await api(`/api/v1/admin/users/${id}`, { token: adminToken })).status, 404);

    // Rotate now: a new standby key appears in the JWKS.
    const before = (await api('/.well-known/jwks.json')).json().keys.map((k) => k.kid);
    await page.getByRole('button', { name: 'Rotate now' }).click();
    await page.waitForURL(/done=rotated/);
    await clean(page);
    const afterKeys = (await api('/.well-known/jwks.json')).json().keys.map((k) => k.kid);
    assert.ok(afterKeys.some((k) => !before.includes(k)), `${before} → ${afterKeys}`);
    const keys = await page.getByRole('region', { name: 'Signing keys' }).innerText();
    assert.match(keys, /active/);
    assert.match(keys, /standby/);

    // OAuth clients: create (the secret shown once), then delete after the confirmation.
    await page.goto(`${stack.origin}/admin`);
    await page.getByRole('link', { name: 'OAuth clients' }).click();
    await page.waitForURL(/\/admin\/clients$/);
    await clean(page);
    await page.getByLabel('Name', { exact: true }).fill('Browser dashboard');
    await page.locator('#redirect_uris').fill('https://dash.example/callback');
    await page.getByRole('button', { name: 'Create client' }).click();
    await page.getByRole('heading', { name: /Client created/ }).waitFor();
    await clean(page);
    const secret = (await page.locator('#client-secret').innerText()).trim();
    assert.ok(secret.length >= 32, secret);
    await page.getByRole('link', { name: 'Done' }).click();
    await page.waitForURL(/\/admin\/clients\/[^/]+$/);
    await clean(page);
    const clientId = page.url().split('/').pop();
    assert.equal((await api(`/api/v1/admin/oauth-clients/${clientId}`, { token: adminToken })).json().name, 'Browser dashboard');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.waitForURL(/\/admin\/clients\?done=deleted/);
    assert.equal((await api(`/api/v1/admin/oauth-clients/${clientId}`, { token: adminToken })).status, 404);

    // A user who is not an admin gets the 403 page, not the console.
    const viewer = 'admin-viewer@example.com';
    assert.equal((await api('/api/v1/auth/register', { method: 'POST', json: { email: viewer, password: PASSWORD } })).status, 201);
    const other = await newPage(browser, { t });
    await other.page.goto(`${stack.origin}/login?return_to=/admin`);
    await other.page.getByLabel('Email or username').fill(viewer);
    await other.page.getByLabel('Password').fill(PASSWORD);
    const [response] = await Promise.all([
      other.page.waitForResponse((r) => new URL(r.url()).pathname === '/admin'),
      other.page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    assert.equal(response.status(), 403);
    await other.page.getByRole('heading', { name: 'Administrators only' }).waitFor();
    await clean(other.page);
    assert.equal(await other.page.getByRole('button', { name: 'Rotate now' }).count(), 0);
    void context;
  });
});
