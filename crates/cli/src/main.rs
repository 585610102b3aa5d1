//! The `custos` binary: a thin clap front over the gateway crates. Config loading and wiring live here;
//! behaviour lives in the library crates.

mod config;
mod login;
mod serve;

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
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custos: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
