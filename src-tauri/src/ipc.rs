//! What crosses IPC between the window and core: the views the window is sent, and the few
//! requests it makes. Only what a window shows: no key, secret, session token, stream token or
//! stream URL is in any of these types (they are built field by field from core's, never by
//! passing a credential through). Counters are JavaScript numbers (below 2^53).
//!
//! The TypeScript side (`ui/src/ipc/bindings.ts`) is generated from these types and core's by
//! the `bindings` test; `make test` fails when it drifts (`make bindings` rewrites it).

use postern_core::identity::{Identity, IdentityKind};
use postern_core::inventory::row::Row;
use postern_core::progress::Progress;
use postern_core::registry::{SessionInfo, SessionState};
use postern_core::remedy::{Report, end_report};
use serde::{Deserialize, Serialize};

/// What the window is showing Postern on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Nothing to sign in with yet: no profile, no keys in the environment.
    FirstRun,
    /// The user's AWS profiles.
    Aws,
    /// The local sandbox (its own state folder and keychain in memory).
    Sandbox,
    /// Postern could not load (the AWS config or the settings are broken): see the problem.
    Broken,
}

/// The app as the window starts from (and comes back to after a reload).
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppView {
    /// The app's version.
    pub version: String,
    /// A debug build (xterm then draws with the DOM renderer, which tests can read).
    pub debug_build: bool,
    /// What the window shows Postern on.
    pub mode: Mode,
    /// Started with `--sandbox`: skip the first run, sign in at once.
    pub launch_sandbox: bool,
    /// The identities to switch between.
    pub identities: Vec<IdentityView>,
    /// The identity new sessions use.
    pub active: Option<String>,
    /// Who the active identity is, once signed in.
    pub signed_in: Option<SignedIn>,
    /// Why Postern could not load, in [`Mode::Broken`].
    pub problem: Option<Report>,
    /// The files Postern read profiles from (shown on the first run).
    pub looked_in: Vec<String>,
}

/// What kind of identity, in a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum IdentityKindView {
    /// An IAM role.
    Role,
    /// Long-lived keys.
    Keys,
    /// IAM Identity Center.
    Sso,
    /// Something Postern cannot use yet.
    Other,
}

/// One entry of the switcher.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct IdentityView {
    /// The profile.
    pub profile: String,
    /// What it is.
    pub kind: IdentityKindView,
    /// The role's name, for a role.
    pub role: Option<String>,
    /// The account, when known.
    pub account: Option<String>,
    /// The account's alias.
    pub alias: Option<String>,
    /// Whether it needs an MFA code.
    pub mfa: bool,
    /// Its region.
    pub region: Option<String>,
    /// A favourite.
    pub favourite: bool,
    /// Why it cannot be used.
    pub problem: Option<String>,
}

impl From<&Identity> for IdentityView {
    fn from(identity: &Identity) -> Self {
        let (kind, role) = match &identity.kind {
            IdentityKind::Role { role, .. } => (IdentityKindView::Role, Some(role.clone())),
            IdentityKind::Keys => (IdentityKindView::Keys, None),
            IdentityKind::Sso { role } => (IdentityKindView::Sso, role.clone()),
            IdentityKind::Other => (IdentityKindView::Other, None),
        };
        Self {
            profile: identity.profile.clone(),
            kind,
            role,
            account: identity.account.clone(),
            alias: identity.alias.clone(),
            mfa: identity.mfa,
            region: identity.region.clone(),
            favourite: identity.favourite,
            problem: identity.problem.clone(),
        }
    }
}

/// Who the active identity is.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SignedIn {
    /// The profile (`None`: the environment's keys).
    pub profile: Option<String>,
    /// The account.
    pub account: String,
    /// The caller's ARN.
    pub arn: String,
    /// The role, for an assumed role.
    pub role: Option<String>,
    /// When the MFA session ends (Unix seconds), when one is used.
    pub mfa_until: Option<u64>,
    /// The region new sessions open in.
    pub region: Option<String>,
}

/// The code the sandbox's virtual MFA device shows now: the one code that goes out to the
/// window, by design and in sandbox mode only. The device is the sandbox's demo (a pretend AWS
/// on this machine, whose seed it prints), shown as an authenticator app would show it; no code
/// of a real device ever goes out.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SandboxCode {
    /// Six digits.
    pub code: String,
    /// Seconds until the device shows the next one.
    pub seconds_left: u64,
}

