//! `postern-sandbox serve`: a local AWS on 127.0.0.1.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use postern_sandbox::{Sandbox, Scenario};

/// A local AWS (STS, EC2, SSM, CloudTrail) on 127.0.0.1, for trying and testing Postern without
/// an AWS account.
#[derive(Debug, Parser)]
#[command(name = "postern-sandbox", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve until killed. Prints shell `export` lines for the demo identity, then `ready`.
    ///
    /// Use it as: eval "$(postern-sandbox serve | sed '/^ready$/q')" from a script, or copy the
    /// lines into a shell. Logs go to stderr (RUST_LOG=debug for more).
    Serve {
        /// A scenario file (TOML); the built-in default world when absent.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// The port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Print a scenario: the default world with a generated fleet of any size.
    ///
    /// For scale tests: postern-sandbox generate --instances 10000 > big.toml, then
    /// postern-sandbox serve --scenario big.toml.
    Generate {
        /// How many instances.
        #[arg(long, default_value_t = 10_000)]
        instances: usize,
        /// The seed: the same seed writes the same fleet.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { scenario, port } => serve(scenario, port).await,
        Command::Generate { instances, seed } => {
            print!("{}", postern_sandbox::fleet::generate(instances, seed)?);
            Ok(())
        }
    }
}

async fn serve(scenario: Option<PathBuf>, port: u16) -> anyhow::Result<()> {
    let scenario = match &scenario {
        Some(path) => {
            Scenario::from_file(path).with_context(|| format!("loading {}", path.display()))?
        }
        None => Scenario::default_world(),
    };
    let sandbox = Sandbox::builder(scenario)
        .port(port)
        .start()
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    let mut lines = vec![("AWS_ENDPOINT_URL", sandbox.endpoint())];
    if let Some(demo) = sandbox.demo() {
        lines.extend([
            ("AWS_ACCESS_KEY_ID", demo.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", demo.secret_access_key),
            ("AWS_REGION", demo.region.clone()),
            ("AWS_DEFAULT_REGION", demo.region),
            ("POSTERN_SANDBOX_MFA_SERIAL", demo.mfa_serial),
            ("POSTERN_SANDBOX_MFA_SECRET", demo.mfa_secret),
            ("POSTERN_SANDBOX_ROLE_ARN", demo.role_arn),
        ]);
    }
    let mut out = String::new();
    for (name, value) in lines {
        out.push_str(&format!("export {name}={}\n", shell_quote(&value)));
    }
    out.push_str("ready\n");
    print!("{out}");
    use std::io::Write as _;
    std::io::stdout().flush().context("writing to stdout")?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    drop(sandbox);
    Ok(())
}
