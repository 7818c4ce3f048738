//! The API test suite: every test starts the real server on port 0 and speaks HTTP to it.

mod admin;
mod admin_pages;
mod apikeys;
mod binary;
mod cookies;
mod dialects;
mod endpoints;
mod errors;
mod helpers;
mod identifiers;
mod js_clients;
mod limits;
mod lockout;
mod mail;
mod metrics;
mod mfa;
mod openapi;
mod pages;
mod passkeys;
mod refresh;
mod restart;
mod scaleout;
mod signed;
mod tokens;
mod transport;
mod websocket;
