//! The README's sandbox tutorial as a newcomer runs it, so the README cannot drift from what works.
//!
//! The shell blocks of "The sandbox: a local AWS" and "Trying `postern` on the sandbox" are read
//! from README.md when the test runs. Each block the README marks `<!-- readme-test: NAME -->` is
//! pasted, in order, into one clean interactive bash on a pseudo-terminal (no rc files, a
//! throw-away HOME and TMPDIR, only `postern` and `postern-sandbox` of this workspace on the
//! PATH besides /usr/bin and /bin, the real keychain), and the test answers what a user answers:
//! the MFA code `postern login` asks for on /dev/tty (read off the screen, where the block's
//! `curl` printed it), and a line in `postern shell`. Once a block is done the test types one
//! line of its own, `echo …$?`, to learn the status of the block's last command. Each block's
//! outcome is checked; at the end nothing may be left running or in TMPDIR.
//!
//! Two terminals: one with bracketed paste (bash's default since 5.1: the block reaches bash
//! whole), one without (the lines reach bash one by one, so a command that reads the terminal
//! in the middle of a block would swallow the lines after it).
//!
//! A block marked `<!-- readme-output -->` shows what `serve --background` prints; it must name
//! the variables it really prints. Every other `sh` block in those sections fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postern_e2e::{OnTerminal, TempDir, require_keychain, workspace_binary};

const FIRST_SECTION: &str = "## The sandbox: a local AWS";
const END_OF_TUTORIAL: &str = "## Using `postern`";
/// The blocks the tutorial must have, in this order (others may come between).
const EXPECTED: &[&str] = &["start", "mfa", "login", "use", "history", "done"];
const PROMPT: &str = "[readme-tutorial]$ ";

/// A marked shell block of the README.
#[derive(Debug)]
struct Block {
    name: String,
    text: String,
}

/// The README's tutorial: the blocks to run, and the lines of the example of `serve`'s output.
fn tutorial() -> (Vec<Block>, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let start = readme
        .find(FIRST_SECTION)
        .unwrap_or_else(|| panic!("README.md has no {FIRST_SECTION:?} section"));
    let end = readme[start..]
        .find(END_OF_TUTORIAL)
        .map(|n| start + n)
        .unwrap_or_else(|| panic!("README.md has no {END_OF_TUTORIAL:?} section"));
    let mut blocks = Vec::new();
    let mut output = None;
    let mut marker: Option<String> = None;
    let mut lines = readme[start..end].lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(name) = trimmed
            .strip_prefix("<!-- readme-test:")
            .and_then(|rest| rest.strip_suffix("-->"))
        {
            marker = Some(name.trim().to_owned());
            continue;
        }
        if trimmed == "<!-- readme-output -->" {
            marker = Some(String::new());
            continue;
        }
        if trimmed.starts_with("```") && trimmed != "```" {
            assert_eq!(trimmed, "```sh", "the tutorial's blocks are sh");
            let body: Vec<String> = lines
                .by_ref()
                .take_while(|l| l.trim() != "```")
                .map(str::to_owned)
                .collect();
            match marker.take() {
                Some(name) if name.is_empty() => output = Some(body),
                Some(name) => blocks.push(Block {
                    name,
                    text: body.join("\n"),
                }),
                None => panic!(
                    "README.md: a shell block of the sandbox tutorial is neither run by this test \
                     (<!-- readme-test: NAME --> before it) nor an example of output \
                     (<!-- readme-output -->):\n{}",
                    body.join("\n")
                ),
            }
            continue;
        }
        if !trimmed.is_empty() {
            marker = None;
        }
    }
    let names: Vec<&str> = blocks.iter().map(|b| b.name.as_str()).collect();
    let mut expected = EXPECTED.iter();
    let mut next = expected.next();
    for name in &names {
        if next == Some(name) {
            next = expected.next();
        }
    }
    assert!(
        next.is_none(),
        "the tutorial's blocks {names:?} lack {next:?} (expected {EXPECTED:?} in order)"
    );
    (
        blocks,
        output.expect("README.md shows what serve --background prints (<!-- readme-output -->)"),
    )
}

