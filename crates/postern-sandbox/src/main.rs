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
    /// Serve on 127.0.0.1. Prints shell `export` lines for the demo identity, then `ready`.
    ///
    /// In a shell, start it in the background and take its variables with one line:
    ///
    ///     eval "$(postern-sandbox serve --background)"
    ///
    /// With --background it prints the same lines once the sandbox is ready, and
    /// POSTERN_SANDBOX_PID, and returns while the sandbox goes on serving: kill
    /// "$POSTERN_SANDBOX_PID" stops it. Without it, it serves in the foreground until Ctrl-C,
    /// SIGTERM or SIGHUP (copy the lines into another shell). Stopping ends every session and
    /// removes their folders. In the foreground, logs go to stderr (RUST_LOG=debug for more).
    #[command(verbatim_doc_comment)]
    Serve {
        /// A scenario file (TOML); the built-in default world when absent.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// The port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Serve in the background: print the export lines once ready, then return.
        #[arg(long)]
        background: bool,
        /// Print one JSON line instead of the export lines, for a program that starts the
        /// sandbox: {"endpoint": …, "demo": {"access_key_id", "secret_access_key", "region",
        /// "mfa_serial", "mfa_secret", "role_arn", "reach"}} (demo is null when the scenario has none).
        #[arg(long, conflicts_with = "background")]
        json: bool,
        /// Stop when standard input closes (the program that started it exited or let go).
        #[arg(long, conflicts_with = "background")]
        exit_with_stdin: bool,
        /// Do not serve the admin API under /_sandbox/ (faults, clock, MFA codes).
        #[arg(long)]
        no_admin: bool,
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
        /// Enabled regions, 1 to 10 (default: the default world's three).
        #[arg(long)]
        regions: Option<usize>,
        /// Accounts: the demo account, then copies of the prod account (default: those two).
        #[arg(long)]
        accounts: Option<usize>,
        /// Past sessions to seed in CloudTrail and DescribeSessions, of several people (the
        /// demo user, erin on the same role, carol), up to 85 days back.
        #[arg(long, default_value_t = 0)]
        sessions: usize,
    },
}

fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line, each cause once (an error that quotes its source is not followed by
            // it again); never a backtrace, whatever RUST_BACKTRACE says.
            use std::io::Write as _;
            let said = error.chain().fold(String::new(), |said, cause| {
                let cause = cause.to_string();
                match said.is_empty() {
                    true => cause,
                    false if said.contains(&cause) => said,
                    false => format!("{said}: {cause}"),
                }
            });
            let _ = writeln!(std::io::stderr(), "postern-sandbox: {said}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            scenario,
            port,
            background: true,
            no_admin,
            ..
        } => serve_in_background(scenario, port, no_admin),
        Command::Serve {
            scenario,
            port,
            background: false,
            json,
            exit_with_stdin,
            no_admin,
        } => {
            let how = Serving {
                json,
                exit_with_stdin,
                admin: !no_admin,
            };
            serve(scenario, port, how).await
        }
        Command::Generate {
            instances,
            seed,
            regions,
            accounts,
            sessions,
        } => {
            let shape = postern_sandbox::fleet::Shape {
                instances,
                regions,
                accounts,
                sessions,
                seed,
            };
            print!("{}", postern_sandbox::fleet::generate_shaped(shape)?);
            Ok(())
        }
    }
}

/// How `serve` runs in the foreground.
#[derive(Clone, Copy, Debug)]
struct Serving {
    json: bool,
    exit_with_stdin: bool,
    admin: bool,
}

/// The `--json` start line.
fn start_line(endpoint: &str, demo: Option<&postern_sandbox::DemoIdentity>) -> String {
    let demo = demo.map(|demo| {
        serde_json::json!({
            "access_key_id": demo.access_key_id,
            "secret_access_key": demo.secret_access_key,
            "region": demo.region,
            "mfa_serial": demo.mfa_serial,
            "mfa_secret": demo.mfa_secret,
            "role_arn": demo.role_arn,
            "reach": demo.reach,
        })
    });
    serde_json::json!({ "endpoint": endpoint, "demo": demo }).to_string()
}

