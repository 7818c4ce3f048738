// Seed 002 (OS Trading Engine): the document's "Authentication Flow Example", run against
// tradeauth in the `os-engine` dialect. The document's snippets are used as written; the
// harness supplies what the document leaves to the application: a base URL for its
// relative paths, token storage helpers and redirectToLogin. The document's example
// request goes to /api/v1/agents, a route of the trading engine, not of the auth service;
// /api/v1/auth/me (also in the document) stands in for it.
import assert from 'node:assert/strict';

const BASE = process.env.TRADEAUTH_URL;
const ADMIN_EMAIL = process.env.SEED_USER;
const ADMIN_PASSWORD = process.env.SEED_PASSWORD;
const ACCESS_TTL_MS = Number(process.env.SEED_ACCESS_TTL_MS);

const nodeFetch = globalThis.fetch;
globalThis.fetch = (path, init) => nodeFetch(path.startsWith('/') ? BASE + path : path, init);
let access = null;
let refresh = null;
let redirected = false;
const storeAccessToken = (t) => { access = t; };
const storeRefreshToken = (t) => { refresh = t; };
const getAccessToken = () => access;
const getRefreshToken = () => refresh;
const clearTokens = () => { access = null; refresh = null; };
const redirectToLogin = () => { redirected = true; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let passed = 0;
const step = async (name, fn) => { await fn(); passed += 1; console.log(`ok - ${name}`); };

await step('1. Login with the ADMIN_EMAIL credentials', async () => {
  const response = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      email: ADMIN_EMAIL,
      password: ADMIN_PASSWORD,
      rememberMe: true
    })
  });
  assert.equal(response.status, 200);
  const { accessToken, refreshToken, user } = await response.json();
  // Store tokens securely
  storeAccessToken(accessToken);
  storeRefreshToken(refreshToken);
  assert.equal(user.email, ADMIN_EMAIL);
  assert.match(user.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

const authenticatedRequest = async () => {
  const response = await fetch('/api/v1/auth/me', {
    headers: {
      'Authorization': `Bearer ${getAccessToken()}`
    }
  });
  return response;
};

await step('2. Make authenticated requests', async () => {
  const response = await authenticatedRequest();
  assert.equal(response.status, 200);
  assert.equal((await response.json()).email, ADMIN_EMAIL);
});

await step('3. Handle token expiration: refresh, then retry', async () => {
  await sleep(ACCESS_TTL_MS + 1200);
  const expired = await authenticatedRequest();
  assert.equal(expired.status, 401);
  assert.deepEqual(await expired.json(), { error: 'Invalid token' });
  const oldRefresh = getRefreshToken();
  // When access token expires (401 response)
  const refreshResponse = await fetch('/api/v1/auth/refresh', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      refreshToken: getRefreshToken()
    })
  });
  if (refreshResponse.ok) {
    const { accessToken, refreshToken } = await refreshResponse.json();
    storeAccessToken(accessToken);
    storeRefreshToken(refreshToken);
    // Retry original request
  } else {
    // Redirect to login
    redirectToLogin();
  }
  assert.equal(redirected, false);
  assert.notEqual(getRefreshToken(), oldRefresh);
  const retried = await authenticatedRequest();
  assert.equal(retried.status, 200);
});

await step('4. Logout', async () => {
  const kept = getAccessToken();
  const res = await fetch('/api/v1/auth/logout', {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${getAccessToken()}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      refreshToken: getRefreshToken()
    })
  });
  assert.deepEqual(await res.json(), { success: true, message: 'Logged out successfully' });
  // Clear stored tokens
  clearTokens();
  const after = await fetch('/api/v1/auth/me', { headers: { Authorization: `Bearer ${kept}` } });
  assert.equal(after.status, 401);
});

console.log(`os-engine seed client: ${passed} passed, 0 failed`);
