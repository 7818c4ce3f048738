// A FAPI 2.0-style client (pushed authorization requests, private_key_jwt, DPoP-bound
// tokens) run by panva's openid-client against tradeauth: the client is registered
// through the admin API with its public key, pushes its request to /oauth2/par, signs
// in through the real pages, exchanges the code with a DPoP proof (after the server's
// nonce dance), and uses the bound token where tradeauth checks tokens. Then the
// refusals: a plain authorization request, a replayed client assertion, the token as a
// bearer token, a refresh with another key. Last, private_key_jwt with a jwks_uri that
// this script serves on loopback.
//
// Environment: TRADEAUTH_URL (the issuer), ADMIN_TOKEN, REDIRECT_URI, USER_EMAIL,
// USER_PASSWORD, USER_ID, RS_CLIENT_ID and RS_CLIENT_SECRET (a resource server that
// introspects). Prints "N passed, M failed".
import * as oc from 'openid-client';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Browser } from './browser.mjs';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const ISSUER = env('TRADEAUTH_URL');
const ADMIN_TOKEN = env('ADMIN_TOKEN');
const REDIRECT_URI = env('REDIRECT_URI');
const USER_EMAIL = env('USER_EMAIL');
const USER_PASSWORD = env('USER_PASSWORD');
const USER_ID = env('USER_ID');
const RS_CLIENT_ID = env('RS_CLIENT_ID');
const RS_CLIENT_SECRET = env('RS_CLIENT_SECRET');

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

const insecure = { execute: [oc.allowInsecureRequests] };
const browser = new Browser(ISSUER);
const payload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));

async function keyPair(alg) {
  const params = alg === 'EdDSA' ? { name: 'Ed25519' } : { name: 'ECDSA', namedCurve: 'P-256' };
  return crypto.subtle.generateKey(params, true, ['sign', 'verify']);
}

async function publicJwk(pair, kid) {
  const jwk = await exportJWK(pair.publicKey);
  return { ...jwk, kid };
}

