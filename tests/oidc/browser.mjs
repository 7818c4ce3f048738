// A minimal user agent for the hosted pages: fetch with a cookie jar, redirects followed
// by hand, HTML forms read with cheerio and submitted as a browser would (hidden fields
// kept, the clicked button's name and value added, `Sec-Fetch-Site` sent). No browser,
// and nothing tradeauth-specific beyond the field names a user would type into.
import * as cheerio from 'cheerio';

export class Browser {
  constructor(base) {
    this.base = new URL(base);
    this.jar = new Map();
  }

  cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keepCookies(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (gone) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  // One request, no redirect followed. `site`: the Sec-Fetch-Site a browser would send.
  async request(url, { method = 'GET', form, site = 'same-origin' } = {}) {
    const headers = { 'sec-fetch-site': site, 'user-agent': 'oidc-test-browser' };
    const cookie = this.cookieHeader();
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.keepCookies(res);
    return res;
  }

  // Follows redirects (and a page that moves on by itself: `<meta http-equiv=refresh>`)
  // until a page of ours is shown or the browser is sent off this origin (to the relying
  // party's redirect URI, which nothing serves). Returns {url, status, html} or {left: url}.
  async follow(res, url) {
    for (let hops = 0; hops < 20; hops++) {
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location'), url);
        if (next.origin !== this.base.origin) return { left: next.toString() };
        url = next.toString();
        res = await this.request(url);
        continue;
      }
      const html = await res.text();
      const $ = cheerio.load(html);
      const refresh = $('meta[http-equiv="refresh"]').attr('content');
      if (refresh) {
        const target = new URL(refresh.replace(/^\s*\d+\s*;\s*url=/i, ''), url);
        if (target.origin !== this.base.origin) return { left: target.toString() };
        url = target.toString();
        res = await this.request(url);
        continue;
      }
      return { url, status: res.status, html, $ };
    }
    throw new Error('too many redirects');
  }

  // A top-level navigation typed or linked from elsewhere.
  async open(url) {
    return this.follow(await this.request(url, { site: 'cross-site' }), url);
  }

  // Submits the form matched by `selector` on `page`, with `fields` filled in and the
  // submit button `button` ({name, value}) pressed.
  async submit(page, selector, fields = {}, button) {
    const form = page.$(selector);
    if (form.length === 0) throw new Error(`no form ${selector} on ${page.url}:\n${page.html}`);
    const data = {};
    form.find('input').each((_, el) => {
      const input = page.$(el);
      const name = input.attr('name');
      const type = (input.attr('type') || 'text').toLowerCase();
      if (!name || type === 'submit') return;
      if (type === 'checkbox' && input.attr('checked') === undefined) return;
      data[name] = input.attr('value') ?? '';
    });
    Object.assign(data, fields);
    if (button) data[button.name] = button.value;
    const action = new URL(form.attr('action') || page.url, page.url).toString();
    const method = (form.attr('method') || 'GET').toUpperCase();
    const res = await this.request(action, { method, form: data });
    return this.follow(res, action);
  }

  // The text of the page's alert, if any (errors are shown in role="alert").
  static alert(page) {
    return page.$('[role="alert"]').text().trim();
  }
}
