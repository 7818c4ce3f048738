// The browser-test harness: the real tradeauth binary on a fresh SQLite file, optionally
// behind nginx over HTTPS (tradeauth at /, a service behind forward-auth at /service/, an
// "attacker" site on a second origin), headless Debian Chromium driven by playwright-core,
// and the helpers the browser features' tests share (virtual authenticator, axe-core,
// CSP-violation collector, screenshots, mails).
//
// Every process started here is stopped by the test's cleanup and, whatever happens, when
// the test process exits. README.md beside this file shows how a test uses it.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

// playwright-core and axe-core are loaded on first use: tests without a browser start faster.

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../..');
export const ARTIFACTS = path.join(HERE, 'artifacts');

/** The second origin's host name; Chromium resolves it to 127.0.0.1 (see launchBrowser). */
export const ATTACKER_HOST = 'attacker.test';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  `--host-resolver-rules=MAP ${ATTACKER_HOST} 127.0.0.1`,
];

// ---------------------------------------------------------------------------------------
// Processes: every child is in its own process group and is killed when this process ends.

const live = new Set();

function killGroup(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => {
    for (const child of live) killGroup(child, 'SIGKILL');
    process.exit(128 + os.constants.signals[sig]);
  });
}

function startChild(cmd, args, { env, cwd, logFile }) {
  const child = spawn(cmd, args, {
    env,
    cwd,
    detached: true, // own process group: stopping it also stops what it forked (nginx workers)
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  // The child alone never keeps the test process alive: a test that forgot to stop it still
  // ends, and the exit handler above kills it. (What waits on it holds a timer of its own.)
  child.unref();
  child.stdout.unref?.();
  child.stderr.unref?.();
  const lines = [];
  const out = logFile ? fs.createWriteStream(logFile) : null;
  const listeners = new Set();
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      out?.write(chunk);
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf('\n')) >= 0) {
        const line = rest.slice(0, nl);
        rest = rest.slice(nl + 1);
        lines.push(line);
        for (const l of listeners) l(line);
      }
    });
  }
  child.once('exit', () => out?.end());
  return { child, lines, onLine: (f) => listeners.add(f), offLine: (f) => listeners.delete(f) };
}

/** SIGTERM (or `signal`), then SIGKILL to the whole group after `graceMs`. Returns {code, signal}. */
export async function stopProcess(child, { signal = 'SIGTERM', graceMs = 10_000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return { code: child.exitCode, signal: child.signalCode };
  }
  const exited = once(child, 'exit');
  killGroup(child, signal);
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  const [code, sig] = await exited;
  clearTimeout(timer);
  killGroup(child, 'SIGKILL'); // anything left in the group
  return { code, signal: sig };
}

/** A TCP port nothing listens on right now (127.0.0.1). */
export async function freePort() {
  const srv = net.createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

const tempDirs = new Set();

function tempDir(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tradeauth-browser-${label}-`));
  tempDirs.add(dir);
  return dir;
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

function slug(s) {
  return String(s)
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);
}

function registerCleanup(t, fn) {
  if (t && typeof t.after === 'function') t.after(fn);
}

// ---------------------------------------------------------------------------------------
// HTTP from Node (trusts the harness CA, keeps every Set-Cookie).

/**
 * One request. `body`: a string/Buffer, or `json` for a JSON body. Resolves to
 * {status, headers, setCookies, text, json()} whatever the status; rejects only on a
 * network error.
 */
export function request(url, { method = 'GET', headers = {}, body, json, ca, timeoutMs = 30_000 } = {}) {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  const h = { ...headers };
  let payload = body;
  if (json !== undefined) {
    payload = JSON.stringify(json);
    if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
  }
  if (payload !== undefined) h['content-length'] = Buffer.byteLength(payload);
  return new Promise((resolve, reject) => {
    const req = lib.request(
      u,
      { method, headers: h, ca, agent: false, servername: u.hostname === '127.0.0.1' ? undefined : u.hostname },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const setCookie = res.headers['set-cookie'] ?? [];
          resolve({
            status: res.statusCode,
            headers: res.headers,
            setCookies: Array.isArray(setCookie) ? setCookie : [setCookie],
            text,
            json: () => JSON.parse(text),
          });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

async function waitForOk(url, { ca, timeoutMs = 30_000, isAlive = () => true, what }) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`${what} exited while waiting for ${url}`);
    try {
      const r = await request(url, { ca, timeoutMs: 2_000 });
      if (r.status === 200) return r;
      last = `status ${r.status}: ${r.text.slice(0, 200)}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(50);
  }
  throw new Error(`${what}: ${url} not ready after ${timeoutMs} ms (${last})`);
}