/// Wait until standard input ends (EOF or an error), reading and dropping what comes.
async fn stdin_closed() {
    use tokio::io::AsyncReadExt as _;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

async fn serve(scenario: Option<PathBuf>, port: u16, how: Serving) -> anyhow::Result<()> {
    let scenario = match &scenario {
        Some(path) => {
            Scenario::from_file(path).with_context(|| format!("loading {}", path.display()))?
        }
        None => Scenario::default_world(),
    };
    let sandbox = Sandbox::builder(scenario)
        .port(port)
        .admin(how.admin)
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
    if how.json {
        out = start_line(&sandbox.endpoint(), sandbox.demo().as_ref());
        out.push('\n');
    } else {
        for (name, value) in lines {
            out.push_str(&format!("export {name}={}\n", shell_quote(&value)));
        }
        out.push_str("ready\n");
    }
    print!("{out}");
    use std::io::Write as _;
    std::io::stdout().flush().context("writing to stdout")?;
    let signal = if how.exit_with_stdin {
        tokio::select! {
            signal = stop_signal() => signal?,
            () = stdin_closed() => "the end of standard input",
        }
    } else {
        stop_signal().await?
    };
    tracing::info!(signal, "stopping");
    // Every session ends, its processes are hung up on, its folder removed.
    if !sandbox.stop(std::time::Duration::from_secs(5)).await {
        // Not eprintln!: stderr may be a pipe nobody reads any more (serve --background).
        let _ = writeln!(
            std::io::stderr(),
            "postern-sandbox: some sessions' folders were still there after 5 s ({})",
            std::env::temp_dir().display()
        );
    }
    Ok(())
}

/// Wait for Ctrl-C, SIGTERM (`kill`) or SIGHUP (the terminal closed); the signal's name.
#[cfg(unix)]
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = hangup.recv() => "SIGHUP",
        _ = interrupt.recv() => "SIGINT",
    })
}

#[cfg(not(unix))]
async fn stop_signal() -> anyhow::Result<&'static str> {
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok("Ctrl-C")
}

/// `serve --background`: run `serve` as a child that outlives this process, pass its export
/// lines on once it says `ready`, add its pid, and return. The child's stdout and stderr are
/// pipes to this process, never this process's own, so `$(…)` (even with `2>&1`) ends when
/// this process does; what the child says on stderr until it is ready (why it could not start)
/// is passed on, later logs are dropped (the foreground `serve` shows them).
fn serve_in_background(scenario: Option<PathBuf>, port: u16, no_admin: bool) -> anyhow::Result<()> {
    use std::io::{BufRead as _, Write as _};
    use std::process::{Command, Stdio};
    let program = std::env::current_exe().context("finding the postern-sandbox program")?;
    let mut command = Command::new(program);
    command.arg("serve").arg("--port").arg(port.to_string());
    if no_admin {
        command.arg("--no-admin");
    }
    if let Some(scenario) = scenario {
        command.arg("--scenario").arg(scenario);
    }
    // A process group of its own: Ctrl-C at the shell's prompt (its foreground group) must not
    // stop the sandbox; `kill "$POSTERN_SANDBOX_PID"` does.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting postern-sandbox serve")?;
    let (Some(stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        anyhow::bail!("postern-sandbox serve has no stdout or stderr");
    };
    let relay = std::thread::spawn(move || {
        let _ = std::io::copy(&mut stderr, &mut std::io::stderr());
    });
    let mut exports = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("reading postern-sandbox serve's output")?;
        if line == "ready" {
            exports.push_str(&format!(
                "export POSTERN_SANDBOX_PID={}\n",
                shell_quote(&child.id().to_string())
            ));
            let mut out = std::io::stdout().lock();
            out.write_all(exports.as_bytes())
                .and_then(|()| out.flush())
                .context("writing to stdout")?;
            // The sandbox goes on serving; this process is done.
            return Ok(());
        }
        exports.push_str(&line);
        exports.push('\n');
    }
    let status = child.wait().context("waiting for postern-sandbox serve")?;
    let _ = relay.join();
    anyhow::bail!("the sandbox did not start ({status}); its reason is above")
}