/// The names a block of `export NAME=…` lines sets.
fn exported_names<'a>(lines: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    lines
        .into_iter()
        .filter_map(|line| line.trim().strip_prefix("export "))
        .filter_map(|rest| rest.split_once('='))
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn the_tutorial_shows_what_serve_prints() {
    let (_, shown) = tutorial();
    let out = Command::new(workspace_binary("postern-sandbox"))
        .args(["serve", "--background"])
        .stdin(Stdio::null())
        .output()
        .expect("run postern-sandbox serve --background");
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(pid) = printed
        .lines()
        .find_map(|l| l.strip_prefix("export POSTERN_SANDBOX_PID='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .and_then(|pid| pid.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    assert_eq!(
        exported_names(shown.iter().map(String::as_str)),
        exported_names(printed.lines()),
        "README.md's example of serve --background's output names other variables than it prints"
    );
}

/// The words after `make ` in the README's code (spans and blocks).
fn make_targets_named(readme: &str) -> BTreeSet<String> {
    let mut code = String::new();
    let mut fenced = false;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            code.push_str(line);
            code.push('\n');
        } else {
            // Inline spans: every other piece between backticks.
            for span in line.split('`').skip(1).step_by(2) {
                code.push_str(span);
                code.push('\n');
            }
        }
    }
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|pair| pair[0] == "make" && !pair[1].is_empty())
        .map(|pair| pair[1].to_owned())
        .collect()
}