// ---------------------------------------------------------------------------------------
// tradeauth

/** The binary under test: $TRADEAUTH_BIN, else target/debug/tradeauth of this repository. */
export function tradeauthBin() {
  const bin = process.env.TRADEAUTH_BIN
    ? path.resolve(REPO_ROOT, process.env.TRADEAUTH_BIN)
    : path.join(REPO_ROOT, 'target/debug/tradeauth');
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`tradeauth binary not found or not executable at ${bin}: build it (cargo build) or set TRADEAUTH_BIN`);
  }
  return bin;
}

/**
 * Starts `tradeauth serve` on a fresh SQLite file and waits for /readyz.
 *
 * options:
 *   env      extra environment (object, or a function ({origin, port}) => object); wins over the defaults
 *   origin   the public origin browsers use (default http://localhost:PORT); the defaults of
 *            TRADEAUTH_PUBLIC_URL and TRADEAUTH_ALLOWED_ORIGINS
 *   port     the port to listen on (default: a free one)
 *   label    names the log file artifacts/logs/LABEL.tradeauth.log
 *   t        a test context (or anything with .after(fn)): stopped in its cleanup
 *
 * Resolves to {url, origin, port, dir, dbPath, mailDir, env, logs(), waitForLog(re), stop()}.
 * `url` is the direct http://127.0.0.1:PORT; `stop()` sends SIGTERM (SIGKILL after 10 s) and
 * resolves to {code, signal}.
 */
export async function startTradeauth(options = {}) {
  const bin = tradeauthBin();
  const dir = options.dir ?? tempDir('tradeauth');
  if (options.keepDir) tempDirs.delete(dir);
  const mailDir = path.join(dir, 'mail');
  fs.mkdirSync(mailDir, { recursive: true });
  const dbPath = path.join(dir, 'tradeauth.db');
  const label = slug(options.label ?? options.t?.name ?? 'tradeauth');
  fs.mkdirSync(path.join(ARTIFACTS, 'logs'), { recursive: true });
  const logFile = path.join(ARTIFACTS, 'logs', `${label}.tradeauth.log`);

  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = options.port ?? (await freePort());
    const origin = options.origin ?? `http://localhost:${port}`;
    const base = {};
    for (const [k, v] of Object.entries(process.env)) {
      // Nothing of the caller's own tradeauth configuration leaks into the test.
      if (k.startsWith('TRADEAUTH_') || k === 'ADMIN_EMAIL' || k === 'ADMIN_PASSWORD' || k === 'RUST_LOG') continue;
      base[k] = v;
    }
    const extra = typeof options.env === 'function' ? options.env({ origin, port }) : (options.env ?? {});
    const env = {
      ...base,
      TRADEAUTH_LISTEN: `127.0.0.1:${port}`,
      TRADEAUTH_DATABASE_URL: `sqlite://${dbPath}`,
      TRADEAUTH_LOG_FORMAT: 'json',
      TRADEAUTH_RATE_LIMIT: 'off',
      TRADEAUTH_MAILER: `file:${mailDir}`,
      TRADEAUTH_PUBLIC_URL: origin,
      TRADEAUTH_ALLOWED_ORIGINS: origin,
      ...extra,
    };
    const proc = startChild(bin, ['serve'], { env, cwd: dir, logFile });
    const listening = new Promise((resolve, reject) => {
      const onLine = (line) => {
        try {
          const v = JSON.parse(line);
          if (v.message === 'tradeauth listening') resolve(v.port ?? port);
        } catch {
          /* not JSON */
        }
      };
      for (const l of proc.lines) onLine(l);
      proc.onLine(onLine);
      proc.child.once('exit', (code, sig) =>
        reject(new Error(`tradeauth exited (${code ?? sig}) before listening:\n${proc.lines.slice(-30).join('\n')}`)),
      );
    });
    let listenedOn;
    try {
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`tradeauth did not log "tradeauth listening" in 30 s:\n${proc.lines.slice(-30).join('\n')}`)),
          30_000,
        );
      });
      listenedOn = await Promise.race([listening, timeout]).finally(() => clearTimeout(timer));
    } catch (e) {
      lastError = e;
      await stopProcess(proc.child, { graceMs: 1_000 });
      // A port taken between freePort() and the bind: try another one.
      if (!options.port && /address already in use|AddrInUse|os error 98/i.test(e.message)) continue;
      throw e;
    }
    const url = `http://127.0.0.1:${listenedOn}`;
    await waitForOk(`${url}/readyz`, {
      what: 'tradeauth',
      isAlive: () => proc.child.exitCode === null,
    });
    let stopped;
    const server = {
      url,
      origin,
      port: listenedOn,
      dir,
      dbPath,
      mailDir,
      env,
      logFile,
      child: proc.child,
      /** Every line logged so far (stdout and stderr). */
      logs: () => proc.lines.slice(),
      /** Lines parsed as JSON (the others skipped). */
      logRecords: () =>
        proc.lines.flatMap((l) => {
          try {
            return [JSON.parse(l)];
          } catch {
            return [];
          }
        }),
      /** Resolves to the first line (already logged or coming) matching `re`. */
      waitForLog: (re, timeoutMs = 10_000) =>
        new Promise((resolve, reject) => {
          const hit = proc.lines.find((l) => re.test(l));
          if (hit) return resolve(hit);
          const f = (l) => {
            if (re.test(l)) {
              clearTimeout(timer);
              proc.offLine(f);
              resolve(l);
            }
          };
          const timer = setTimeout(() => {
            proc.offLine(f);
            reject(new Error(`no log line matched ${re} in ${timeoutMs} ms`));
          }, timeoutMs);
          proc.onLine(f);
        }),
      stop: () => (stopped ??= stopProcess(proc.child).then((r) => {
        if (!options.keepDir && !options.dir) removeDir(dir);
        return r;
      })),
    };
    registerCleanup(options.t, () => server.stop());
    return server;
  }
  throw lastError;
}

