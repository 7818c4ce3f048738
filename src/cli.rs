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
    }
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
