//! Prometheus metrics of one instance, served at `GET /metrics`.
//!
//! Each [`Metrics`] has its own registry (several servers may live in one process, as in
//! the tests). Counters are bumped where the events happen; gauges that need the store
//! (live sessions) are read when scraped.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Login outcomes: `succeeded`, or the error code the login answered with.
pub const LOGIN_OUTCOMES: [&str; 7] = [
    "succeeded",
    "invalid_credentials",
    "account_locked",
    "account_disabled",
    "email_not_verified",
    "mfa_required",
    "invalid_mfa_code",
];

pub struct Metrics {
    registry: Registry,
    /// Requests by route template, method and status.
    pub requests: IntCounterVec,
    /// Request latency by route template, method and status.
    pub latency: HistogramVec,
    /// Logins by outcome (`succeeded`, `invalid_credentials`, `locked`, ...).
    pub logins: IntCounterVec,
    /// Accounts locked by too many failures.
    pub lockouts: IntCounter,
    /// Refresh tokens presented again after rotation.
    pub refresh_reuse: IntCounter,
    /// Live sessions (set at scrape time).
    pub active_sessions: IntGauge,
    /// Seconds from a revocation being recorded to this instance applying it, for
    /// revocations made elsewhere.
    pub revocation_lag: Histogram,
    /// Messages for the other instances that the Redis publish queue had no room for, by
    /// channel (`revocations`, `events`). A dropped revocation still arrives by the
    /// database catch-up (within 250 ms); the count makes the drop visible.
    pub fanout_dropped: IntCounterVec,
    /// Password hashes waiting for a slot in the bounded hash pool.
    pub hash_queue: IntGauge,
    /// Open WebSockets.
    pub websockets: IntGauge,
    /// Cookie-authenticated requests refused by the CSRF rules, by reason (`origin`,
    /// `token`).
    pub csrf_refusals: IntCounterVec,
    /// Signed requests (RFC 9421) by outcome: `accepted`, `expired`, `replayed`,
    /// `invalid` (every other refusal), `unavailable` (the replay cache could not answer).
    pub signed_requests: IntCounterVec,
    /// Finished passkey ceremonies by ceremony (`register`, `login`) and outcome
    /// (`succeeded`, or the error code answered).
    pub passkeys: IntCounterVec,
    /// DPoP proofs and `private_key_jwt` client assertions by kind (`dpop`,
    /// `client_assertion`) and outcome: `accepted`, `replayed`, `use_nonce` (DPoP: a
    /// nonce was asked for), `invalid` (every other refusal), `unavailable` (the replay
    /// cache could not answer).
    pub oauth_proofs: IntCounterVec,
}

/// The outcomes counted in `oauth_proofs_total`.
pub const PROOF_OUTCOMES: [&str; 5] = [
    "accepted",
    "replayed",
    "use_nonce",
    "invalid",
    "unavailable",
];

/// The outcomes of a signed request, counted in `signed_requests_total`.
pub const SIGNED_OUTCOMES: [&str; 5] =
    ["accepted", "expired", "replayed", "invalid", "unavailable"];

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("tradeauth".into()), None).expect("valid prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route, method and status",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let logins = IntCounterVec::new(
            Opts::new("logins_total", "Login attempts by outcome"),
            &["outcome"],
        )
        .expect("valid metric");
        let lockouts = IntCounter::new(
            "lockouts_total",
            "Accounts locked after too many failed logins",
        )
        .expect("valid metric");
        let refresh_reuse = IntCounter::new(
            "refresh_reuse_detected_total",
            "Rotated refresh tokens presented again (sessions revoked)",
        )
        .expect("valid metric");
        let active_sessions =
            IntGauge::new("active_sessions", "Live sessions").expect("valid metric");
        let revocation_lag = Histogram::with_opts(
            HistogramOpts::new(
                "revocation_propagation_lag_seconds",
                "Time from a revocation being recorded elsewhere to this instance applying it",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )
        .expect("valid metric");
        let fanout_dropped = IntCounterVec::new(
            Opts::new(
                "fanout_dropped_total",
                "Messages to other instances dropped because the Redis publish queue was full",
            ),
            &["channel"],
        )
        .expect("valid metric");
        let hash_queue = IntGauge::new(
            "password_hash_queue_depth",
            "Password hashes waiting for the hash pool",
        )
        .expect("valid metric");
        let websockets =
            IntGauge::new("websocket_connections", "Open WebSockets").expect("valid metric");
        let csrf_refusals = IntCounterVec::new(
            Opts::new(
                "csrf_refusals_total",
                "Cookie-authenticated requests refused by the CSRF rules, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let signed_requests = IntCounterVec::new(
            Opts::new(
                "signed_requests_total",
                "Signed requests (RFC 9421) by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let passkeys = IntCounterVec::new(
            Opts::new(
                "passkey_ceremonies_total",
                "Finished passkey ceremonies by ceremony and outcome",
            ),
            &["ceremony", "outcome"],
        )
        .expect("valid metric");
        let oauth_proofs = IntCounterVec::new(
            Opts::new(
                "oauth_proofs_total",
                "DPoP proofs and private_key_jwt client assertions by kind and outcome",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(logins.clone()),
            Box::new(lockouts.clone()),
            Box::new(refresh_reuse.clone()),
            Box::new(active_sessions.clone()),
            Box::new(revocation_lag.clone()),
            Box::new(fanout_dropped.clone()),
            Box::new(hash_queue.clone()),
            Box::new(websockets.clone()),
            Box::new(csrf_refusals.clone()),
            Box::new(signed_requests.clone()),
            Box::new(passkeys.clone()),
            Box::new(oauth_proofs.clone()),
        ] {
            registry.register(c).expect("metrics register once");
        }
        // Series of the common outcomes exist from the start (at 0), so a scrape of a
        // fresh instance already shows them.
        for outcome in LOGIN_OUTCOMES {
            logins.with_label_values(&[outcome]);
        }
        for channel in ["revocations", "events"] {
            fanout_dropped.with_label_values(&[channel]);
        }
        for reason in ["origin", "token"] {
            csrf_refusals.with_label_values(&[reason]);
        }
        for outcome in SIGNED_OUTCOMES {
            signed_requests.with_label_values(&[outcome]);
        }
        for ceremony in ["register", "login"] {
            passkeys.with_label_values(&[ceremony, "succeeded"]);
        }
        for kind in ["dpop", "client_assertion"] {
            for outcome in PROOF_OUTCOMES {
                oauth_proofs.with_label_values(&[kind, outcome]);
            }
        }
        Self {
            registry,
            requests,
            latency,
            logins,
            lockouts,
            refresh_reuse,
            active_sessions,
            revocation_lag,
            fanout_dropped,
            hash_queue,
            websockets,
            csrf_refusals,
            signed_requests,
            passkeys,
            oauth_proofs,
        }
    }

    pub fn login(&self, outcome: &str) {
        self.logins.with_label_values(&[outcome]).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
