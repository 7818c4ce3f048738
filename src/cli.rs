//! The command line: `tradeauth [--config FILE] <command>`.

use crate::app::{self, Application};
use crate::config::Config;
use crate::domain::{Tier, UserId};
use crate::service::admin::AdminPatch;
use crate::service::auth::NewAccount;
use crate::service::{PageRequest, Service, UserQuery};
use crate::telemetry;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "tradeauth",
    version,
    about = "The authentication service of a trading platform"
)]
pub struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "TRADEAUTH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage OAuth / OpenID Connect clients.
    #[command(subcommand)]
    Client(ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints it as JSON, with its secret (shown this once).
    Create {
        #[arg(long)]
        name: String,
        /// A redirect URI (repeat for more).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (no secret; browser and native apps).
        #[arg(long)]
        public: bool,
        /// A client of the platform itself: no consent page.
        #[arg(long)]
        first_party: bool,
        /// A scope it may be granted (repeat for more; default: all).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The highest tier its tokens carry (default 2).
        #[arg(long)]
        max_tier: Option<i64>,
        /// A grant type (repeat; default authorization_code and refresh_token).
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// A post-logout redirect URI (repeat for more).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
        #[arg(long)]
        token_endpoint_auth_method: Option<String>,
        /// Where a private_key_jwt client publishes its JWK set (https).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Authorization requests only through /oauth2/par (RFC 9126).
        #[arg(long)]
        require_par: bool,
        /// Every token request must carry a DPoP proof (RFC 9449).
        #[arg(long)]
        dpop_bound: bool,
    },
    /// List the clients as JSON lines.
    List,
    /// Delete a client and revoke every token it holds.
    Delete {
        /// Clients made before ids always began with a letter or digit may begin with `-`.
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        username: Option<String>,
        /// Permission tier, 1–4 (default: the configured default tier).
        #[arg(long)]
        tier: Option<i64>,
        /// Mark the email as verified.
        #[arg(long)]
        verified: bool,
    },
    /// List users.
    List,
    /// Set a user's permission tier (WHO: id, email or username).
    SetTier { who: String, tier: i64 },
    /// Disable a user and revoke their sessions.
    Disable { who: String },
    /// Lift a user's lockout.
    Unlock { who: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Promote the standby signing key and create a new standby.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets masked.
    Check,
}

/// Runs the command line; the process exit code is the result.
pub fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    let (config, sources) = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tradeauth: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if let crate::cli::Command::Config(ConfigCommand::Check) = cli.command {
        print!("{}", sources.describe(&config));
        println!("# configuration is valid");
        return std::process::ExitCode::SUCCESS;
    }
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tradeauth: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tradeauth: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            for w in config.warnings() {
                tracing::warn!("{w}");
            }
            if config.mailer_is_log() {
                tracing::warn!(
                    "the log mailer writes mails, links included, to the log: development only"
                );
            }
            let app = Application::build(config).await?;
            app.run_until_stopped(app::shutdown_signal()).await
        }
        Command::Migrate => {
            app::open_store(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let service = app::build_service(config, true).await?;
            let kid = service.rotate_signing_keys(None, None).await?;
            println!("{kid}");
            Ok(())
        }
        Command::User(cmd) => {
            let service = app::build_service(config, false).await?;
            user_command(&service, cmd).await
        }
        Command::Config(ConfigCommand::Check) => Ok(()),
        Command::Client(cmd) => {
            let service = app::build_service(config, false).await?;
            client_command(&service, cmd).await
        }
    }
}

