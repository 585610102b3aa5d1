//! The `custos` binary: a thin clap front over the gateway crates. Config loading and wiring live here;
//! behaviour lives in the library crates.

mod audit_cmd;
mod config;
mod login;
mod policy_cmd;
mod recordings;
mod replay;
mod reviews;
mod serve;
mod sessions;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Custos: an auditing, policy-enforcing gateway in front of the Kubernetes API server.
#[derive(Parser)]
#[command(name = "custos", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded defaults when no config is given).
    Serve {
        /// YAML config file; flags and CUSTOS_* variables override it.
        #[arg(long, short = 'c', env = "CUSTOS_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        overrides: Box<config::Overrides>,
    },
    /// Add a kubeconfig context for the gateway whose credential is `custos token`, and log in once.
    Login(login::LoginArgs),
    /// Print an ExecCredential with a fresh ID token (kubectl runs this as an exec plugin).
    Token(login::OidcArgs),
    /// Print an ExecCredential with the agent session's token (the exec plugin of `login --intent`).
    SessionToken(login::SessionTokenArgs),
    /// Check, explain and test Cedar policies.
    Policy {
        #[command(subcommand)]
        cmd: policy_cmd::PolicyCommand,
    },
    /// Read and verify the audit log.
    Audit {
        #[command(subcommand)]
        cmd: audit_cmd::AuditCommand,
    },
    /// Export and verify evidence bundles.
    Evidence {
        #[command(subcommand)]
        cmd: audit_cmd::EvidenceCommand,
    },
    /// List, show, approve and deny reviews; list and revoke grants (through the gateway's API).
    Reviews {
        #[command(subcommand)]
        cmd: reviews::ReviewsCommand,
    },
    /// Re-issue a session's API calls against a sandbox cluster and report what differs.
    Replay(Box<replay::ReplayArgs>),
    /// List sessions, show their timelines, play their recordings.
    Sessions {
        #[command(subcommand)]
        cmd: sessions::SessionsCommand,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The server logs at info; the other commands print their results and only warnings besides.
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve { config, overrides } => config::Config::load(config.as_deref(), &overrides)
            .map_err(anyhow::Error::from)
            .and_then(|cfg| {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?
                    .block_on(serve::run(cfg))
            }),
        Command::Login(args) => runtime().and_then(|rt| rt.block_on(login::login(args))),
        Command::Token(args) => runtime().and_then(|rt| rt.block_on(login::token(args))),
        Command::SessionToken(args) => login::session_token(args),
        Command::Policy { cmd } => return exit(policy_cmd::run(cmd)),
        Command::Audit { cmd } => {
            return exit(runtime().and_then(|rt| rt.block_on(audit_cmd::run_audit(cmd))))
        }
        Command::Evidence { cmd } => {
            return exit(runtime().and_then(|rt| rt.block_on(audit_cmd::run_evidence(cmd))))
        }
        Command::Reviews { cmd } => {
            return exit(runtime().and_then(|rt| rt.block_on(reviews::run(cmd))))
        }
        Command::Replay(args) => {
            return exit(runtime().and_then(|rt| rt.block_on(replay::run(*args))))
        }
        Command::Sessions { cmd } => {
            return exit(runtime().and_then(|rt| rt.block_on(sessions::run(cmd))))
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custos: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn exit(result: anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("custos: {e:#}");
        std::process::ExitCode::FAILURE
    })
}
