//! tradeauth: the authentication service of a trading platform.
//!
//! Layout (dependencies point downwards):
//! - [`cli`], [`config`], [`telemetry`], [`app`]: the edges — arguments, settings, logs,
//!   startup;
//! - [`http`]: axum routes, extractors, the error renderer, the dialects;
//! - [`service`]: the use cases and the one error enum;
//! - [`store`]: storage traits and backends, in-process shared state;
//! - [`tokens`]: JWTs, signing keys, JWKS, refresh-token format;
//! - [`domain`]: pure rules and types.

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
