//! tradeauth: the authentication service of a trading platform.
//!
//! Layout (dependencies point downwards, and no module imports one that imports it back):
//! - [`cli`], [`config`], [`telemetry`], [`app`]: the edges — arguments, settings, logs,
//!   startup;
//! - [`http`]: axum routes, extractors, the dialects (which render every error); it talks
//!   to the service only, never to the store. Inside, `state` and `requests` sit at the
//!   bottom, the resource modules above them, `dialect` and `openapi` on top;
//! - [`service`]: the use cases and the one error enum (its HTTP status is decided in
//!   `http`);
//! - [`store`], [`mail`], [`metrics`]: storage traits and backends, in-process shared
//!   state; the outbox; the Prometheus registry;
//! - [`tokens`]: JWTs, signing keys, JWKS, refresh-token format;
//! - [`domain`]: pure rules and types;
//! - [`upstream`]: for services behind the proxy (the body check of signed requests).

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod mail;
pub mod metrics;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod upstream;
