// panva's openid-client (OpenID-certified relying party) against tradeauth: discovery,
// the authorization code flow with PKCE through the real login and consent pages, the
// code exchange (the library validates the ID token: signature against the JWKS, iss,
// aud, azp, exp, iat, nonce), userinfo, remembered consent, refresh rotation with the
// grace window, and refusals.
//
// Environment: TRADEAUTH_URL (the issuer), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI,
// USER_EMAIL, USER_PASSWORD, USER_ID. Prints "N passed, M failed".
import * as oc from 'openid-client';
import assert from 'node:assert/strict';
import { Browser } from './browser.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const ISSUER = env('TRADEAUTH_URL');
const CLIENT_ID = env('CLIENT_ID');
const CLIENT_SECRET = env('CLIENT_SECRET');
const REDIRECT_URI = env('REDIRECT_URI');
const USER_EMAIL = env('USER_EMAIL');
const USER_PASSWORD = env('USER_PASSWORD');
const USER_ID = env('USER_ID');
const POST_LOGOUT_REDIRECT_URI = env('POST_LOGOUT_REDIRECT_URI');
const CC_CLIENT_ID = env('CC_CLIENT_ID');
const CC_CLIENT_SECRET = env('CC_CLIENT_SECRET');

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok - ${name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}\n  ${e && e.stack ? e.stack : e}`);
    throw e;
  }
}

const browser = new Browser(ISSUER);
let cfg;
let first;
let firstClaims;

async function authorize(scope, extra = {}) {
  const verifier = oc.randomPKCECodeVerifier();
  const state = oc.randomState();
  const nonce = oc.randomNonce();
  const url = oc.buildAuthorizationUrl(cfg, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: await oc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

try {
  await step('discovery: exact issuer, S256 only, RS256 ID tokens, iss in responses', async () => {
    cfg = await oc.discovery(new URL(ISSUER), CLIENT_ID, undefined, oc.ClientSecretBasic(CLIENT_SECRET), {
      execute: [oc.allowInsecureRequests],
    });
    const md = cfg.serverMetadata();
    assert.equal(md.issuer, ISSUER);
    assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
    assert.ok(md.id_token_signing_alg_values_supported.includes('RS256'));
    assert.equal(md.authorization_response_iss_parameter_supported, true);
    assert.deepEqual(md.response_types_supported, ['code']);
  });

  await step('authorize → hosted login → consent → code → tokens (ID token validated by the library)', async () => {
    const req = await authorize('openid profile email offline_access trade:read');
    let page = await browser.open(req.url.toString());
    assert.ok(page.$, `expected the login page, left for ${page.left}`);
    assert.match(page.url, /\/login\?/);
    page = await browser.submit(page, 'form#login-form', { username: USER_EMAIL, password: USER_PASSWORD });
    assert.ok(page.$, `expected the consent page, left for ${page.left}`);
    assert.equal(page.$('h1').text().trim(), 'Allow OIDC test app?');
    const buttons = page.$('form[action="/oauth2/consent"] button').map((_, b) => page.$(b).text().trim()).get();
    assert.deepEqual(buttons, ['Allow', 'Deny']);
    const cb = await browser.submit(page, 'form[action="/oauth2/consent"]', {}, { name: 'decision', value: 'allow' });
    assert.ok(cb.left && cb.left.startsWith(REDIRECT_URI), `expected the redirect URI, got ${JSON.stringify(cb.left ?? cb.url)}`);
    assert.equal(new URL(cb.left).searchParams.get('iss'), ISSUER);
    first = await oc.authorizationCodeGrant(cfg, new URL(cb.left), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
      idTokenExpected: true,
    });
    firstClaims = first.claims();
    assert.equal(firstClaims.sub, USER_ID);
    assert.equal(firstClaims.aud, CLIENT_ID);
    assert.equal(firstClaims.azp, CLIENT_ID);
    assert.equal(firstClaims.email, USER_EMAIL);
    assert.ok(Number.isInteger(firstClaims.auth_time), 'auth_time');
    assert.ok(firstClaims.sid, 'sid');
    assert.deepEqual(firstClaims.amr, ['pwd']);
    assert.equal(first.token_type.toLowerCase(), 'bearer');
    assert.ok(first.refresh_token, 'offline_access gives a refresh token');
    assert.equal(first.scope, 'openid profile email offline_access trade:read');
    const header = JSON.parse(Buffer.from(first.id_token.split('.')[0], 'base64url'));
    assert.equal(header.alg, 'RS256');
  });

  await step('userinfo (GET) answers the claims of the granted scopes', async () => {
    const info = await oc.fetchUserInfo(cfg, first.access_token, USER_ID);
    assert.equal(info.sub, USER_ID);
    assert.equal(info.email, USER_EMAIL);
    assert.equal(info.email_verified, true);
    assert.ok(info.preferred_username);
  });

  await step('the access token is a native one: forward-auth accepts it, with the clamped tier', async () => {
    const res = await fetch(`${ISSUER}/api/v1/auth/verify`, {
      headers: { authorization: `Bearer ${first.access_token}` },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('x-auth-user-id'), USER_ID);
    assert.equal(res.headers.get('x-auth-tier'), '1', 'trade:read caps the tier at 1');
  });

  await step('consent is remembered: a second authorization goes straight back with a code', async () => {
    const req = await authorize('openid email');
    const cb = await browser.open(req.url.toString());
    assert.ok(cb.left && cb.left.startsWith(REDIRECT_URI), `expected no page, got ${cb.url}`);
    const t = await oc.authorizationCodeGrant(cfg, new URL(cb.left), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
      idTokenExpected: true,
    });
    assert.equal(t.claims().sub, USER_ID);
    assert.equal(t.refresh_token, undefined, 'no offline_access, no refresh token');
    assert.notEqual(t.claims().sid, firstClaims.sid, 'each authorization is its own session');
  });

  await step('a new scope asks again', async () => {
    const req = await authorize('openid trade:write');
    const page = await browser.open(req.url.toString());
    assert.ok(page.$, `expected the consent page, left for ${page.left}`);
    assert.match(page.$('main').text(), /Trade on your behalf/);
    const cb = await browser.submit(page, 'form[action="/oauth2/consent"]', {}, { name: 'decision', value: 'deny' });
    const back = new URL(cb.left);
    assert.equal(back.searchParams.get('error'), 'access_denied');
    assert.equal(back.searchParams.get('state'), req.state);
    assert.equal(back.searchParams.get('iss'), ISSUER);
  });

  await step('refresh rotates; the previous token inside the grace window gets the current one', async () => {
    const second = await oc.refreshTokenGrant(cfg, first.refresh_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.ok(second.access_token);
    assert.equal(second.claims().sub, USER_ID, 'a refreshed ID token names the same user');
    const again = await oc.refreshTokenGrant(cfg, first.refresh_token);
    assert.equal(again.refresh_token, second.refresh_token);
    first = second;
  });

  await step('a replayed code is invalid_grant', async () => {
    const req = await authorize('openid');
    const cb = await browser.open(req.url.toString());
    const checks = { pkceCodeVerifier: req.verifier, expectedState: req.state, expectedNonce: req.nonce };
    const t = await oc.authorizationCodeGrant(cfg, new URL(cb.left), checks);
    await assert.rejects(oc.authorizationCodeGrant(cfg, new URL(cb.left), checks), (e) => {
      assert.equal(e.error ?? e.cause?.error, 'invalid_grant');
      return true;
    });
    // ... and what the code issued is revoked.
    await assert.rejects(oc.fetchUserInfo(cfg, t.access_token, USER_ID));
  });

  await step('introspection: live tokens are active with their client and scope', async () => {
    const at = await oc.tokenIntrospection(cfg, first.access_token);
    assert.equal(at.active, true);
    assert.equal(at.client_id, CLIENT_ID);
    assert.equal(at.sub, USER_ID);
    assert.equal(at.scope, 'openid profile email offline_access trade:read');
    const rt = await oc.tokenIntrospection(cfg, first.refresh_token);
    assert.equal(rt.active, true);
    assert.equal((await oc.tokenIntrospection(cfg, 'not-a-token')).active, false);
  });

  await step('revocation of the refresh token ends the session: its access token turns inactive', async () => {
    await oc.tokenRevocation(cfg, first.refresh_token);
    const start = Date.now();
    assert.equal((await oc.tokenIntrospection(cfg, first.access_token)).active, false);
    assert.ok(Date.now() - start < 1000);
    await assert.rejects(oc.refreshTokenGrant(cfg, first.refresh_token));
  });

  await step('RP-initiated logout ends the session everywhere and comes back with state', async () => {
    const req = await authorize('openid');
    const cb = await browser.open(req.url.toString());
    const t = await oc.authorizationCodeGrant(cfg, new URL(cb.left), {
      pkceCodeVerifier: req.verifier,
      expectedState: req.state,
      expectedNonce: req.nonce,
    });
    const state = oc.randomState();
    const url = oc.buildEndSessionUrl(cfg, {
      id_token_hint: t.id_token,
      post_logout_redirect_uri: POST_LOGOUT_REDIRECT_URI,
      state,
    });
    const back = await browser.open(url.toString());
    assert.ok(back.left && back.left.startsWith(POST_LOGOUT_REDIRECT_URI), JSON.stringify(back.left ?? back.url));
    assert.equal(new URL(back.left).searchParams.get('state'), state);
    assert.equal((await oc.tokenIntrospection(cfg, t.access_token)).active, false);
    const res = await fetch(`${ISSUER}/api/v1/auth/verify`, { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(res.status, 401);
    // The browser's own session ended too: the next authorization asks to sign in.
    const again = await browser.open((await authorize('openid')).url.toString());
    assert.ok(again.$ && /\/login\?/.test(again.url), 'signed out at the provider');
  });

  await step('client credentials (client_secret_post): a token for the client, no user', async () => {
    const cc = await oc.discovery(new URL(ISSUER), CC_CLIENT_ID, undefined, oc.ClientSecretPost(CC_CLIENT_SECRET), {
      execute: [oc.allowInsecureRequests],
    });
    const t = await oc.clientCredentialsGrant(cc, { scope: 'trade:read' });
    assert.equal(t.scope, 'trade:read');
    assert.equal(t.refresh_token, undefined);
    assert.equal(t.id_token, undefined);
    const verify = await fetch(`${ISSUER}/api/v1/auth/verify`, { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(verify.status, 204);
    assert.equal(verify.headers.get('x-auth-client-id'), CC_CLIENT_ID);
    assert.equal(verify.headers.get('x-auth-user-id'), null);
    const me = await fetch(`${ISSUER}/api/v1/auth/me`, { headers: { authorization: `Bearer ${t.access_token}` } });
    assert.equal(me.status, 403);
    assert.equal((await me.json()).code, 'client_not_allowed');
  });
} catch {
  // The failing step printed itself; later steps depend on it.
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