// ---------------------------------------------------------------------------------------
// TLS: a throwaway CA and a certificate for localhost, 127.0.0.1 and the attacker host.

let tlsCache;

/** Generates (once per process) a CA and a server certificate; returns {dir, caPath, certPath, keyPath, ca}. */
export function testCertificates() {
  if (tlsCache) return tlsCache;
  const dir = tempDir('tls');
  const run = (...args) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.error) throw new Error(`openssl is needed for the test certificate: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tradeauth browser-test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  run('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    `subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:${ATTACKER_HOST}`,
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  tlsCache = {
    dir,
    caPath: path.join(dir, 'ca.crt'),
    certPath: path.join(dir, 'server.crt'),
    keyPath: path.join(dir, 'server.key'),
    ca: fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
  };
  return tlsCache;
}

// ---------------------------------------------------------------------------------------
// The upstream service behind forward-auth: answers every method with what it received.

/** A Node HTTP server on 127.0.0.1:0 recording each request; answers JSON {method, url, headers (x-auth-*), body}. */
export async function startUpstream() {
  const requests = [];
  const srv = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const seen = {
        method: req.method,
        url: req.url,
        headers: { ...req.headers },
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      const auth = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('x-auth-')));
      const body = JSON.stringify({ method: req.method, url: req.url, headers: auth, body: seen.body });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
    });
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  srv.unref(); // like the children: never what keeps a finished test process alive
  const { port } = srv.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () => new Promise((resolve) => {
      srv.closeAllConnections?.();
      srv.close(() => resolve());
    }),
  };
}

/**
 * A tiny page server on 127.0.0.1:0, for tests that need a page but not tradeauth.
 * `pages`: {'/path': {body, status?, headers?}} (a string is an HTML body). Resolves to
 * {port, origin: 'http://localhost:PORT', stop()}.
 */
export async function startPageServer(pages, { t } = {}) {
  const srv = http.createServer((req, res) => {
    const page = pages[new URL(req.url, 'http://x').pathname];
    if (page === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('not found');
    }
    const { body, status = 200, headers = {} } = typeof page === 'string' ? { body: page } : page;
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...headers });
    res.end(body);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  srv.unref(); // like the children: never what keeps a finished test process alive
  const { port } = srv.address();
  const server = {
    port,
    origin: `http://localhost:${port}`,
    stop: () => new Promise((resolve) => {
      srv.closeAllConnections?.();
      srv.close(() => resolve());
    }),
  };
  registerCleanup(t, () => server.stop());
  return server;
}