/// A session, as a tab shows it.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct SessionView {
    /// The session id.
    pub id: String,
    /// The instance.
    pub target: String,
    /// The profile it was opened with.
    pub profile: Option<String>,
    /// The region.
    pub region: String,
    /// What it is (`shell`).
    pub kind: String,
    /// Where it stands.
    pub state: SessionState,
    /// When it opened (Unix seconds).
    pub started: u64,
    /// How it ended, in a sentence, once it has.
    pub end: Option<String>,
    /// The problem it ended with, when it did not end well.
    pub problem: Option<Report>,
    /// While resuming: why the connection dropped.
    pub note: Option<String>,
}

impl SessionView {
    /// The view of a session of the registry; `note` says why it is resuming.
    pub fn of(info: &SessionInfo, note: Option<String>) -> Self {
        Self {
            id: info.id.to_string(),
            target: info.about.target.clone(),
            profile: info.about.profile.clone(),
            region: info.about.region.clone(),
            kind: info.about.kind.clone(),
            state: info.state,
            started: info.started,
            end: info.end.as_ref().map(ToString::to_string),
            problem: info.end.as_ref().and_then(end_report),
            note: note.filter(|_| info.state == SessionState::Resuming),
        }
    }
}

/// What a listing of instances sends as it goes.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ListingUpdate {
    /// How far it has got.
    Progress(Progress),
    /// One identity × region, listed (or failed).
    Part {
        /// The identity.
        identity: String,
        /// The region (empty when the identity could not be used).
        region: String,
        /// Its instances.
        rows: Vec<Row>,
        /// Why it could not be listed.
        problem: Option<String>,
        /// What the rows do not show.
        note: Option<String>,
    },
}

/// A shell to open.
#[derive(Clone, Debug, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct OpenShell {
    /// The identity (`None`: the active one).
    pub profile: Option<String>,
    /// The instance id.
    pub instance: String,
    /// Its region (`None`: the identity's).
    pub region: Option<String>,
}

/// "Add an AWS profile": an IAM user's keys (to the keychain) and where they are used. The only
/// secret that crosses IPC besides an MFA code, once, inbound: it is wrapped as soon as it
/// arrives and this type has no `Debug`.
#[derive(Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AddProfile {
    /// The profile's name.
    pub profile: String,
    /// The access key id (`AKIA…`).
    pub access_key_id: String,
    /// The secret key, typed into a password field.
    pub secret_access_key: String,
    /// The region.
    pub region: String,
    /// The user's MFA device, if it has one.
    pub mfa_serial: Option<String>,
}

#[cfg(test)]
mod bindings {
    use std::path::Path;

    use postern_core::inventory::row::{Row, SsmStatus, Unreachable};
    use postern_core::mfa::Retry;
    use postern_core::mfa::window::{PromptEvent, Question};
    use postern_core::progress::Progress;
    use postern_core::registry::SessionState;
    use postern_core::remedy::{Code, Remedy, Report};
    use ts_rs::{Config, TS};

    use super::*;

    const HEADER: &str = "// The desktop's IPC types, generated from the Rust ones by \
`make bindings` (src-tauri/src/ipc.rs).\n// Do not edit: `make test` fails when this file and the Rust types differ.\n\n";

    fn declarations() -> String {
        // Every 64-bit counter core sends is below 2^53 (see registry::js_number): a number.
        let cfg = Config::new().with_large_int("number");
        let mut out = String::from(HEADER);
        macro_rules! declare {
            ($($t:ty),* $(,)?) => {$(
                out.push_str("export ");
                out.push_str(&<$t as TS>::decl(&cfg));
                out.push_str("\n\n");
            )*};
        }
        declare!(
            Code,
            Remedy,
            Report,
            Retry,
            Question,
            PromptEvent,
            SsmStatus,
            Unreachable,
            Row,
            Progress,
            SessionState,
            Mode,
            AppView,
            IdentityKindView,
            IdentityView,
            SignedIn,
            SandboxCode,
            SessionView,
            ListingUpdate,
            OpenShell,
            AddProfile,
        );
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    }

    #[test]
    fn the_ui_bindings_match_the_rust_types() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ui/src/ipc/bindings.ts");
        let want = declarations();
        if std::env::var_os("POSTERN_WRITE_BINDINGS").is_some() {
            std::fs::create_dir_all(path.parent().expect("a folder")).expect("ui/src/ipc");
            std::fs::write(&path, &want).expect("write the bindings");
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "{} does not match the Rust types: run `make bindings` and commit it",
            path.display()
        );
    }
}
