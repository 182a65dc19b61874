//! `postern`: the command-line client of `postern-core`.
//!
//! Credentials, in this order: `--profile`; else the environment's AWS keys; else the profile
//! `AWS_PROFILE` names, or `default`. A profile's long-lived keys come from the OS keychain
//! first, then the credentials file. MFA codes are asked for on the terminal, once per device for
//! as long as the MFA session lasts.
//!
//! Exit status: 0 when the command succeeded (for `run` and `exec`, the command's own exit
//! code), 1 when it could not be done, 2 for bad usage, 255 when a remote command's exit code
//! never arrived.
#![forbid(unsafe_code)]

mod exec;
mod fleet;
mod history;
mod identity;
mod interrupt;
mod keys;
mod prompt;
mod shell;
mod ssh;
mod table;
mod tunnel;
mod warning;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use postern_core::aws::AwsAccess;
use postern_core::credentials::{Resolver, Selection};
use postern_core::inventory;
use postern_core::remedy::Remedy;
use postern_core::session::SessionError;
use postern_core::tunnel::TunnelError;

/// Postern: Session Manager shells, commands and tunnels into AWS machines, and AWS credentials
/// with one MFA code for every role, kept in the OS keychain.
#[derive(Debug, Parser)]
#[command(name = "postern", version, about)]
struct Cli {
    /// The AWS profile to use (otherwise the environment's keys, AWS_PROFILE, or `default`).
    #[arg(long, global = true)]
    profile: Option<String>,
    /// The region (otherwise AWS_REGION or the profile's).
    #[arg(long, global = true)]
    region: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open an interactive shell on an instance (works with pipes too).
    Shell {
        /// The instance: its id (i-…), Name tag or private IP.
        #[arg(value_parser = target)]
        instance: String,
        /// Run this command in a terminal instead of a login shell (AWS-StartInteractiveCommand).
        #[arg(long)]
        command: Option<String>,
    },
    /// Run a command on an instance with separate stdout and stderr; exit with its exit code.
    Run {
        /// The instance: its id (i-…), Name tag or private IP.
        #[arg(value_parser = target)]
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
        /// The instance: its id (i-…), Name tag or private IP.
        #[arg(value_parser = target)]
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
    /// List the instances you may reach, in every region of your profiles (or the regions and
    /// identities of `[inventory]` in settings.toml), reachable first.
    ///
    /// QUERY matches name, id and private IP; `tag:team=pay*`, `state:running`, `region:eu-*`,
    /// `account:prod` and `identity:dev` filter. A list younger than a minute is shown from the
    /// cache unless --refresh.
    Ls {
        /// What to look for.
        query: Vec<String>,
        /// Show the instances out of reach too, with the reason.
        #[arg(long)]
        all: bool,
        /// As JSON: {"instances": [...], "complete": bool}, every instance with `reachable`.
        #[arg(long)]
        json: bool,
        /// List again now, even if the cached list is fresh.
        #[arg(long)]
        refresh: bool,
        /// Every identity of `[inventory] identities` in settings.toml, not only the active one.
        #[arg(long)]
        fleet: bool,
    },
    /// Your own sessions, newest first: what Postern opened on this machine at once, then
    /// DescribeSessions (30 days) and CloudTrail (up to 90 days) as they answer. Other people's
    /// sessions are never shown (a view, not a control: see the README).
    History {
        /// How far back: 7d, 12h, 30m, 2w, or a date (2026-11-01); at most 90 days.
        #[arg(long, default_value = "30d", value_parser = postern_core::history::since)]
        since: postern_core::history::Since,
        /// Only sessions on this instance (its id, or a Name tag the last `postern ls` saw).
        #[arg(long)]
        instance: Option<String>,
        /// As JSON: {"sessions": [...], "complete": bool}.
        #[arg(long)]
        json: bool,
        /// Every identity of `[inventory] identities` in settings.toml, not only the active one.
        #[arg(long)]
        fleet: bool,
    },
    /// Print an ~/.ssh/config block that sends `ssh i-…` and `ssh <Name tag>` through Postern.
    SshConfig,
    /// List profiles by account, with favourites, recents and problems in the AWS files;
    /// with QUERY, the best fuzzy matches.
    Profiles {
        /// Fuzzy search over profile, role, account and alias.
        query: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Every profile's keys as the AWS CLI reads them (JSON), and the files' problems.
        #[arg(long, hide = true)]
        dump: bool,
    },
    /// Sign in: ask for the MFA code now, so every role works for hours without asking.
    Login,
    /// Show who the credentials belong to (account, ARN, expiry).
    Whoami,
    /// Forget every cached MFA session and role (long-lived keys stay).
    Logout,
    /// Mark a profile as a favourite, or unmark it.
    Favourite {
        /// The profile.
        profile: String,
    },
    /// Long-lived IAM keys in the OS keychain.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print credentials as JSON for `credential_process = postern credential-process --profile P`.
    CredentialProcess,
    /// Run a command with the credentials in its environment; exit with its exit code.
    Exec {
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Store a profile's access key id and secret (asked for on the terminal, the secret
    /// without echo; read from stdin when it is not a terminal).
    Add {
        /// The profile.
        profile: String,
    },
    /// Copy a profile's keys from the credentials file into the keychain.
    Import {
        /// The profile.
        profile: String,
    },
    /// Delete a profile's keys from the keychain.
    Remove {
        /// The profile.
        profile: String,
    },
    /// List the profiles whose keys are in the keychain.
    List,
}

/// The resolver over the user's AWS files, Postern's folder and the OS keychain, asking for
/// codes on the terminal.
fn resolver() -> anyhow::Result<Arc<Resolver>> {
    Ok(
        postern_core::Postern::load(Arc::new(prompt::TerminalPrompt))?
            .resolver()
            .clone(),
    )
}

async fn dispatch(cli: Cli, command: Command) -> anyhow::Result<u8> {
    let resolver = resolver()?;
    let selection = Selection::from_option(cli.profile.as_deref());
    let access = || AwsAccess::new(resolver.clone(), selection.clone(), cli.region.as_deref());
    match command {
        Command::Shell { instance, command } => {
            let access = access().await?;
            let instance = resolve_target(&access, &instance).await?;
            let done = shell::shell(&access.ssm(), &instance, command.as_deref()).await;
            explain_refusal(&resolver, &access, &instance, done).await
        }
        Command::Run { instance, command } => {
            let access = access().await?;
            let instance = resolve_target(&access, &instance).await?;
            let done = shell::run(&access.ssm(), &instance, &command).await;
            explain_refusal(&resolver, &access, &instance, done).await
        }
        Command::Tunnel {
            instance,
            ports,
            host,
            pool,
        } => {
            tunnel::check(&ports, pool)?;
            let access = access().await?;
            let instance = resolve_target(&access, &instance).await?;
            let done =
                tunnel::tunnel(&access.ssm(), &instance, &ports, host.as_deref(), pool).await;
            explain_refusal(&resolver, &access, &instance, done).await
        }
        Command::SshProxy { instance, port } => {
            let access = access().await?;
            let instance = resolve_target(&access, &instance).await?;
            let done = ssh::proxy(&access, &instance, port).await;
            explain_refusal(&resolver, &access, &instance, done).await
        }
        Command::Ls {
            query,
            all,
            json,
            refresh,
            fleet,
        } => {
            let query = query.join(" ");
            fleet::ls(
                &resolver,
                fleet::Ask {
                    query: Some(query.as_str()),
                    all,
                    json,
                    refresh,
                    fleet,
                    profile: cli.profile.as_deref(),
                    region: cli.region.as_deref(),
                },
            )
            .await
        }
        Command::History {
            since,
            instance,
            json,
            fleet,
        } => {
            history::history(
                &resolver,
                history::Ask {
                    since,
                    instance: instance.as_deref(),
                    json,
                    fleet,
                    profile: cli.profile.as_deref(),
                    region: cli.region.as_deref(),
                },
            )
            .await
        }
        Command::SshConfig => {
            ssh::config(
                &access().await?,
                cli.profile.as_deref(),
                cli.region.as_deref(),
            )
            .await
        }
        Command::Profiles { query, json, dump } => {
            identity::profiles(&resolver, query.as_deref(), json, dump)
        }
        Command::Login => identity::login(&resolver, &selection).await,
        Command::Whoami => identity::whoami(&resolver, &selection).await,
        Command::Logout => identity::logout(&resolver),
        Command::Favourite { profile } => identity::favourite(&resolver, &profile),
        Command::Keys { action } => match action {
            KeysAction::Add { profile } => keys::add(&resolver, &profile),
            KeysAction::Import { profile } => keys::import(&resolver, &profile),
            KeysAction::Remove { profile } => keys::remove(&resolver, &profile),
            KeysAction::List => keys::list(&resolver),
        },
        Command::CredentialProcess => exec::credential_process(&resolver, &selection).await,
        Command::Exec { command } => exec::exec(&resolver, &selection, &command).await,
    }
}

/// When Session Manager refused an instance, look it up: say so when it is in another region or
/// nowhere, rather than sending the user to IAM.
async fn explain_refusal(
    resolver: &Resolver,
    access: &AwsAccess,
    target: &str,
    done: anyhow::Result<u8>,
) -> anyhow::Result<u8> {
    let error = match done {
        Ok(code) => return Ok(code),
        Err(error) => error,
    };
    let refusal = match error.downcast::<SessionError>() {
        Ok(refusal) => refusal,
        Err(error) => match error.downcast::<TunnelError>() {
            Ok(TunnelError::Session(refusal)) => refusal,
            Ok(other) => return Err(other.into()),
            Err(error) => return Err(error),
        },
    };
    let regions = resolver.profile_regions();
    let explained = inventory::explain_refusal(access, target, refusal, &regions).await;
    if let SessionError::InOtherRegion { found, .. } = &explained
        && let Some(region) = found.first()
    {
        anyhow::bail!("{explained} (use --region {region})");
    }
    Err(explained.into())
}

/// An instance id, Name tag or private IP; what looks like an instance id but is malformed is
/// refused as bad usage, before any call.
fn target(target: &str) -> Result<String, String> {
    if target.trim().is_empty() {
        return Err("an instance id (i-…), Name tag or private IP is needed".into());
    }
    if target.starts_with("i-") || target.starts_with("mi-") {
        inventory::check_instance_id(target).map_err(|e| e.to_string())?;
    }
    Ok(target.to_owned())
}

/// The instance id a target names (an id as given; a Name tag or private IP looked up).
async fn resolve_target(access: &AwsAccess, target: &str) -> anyhow::Result<String> {
    Ok(inventory::resolve(access, target).await?)
}

/// Postern's own warnings only, as sentences on stderr, unless POSTERN_LOG asks for more (e.g.
/// POSTERN_LOG=debug, then in the usual log format); the libraries that see secrets on the wire
/// never log past `info`, whatever it asks.
fn init_logging() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let capped = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() <= tracing::Level::INFO
            || !postern_core::secret_bearing_log_target(meta.target())
    });
    let layer = match tracing_subscriber::EnvFilter::try_from_env("POSTERN_LOG") {
        Ok(asked) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(asked)
            .boxed(),
        Err(_) => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(warning::Sentences)
            .with_filter(tracing_subscriber::EnvFilter::new(
                "off,postern_core=warn,postern=warn",
            ))
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(capped))
        .init();
}

