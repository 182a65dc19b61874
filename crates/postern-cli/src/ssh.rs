//! `postern ssh-proxy` and `postern ssh-config`.

use std::io::Write as _;

use postern_core::aws::AwsAccess;
use postern_core::inventory;
use postern_core::session::{
    self, SessionEnd, SessionEvent, SessionFailure, SessionOptions, SessionRequest,
};
use tokio::io::AsyncReadExt as _;

use crate::interrupt::{Interrupt, Interrupts, Opened, open_unless_stopped};
use crate::shell::{say_stopped, stopped_while_opening};

/// Carry an SSH connection over AWS-StartSSHSession: stdin to the instance's SSH port, its bytes
/// to stdout. ssh runs this as its ProxyCommand and speaks SSH through it.
pub(crate) async fn proxy(access: &AwsAccess, target: &str, port: u16) -> anyhow::Result<u8> {
    let instance = inventory::resolve(access, target).await?;
    let access = access.ssm();
    let access = &access;
    // ssh ends its ProxyCommand with SIGHUP when it exits.
    let mut interrupts = Interrupts::install()?;
    let opening = session::open(
        access,
        SessionRequest::ssh(&instance, port),
        SessionOptions::default(),
    );
    let session = match open_unless_stopped(&mut interrupts, opening).await? {
        Opened::Yes(session) => session,
        Opened::Stopped(signal, late) => return Ok(stopped_while_opening(signal, late).await),
    };
    let (mut events, writer, id) = session.split();
    let input = writer.clone();
    let (eof_tx, mut eof_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if input.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = eof_tx.send(());
    });
    let mut stdout = std::io::stdout();
    let end = loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(SessionEvent::Output(bytes)) => {
                    if stdout.write_all(&bytes).and_then(|()| stdout.flush()).is_err() {
                        // ssh is gone.
                        break session::close_and_wait(&writer, &mut events).await;
                    }
                }
                Some(SessionEvent::Ended(end)) => break Some(end),
                Some(_) => {}
                None => break Some(SessionEnd::Failed(SessionFailure::DriverStopped)),
            },
            // ssh closed its end: the connection is over.
            _ = &mut eof_rx => break session::close_and_wait(&writer, &mut events).await,
            signal = interrupts.next() => {
                let end = session::close_and_wait(&writer, &mut events).await;
                // ssh ends its ProxyCommand with SIGHUP as it exits: nothing to say then.
                if signal != Interrupt::Hup {
                    say_stopped(&id, signal, end.as_ref());
                }
                return Ok(signal.exit_code());
            }
        }
    };
    match end {
        Some(SessionEnd::Failed(reason)) => anyhow::bail!("session {id} failed: {reason}"),
        _ => Ok(0),
    }
}

/// Quote a path for an ssh_config value.
fn config_quote(text: &str) -> String {
    if text.contains([' ', '"', '\t']) {
        format!("\"{}\"", text.replace('"', "\\\""))
    } else {
        text.to_owned()
    }
}

/// Print Host blocks: one for instance ids, one per running instance's Name tag.
pub(crate) async fn config(
    access: &AwsAccess,
    profile: Option<&str>,
    region: Option<&str>,
) -> anyhow::Result<u8> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "postern".into());
    let mut proxy = config_quote(&exe);
    if let Some(profile) = profile {
        proxy.push_str(&format!(" --profile {}", config_quote(profile)));
    }
    if let Some(region) = region {
        proxy.push_str(&format!(" --region {}", config_quote(region)));
    }
    let instances = inventory::running(access).await?;
    let mut out = String::new();
    out.push_str(
        "# Postern: SSH to EC2 instances through Session Manager (no open port 22, no bastion).\n",
    );
    out.push_str("# Append to ~/.ssh/config: postern ssh-config >> ~/.ssh/config\n");
    out.push_str(&format!(
        "Host i-* mi-*\n    ProxyCommand {proxy} ssh-proxy %h %p\n"
    ));
    let mut named: Vec<(&str, &str)> = instances
        .iter()
        .filter_map(|i| i.name.as_deref().map(|n| (n, i.id.as_str())))
        .collect();
    named.sort();
    for (name, id) in named {
        // ssh_config host patterns cannot hold spaces or wildcards; such names are left out.
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '*' || c == '?') {
            continue;
        }
        out.push_str(&format!(
            "\nHost {name}\n    HostName {id}\n    ProxyCommand {proxy} ssh-proxy %h %p\n"
        ));
    }
    print!("{out}");
    Ok(0)
}