#[test]
fn every_make_target_the_readme_names_exists() {
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let makefile = std::fs::read_to_string(root.join("Makefile")).expect("Makefile");
    let targets: BTreeSet<&str> = makefile
        .lines()
        .filter_map(|line| line.split_once(':').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .collect();
    let named = make_targets_named(&readme);
    for must in ["install", "sandbox", "test", "run"] {
        assert!(
            named.contains(must),
            "the README no longer names make {must}"
        );
    }
    let missing: Vec<&String> = named
        .iter()
        .filter(|name| !targets.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the README names make targets the Makefile lacks: {missing:?}"
    );
}

/// A clean bash on a terminal, and the folders it must leave empty.
struct Newcomer {
    terminal: OnTerminal,
    scratch: TempDir,
    /// Where the transcript stood when the current block was pasted.
    block_start: usize,
}

impl Newcomer {
    fn new(bracketed_paste: bool) -> Self {
        let scratch = TempDir::new("readme");
        let bin = scratch.join("bin");
        let home = scratch.join("home");
        let tmp = scratch.join("tmp");
        for dir in [&bin, &home, &tmp] {
            std::fs::create_dir_all(dir).expect("a folder");
        }
        for name in ["postern", "postern-sandbox"] {
            std::os::unix::fs::symlink(workspace_binary(name), bin.join(name))
                .expect("a link to the binary");
        }
        let inputrc = scratch.join("inputrc");
        let paste = if bracketed_paste { "on" } else { "off" };
        std::fs::write(&inputrc, format!("set enable-bracketed-paste {paste}\n")).expect("inputrc");
        let mut env = vec![
            ("PATH".into(), format!("{}:/usr/bin:/bin", bin.display())),
            ("HOME".into(), home.display().to_string()),
            ("TMPDIR".into(), tmp.display().to_string()),
            ("TERM".into(), "xterm".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("INPUTRC".into(), inputrc.display().to_string()),
            ("PS1".into(), PROMPT.into()),
        ];
        // The keychain: the private Secret Service of `.ci/with-keychain`.
        if let Ok(bus) = std::env::var("DBUS_SESSION_BUS_ADDRESS") {
            env.push(("DBUS_SESSION_BUS_ADDRESS".into(), bus));
        }
        let terminal = OnTerminal::spawn_in(
            Path::new("/bin/bash"),
            &["--noprofile", "--norc", "-i"],
            &env,
            Some(&repository_root()),
        );
        let newcomer = Self {
            terminal,
            scratch,
            block_start: 0,
        };
        newcomer.wait_until(30, "bash's first prompt", |screen| screen.contains(PROMPT));
        newcomer
    }

    fn tmp(&self) -> PathBuf {
        self.scratch.join("tmp")
    }

    /// The transcript since the current block was pasted.
    fn since_block(&self) -> String {
        let screen = self.terminal.transcript();
        let mut start = self.block_start.min(screen.len());
        while !screen.is_char_boundary(start) {
            start += 1;
        }
        screen[start..].to_owned()
    }

    /// Wait until `ready` holds for what the current block has shown; that text.
    fn wait_until(&self, seconds: u64, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let screen = self.since_block();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {seconds} s for {what}; since the block was pasted the terminal shows:\n{}",
                redacted(&screen)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Paste `text` as a terminal does (line breaks as carriage returns), then press Enter.
    fn paste(&mut self, text: &str, bracketed: bool) {
        self.block_start = self.terminal.transcript().len();
        let lines = text.replace('\n', "\r");
        if bracketed {
            self.terminal
                .type_text(&format!("\x1b[200~{lines}\x1b[201~\r"));
        } else {
            self.terminal.type_text(&format!("{lines}\r"));
        }
    }

    /// Wait until bash shows a prompt after `after` (a text the block printed), so the block's
    /// last command is over.
    fn prompt_after(&self, after: &str, seconds: u64) {
        self.wait_until(seconds, &format!("a prompt after {after:?}"), |screen| {
            screen
                .rfind(after)
                .is_some_and(|at| screen[at..].contains(PROMPT))
        });
    }

    /// Type the line that tells the block is over, with its last command's status; what the
    /// block showed.
    fn finish_block(&mut self, number: usize, seconds: u64) -> (String, i32) {
        self.terminal
            .type_text(&format!("echo readme-done-$((40+2))-{number} $?\r"));
        let done = format!("readme-done-42-{number} ");
        let screen = self.wait_until(seconds, "the end of the block", |screen| {
            screen
                .find(&done)
                .is_some_and(|at| screen[at..].contains('\n'))
        });
        let at = screen.find(&done).unwrap_or_default();
        let status = screen[at + done.len()..]
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        (screen[..at].to_owned(), status)
    }
}

impl Drop for Newcomer {
    /// Whatever happened, no sandbox of this run outlives it.
    fn drop(&mut self) {
        for pid in sandboxes_in(&self.tmp()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_owned()
}

/// The `postern-sandbox` processes started with `TMPDIR` = `tmp`.
fn sandboxes_in(tmp: &Path) -> Vec<i32> {
    let wanted = format!("TMPDIR={}", tmp.display()).into_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            if !String::from_utf8_lossy(&cmdline).contains("postern-sandbox") {
                return None;
            }
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_owned();
            if state == "Z" {
                return None;
            }
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ
                .split(|&b| b == 0)
                .any(|var| var == wanted.as_slice())
                .then_some(pid)
        })
        .collect()
}

/// `screen` without the secrets the tutorial shows (the sandbox's, but a failure message is no
/// place for them): the values of `SecretAccessKey` and `SessionToken`.
fn redacted(screen: &str) -> String {
    let mut out = String::with_capacity(screen.len());
    let mut rest = screen;
    while let Some(at) = ["\"SecretAccessKey\": \"", "\"SessionToken\": \""]
        .iter()
        .filter_map(|key| rest.find(key).map(|at| at + key.len()))
        .min()
    {
        out.push_str(&rest[..at]);
        out.push_str("<redacted>");
        rest = &rest[at..];
        rest = &rest[rest.find('"').unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// The last line of `screen` that is a six-digit code (what the block's `curl` printed).
fn code_on(screen: &str) -> Option<String> {
    screen
        .split(['\r', '\n'])
        .map(str::trim)
        .rfind(|line| line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

fn run_the_tutorial(bracketed_paste: bool) {
    require_keychain();
    let aws = repository_root().join(".venv/bin/aws");
    assert!(
        aws.exists(),
        "the tutorial uses the repository's AWS CLI, {}: run `.ci/deps venv` (make test does)",
        aws.display()
    );
    let (blocks, _) = tutorial();
    let mut user = Newcomer::new(bracketed_paste);
    for (number, block) in blocks.iter().enumerate() {
        user.paste(&block.text, bracketed_paste);
        let last = block.text.lines().last().unwrap_or_default().trim_start();
        if last.starts_with("postern login") {
            // The code, as a user reads it off the screen and types it.
            let screen = user.wait_until(90, "postern login's question", |s| {
                s.contains("MFA code for")
            });
            let asked = screen.find("MFA code for").unwrap_or_default();
            let code = code_on(&screen[..asked]).unwrap_or_else(|| {
                panic!(
                    "no code on the screen before the question:\n{}",
                    redacted(&screen)
                )
            });
            user.terminal.type_text(&format!("{code}\r"));
            user.prompt_after("Signed in", 60);
        } else if last.starts_with("postern shell") {
            user.wait_until(90, "the instance's shell prompt", |s| {
                s.contains("sandbox$ ")
            });
            user.terminal.type_text("echo $((6*7)) from the instance\r");
            user.wait_until(30, "the shell's answer", |s| {
                s.contains("42 from the instance")
            });
            user.terminal.type_text("exit\r");
            user.prompt_after("Exiting session with sessionId", 60);
        }
        let (shown, status) = user.finish_block(number, 120);
        assert_eq!(
            status,
            0,
            "block {:?}: its last command failed; the terminal shows:\n{}",
            block.name,
            redacted(&shown)
        );
        let expect = |text: &str| {
            assert!(
                shown.contains(text),
                "block {:?}: no {text:?}; the terminal shows:\n{}",
                block.name,
                redacted(&shown)
            );
        };
        match block.name.as_str() {
            "start" => expect("\"Arn\": \"arn:aws:iam::210987654321:user/demo\""),
            "mfa" => {
                expect("\"SessionToken\": ");
                expect("{\"now\":");
            }
            "login" => {
                expect("Stored ");
                expect("Signed in");
            }
            "use" => {
                // whoami, then the AWS CLI with Postern's credentials, both as the role.
                assert!(
                    shown
                        .matches("arn:aws:sts::210987654321:assumed-role/developer/")
                        .count()
                        >= 2,
                    "whoami and the AWS CLI name the role:\n{}",
                    redacted(&shown)
                );
                expect("\nLinux\r\n");
                expect("42 from the instance");
            }
            "history" => {
                // The command and the shell just opened (from Postern's journal at once), and
                // the demo user's seeded tunnel from CloudTrail.
                expect("command");
                expect("ended on the instance");
                expect("tunnel :5432");
                assert!(!shown.contains("erin"), "erin's sessions stay out");
            }
            "done" => expect("Removed the keys of profile demo"),
            _ => {}
        }
    }
    // The sandbox is stopped, and the tutorial leaves nothing in TMPDIR: not its own files, not
    // a session's folder.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sandboxes_in(&user.tmp()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the sandbox still runs after the tutorial"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = std::fs::read_dir(user.tmp())
        .expect("TMPDIR")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
    user.terminal.type_text("exit\r");
    user.terminal.wait(10);
}

#[test]
fn the_sandbox_tutorial_works_pasted_into_bash() {
    run_the_tutorial(true);
}

#[test]
fn the_sandbox_tutorial_works_typed_line_by_line() {
    run_the_tutorial(false);
}

#[test]
fn failure_messages_hide_the_tutorial_s_secrets() {
    let screen = "{\n  \"AccessKeyId\": \"ASIA1\",\n  \"SecretAccessKey\": \"abc/def+1\",\n  \"SessionToken\": \"FwoG…\",\n}";
    assert_eq!(
        redacted(screen),
        "{\n  \"AccessKeyId\": \"ASIA1\",\n  \"SecretAccessKey\": \"<redacted>\",\n  \"SessionToken\": \"<redacted>\",\n}"
    );
}