/// An error and its causes in one line, each cause once: a cause whose words are already in
/// the line (an error that quotes its source) is not repeated. Core's errors say what to do in
/// words; the command that does it here follows, in parentheses.
fn report(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    if let Some(hint) = error
        .chain()
        .find_map(postern_core::remedy::of_error)
        .as_ref()
        .and_then(hint)
    {
        line.push_str(&format!(" ({hint})"));
    }
    line
}

/// The command-line way to do what a remedy says.
fn hint(remedy: &Remedy) -> Option<String> {
    Some(match remedy {
        Remedy::SignIn { profile } => format!("run `postern login --profile {profile}`"),
        Remedy::SignInAgain => "run `postern logout`, then sign in again".into(),
        Remedy::StoreKeys { profile } => format!(
            "store them with `postern keys add {profile}` or `postern keys import {profile}`"
        ),
        Remedy::ReplaceKeys => "store new ones with `postern keys add PROFILE`".into(),
        Remedy::ChooseProfile => {
            "pass --profile or set AWS_PROFILE; `postern profiles` lists them".into()
        }
        Remedy::ChooseRegion => "pass --region".into(),
        Remedy::UseRegion { region } => format!("pass --region {region}"),
        Remedy::ListInstances => "`postern ls` lists the instances you can reach".into(),
        Remedy::RemoveKeychainEntry { entry } => match entry.strip_prefix("keys/") {
            Some(profile) => format!("`postern keys remove {profile}` removes it"),
            None => "`postern logout` removes Postern's cached sessions".into(),
        },
        _ => return None,
    })
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    init_logging();
    let Some(command) = cli.command.take() else {
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
            interrupt::say(&format!("postern: cannot start: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli, command));
    // Background reads of stdin must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            interrupt::say(&format!("postern: {}", report(&error)));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::report;
    use postern_core::credentials::CredentialError;
    use postern_core::mfa::PromptError;

    #[test]
    fn each_cause_is_reported_once() {
        // TunnelError::Bind quotes its source and names it as its source too.
        let bind = postern_core::tunnel::TunnelError::Bind {
            address: std::net::SocketAddr::from(([127, 0, 0, 1], 5432)),
            source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use"),
        };
        let line = report(&anyhow::Error::new(bind));
        assert_eq!(
            line,
            "cannot listen on 127.0.0.1:5432: Address already in use"
        );
        let wrapped = anyhow::anyhow!("disk full").context("cannot save the state");
        assert_eq!(report(&wrapped), "cannot save the state: disk full");
    }

    #[test]
    fn core_says_what_to_do_and_the_cli_says_how_here() {
        let prompt = anyhow::Error::new(CredentialError::Prompt(PromptError::NoOneToAsk {
            serial: "arn:aws:iam::111111111111:mfa/demo".into(),
            profile: "developer".into(),
        }))
        .context("cannot sign in");
        let line = report(&prompt);
        assert!(
            line.ends_with(
                "sign in to profile developer first (run `postern login --profile developer`)"
            ),
            "{line}"
        );
        let keys = anyhow::Error::new(CredentialError::NoCredentials {
            profile: "demo".into(),
        });
        assert!(
            report(&keys).contains("(store them with `postern keys add demo`"),
            "{}",
            report(&keys)
        );
        // Errors that are not core's get no hint.
        assert_eq!(report(&anyhow::anyhow!("plain")), "plain");
    }
}
