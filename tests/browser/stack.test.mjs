// The harness's servers, without a browser: tradeauth alone, and behind nginx over HTTPS
// with forward-auth to a service, the env passed through, and the mails it writes.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { request, startStack, startTradeauth } from './harness.mjs';

const ADMIN = { email: 'admin@example.com', password: 'Adm1n-Harness-Pw-77' };
const PASSWORD = 'x7Kp2mQa-Trd9';

test('tradeauth alone: starts on a fresh database, answers /readyz, exits 0 on SIGTERM', async (t) => {
  const server = await startTradeauth({ t });
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(server.origin, `http://localhost:${server.port}`);
  const ready = await request(`${server.url}/readyz`);
  assert.equal(ready.status, 200);
  // The browser-facing origin reaches the same server.
  assert.equal((await request(`${server.origin}/healthz`)).status, 200);
  assert.ok(server.logRecords().some((r) => r.message === 'tradeauth listening'));
  const { code, signal } = await server.stop();
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
  await assert.rejects(request(`${server.url}/healthz`, { timeoutMs: 2_000 }));
});

describe('behind nginx over HTTPS', () => {
  let stack;
  before(async () => {
    stack = await startStack({ env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password }, label: 'stack-nginx' });
  });
  after(() => stack?.stop());

  test('/healthz answers through nginx with a certificate of the harness CA for localhost and 127.0.0.1', async () => {
    assert.match(stack.origin, /^https:\/\/localhost:\d+$/);
    const r = await stack.request('/healthz'); // verified against stack.ca: no TLS error
    assert.equal(r.status, 200);
    const byIp = await request(`https://127.0.0.1:${stack.nginx.port}/healthz`, { ca: stack.ca });
    assert.equal(byIp.status, 200);
    // Without the CA, Node refuses the certificate: it is really the harness's own.
    await assert.rejects(request(`${stack.origin}/healthz`), /self[- ]signed|unable to (get|verify)/i);
  });

  test('the env reaches tradeauth: the bootstrap admin signs in through nginx', async () => {
    const login = await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: ADMIN.email, password: ADMIN.password } });
    assert.equal(login.status, 200, login.text);
    assert.equal(login.json().user.permission_tier, 4);
    assert.equal(stack.tradeauth.env.TRADEAUTH_PUBLIC_URL, stack.origin);
    assert.equal(stack.tradeauth.env.TRADEAUTH_ALLOWED_ORIGINS, stack.origin);
  });

  test('forward-auth: the service behind nginx takes a valid Bearer token, refuses none and a revoked one', async () => {
    const email = 'trader@example.com';
    const reg = await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } });
    assert.equal(reg.status, 201, reg.text);
    const login = await stack.request('/api/v1/auth/login', { method: 'POST', json: { username: email, password: PASSWORD } });
    assert.equal(login.status, 200, login.text);
    const { access_token: token, user } = login.json();

    const none = await stack.request('/service/orders');
    assert.equal(none.status, 401);
    const wrong = await stack.request('/service/orders', { headers: { authorization: 'Bearer not-a-token' } });
    assert.equal(wrong.status, 401);

    const before = stack.upstream.requests.length;
    const ok = await stack.request('/service/orders?limit=5', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.text);
    const seen = ok.json();
    assert.equal(seen.url, '/service/orders?limit=5');
    assert.equal(seen.headers['x-auth-user-id'], user.id);
    assert.equal(seen.headers['x-auth-role'], 'trader');
    assert.ok(seen.headers['x-auth-session-id']);
    // Only the authorized request reached the service, without the caller's credentials.
    assert.equal(stack.upstream.requests.length, before + 1);
    assert.equal(stack.upstream.requests.at(-1).headers.authorization, undefined);

    const out = await stack.request('/api/v1/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.ok(out.status === 200 || out.status === 204, `logout: ${out.status} ${out.text}`);
    const revoked = await stack.request('/service/orders', { headers: { authorization: `Bearer ${token}` } });
    assert.equal(revoked.status, 401);
  });

  test('nginx passes the client address: tradeauth sees X-Forwarded-For from a trusted proxy', async () => {
    // 203.0.113.7 is what the client claims; nginx appends 127.0.0.1, the trusted hop, so
    // tradeauth takes the claimed address as the client's and records it on the session.
    const email = 'forwarded@example.com';
    await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } });
    const login = await stack.request('/api/v1/auth/login', {
      method: 'POST',
      headers: { 'x-forwarded-for': '203.0.113.7' },
      json: { username: email, password: PASSWORD },
    });
    assert.equal(login.status, 200, login.text);
    const sessions = await stack.request('/api/v1/auth/sessions', { headers: { authorization: `Bearer ${login.json().access_token}` } });
    assert.equal(sessions.status, 200, sessions.text);
    assert.match(sessions.text, /203\.0\.113\.7/);
  });

  test('mails: the verification mail of a registration links to the public origin and its token works', async () => {
    const since = Date.now();
    const email = 'mailed@example.com';
    const reg = await stack.request('/api/v1/auth/register', { method: 'POST', json: { email, password: PASSWORD } });
    assert.equal(reg.status, 201, reg.text);
    const mail = await stack.waitForMail({ to: email, since });
    assert.ok(mail.links.length > 0, mail.body);
    const link = await stack.mailLink({ to: email, contains: '/verify-email' });
    assert.ok(link.startsWith(`${stack.origin}/verify-email?token=`), link);
    const token = new URL(link).searchParams.get('token');
    const verified = await stack.request('/api/v1/auth/verify-email', { method: 'POST', json: { token } });
    assert.equal(verified.status, 200, verified.text);
    assert.equal(verified.json().is_verified, true);
    await assert.rejects(stack.waitForMail({ to: 'nobody@example.com', timeoutMs: 300 }), /no mail/);
  });
});
