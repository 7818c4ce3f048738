use super::build::Reader;
use super::check::mask;
use super::keys::{Secrecy, KEYS};
use super::*;
use secrecy::ExposeSecret;

fn build(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    pairs
        .iter()
        .fold(Sources::default(), |s, (k, v)| s.set(k, *v))
        .build(false)
}

fn error(pairs: &[(&str, &str)]) -> String {
    build(pairs).unwrap_err().to_string()
}

#[test]
fn masking_hides_credentials_and_keeps_the_rest_readable() {
    let url = Secrecy::Url;
    for (secrecy, raw, shown) in [
        (
            url,
            "sqlite:///var/lib/tradeauth/t.db",
            "sqlite:///var/lib/tradeauth/t.db",
        ),
        (url, "sqlite://tradeauth.db", "sqlite://tradeauth.db"),
        (
            url,
            "postgres://app:s3cret@db.internal:5432/auth?sslmode=require&password=x",
            "postgres://app:****@db.internal:5432/auth?sslmode=require&password=****",
        ),
        (
            url,
            "redis://:hunter2@cache:6379/0",
            "redis://:****@cache:6379/0",
        ),
        (url, "redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        (
            url,
            "smtp://mailer:pw@smtp.example.com:587?tls=required",
            "smtp://mailer:****@smtp.example.com:587?tls=required",
        ),
        (url, "file:/tmp/mails", "file:/tmp/mails"),
        (Secrecy::Hidden, "abc", "********"),
    ] {
        assert_eq!(mask(secrecy, raw), shown, "{raw}");
    }
}

#[test]
fn defaults_follow_the_dialect_and_env_wins() {
    let c = build(&[]).unwrap();
    assert_eq!(c.access_ttl, TimeDelta::seconds(900));
    assert!(c.refresh_rotation);
    let c = build(&[("dialect", "stratify")]).unwrap();
    assert!(!c.refresh_rotation);
    assert!(c.require_email_verification);
    let c = build(&[("dialect", "stratify"), ("refresh_rotation", "true")]).unwrap();
    assert!(
        c.refresh_rotation,
        "explicit configuration wins over the dialect"
    );
    let c = build(&[("dialect", "os-engine")]).unwrap();
    assert_eq!(c.refresh_ttl, TimeDelta::days(1));
}

#[test]
fn bad_values_name_the_key() {
    let e = Sources::default()
        .with_env([("TRADEAUTH_ACCESS_TTL".to_string(), "soon".to_string())])
        .build(false)
        .unwrap_err();
    assert!(e.to_string().contains("TRADEAUTH_ACCESS_TTL"), "{e}");
    assert!(
        e.to_string().contains("\"soon\" is not allowed; expected"),
        "{e}"
    );
    let e = error(&[("database_url", "mysql://x")]);
    assert!(e.contains("unknown scheme"), "{e}");
    let e = error(&[("jwt_alg", "HS256")]);
    assert!(e.contains("TRADEAUTH_JWT_SECRET"), "{e}");
    let e = error(&[("lockout_duration", "0s")]);
    assert!(e.contains("must be longer than zero"), "{e}");
    let e = error(&[("audit_retention", "200000d")]);
    assert!(e.contains("TRADEAUTH_AUDIT_RETENTION"), "{e}");
    let e = error(&[("admin_email", "root@example.com")]);
    assert!(
        e.contains("ADMIN_PASSWORD") && e.contains("set together"),
        "{e}"
    );
}

#[test]
fn an_empty_variable_does_not_wipe_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "access_ttl = \"5m\"\n").unwrap();
    let c = Sources::default()
        .with_file(&file)
        .unwrap()
        .with_env([("TRADEAUTH_ACCESS_TTL".to_string(), "".to_string())])
        .build(false)
        .unwrap();
    assert_eq!(c.access_ttl, TimeDelta::minutes(5));
}

#[test]
fn durations_print_as_written() {
    assert_eq!(format_duration(TimeDelta::days(90)), "90d");
    assert_eq!(format_duration(TimeDelta::seconds(900)), "15m");
    assert_eq!(format_duration(TimeDelta::seconds(7200)), "2h");
    assert_eq!(format_duration(TimeDelta::seconds(10)), "10s");
    assert_eq!(format_duration(TimeDelta::zero()), "0s");
}

#[test]
fn redis_tls_is_accepted_but_never_unverified() {
    let c = Sources::default()
        .set("redis_url", "rediss://h:6380")
        .build(false)
        .unwrap();
    assert!(c.redis_url.is_some());
    let e = error(&[("redis_url", "rediss://h:6380/#insecure")]);
    assert!(e.contains("verifies the certificate"), "{e}");
    let e = error(&[("redis_url", "http://h:6380")]);
    assert!(e.contains("rediss://"), "{e}");
}

