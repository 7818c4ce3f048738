//! Keeps docs/SIGNING.md honest: for each worked example, the base the doc shows must be
//! the base our code builds for the doc's request, and the doc's signature must be the
//! one the doc's key makes (Ed25519, HMAC: deterministic) or must verify (ECDSA).
