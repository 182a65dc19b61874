//! `postern`: the command-line client of `postern-core`.
//!
//! Exit status: 0 when the session ended normally (for `run`, the remote command's own exit
//! code), 1 when it could not be started or failed, 2 for bad usage, 255 when a command's exit
//! code never arrived.
#![forbid(unsafe_code)]

mod shell;
mod ssh;
mod tunnel;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use postern_core::session::SsmAccess;

/// Postern: Session Manager shells, commands and tunnels into AWS machines, without the
/// session-manager-plugin.
#[derive(Debug, Parser)]
#[command(name = "postern", version, about)]
struct Cli {
    /// The AWS profile to use (otherwise the usual AWS sources: environment, default profile).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// The region (otherwise the profile's or AWS_REGION).
    #[arg(long, global = true)]
    region: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open an interactive shell on an instance (works with pipes too).
    Shell {
        /// The instance id (i-…).
        instance: String,
        /// Run this command in a terminal instead of a login shell (AWS-StartInteractiveCommand).
        #[arg(long)]
        command: Option<String>,
    },
    /// Run a command on an instance with separate stdout and stderr; exit with its exit code.
    Run {
        /// The instance id (i-…).
        instance: String,
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
    /// Forward a local port on 127.0.0.1 to a port on the instance, or through it to --host.
    ///
    /// `postern tunnel i-0123… 5432:5432 --host db.internal` forwards 127.0.0.1:5432 to
    /// db.internal:5432 as seen from the instance; a local port of 0 picks a free one.
    Tunnel {
        /// The instance id (i-…).
        instance: String,
        /// `<local port>:<remote port>`.
        ports: String,
        /// Reach this host through the instance instead of the instance itself.
        #[arg(long)]
        host: Option<String>,
        /// Carry connections over this many sessions (each agent paces its session; more
        /// sessions, more throughput).
        #[arg(long, default_value_t = 1)]
        pool: usize,
    },
    /// An OpenSSH ProxyCommand: `ssh -o ProxyCommand='postern ssh-proxy %h %p' i-0123…`.
    SshProxy {
        /// The instance id, or the Name tag of a running instance.
        instance: String,
        /// The SSH port on the instance.
        #[arg(default_value_t = 22)]
        port: u16,
    },
    /// Print an ~/.ssh/config block that sends `ssh i-…` and `ssh <Name tag>` through Postern.
    SshConfig,
}

/// The AWS clients a command needs.
struct Clients {
    ssm: SsmAccess,
    ec2: aws_sdk_ec2::Client,
}

async fn clients(profile: Option<&str>, region: Option<&str>) -> anyhow::Result<Clients> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let config = loader.load().await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .context("no AWS region: pass --region, set AWS_REGION, or give the profile a region")?;
    Ok(Clients {
        ssm: SsmAccess {
            client: aws_sdk_ssm::Client::new(&config),
            credentials: config.credentials_provider(),
            region,
        },
        ec2: aws_sdk_ec2::Client::new(&config),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Postern's own warnings only, unless POSTERN_LOG asks for more (e.g. POSTERN_LOG=debug).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("POSTERN_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("off,postern_core=warn,postern=warn")
            }),
        )
        .init();
    let Some(command) = cli.command else {
        use clap::CommandFactory as _;
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("postern: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let clients = clients(cli.profile.as_deref(), cli.region.as_deref()).await?;
        let access = &clients.ssm;
        match command {
            Command::Shell { instance, command } => {
                shell::shell(access, &instance, command.as_deref()).await
            }
            Command::Run { instance, command } => shell::run(access, &instance, &command).await,
            Command::Tunnel {
                instance,
                ports,
                host,
                pool,
            } => tunnel::tunnel(access, &instance, &ports, host.as_deref(), pool).await,
            Command::SshProxy { instance, port } => {
                ssh::proxy(&clients.ec2, access, &instance, port).await
            }
            Command::SshConfig => {
                ssh::config(&clients.ec2, cli.profile.as_deref(), cli.region.as_deref()).await
            }
        }
    });
    // Background reads of stdin must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("postern: {error:#}");
            ExitCode::FAILURE
        }
    }
}