// ---------------------------------------------------------------------------------------
// nginx over HTTPS

export function nginxBin() {
  for (const p of [process.env.NGINX_PATH, '/usr/sbin/nginx', '/usr/bin/nginx'].filter(Boolean)) {
    if (fs.existsSync(p)) return p;
  }
  throw new Error('nginx not found (apt-get install nginx-light, or set NGINX_PATH)');
}

/** The nginx.conf the harness runs; exported so a test can read what it is testing. */
export function nginxConfig({ prefix, port, attackerPort, tradeauthPort, upstreamPort, attackerRoot, tls, extraLocations = '' }) {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return `# Written by tests/browser/harness.mjs
${asRoot ? 'user root;' : ''}
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log info;
events { worker_connections 256; }
http {
    access_log ${prefix}/access.log;
    client_body_temp_path ${prefix}/body;
    proxy_temp_path ${prefix}/proxy;
    fastcgi_temp_path ${prefix}/fastcgi;
    uwsgi_temp_path ${prefix}/uwsgi;
    scgi_temp_path ${prefix}/scgi;
    types { text/html html; text/css css; application/javascript js mjs; application/json json; image/png png; image/svg+xml svg; }
    default_type application/octet-stream;
    ssl_certificate ${tls.certPath};
    ssl_certificate_key ${tls.keyPath};
    ssl_protocols TLSv1.2 TLSv1.3;

    map $http_upgrade $connection_upgrade { default upgrade; '' close; }

    upstream tradeauth { server 127.0.0.1:${tradeauthPort}; }
    upstream app       { server 127.0.0.1:${upstreamPort}; }

    # tradeauth and the service behind it, on one origin: https://localhost:${port}
    server {
        listen 127.0.0.1:${port} ssl;
        server_name localhost;

        # The harness's own probe: a __Host- cookie proves Chromium keeps Secure cookies here.
        location = /__harness/cookie {
            add_header Set-Cookie "__Host-harness=1; Path=/; Secure; HttpOnly; SameSite=Strict" always;
            add_header Cache-Control no-store always;
            default_type text/html;
            return 200 "<!doctype html><html lang=en><head><meta charset=utf-8><title>cookie set</title></head><body><main><h1>cookie set</h1></main></body></html>";
        }

        # The harness's own probe: what the browser sent (Sec-Fetch-Site, Origin, cookies).
        location = /__harness/echo {
            default_type text/plain;
            add_header Cache-Control no-store always;
            return 200 "method=$request_method\nsec-fetch-site=$http_sec_fetch_site\norigin=$http_origin\ncookie=$http_cookie\n";
        }

        location = /_tradeauth_verify {
            internal;
            proxy_pass http://tradeauth/api/v1/auth/verify;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }

        # A service behind forward-auth (deploy/nginx-forward-auth.conf, under /service/).
        location /service/ {
            auth_request /_tradeauth_verify;
            auth_request_set $auth_user    $upstream_http_x_auth_user_id;
            auth_request_set $auth_tier    $upstream_http_x_auth_tier;
            auth_request_set $auth_role    $upstream_http_x_auth_role;
            auth_request_set $auth_session $upstream_http_x_auth_session_id;
            auth_request_set $auth_error   $upstream_http_x_auth_error;
            add_header X-Auth-Error $auth_error always;
            proxy_set_header X-Auth-User-Id    $auth_user;
            proxy_set_header X-Auth-Tier       $auth_tier;
            proxy_set_header X-Auth-Role       $auth_role;
            proxy_set_header X-Auth-Session-Id $auth_session;
            proxy_set_header Authorization "";
            proxy_set_header Cookie "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_pass http://app;
        }
${extraLocations}
        # Everything else is tradeauth itself (API, pages, WebSocket).
        location / {
            proxy_pass http://tradeauth;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_read_timeout 300s;
        }
    }

    # The attacker's site, another origin and another site: https://${ATTACKER_HOST}:${attackerPort}
    server {
        listen 127.0.0.1:${attackerPort} ssl;
        server_name ${ATTACKER_HOST} localhost 127.0.0.1;
        root ${attackerRoot};
        location / { add_header Cache-Control no-store always; try_files $uri $uri.html =404; }
    }
}
`;
}