#[test]
fn secrets_are_masked() {
    let s = Sources::default()
        .set("admin_email", "root@example.com")
        .set("admin_password", "hunter2hunter2")
        .set("database_url", "postgres://u:pw@db/x")
        .set("secret_key", "c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzISE=");
    let c = s.build(false).unwrap();
    let text = s.describe(&c);
    assert!(!text.contains("hunter2"));
    assert!(!text.contains(":pw@"));
    assert!(text.contains("secret_key = \"********\""), "{text}");
    assert!(!text.contains("c2VjcmV0"), "{text}");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("secret-key"),
        "{debug}"
    );
}

/// The rows, the list `config check` prints, the loader and the example file agree.
#[test]
fn every_key_is_read_listed_and_documented() {
    let sources = Sources::default();
    let mut reader = Reader::new(&sources);
    reader.config(false).unwrap();
    let mut read = reader.read.clone();
    let mut listed: Vec<&str> = KEYS.iter().map(|k| k.name()).collect();
    read.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        read, listed,
        "every key read is listed once, and the reverse"
    );
    listed.dedup();
    assert_eq!(listed.len(), KEYS.len(), "no key is listed twice");

    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/tradeauth.example.toml");
    let example = std::fs::read_to_string(path).unwrap();
    let mut at = 0;
    for key in KEYS.iter().map(|k| k.name()) {
        let found = [format!("\n{key} = "), format!("\n# {key} = ")]
            .iter()
            .filter_map(|line| example[at..].find(line.as_str()))
            .min();
        let Some(offset) = found else {
            panic!("{key} is not in the example file, or not in `config check` order");
        };
        at += offset + 1;
    }
    // As shipped, the example changes nothing.
    let c = Sources::default()
        .with_file(std::path::Path::new(path))
        .unwrap()
        .build(false)
        .unwrap();
    let d = build(&[]).unwrap();
    assert_eq!(format!("{c:?}"), format!("{d:?}"));
}

/// `config check` prints what it printed before the key table, plus the new keys.
#[test]
fn config_check_output_is_unchanged_for_the_old_keys() {
    let s = Sources::default();
    let text = s.describe(&s.build(false).unwrap());
    let expected = "listen = \"127.0.0.1:8080\"\ndatabase_url = \"sqlite://tradeauth.db\"\n\
        redis_url = \"(unset)\"\nredis_prefix = \"tradeauth:\"\ndialect = \"native\"\n\
        public_url = \"http://localhost:8080\"\njwt_alg = \"EdDSA\"\njwt_secret = \"(unset)\"\n\
        issuer = \"tradeauth\"\naudience = \"tradeauth-api\"\naccess_ttl = \"15m\"\n\
        refresh_ttl = \"7d\"\nremember_me_ttl = \"30d\"\nsession_max_age = \"90d\"\n\
        refresh_rotation = \"true\"\nrefresh_reuse_grace = \"10s\"\nlockout_threshold = \"5\"\n\
        lockout_duration = \"15m\"\nlockout_window = \"15m\"\nlockout_scope = \"account\"\n\
        rate_limit = \"on\"\nregistration = \"open\"\nrequire_email_verification = \"false\"\n\
        mailer = \"log\"\nmail_from = \"tradeauth <no-reply@localhost>\"\n\
        verification_ttl = \"1d\"\nreset_ttl = \"1h\"\ntrusted_proxies = \"\"\n\
        log_format = \"json\"\nadmin_email = \"(unset)\"\nadmin_password = \"(unset)\"\n\
        default_tier = \"2\"\nargon2_memory_kib = \"19456\"\nargon2_iterations = \"2\"\n\
        argon2_parallelism = \"1\"\n";
    assert!(text.starts_with(expected), "{text}");
    let rest = "max_body_bytes = \"65536\"\naudit_retention = \"90d\"\nws_max_per_user = \"16\"\n\
        rate_limit_login = \"10/min\"\nrate_limit_login_ip = \"30/min\"\n\
        rate_limit_register = \"10/hour\"\nrate_limit_refresh = \"60/min\"\n\
        rate_limit_mail = \"5/hour\"\nrate_limit_mail_ip = \"20/hour\"\n\
        rate_limit_write = \"60/min\"\nrate_limit_write_ip = \"300/min\"\n\
        allowed_origins = \"http://localhost:8080\"\ncookie_secure = \"true\"\n\
        webauthn_rp_id = \"localhost\"\nwebauthn_rp_name = \"tradeauth\"\n\
        oidc_issuer = \"http://localhost:8080\"\nsecret_key = \"(unset)\"\n\
        signature_max_age = \"30s\"\nsignature_future_skew = \"5s\"\n";
    assert!(text.ends_with(rest), "{text}");
}

