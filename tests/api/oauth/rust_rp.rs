//! The `openidconnect` crate (ramosbugs/openidconnect-rs) as a Rust relying party inside
//! `cargo test`: discovery, the code flow with PKCE through the pages, the code exchange,
//! and the ID token verified by the crate (signature against the JWKS, issuer, audience,
//! nonce, expiry).

use super::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

#[tokio::test]
async fn the_openidconnect_crate_completes_the_code_flow() {
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    // The crate's HTTP client must not follow redirects (SSRF guidance of the crate).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(app.base.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(id),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.to_string()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    let mut agent = Agent::new(&app);
    let login = agent.open(url.as_str()).await;
    let consent = agent.sign_in(login, &email).await;
    let back = agent.consent(&consent, true).await;
    let q = query_of(back.location.as_deref().expect("back to the client"));
    assert_eq!(&q["state"], state.secret());

    let token = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .expect("a token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code exchange");
    let id_token = token.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the crate verifies the ID token");
    assert_eq!(claims.subject().as_str(), user_id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(email.as_str()));
    assert!(claims.auth_time().is_some());
    assert!(!token.access_token().secret().is_empty());
    // A tampered ID token (another signature) is refused by the crate.
    let text = id_token.to_string();
    let mut parts: Vec<&str> = text.split('.').collect();
    let forged_sig = "A".repeat(parts[2].len());
    parts[2] = &forged_sig;
    let forged: openidconnect::core::CoreIdToken = parts.join(".").parse().unwrap();
    assert!(forged.claims(&client.id_token_verifier(), &nonce).is_err());
}
