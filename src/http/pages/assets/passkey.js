// "Sign in with a passkey" on /login: the WebAuthn ceremony through the API, in cookie mode.
// The page works without JavaScript for passwords; only the passkey needs this file.
(() => {
  const button = document.getElementById('passkey-login');
  const message = document.getElementById('passkey-error');
  if (!button) return;
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    button.disabled = true;
    return;
  }
  const fail = (text) => {
    message.textContent = text;
    message.hidden = false;
  };
  const post = (path, body) =>
    fetch(path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  button.addEventListener('click', async () => {
    message.hidden = true;
    const username = document.getElementById('username')?.value.trim();
    const rememberMe = document.getElementById('remember_me')?.checked ?? false;
    try {
      const start = await post('/api/v1/auth/passkeys/login/start', username ? { username } : {});
      const started = await start.json();
      if (!start.ok) return fail(started.error || 'Passkey sign-in is not available.');
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(started.options.publicKey);
      const credential = await navigator.credentials.get({ publicKey });
      const finish = await post('/api/v1/auth/passkeys/login/finish', {
        challenge_id: started.challenge_id,
        credential: credential.toJSON(),
        remember_me: rememberMe,
        token_transport: 'cookie',
      });
      if (!finish.ok) {
        const body = await finish.json().catch(() => ({}));
        return fail(body.error || 'That passkey did not work.');
      }
      const target = button.dataset.returnTo || '/account';
      window.location.assign(target.startsWith('/') && !target.startsWith('//') ? target : '/account');
    } catch (e) {
      fail(e && e.name === 'NotAllowedError' ? 'The passkey request was cancelled.' : 'That passkey did not work.');
    }
  });
})();