/// RFC 8725 §3.5: the HS256 secret is refused when short, and when set for another
/// algorithm, naming the key and never echoing the secret.
#[test]
fn the_jwt_secret_belongs_to_hs256_and_is_long_enough() {
    let short = "too-short-secret-31-bytes-long!";
    assert_eq!(short.len(), 31);
    let e = error(&[("jwt_alg", "HS256"), ("jwt_secret", short)]);
    assert!(e.contains("TRADEAUTH_JWT_SECRET"), "{e}");
    assert!(e.contains("32") && e.contains("RFC 8725 §3.5"), "{e}");
    assert!(!e.contains(short), "{e}");
    let long = format!("{short}!");
    let c = build(&[("jwt_alg", "HS256"), ("jwt_secret", &long)]).unwrap();
    assert_eq!(c.jwt_secret.unwrap().expose_secret(), long);
    for alg in ["EdDSA", "ES256", "RS256"] {
        let e = error(&[("jwt_alg", alg), ("jwt_secret", &long)]);
        assert!(e.contains("TRADEAUTH_JWT_SECRET") && e.contains(alg), "{e}");
        assert!(!e.contains(&long), "{e}");
    }
    // The default algorithm too.
    let e = error(&[("jwt_secret", &long)]);
    assert!(e.contains("TRADEAUTH_JWT_SECRET"), "{e}");
    assert!(build(&[]).unwrap().warnings().is_empty());
}

#[test]
fn browser_defaults_follow_the_public_url() {
    let c = build(&[("public_url", "https://Auth.Example.com:443/base/")]).unwrap();
    assert_eq!(c.public_url, "https://Auth.Example.com:443/base");
    assert_eq!(
        c.oidc_issuer, c.public_url,
        "the issuer is PUBLIC_URL exactly"
    );
    let origins: Vec<&str> = c.allowed_origins.iter().map(Origin::as_str).collect();
    assert_eq!(origins, ["https://auth.example.com"]);
    assert_eq!(c.webauthn_rp_id, "auth.example.com");
    assert_eq!(c.webauthn_rp_name, "tradeauth");
    assert!(c.cookie_secure);
    assert!(c.secret_key.is_none());
    assert_eq!(c.signature_max_age, TimeDelta::seconds(30));
    assert_eq!(c.signature_future_skew, TimeDelta::seconds(5));
    let e = error(&[("public_url", "http://")]);
    assert!(e.contains("TRADEAUTH_PUBLIC_URL"), "{e}");
}

#[test]
fn origins_are_exact_scheme_host_port() {
    for (raw, origin, host) in [
        (
            "https://app.example.com",
            "https://app.example.com",
            "app.example.com",
        ),
        (
            "HTTPS://App.Example.COM:443",
            "https://app.example.com",
            "app.example.com",
        ),
        (
            "http://localhost:3000",
            "http://localhost:3000",
            "localhost",
        ),
        (
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080",
            "127.0.0.1",
        ),
        ("http://[::1]:8080", "http://[::1]:8080", "[::1]"),
    ] {
        let o = Origin::parse(raw).unwrap();
        assert_eq!((o.as_str(), o.host()), (origin, host), "{raw}");
    }
    for raw in [
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "ftp://app.example.com",
        "app.example.com",
        "https://",
        "null",
        "*",
    ] {
        assert!(Origin::parse(raw).is_err(), "{raw}");
    }
    let c = build(&[(
        "allowed_origins",
        "https://a.example.com, https://b.example.com:8443,https://a.example.com",
    )])
    .unwrap_err();
    // The default RP ID (localhost) covers neither: refused, naming the RP ID key.
    assert!(c.to_string().contains("TRADEAUTH_WEBAUTHN_RP_ID"), "{c}");
    let c = build(&[
        (
            "allowed_origins",
            "https://a.example.com, https://b.example.com:8443,https://a.example.com",
        ),
        ("webauthn_rp_id", "Example.com"),
    ])
    .unwrap();
    let origins: Vec<String> = c.allowed_origins.iter().map(|o| o.to_string()).collect();
    assert_eq!(
        origins,
        ["https://a.example.com", "https://b.example.com:8443"]
    );
    assert_eq!(c.webauthn_rp_id, "example.com");
    let e = error(&[("allowed_origins", "https://a.example.com/")]);
    assert!(
        e.contains("TRADEAUTH_ALLOWED_ORIGINS") && e.contains("no path"),
        "{e}"
    );
    let e = error(&[("allowed_origins", " , ")]);
    assert!(e.contains("TRADEAUTH_ALLOWED_ORIGINS"), "{e}");
}