/**
 * Starts nginx (not a daemon; its own prefix) in front of tradeauth and the upstream.
 * options: {port, attackerPort, tradeauthPort, upstreamPort, extraLocations, label}.
 * Resolves to {port, attackerPort, origin, attackerOrigin, attackerRoot, prefix, config,
 * errorLog(), accessLog(), putAttackerPage(name, html), stop()}.
 */
export async function startNginx(options) {
  const tls = testCertificates();
  const prefix = tempDir('nginx');
  const attackerRoot = path.join(prefix, 'attacker');
  fs.mkdirSync(attackerRoot, { recursive: true });
  fs.chmodSync(prefix, 0o755);
  fs.writeFileSync(path.join(attackerRoot, 'index.html'),
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another site</title></head><body><main><h1>Another site</h1></main></body></html>\n');
  const config = nginxConfig({ ...options, prefix, attackerRoot, tls });
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), config);
  const label = slug(options.label ?? 'nginx');
  fs.mkdirSync(path.join(ARTIFACTS, 'logs'), { recursive: true });
  const proc = startChild(nginxBin(), ['-p', prefix, '-c', path.join(prefix, 'nginx.conf')], {
    env: process.env,
    cwd: prefix,
    logFile: path.join(ARTIFACTS, 'logs', `${label}.nginx.log`),
  });
  const errorLog = () => {
    try {
      return fs.readFileSync(path.join(prefix, 'error.log'), 'utf8');
    } catch {
      return '';
    }
  };
  const origin = `https://localhost:${options.port}`;
  try {
    await waitForOk(`https://127.0.0.1:${options.attackerPort}/index.html`, {
      ca: tls.ca,
      what: 'nginx',
      timeoutMs: 15_000,
      isAlive: () => proc.child.exitCode === null,
    });
  } catch (e) {
    await stopProcess(proc.child, { graceMs: 1_000 });
    throw new Error(`${e.message}\n${proc.lines.join('\n')}\n${errorLog()}`);
  }
  let stopped;
  return {
    port: options.port,
    attackerPort: options.attackerPort,
    origin,
    attackerOrigin: `https://${ATTACKER_HOST}:${options.attackerPort}`,
    attackerRoot,
    prefix,
    config,
    child: proc.child,
    errorLog,
    accessLog: () => {
      try {
        return fs.readFileSync(path.join(prefix, 'access.log'), 'utf8');
      } catch {
        return '';
      }
    },
    /** Serves `html` at https://attacker.test:PORT/NAME (NAME may omit .html). */
    putAttackerPage: (name, html) => fs.writeFileSync(path.join(attackerRoot, name), html),
    stop: () => (stopped ??= stopProcess(proc.child, { signal: 'SIGQUIT', graceMs: 5_000 }).then((r) => {
      const logs = path.join(ARTIFACTS, 'logs', `${label}.nginx-error.log`);
      fs.writeFileSync(logs, errorLog());
      removeDir(prefix);
      return r;
    })),
  };
}

/**
 * The whole stack a browser test needs.
 *
 * options:
 *   nginx           true (default): HTTPS through nginx; false: tradeauth alone over http://localhost
 *   env             as startTradeauth (object, or ({origin, port, attackerOrigin}) => object)
 *   extraLocations  nginx location blocks added to the main server
 *   t               a test context (or anything with .after(fn)): everything stops in its cleanup
 *   label           names the log files in artifacts/logs/
 *
 * Resolves to {origin, serviceUrl, attackerOrigin, ca, tradeauth, nginx, upstream, mailDir,
 * request(pathOrUrl, opts), waitForMail(opts), mailLink(opts), putAttackerPage(name, html), stop()}.
 * Without nginx, `serviceUrl`, `attackerOrigin` and `putAttackerPage` are absent.
 */