async function register(body) {
  const res = await fetch(`${ISSUER}/api/v1/admin/oauth-clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  assert.equal(res.status, 201, JSON.stringify(json));
  return json;
}

// Every request openid-client makes to the token endpoint, with its answer's status.
const sent = [];
function recording(cfg) {
  cfg[oc.customFetch] = async (url, options) => {
    const res = await fetch(url, options);
    if (String(url).endsWith('/oauth2/token') || String(url).endsWith('/oauth2/par')) {
      sent.push({
        endpoint: new URL(url).pathname,
        body: String(options.body),
        status: res.status,
        error: res.status >= 400 ? (await res.clone().json()).error : undefined,
      });
    }
    return res;
  };
}

let cfg;
let client;
let dpopKeys;
let dpop;
let jkt;
let tokens;

try {
  await step('discovery advertises PAR, private_key_jwt and DPoP', async () => {
    const md = (await oc.discovery(new URL(ISSUER), 'probe', undefined, oc.None(), insecure)).serverMetadata();
    assert.equal(md.pushed_authorization_request_endpoint, `${ISSUER}/oauth2/par`);
    assert.equal(md.require_pushed_authorization_requests, false);
    assert.ok(md.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.ok(md.token_endpoint_auth_signing_alg_values_supported.includes('ES256'));
    assert.ok(md.dpop_signing_alg_values_supported.includes('ES256'));
  });

  await step('a FAPI client (PAR only, private_key_jwt, DPoP-bound) is registered through the admin API', async () => {
    const pair = await keyPair('ES256');
    client = await register({
      name: 'FAPI trading app',
      client_type: 'confidential',
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [await publicJwk(pair, 'fapi-1')] },
      require_pushed_authorization_requests: true,
      dpop_bound_access_tokens: true,
      max_tier: 3,
    });
    assert.equal(client.client_secret, undefined, 'a private_key_jwt client has no secret');
    assert.equal(client.token_endpoint_auth_method, 'private_key_jwt');
    cfg = await oc.discovery(new URL(ISSUER), client.client_id, undefined,
      oc.PrivateKeyJwt({ key: pair.privateKey, kid: 'fapi-1' }), insecure);
    recording(cfg);
    dpopKeys = await oc.randomDPoPKeyPair('ES256');
    dpop = oc.getDPoPHandle(cfg, dpopKeys);
    jkt = await calculateJwkThumbprint(await exportJWK(dpopKeys.publicKey));
  });

  const verifier = oc.randomPKCECodeVerifier();
  const state = oc.randomState();
  const nonce = oc.randomNonce();
  const request = {
    redirect_uri: REDIRECT_URI,
    scope: 'openid email offline_access trade:read',
    code_challenge: await oc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };

  await step('a plain authorization request of the PAR-only client goes back with invalid_request', async () => {
    const back = await browser.open(oc.buildAuthorizationUrl(cfg, request).toString());
    assert.ok(back.left && back.left.startsWith(REDIRECT_URI), JSON.stringify(back.left ?? back.url));
    const q = new URL(back.left).searchParams;
    assert.equal(q.get('error'), 'invalid_request');
    assert.equal(q.get('state'), state);
    assert.equal(q.get('iss'), ISSUER);
  });

  let callback;
  let parUrl;
  await step('PAR (private_key_jwt and a DPoP proof at /oauth2/par) → request_uri → sign-in → consent → code', async () => {
    sent.length = 0;
    parUrl = await oc.buildAuthorizationUrlWithPAR(cfg, request, { DPoP: dpop });
    // The proof binds the code to the key (RFC 9449 §10), after the nonce dance.
    assert.deepEqual(sent.map((s) => [s.endpoint, s.status, s.error]),
      [['/oauth2/par', 400, 'use_dpop_nonce'], ['/oauth2/par', 201, undefined]]);
    assert.deepEqual([...parUrl.searchParams.keys()].sort(), ['client_id', 'request_uri']);
    assert.match(parUrl.searchParams.get('request_uri'), /^urn:ietf:params:oauth:request_uri:/);
    let page = await browser.open(parUrl.toString());
    assert.ok(page.$, `expected the login page, left for ${page.left}`);
    page = await browser.submit(page, 'form#login-form', { username: USER_EMAIL, password: USER_PASSWORD });
    assert.ok(page.$, `expected the consent page, left for ${page.left}`);
    assert.equal(page.$('h1').text().trim(), 'Allow FAPI trading app?');
    const cb = await browser.submit(page, 'form[action="/oauth2/consent"]', {}, { name: 'decision', value: 'allow' });
    assert.ok(cb.left && cb.left.startsWith(REDIRECT_URI), JSON.stringify(cb.left ?? cb.url));
    callback = new URL(cb.left);
    assert.equal(callback.searchParams.get('state'), state);
  });

  await step('the request_uri is single-use', async () => {
    const again = await browser.open(parUrl.toString());
    assert.equal(again.status, 400);
    assert.match(again.html, /already used/);
  });

  await step('the code exchange with a DPoP proof: the nonce dance, then DPoP-bound tokens', async () => {
    sent.length = 0;
    tokens = await oc.authorizationCodeGrant(cfg, callback, {
      pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
    }, undefined, { DPoP: dpop });
    // The nonce from PAR is still good: no second dance.
    assert.deepEqual(sent.map((s) => [s.endpoint, s.status, s.error]), [['/oauth2/token', 200, undefined]]);
    assert.equal(tokens.token_type.toLowerCase(), 'dpop');
    assert.equal(tokens.claims().sub, USER_ID);
    assert.equal(payload(tokens.access_token).cnf.jkt, jkt);
    assert.ok(tokens.refresh_token);
  });

  await step('the bound token works with its proof: /api/v1/auth/me, /api/v1/auth/verify, userinfo', async () => {
    const me = await oc.fetchProtectedResource(cfg, tokens.access_token, new URL(`${ISSUER}/api/v1/auth/me`), 'GET', null, undefined, { DPoP: dpop });
    assert.equal(me.status, 200);
    assert.equal((await me.json()).id, USER_ID);
    const verify = await oc.fetchProtectedResource(cfg, tokens.access_token, new URL(`${ISSUER}/api/v1/auth/verify`), 'GET', null, undefined, { DPoP: dpop });
    assert.equal(verify.status, 204);
    assert.equal(verify.headers.get('x-auth-user-id'), USER_ID);
    const info = await oc.fetchUserInfo(cfg, tokens.access_token, USER_ID, { DPoP: dpop });
    assert.equal(info.email, USER_EMAIL);
  });

  await step('without its proof the bound token is refused everywhere', async () => {
    for (const path of ['/api/v1/auth/me', '/api/v1/auth/verify', `/api/v1/ws?token=${tokens.access_token}`, '/oauth2/userinfo']) {
      const headers = path.startsWith('/api/v1/ws') ? {} : { authorization: `Bearer ${tokens.access_token}` };
      const res = await fetch(`${ISSUER}${path}`, { headers });
      assert.equal(res.status, 401, path);
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^DPoP /, `${path}: ${challenge}`);
      assert.match(challenge, /error="invalid_dpop_proof"/, path);
    }
    const bare = await fetch(`${ISSUER}/api/v1/auth/me`, { headers: { authorization: `DPoP ${tokens.access_token}` } });
    assert.equal(bare.status, 401);
    assert.equal((await bare.json()).code, 'invalid_dpop_proof');
  });

  await step('introspection: the bound token is active only with its proof, then shows its key', async () => {
    const rs = await oc.discovery(new URL(ISSUER), RS_CLIENT_ID, undefined, oc.ClientSecretBasic(RS_CLIENT_SECRET), insecure);
    const without = await oc.tokenIntrospection(rs, tokens.access_token);
    assert.equal(without.active, false, 'a bound token without its proof is refused by introspection too');
    // The proof a resource server received with the token, passed along in DPoP.
    const received = new Headers();
    await dpop.addProof(new URL(`${ISSUER}/api/v1/orders`), received, 'GET', tokens.access_token);
    const introspect = () => fetch(`${ISSUER}/oauth2/introspect`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(RS_CLIENT_ID)}:${encodeURIComponent(RS_CLIENT_SECRET)}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
        dpop: received.get('dpop'),
      },
      body: new URLSearchParams({ token: tokens.access_token }),
    }).then((r) => r.json());
    const r = await introspect();
    assert.equal(r.active, true, JSON.stringify(r));
    assert.equal(r.token_type, 'DPoP');
    assert.equal(r.cnf.jkt, jkt);
    const replayed = await introspect();
    assert.equal(replayed.active, false, 'a proof is good once');
  });

  await step('a replayed client assertion is invalid_client', async () => {
    const withAssertion = sent.find((s) => s.body.includes('client_assertion='));
    assert.ok(withAssertion, 'the exchange sent a client assertion');
    const res = await fetch(`${ISSUER}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: withAssertion.body,
    });
    const body = await res.json();
    assert.equal(res.status, 401);
    assert.equal(body.error, 'invalid_client');
    assert.match(body.error_description, /already used/);
  });

  await step('refresh keeps the binding: the same key works, another key or none does not', async () => {
    const other = oc.getDPoPHandle(cfg, await oc.randomDPoPKeyPair('ES256'));
    await assert.rejects(oc.refreshTokenGrant(cfg, tokens.refresh_token, undefined, { DPoP: other }), (e) => {
      assert.equal(e.error ?? e.cause?.error, 'invalid_dpop_proof');
      return true;
    });
    await assert.rejects(oc.refreshTokenGrant(cfg, tokens.refresh_token), (e) => {
      assert.equal(e.error ?? e.cause?.error, 'invalid_dpop_proof');
      return true;
    });
    const next = await oc.refreshTokenGrant(cfg, tokens.refresh_token, undefined, { DPoP: dpop });
    assert.equal(next.token_type.toLowerCase(), 'dpop');
    assert.equal(payload(next.access_token).cnf.jkt, jkt);
    assert.notEqual(next.refresh_token, tokens.refresh_token);
  });

  await step('private_key_jwt with a jwks_uri served on loopback (EdDSA), client credentials', async () => {
    const pair = await keyPair('EdDSA');
    const jwks = { keys: [{ ...(await publicJwk(pair, 'ed-1')), alg: 'EdDSA' }] };
    let served = 0;
    const server = http.createServer((req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(jwks));
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      const bot = await register({
        name: 'Key-published bot',
        client_type: 'confidential',
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: 'private_key_jwt',
        jwks_uri: `http://127.0.0.1:${server.address().port}/jwks.json`,
      });
      const botCfg = await oc.discovery(new URL(ISSUER), bot.client_id, undefined,
        oc.PrivateKeyJwt({ key: pair.privateKey, kid: 'ed-1' }), insecure);
      const t = await oc.clientCredentialsGrant(botCfg, { scope: 'trade:read' });
      assert.equal(t.scope, 'trade:read');
      assert.equal(t.token_type.toLowerCase(), 'bearer');
      await oc.clientCredentialsGrant(botCfg, { scope: 'trade:read' });
      assert.equal(served, 1, 'the key set is fetched once and cached');
      // A key the set does not hold is refused.
      const stranger = await keyPair('EdDSA');
      const wrong = await oc.discovery(new URL(ISSUER), bot.client_id, undefined,
        oc.PrivateKeyJwt({ key: stranger.privateKey, kid: 'ed-1' }), insecure);
      await assert.rejects(oc.clientCredentialsGrant(wrong, { scope: 'trade:read' }), (e) => {
        assert.equal(e.error ?? e.cause?.error, 'invalid_client');
        return true;
      });
    } finally {
      server.close();
    }
  });
} catch {
  // The failing step printed itself; later steps depend on it.
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