#[test]
fn the_rp_id_is_the_host_or_a_registrable_suffix_of_every_origin() {
    for (rp_id, host, ok) in [
        ("example.com", "example.com", true),
        ("example.com", "app.example.com", true),
        ("example.com", "a.b.example.com", true),
        ("ample.com", "example.com", false),
        ("example.com", "evil-example.com", false),
        ("app.example.com", "example.com", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("0.0.1", "127.0.0.1", false),
        ("localhost", "localhost", true),
    ] {
        assert_eq!(rp_id_covers(rp_id, host), ok, "{rp_id} for {host}");
    }
    let pairs = [
        ("public_url", "https://auth.example.com"),
        (
            "allowed_origins",
            "https://app.example.com,https://auth.example.com",
        ),
    ];
    let e = error(&pairs);
    assert!(e.contains("TRADEAUTH_WEBAUTHN_RP_ID"), "{e}");
    assert!(e.contains("https://app.example.com"), "{e}");
    let c = build(&[pairs[0], pairs[1], ("webauthn_rp_id", "example.com")]).unwrap();
    assert_eq!(c.webauthn_rp_id, "example.com");
    for bad in [
        "https://example.com",
        "example.com:443",
        "example.com/x",
        "[::1]",
    ] {
        let e = error(&[("webauthn_rp_id", bad)]);
        assert!(e.contains("TRADEAUTH_WEBAUTHN_RP_ID"), "{bad}: {e}");
    }
}

#[test]
fn the_secret_key_is_32_bytes_of_base64_and_never_shown() {
    let bytes: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(250))
        .collect();
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    for encoded in [STANDARD.encode(&bytes), URL_SAFE_NO_PAD.encode(&bytes)] {
        let c = build(&[("secret_key", &encoded)]).unwrap();
        let key = c.secret_key.unwrap();
        assert_eq!(
            key.expose_secret().as_slice(),
            bytes.as_slice(),
            "{encoded}"
        );
        assert_eq!(format!("{key:?}"), "SecretKey([REDACTED])");
    }
    let short = STANDARD.encode(&bytes[..16]);
    let e = error(&[("secret_key", &short)]);
    assert!(
        e.contains("TRADEAUTH_SECRET_KEY") && e.contains("16 bytes"),
        "{e}"
    );
    assert!(!e.contains(&short), "{e}");
    let e = error(&[("secret_key", "not base64 at all!")]);
    assert!(
        e.contains("TRADEAUTH_SECRET_KEY") && !e.contains("at all"),
        "{e}"
    );
}

#[test]
fn the_other_new_keys_parse_and_name_themselves() {
    let c = build(&[
        ("cookie_secure", "false"),
        ("webauthn_rp_name", "Acme Trading"),
        ("oidc_issuer", "https://id.example.com/tenant"),
        ("signature_max_age", "1m"),
        ("signature_future_skew", "0s"),
    ])
    .unwrap();
    assert!(!c.cookie_secure);
    assert_eq!(c.warnings().len(), 1, "plain-HTTP cookies are warned about");
    assert_eq!(c.webauthn_rp_name, "Acme Trading");
    assert_eq!(c.oidc_issuer, "https://id.example.com/tenant");
    assert_eq!(c.signature_max_age, TimeDelta::minutes(1));
    assert_eq!(c.signature_future_skew, TimeDelta::zero());
    for (key, bad) in [
        ("cookie_secure", "maybe"),
        ("oidc_issuer", "https://id.example.com/"),
        ("oidc_issuer", "https://id.example.com?x=1"),
        ("oidc_issuer", "id.example.com"),
        ("signature_max_age", "0s"),
        ("signature_future_skew", "soon"),
    ] {
        let e = error(&[(key, bad)]);
        assert!(e.contains(&env_name(key)), "{key}={bad}: {e}");
    }
}

#[test]
fn smtp_urls_are_parsed_with_the_config() {
    let c = build(&[(
        "mailer",
        "smtp://us%40er:p%3Ass@mail.example:2525?tls=required",
    )])
    .unwrap();
    let MailerSpec::Smtp(smtp) = &c.mailer else {
        panic!("{:?}", c.mailer);
    };
    assert_eq!(
        (smtp.host.as_str(), smtp.port),
        ("mail.example", Some(2525))
    );
    assert!(smtp.starttls && !smtp.implicit_tls);
    let creds = smtp.credentials.as_ref().unwrap();
    assert_eq!(creds.user, "us@er");
    assert_eq!(creds.password.expose_secret(), "p:ss");
    let c = build(&[("mailer", "smtps://mail.example")]).unwrap();
    assert!(matches!(&c.mailer, MailerSpec::Smtp(s) if s.implicit_tls && s.credentials.is_none()));
    let e = error(&[("mailer", "smtp://user:s3cret@/")]);
    assert!(
        e.contains("TRADEAUTH_MAILER") && !e.contains("s3cret"),
        "{e}"
    );
    let e = error(&[("mail_from", "not a mailbox")]);
    assert!(e.contains("TRADEAUTH_MAIL_FROM"), "{e}");
}
