//! Asking on the controlling terminal, never on stdout (which may be a pipe the AWS CLI reads
//! credentials from).

use std::io::{BufRead as _, Write as _};

use postern_core::mfa::{MfaPrompt, MfaRequest, PromptError, PromptFuture};

/// The terminal's device: `/dev/tty`, or the console on Windows.
#[cfg(unix)]
const TERMINAL: (&str, &str) = ("/dev/tty", "/dev/tty");
#[cfg(windows)]
const TERMINAL: (&str, &str) = ("CONIN$", "CONOUT$");

fn open_terminal() -> Option<(std::fs::File, std::fs::File)> {
    let input = std::fs::OpenOptions::new()
        .read(true)
        .open(TERMINAL.0)
        .ok()?;
    let output = std::fs::OpenOptions::new()
        .write(true)
        .open(TERMINAL.1)
        .ok()?;
    Some((input, output))
}

/// Ask `question` on the terminal and read one line; `None` when there is no terminal.
fn ask_line(question: &str) -> Option<Result<String, PromptError>> {
    let (input, mut output) = open_terminal()?;
    if let Err(e) = output
        .write_all(question.as_bytes())
        .and_then(|()| output.flush())
    {
        return Some(Err(PromptError::Failed(e.to_string())));
    }
    let mut line = String::new();
    Some(match std::io::BufReader::new(input).read_line(&mut line) {
        Ok(0) => Err(PromptError::Cancelled),
        Ok(_) => Ok(line.trim().to_owned()),
        Err(e) => Err(PromptError::Failed(e.to_string())),
    })
}

/// MFA codes typed on the terminal.
#[derive(Debug, Default)]
pub(crate) struct TerminalPrompt;

impl MfaPrompt for TerminalPrompt {
    fn ask<'a>(&'a self, request: &'a MfaRequest) -> PromptFuture<'a> {
        let question = request.message();
        let nobody = PromptError::NoOneToAsk {
            serial: request.serial.clone(),
            profile: request.profile.clone(),
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(move || ask_line(&question).unwrap_or(Err(nobody)))
                .await
                .map_err(|e| PromptError::Failed(e.to_string()))?
        })
    }

    fn notice(&self, text: &str) {
        match open_terminal() {
            Some((_, mut output)) => {
                let _ = writeln!(output, "{text}");
            }
            None => eprintln!("{text}"),
        }
    }
}

/// Read a secret without echo from the terminal, or a line of stdin when stdin is not one.
pub(crate) fn secret_line(question: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password(question)?.trim().to_owned())
    } else {
        plain_line(question)
    }
}

/// Read a line from the terminal (echoed), or from stdin when stdin is not a terminal.
pub(crate) fn plain_line(question: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal()
        && let Some(answer) = ask_line(question)
    {
        return Ok(answer?);
    }
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        anyhow::bail!("no input: expected a line for {question:?}");
    }
    Ok(line.trim().to_owned())
}