async fn client_command(service: &Arc<Service>, cmd: ClientCommand) -> anyhow::Result<()> {
    use crate::http::oauth::clients::ClientBody;
    let err = |e: crate::service::Error| anyhow::anyhow!("{e}");
    let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
    match cmd {
        ClientCommand::Create {
            name,
            redirect_uris,
            public,
            first_party,
            scopes,
            max_tier,
            grant_types,
            post_logout_redirect_uris,
            token_endpoint_auth_method,
            jwks_uri,
            require_par,
            dpop_bound,
        } => {
            let input = crate::service::oauth::ClientInput {
                name: Some(name),
                redirect_uris: Some(redirect_uris),
                post_logout_redirect_uris: some(post_logout_redirect_uris),
                client_type: Some(if public { "public" } else { "confidential" }.into()),
                grant_types: some(grant_types),
                scopes: some(scopes),
                max_tier,
                first_party: Some(first_party),
                id_token_signed_response_alg: None,
                token_endpoint_auth_method,
                jwks_uri,
                require_pushed_authorization_requests: Some(require_par),
                dpop_bound_access_tokens: Some(dpop_bound),
                ..Default::default()
            };
            let (client, secret) = service
                .create_client(None, input, None)
                .await
                .map_err(err)?;
            let body = ClientBody::from(&client).with_secret(secret.map(|s| s.0));
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
        ClientCommand::List => {
            let mut cursor: Option<String> = None;
            loop {
                let page = service
                    .list_clients(cursor.as_deref(), Some(200))
                    .await
                    .map_err(err)?;
                for c in &page.items {
                    println!("{}", serde_json::to_string(&ClientBody::from(c))?);
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        ClientCommand::Delete { client_id } => {
            service
                .delete_client(None, &client_id, None)
                .await
                .map_err(err)?;
            println!("{client_id}\tdeleted");
        }
    }
    Ok(())
}

async fn resolve(service: &Service, who: &str) -> anyhow::Result<UserId> {
    service
        .find_user(who)
        .await?
        .map(|u| u.id)
        .ok_or_else(|| anyhow::anyhow!("no user {who:?} (give an id, email or username)"))
}

async fn user_command(service: &Arc<Service>, cmd: UserCommand) -> anyhow::Result<()> {
    let err = |e: crate::service::Error| anyhow::anyhow!("{e}");
    match cmd {
        UserCommand::Create {
            email,
            password,
            username,
            tier,
            verified,
        } => {
            let tier = tier
                .map(Tier::new)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--tier: {}", e.message))?;
            let account = NewAccount {
                email,
                password: SecretString::from(password),
                username,
                full_name: None,
            };
            let user = service
                .admin_create_user(None, account, tier, verified, None)
                .await
                .map_err(|e| match &e {
                    crate::service::Error::WeakPassword { details } => anyhow::anyhow!(
                        "{}",
                        details.values().cloned().collect::<Vec<_>>().join("; ")
                    ),
                    _ => err(e),
                })?;
            println!(
                "{}\t{}\t{}\ttier {}",
                user.id, user.email, user.username, user.tier
            );
        }
        UserCommand::List => {
            let mut page = PageRequest::parse(None, Some(200)).map_err(err)?;
            loop {
                let paged = service
                    .admin_list_users(UserQuery::default(), page)
                    .await
                    .map_err(err)?;
                for a in &paged.items {
                    let u = &a.user;
                    println!(
                        "{}\t{}\t{}\ttier {}\t{}{}",
                        u.id,
                        u.email,
                        u.username,
                        u.tier,
                        if u.is_active { "active" } else { "disabled" },
                        if a.lockout.locked_until.is_some() {
                            "\tlocked"
                        } else {
                            ""
                        }
                    );
                }
                match paged.next_cursor {
                    Some(c) => page = PageRequest::parse(Some(&c), Some(200)).map_err(err)?,
                    None => break,
                }
            }
        }
        UserCommand::SetTier { who, tier } => {
            let id = resolve(service, &who).await?;
            let tier = Tier::new(tier).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let patch = AdminPatch {
                permission_tier: Some(tier),
                ..Default::default()
            };
            let u = service
                .admin_patch_user(None, id, patch, None)
                .await
                .map_err(err)?;
            println!("{}\ttier {}", u.user.id, u.user.tier);
        }
        UserCommand::Disable { who } => {
            let id = resolve(service, &who).await?;
            let patch = AdminPatch {
                is_active: Some(false),
                ..Default::default()
            };
            let u = service
                .admin_patch_user(None, id, patch, None)
                .await
                .map_err(err)?;
            println!("{}\tdisabled", u.user.id);
        }
        UserCommand::Unlock { who } => {
            let id = resolve(service, &who).await?;
            service
                .admin_unlock_user(None, id, None)
                .await
                .map_err(err)?;
            println!("{id}\tunlocked");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn a_client_id_that_begins_with_a_dash_is_an_id_not_a_flag() {
        let cli = Cli::try_parse_from(["tradeauth", "client", "delete", "-FhctfF00CLgz6t4lCcRPQ"])
            .expect("parsed");
        match cli.command {
            Command::Client(ClientCommand::Delete { client_id }) => {
                assert_eq!(client_id, "-FhctfF00CLgz6t4lCcRPQ")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn new_client_ids_begin_with_a_letter_or_digit() {
        for _ in 0..2000 {
            let id = crate::service::oauth::new_client_id();
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(id.len(), 22);
        }
    }
}