export async function startStack(options = {}) {
  const label = slug(options.label ?? options.t?.name ?? 'stack');
  const useNginx = options.nginx !== false;
  const parts = [];
  const stop = async () => {
    const results = await Promise.allSettled([...parts].reverse().map((p) => p.stop()));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) throw failed[0].reason;
  };
  registerCleanup(options.t, stop);
  try {
    if (!useNginx) {
      const tradeauth = await startTradeauth({ env: options.env, label });
      parts.push(tradeauth);
      return withHelpers({ origin: tradeauth.origin, tradeauth, mailDir: tradeauth.mailDir, stop });
    }
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      let attackerPort = await freePort();
      while (attackerPort === port) attackerPort = await freePort();
      const origin = `https://localhost:${port}`;
      const attackerOrigin = `https://${ATTACKER_HOST}:${attackerPort}`;
      const userEnv = typeof options.env === 'function' ? options.env({ origin, port, attackerOrigin }) : (options.env ?? {});
      const tradeauth = await startTradeauth({
        origin,
        label,
        env: { TRADEAUTH_TRUSTED_PROXIES: '127.0.0.1/32', ...userEnv },
      });
      parts.push(tradeauth);
      const upstream = await startUpstream();
      parts.push(upstream);
      let nginx;
      try {
        nginx = await startNginx({
          port,
          attackerPort,
          tradeauthPort: tradeauth.port,
          upstreamPort: upstream.port,
          extraLocations: options.extraLocations,
          label,
        });
      } catch (e) {
        // A port taken since freePort(): start over on new ports.
        if (attempt < 2 && /Address already in use/.test(e.message)) {
          await stop();
          parts.length = 0;
          continue;
        }
        throw e;
      }
      parts.push(nginx);
      const tls = testCertificates();
      await waitForOk(`${origin}/readyz`, { ca: tls.ca, what: 'nginx → tradeauth' });
      return withHelpers({
        origin,
        serviceUrl: `${origin}/service/`,
        attackerOrigin: nginx.attackerOrigin,
        ca: tls.ca,
        caPath: tls.caPath,
        tradeauth,
        nginx,
        upstream,
        mailDir: tradeauth.mailDir,
        putAttackerPage: nginx.putAttackerPage,
        stop,
      });
    }
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}

function withHelpers(stack) {
  return {
    ...stack,
    /** request() against the stack: a path is taken relative to `origin`. */
    request: (target, opts = {}) => request(new URL(target, stack.origin).href, { ca: stack.ca, ...opts }),
    waitForMail: (opts = {}) => waitForMail(stack.mailDir, opts),
    mailLink: (opts = {}) => mailLink(stack.mailDir, opts),
  };
}

// ---------------------------------------------------------------------------------------
// Mails (TRADEAUTH_MAILER=file:DIR writes one .eml per mail)

function decodeWords(s) {
  return s.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, charset, enc, text) => {
    const bytes = enc.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64')
      : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    return new TextDecoder(charset).decode(bytes);
  });
}

/** Parses one single-part .eml: {headers (lower-case keys), subject, to, from, body (decoded), links}. */
export function parseMail(raw) {
  const text = raw.toString('latin1');
  const split = text.search(/\r?\n\r?\n/);
  const head = split < 0 ? text : text.slice(0, split);
  let body = split < 0 ? '' : text.slice(split).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const cte = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let bytes;
  if (cte === 'base64') bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  else if (cte === 'quoted-printable') {
    bytes = Buffer.from(body.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  } else bytes = Buffer.from(body, 'latin1');
  const charset = /charset="?([^";]+)"?/i.exec(headers['content-type'] ?? '')?.[1] ?? 'utf-8';
  body = new TextDecoder(charset).decode(bytes).replace(/\r\n/g, '\n');
  return {
    headers,
    subject: decodeWords(headers.subject ?? ''),
    to: decodeWords(headers.to ?? ''),
    from: decodeWords(headers.from ?? ''),
    body,
    links: body.match(/https?:\/\/[^\s<>"')\]]+/g) ?? [],
  };
}

/** Every mail in `dir`, oldest first: [{file, mtimeMs, ...parseMail}]. */
export function readMails(dir) {
  let names;
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.eml') && !n.startsWith('.'));
  } catch {
    return [];
  }
  return names.sort().map((n) => {
    const file = path.join(dir, n);
    return { file, mtimeMs: fs.statSync(file).mtimeMs, ...parseMail(fs.readFileSync(file)) };
  });
}

