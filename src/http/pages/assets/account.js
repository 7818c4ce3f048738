// /account: copy buttons, and the passkey list (add, rename, remove) through the API with
// the session's CSRF token. Everything else on the page is plain forms.
(() => {
  for (const button of document.querySelectorAll('[data-copy]')) {
    button.addEventListener('click', async () => {
      const text = document.getElementById(button.dataset.copy)?.textContent ?? '';
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Select and copy';
      }
    });
  }

  const section = document.getElementById('passkeys');
  if (!section) return;
  const csrf = section.dataset.csrf;
  const list = document.getElementById('passkey-list');
  const message = document.getElementById('passkey-message');
  const say = (text) => {
    message.textContent = text;
    message.hidden = !text;
  };
  const api = async (method, path, body) => {
    const r = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) throw new Error((data && data.error) || `request failed (${r.status})`);
    return data;
  };

  const row = (passkey) => {
    const li = document.createElement('li');
    const info = document.createElement('div');
    const name = document.createElement('strong');
    name.textContent = passkey.name;
    const meta = document.createElement('div');
    meta.className = 'muted';
    meta.textContent = `added ${passkey.created_at.slice(0, 10)}` + (passkey.last_used_at ? ` · last used ${passkey.last_used_at.slice(0, 10)}` : '');
    info.append(name, meta);
    const rename = document.createElement('button');
    rename.type = 'button';
    rename.className = 'secondary';
    rename.textContent = 'Rename';
    rename.setAttribute('aria-label', `Rename passkey ${passkey.name}`);
    rename.addEventListener('click', async () => {
      const next = window.prompt('New name for this passkey', passkey.name);
      if (!next) return;
      try {
        await api('PATCH', `/api/v1/auth/passkeys/${passkey.id}`, { name: next });
        await load();
      } catch (e) {
        say(e.message);
      }
    });
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'danger';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove passkey ${passkey.name}`);
    remove.addEventListener('click', async () => {
      try {
        await api('DELETE', `/api/v1/auth/passkeys/${passkey.id}`);
        await load();
      } catch (e) {
        say(e.message);
      }
    });
    const actions = document.createElement('div');
    actions.append(rename, ' ', remove);
    li.append(info, actions);
    return li;
  };

  async function load() {
    try {
      const page = await api('GET', '/api/v1/auth/passkeys');
      list.replaceChildren(...page.items.map(row));
    } catch (e) {
      say(e.message);
    }
  }

  document.getElementById('passkey-add')?.addEventListener('submit', async (event) => {
    event.preventDefault();
    say('');
    const name = document.getElementById('passkey_name').value.trim();
    try {
      const started = await api('POST', '/api/v1/auth/passkeys/register/start', {});
      const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(started.options.publicKey);
      const credential = await navigator.credentials.create({ publicKey });
      await api('POST', '/api/v1/auth/passkeys/register/finish', {
        challenge_id: started.challenge_id,
        name,
        credential: credential.toJSON(),
      });
      document.getElementById('passkey_name').value = '';
      await load();
    } catch (e) {
      say(e.name === 'NotAllowedError' ? 'The passkey request was cancelled.' : e.message);
    }
  });

  load();
})();
