// Seed 000 (Quantum Trader): the document's JavaScript client, run against tradeauth in
// the `quantum` dialect. The functions below are the document's code as written; the
// harness only supplies the base URL (the document hard-codes http://localhost:8501) and
// the browser globals the code uses (localStorage, window.location).
import assert from 'node:assert/strict';
import axios from 'axios';

const BASE = process.env.TRADEAUTH_URL;
const EMAIL = process.env.SEED_USER;
const PASSWORD = process.env.SEED_PASSWORD;
const ACCESS_TTL_MS = Number(process.env.SEED_ACCESS_TTL_MS);

const storage = new Map();
globalThis.localStorage = {
  getItem: (k) => (storage.has(k) ? storage.get(k) : null),
  setItem: (k, v) => storage.set(k, String(v)),
  removeItem: (k) => storage.delete(k),
};
globalThis.window = { location: { href: '/' } };

// ---- from the document ------------------------------------------------------------
const login = async (username, password) => {
const response = await fetch(`${BASE}/api/v1/auth/login`, {
method: 'POST',
headers: { 'Content-Type': 'application/json' },
body: JSON.stringify({ username, password })
});
if (!response.ok) {
const error = await response.json();
throw new Error(error.detail);
}
const tokens = await response.json();
// Store tokens securely
localStorage.setItem('access_token', tokens.access_token);
localStorage.setItem('refresh_token', tokens.refresh_token);
return tokens;
};

const refreshTokens = async () => {
const refreshToken = localStorage.getItem('refresh_token');
const response = await fetch(`${BASE}/api/v1/auth/refresh`, {
method: 'POST',
headers: { 'Content-Type': 'application/json' },
body: JSON.stringify({ refresh_token: refreshToken })
});
if (!response.ok) {
// Refresh token invalid/expired - redirect to login
localStorage.removeItem('access_token');
localStorage.removeItem('refresh_token');
window.location.href = '/login';
throw new Error('Session expired');
}
const tokens = await response.json();
localStorage.setItem('access_token', tokens.access_token);
localStorage.setItem('refresh_token', tokens.refresh_token);
return tokens;
};

const api = axios.create({ baseURL: BASE });
// Auto-refresh interceptor with Axios
api.interceptors.response.use(
response => response,
async error => {
if (error.response?.status === 401) {
try {
const tokens = await refreshTokens();
error.config.headers['Authorization'] = `Bearer ${tokens.access_token}`;
return api.request(error.config);
} catch (refreshError) {
return Promise.reject(refreshError);
}
}
return Promise.reject(error);
}
);
// ---- end of the document's code ----------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let passed = 0;
const step = async (name, fn) => { await fn(); passed += 1; console.log(`ok - ${name}`); };

await step('login with the wrong password throws the documented detail', async () => {
  await assert.rejects(login(EMAIL, 'not-the-password-1'), { message: 'Incorrect username or password' });
});

await step('login stores both tokens', async () => {
  const tokens = await login(EMAIL, PASSWORD);
  assert.equal(tokens.token_type, 'bearer');
  assert.equal(localStorage.getItem('access_token'), tokens.access_token);
  assert.ok(localStorage.getItem('refresh_token'));
});

await step('GET /auth/me with the access token', async () => {
  const me = await api.get('/api/v1/auth/me', { headers: { Authorization: `Bearer ${localStorage.getItem('access_token')}` } });
  assert.equal(me.status, 200);
  assert.equal(me.data.email, EMAIL);
  assert.equal(me.data.role, 'user');
});

await step('after the access token expired, the interceptor refreshes and retries', async () => {
  const before = localStorage.getItem('refresh_token');
  await sleep(ACCESS_TTL_MS + 1200);
  const me = await api.get('/api/v1/auth/me', { headers: { Authorization: `Bearer ${localStorage.getItem('access_token')}` } });
  assert.equal(me.status, 200);
  assert.notEqual(localStorage.getItem('refresh_token'), before, 'the refresh token was rotated');
});

await step('logout revokes the refresh token', async () => {
  const res = await fetch(`${BASE}/api/v1/auth/logout`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${localStorage.getItem('access_token')}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: localStorage.getItem('refresh_token') }),
  });
  assert.ok(res.ok, `logout answered ${res.status}`);
  await assert.rejects(refreshTokens(), { message: 'Session expired' });
  assert.equal(window.location.href, '/login');
  assert.equal(localStorage.getItem('refresh_token'), null);
});

console.log(`quantum seed client: ${passed} passed, 0 failed`);