/** The newest mail in `dir`, or undefined. */
export function newestMail(dir) {
  return readMails(dir).at(-1);
}

/**
 * Waits for the newest mail matching {to (substring), subject (RegExp or substring),
 * since (Date or ms: only mails written at or after it)}; `timeoutMs` (default 10 s).
 */
export async function waitForMail(dir, { to, subject, since, timeoutMs = 10_000 } = {}) {
  const after = since === undefined ? -Infinity : Number(since instanceof Date ? since.getTime() : since) - 5;
  const matches = (m) =>
    m.mtimeMs >= after &&
    (to === undefined || m.to.toLowerCase().includes(String(to).toLowerCase())) &&
    (subject === undefined || (subject instanceof RegExp ? subject.test(m.subject) : m.subject.includes(subject)));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const hit = readMails(dir).filter(matches).at(-1);
    if (hit) return hit;
    if (Date.now() > deadline) {
      const seen = readMails(dir).map((m) => `${m.to}: ${m.subject}`).join('; ') || 'none';
      throw new Error(`no mail in ${dir} matched ${JSON.stringify({ to, subject: String(subject ?? ''), since })} in ${timeoutMs} ms (mails: ${seen})`);
    }
    await sleep(50);
  }
}

/** The first link in the newest matching mail (waitForMail options) containing `contains`. */
export async function mailLink(dir, { contains = '', ...opts } = {}) {
  const mail = await waitForMail(dir, opts);
  const link = mail.links.find((l) => l.includes(contains));
  if (!link) throw new Error(`the mail "${mail.subject}" to ${mail.to} has no link containing ${JSON.stringify(contains)}:\n${mail.body}`);
  return link;
}

// ---------------------------------------------------------------------------------------
// Chromium

/** The Chromium binary: $CHROMIUM_PATH, else Debian's /usr/bin/chromium. Throws if missing. */
export function chromiumPath() {
  const p = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  try {
    fs.accessSync(p, fs.constants.X_OK);
  } catch {
    throw new Error(`Chromium not found at ${p}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH. The browser tests never download a browser and never skip.`);
  }
  return p;
}

/** Launches headless Chromium (Debian's, never a downloaded one). `extraArgs` are appended. */
export async function launchBrowser({ extraArgs = [], headless = true } = {}) {
  const executablePath = chromiumPath();
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath,
    headless,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: 60_000,
  });
}

const collected = new WeakMap(); // page → {csp: [], console: [], errors: []}

function recordsOf(page) {
  let r = collected.get(page);
  if (!r) {
    r = { csp: [], console: [], errors: [] };
    collected.set(page, r);
  }
  return r;
}

function watchPage(page) {
  const r = recordsOf(page);
  page.on('console', (m) => {
    if (m.type() === 'error') r.console.push({ text: m.text(), url: page.url() });
  });
  page.on('pageerror', (e) => r.errors.push({ message: e.message, url: page.url() }));
}

/**
 * A fresh context (ignoreHTTPSErrors; CSP enforced; every page's securitypolicyviolation
 * events, console errors and uncaught errors collected). `options` go to browser.newContext.
 * Pass `t` to close it in the test's cleanup.
 */
export async function newContext(browser, { t, ...options } = {}) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, ...options });
  await context.exposeBinding('__tradeauthHarnessReport', ({ page }, kind, data) => {
    if (page && kind === 'csp') recordsOf(page).csp.push(data);
  });
  await context.addInitScript(() => {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => {
        window.__tradeauthHarnessReport('csp', {
          documentURI: e.documentURI,
          blockedURI: e.blockedURI,
          violatedDirective: e.violatedDirective,
          effectiveDirective: e.effectiveDirective,
          originalPolicy: e.originalPolicy,
          disposition: e.disposition,
          sourceFile: e.sourceFile,
          lineNumber: e.lineNumber,
          sample: e.sample,
        });
      },
      true,
    );
  });
  context.on('page', watchPage);
  registerCleanup(t, () => context.close().catch(() => {}));
  return context;
}

/** A new page in a fresh context (see newContext): resolves to {context, page}. */
export async function newPage(browser, options = {}) {
  const context = await newContext(browser, options);
  const page = await context.newPage();
  return { context, page };
}

