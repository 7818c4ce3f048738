//! Tokens: JWT access tokens (signing, verification, algorithm pinning), the signing keys
//! and their JWKS, the opaque refresh-token format and the CSRF token of browser sessions.
//!
//! Must not touch storage: keys arrive as [`keys::StoredKey`] values and leave the same way.

pub mod apikey;
pub mod csrf;
pub mod dpop;
pub mod httpsig;
pub mod idtoken;
pub mod jws;
pub mod jwt;
pub mod keys;
pub mod refresh;
pub mod seal;

pub use csrf::CsrfSecret;
pub use jwt::{AccessClaims, TokenError, TokenIssuer};
pub use keys::{JwtAlg, KeyRing, KeyState, StoredKey};
pub use refresh::RefreshSecret;
pub use seal::Sealer;