async function settle(page) {
  if (page.isClosed()) return;
  // Violation events are queued as tasks; the binding calls arrive in order, so one more
  // call after a turn of the event loop means every earlier report has arrived.
  await page
    .evaluate(async () => {
      await new Promise((r) => setTimeout(r, 50));
      await window.__tradeauthHarnessReport?.('flush');
    })
    .catch(() => {});
}

/** The securitypolicyviolation events the page's documents saw so far. */
export async function cspViolations(page) {
  await settle(page);
  return recordsOf(page).csp.slice();
}

/** Console errors ({text, url}) and uncaught exceptions ({message, url}) the page saw so far. */
export async function consoleErrors(page) {
  await settle(page);
  const r = recordsOf(page);
  return { console: r.console.slice(), errors: r.errors.slice() };
}

/** Throws, listing them, if the page saw any securitypolicyviolation event. */
export async function assertNoCspViolations(page) {
  const v = await cspViolations(page);
  if (v.length) {
    throw new Error(`${v.length} CSP violation(s):\n${v.map((x) => `  ${x.effectiveDirective} blocked ${x.blockedURI || x.sample || '(inline)'} on ${x.documentURI}${x.sourceFile ? ` (${x.sourceFile}:${x.lineNumber})` : ''}`).join('\n')}`);
  }
}

/**
 * Runs axe-core on the page; resolves to its violations (an array; assert it is empty).
 * options: {include, exclude (selectors), disableRules, withTags}.
 */
export async function axeCheck(page, { include, exclude, disableRules, withTags } = {}) {
  const { AxeBuilder } = await import('@axe-core/playwright');
  let builder = new AxeBuilder({ page });
  if (include) builder = builder.include(include);
  if (exclude) builder = builder.exclude(exclude);
  if (disableRules) builder = builder.disableRules(disableRules);
  if (withTags) builder = builder.withTags(withTags);
  const { violations } = await builder.analyze();
  return violations;
}

/** One line per violation and node, for an assertion message. */
export function formatAxe(violations) {
  return violations
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.replace(/\n/g, ' ')}`).join('\n')}`)
    .join('\n');
}

/** Throws, listing them, if axe-core finds any violation. */
export async function assertAccessible(page, options) {
  const v = await axeCheck(page, options);
  if (v.length) throw new Error(`axe-core: ${v.length} violation(s) on ${page.url()}:\n${formatAxe(v)}`);
}

/** Saves a full-page PNG as tests/browser/artifacts/NAME.png; resolves to its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${slug(name)}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ---------------------------------------------------------------------------------------
// WebAuthn: Chromium's virtual authenticator over the DevTools protocol

/**
 * Adds a virtual authenticator to `page` (CTAP2.1, internal transport, resident keys;
 * presence simulated). Attach it to the page that runs the ceremony, before it runs.
 * Resolves to {authenticatorId, cdp, setUserVerified(bool), setResponseOverrideBits(bits),
 * getCredentials(), addCredential(credential), removeCredential(id), clearCredentials(),
 * remove()}.
 */
export async function addVirtualAuthenticator(page, {
  hasUserVerification = true,
  isUserVerified = true,
  hasResidentKey = true,
  automaticPresenceSimulation = true,
  protocol = 'ctap2',
  ctap2Version = 'ctap2_1',
  transport = 'internal',
} = {}) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const options = { protocol, transport, hasResidentKey, hasUserVerification, isUserVerified, automaticPresenceSimulation };
  if (protocol === 'ctap2') options.ctap2Version = ctap2Version;
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options });
  return {
    authenticatorId,
    cdp,
    setUserVerified: (v) => cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: v }),
    setResponseOverrideBits: (bits) => cdp.send('WebAuthn.setResponseOverrideBits', { authenticatorId, ...bits }),
    getCredentials: async () => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
    addCredential: (credential) => cdp.send('WebAuthn.addCredential', { authenticatorId, credential }),
    removeCredential: (credentialId) => cdp.send('WebAuthn.removeCredential', { authenticatorId, credentialId }),
    clearCredentials: () => cdp.send('WebAuthn.clearCredentials', { authenticatorId }),
    remove: () => cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId }),
  };
}

/** Whether the authenticator's user verification succeeds from now on. */
export function setUserVerified(authenticator, isUserVerified) {
  return authenticator.setUserVerified(isUserVerified);
}
