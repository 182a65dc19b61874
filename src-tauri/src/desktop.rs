//! What the app holds for its life: Postern (on the user's AWS profiles, or on the sandbox),
//! the window's MFA prompt, the active identity. Nothing here knows Tauri: the commands in
//! [`crate::commands`] are thin wrappers over these methods, so the state is tested without a
//! window. The UI holds nothing core does not own: a reloaded webview asks [`Desktop::view`]
//! and finds everything still there.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use postern_core::aws::AwsAccess;
use postern_core::credentials::{Selection, unix_now};
use postern_core::identity::Catalog;
use postern_core::inventory;
use postern_core::inventory::listing::{Event, Listing, Request, Scope, role_of};
use postern_core::mfa::window::{PromptEvent, Question, WindowPrompt};
use postern_core::profile::add::{NewProfile, add_profile};
use postern_core::registry::{About, Registry};
use postern_core::remedy::{Code, Remedy, Report};
use postern_core::sandbox_mode::ROLE_PROFILE;
use postern_core::sensitive::{Secret, Sensitive};
use postern_core::session::{self, SessionId, SessionOptions, SessionRequest};
use postern_core::settings::State;
use postern_core::{Postern, Setup};
use tokio::sync::mpsc;

use crate::ipc::{
    AddProfile, AppView, IdentityView, ListingUpdate, Mode, OpenShell, SandboxCode, SessionView,
    SignedIn,
};
use crate::sandbox::Sandbox;

/// A problem of the app itself (not one of core's errors), for the window.
pub(crate) fn problem(code: Code, message: impl Into<String>) -> Report {
    Report {
        code,
        message: message.into(),
        remedy: Remedy::None,
    }
}

/// Postern as loaded, with what sandbox mode adds.
struct Loaded {
    postern: Postern,
    /// The sandbox, in sandbox mode (dropping it stops it).
    sandbox: Option<Sandbox>,
    /// The identity new sessions use (`None`: the environment's keys).
    active: Option<String>,
    /// Who it is, once signed in.
    signed_in: Option<SignedIn>,
}

enum World {
    Loaded(Box<Loaded>),
    /// Postern could not load: why.
    Broken(Report),
}

/// The app's state.
pub struct Desktop {
    prompt: WindowPrompt,
    launch_sandbox: bool,
    world: Mutex<World>,
    /// One sandbox start at a time.
    starting: tokio::sync::Mutex<()>,
}

impl Desktop {
    /// Load Postern on this process's AWS files and settings; the MFA questions for the window
    /// come out of the receiver.
    pub fn load(launch_sandbox: bool) -> (Self, mpsc::UnboundedReceiver<PromptEvent>) {
        let (prompt, questions) = WindowPrompt::new();
        let world = match Postern::load(Arc::new(prompt.clone())) {
            Ok(postern) => World::Loaded(Box::new(Loaded::new(postern, None))),
            Err(error) => World::Broken(Report::of(&error)),
        };
        let desktop = Self {
            prompt,
            launch_sandbox,
            world: Mutex::new(world),
            starting: tokio::sync::Mutex::new(()),
        };
        (desktop, questions)
    }

    fn world(&self) -> MutexGuard<'_, World> {
        // Every change completes under the lock; a poisoned one still guards a whole world.
        self.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_loaded<T>(&self, f: impl FnOnce(&mut Loaded) -> T) -> Result<T, Report> {
        match &mut *self.world() {
            World::Loaded(loaded) => Ok(f(loaded)),
            World::Broken(report) => Err(report.clone()),
        }
    }

    /// The live sessions and tunnels.
    pub fn registry(&self) -> Result<Registry, Report> {
        self.with_loaded(|l| l.postern.registry().clone())
    }

    /// The app as the window starts from.
    pub fn view(&self) -> AppView {
        let mut view = AppView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            debug_build: cfg!(debug_assertions),
            mode: Mode::Broken,
            launch_sandbox: self.launch_sandbox,
            identities: Vec::new(),
            active: None,
            signed_in: None,
            problem: None,
            looked_in: Vec::new(),
        };
        match &*self.world() {
            World::Broken(report) => view.problem = Some(report.clone()),
            World::Loaded(loaded) => {
                let resolver = loaded.postern.resolver();
                let setup = loaded.postern.setup();
                let state = State::load(resolver.paths()).unwrap_or_default();
                let catalog = Catalog::new(resolver.profiles(), resolver.settings(), &state);
                view.identities = catalog
                    .identities()
                    .iter()
                    .map(IdentityView::from)
                    .collect();
                view.mode = if loaded.sandbox.is_some() {
                    Mode::Sandbox
                } else if resolver.profiles().is_empty()
                    && setup.environment.access_key_id.is_none()
                {
                    Mode::FirstRun
                } else {
                    Mode::Aws
                };
                view.active = loaded.active.clone();
                view.signed_in = loaded.signed_in.clone();
                view.looked_in = vec![
                    setup.files.config.display().to_string(),
                    setup.files.credentials.display().to_string(),
                ];
            }
        }
        view
    }

    /// Start the sandbox and put Postern on it (once; again returns the same). Refused while
    /// sessions or tunnels of the user's own AWS are open (they would be left behind).
    pub async fn start_sandbox(&self) -> Result<AppView, Report> {
        let _one = self.starting.lock().await;
        let running = self.with_loaded(|l| l.sandbox.is_some()).unwrap_or(false);
        if running {
            return Ok(self.view());
        }
        if let Ok(registry) = self.registry()
            && (!registry.sessions().is_empty() || !registry.tunnels().is_empty())
        {
            return Err(problem(
                Code::BadInput,
                "Close your open sessions and tunnels before you try the sandbox.",
            ));
        }
        let prompt = self.prompt.clone();
        // Starting it blocks (a child, its start line, files); so does dropping it on a
        // failure (it waits for the child to go): all of it off the async threads.
        let started = tokio::task::spawn_blocking(move || -> Result<_, Report> {
            let sandbox = Sandbox::start(&std::env::temp_dir())
                .map_err(|e| problem(Code::Internal, e.to_string()))?;
            let setup = Setup::for_sandbox(sandbox.start_line(), &sandbox.state_folder())
                .map_err(|e| Report::of(&e))?;
            let postern = Postern::at(setup, Arc::new(prompt)).map_err(|e| Report::of(&e))?;
            Ok(Loaded::new(postern, Some(sandbox)))
        })
        .await
        .map_err(|e| problem(Code::Internal, format!("the sandbox's start failed: {e}")))??;
        let previous = std::mem::replace(&mut *self.world(), World::Loaded(Box::new(started)));
        // Whatever opened on the user's AWS while the sandbox started is ended, not orphaned.
        if let World::Loaded(old) = previous {
            old.postern.registry().close_all().await;
            let _ = tokio::task::spawn_blocking(move || drop(old)).await;
        }
        Ok(self.view())
    }

    /// Add a profile for an IAM user's keys (keys to the keychain, a section to the AWS config)
    /// and make it the active one; the window then signs in to it.
    pub async fn add_profile(&self, form: AddProfile) -> Result<AppView, Report> {
        let AddProfile {
            profile,
            access_key_id,
            secret_access_key,
            region,
            mfa_serial,
        } = form;
        let new = NewProfile {
            name: profile.trim().to_owned(),
            access_key_id: access_key_id.trim().to_owned(),
            secret_access_key: Secret::new(secret_access_key.trim()),
            region: region.trim().to_owned(),
            mfa_serial: mfa_serial
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        };
        // The typed secret, as it came over IPC, is wiped now that it is wrapped.
        drop(Sensitive::<String>::new(secret_access_key));
        // Not while the sandbox starts (the world is about to change).
        let _one = self.starting.lock().await;
        let (files, keychain) = self.with_loaded(|l| {
            if l.sandbox.is_some() {
                return Err(problem(
                    Code::BadInput,
                    "Postern is on the sandbox: profiles are added to your own AWS config, outside it.",
                ));
            }
            let resolver = l.postern.resolver();
            Ok((l.postern.setup().files.clone(), resolver.keychain().clone()))
        })??;
        let name = new.name.clone();
        // The keychain (D-Bus, perhaps an unlock prompt) and the file: off the async threads.
        tokio::task::spawn_blocking(move || add_profile(&files, &keychain, new))
            .await
            .map_err(|e| problem(Code::Internal, format!("adding the profile failed: {e}")))?
            .map_err(|e| Report::of(&e))?;
        self.with_loaded(|l| {
            l.active = Some(name.clone());
            l.signed_in = None;
            l.postern.reload().map_err(|e| {
                let mut report = Report::of(&e);
                report.message = format!(
                    "Profile {name} was added, but Postern cannot read your AWS files again: {}",
                    report.message
                );
                report
            })
        })??;
        Ok(self.view())
    }

    /// The code the sandbox's demo device shows now.
    pub fn sandbox_code(&self) -> Result<SandboxCode, Report> {
        let now = unix_now();
        self.with_loaded(|l| {
            let demo = l
                .sandbox
                .as_ref()
                .and_then(Sandbox::demo)
                .ok_or_else(|| problem(Code::BadInput, "Postern is not on the sandbox."))?;
            let code = demo
                .code_at(now)
                .map_err(|e| problem(Code::Internal, e.to_string()))?;
            Ok(SandboxCode {
                code,
                seconds_left: 30 - now % 30,
            })
        })?
    }

    /// Make `profile` (else the active identity) the active one and sign in to it: an MFA
    /// question goes to the window when a code is needed.
    pub async fn sign_in(&self, profile: Option<String>) -> Result<SignedIn, Report> {
        let (resolver, active) = self.with_loaded(|l| {
            (
                l.postern.resolver().clone(),
                profile.clone().or_else(|| l.active.clone()),
            )
        })?;
        let selection = Selection::from_option(active.as_deref());
        let (resolved, account, arn, _) = resolver
            .whoami(&selection)
            .await
            .map_err(|e| Report::of(&e))?;
        let mfa_until = resolver
            .login(&selection)
            .await
            .map_err(|e| Report::of(&e))?
            .and_then(|(_, until)| until.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let signed_in = SignedIn {
            profile: resolved.profile.clone(),
            account,
            role: role_of(&arn),
            arn,
            mfa_until,
            region: resolved.region.clone(),
        };
        if let Some(profile) = resolved.profile.clone() {
            // State's lock may wait on another Postern process: off the async threads.
            let paths = resolver.paths().clone();
            let _ = tokio::task::spawn_blocking(move || {
                State::update(&paths, |s| s.used(&profile, unix_now()))
            })
            .await;
        }
        self.with_loaded(|l| {
            // Only if Postern is still the one signed in to (not replaced meanwhile).
            if Arc::ptr_eq(l.postern.resolver(), &resolver) {
                l.active = resolved.profile.clone();
                l.signed_in = Some(signed_in.clone());
            }
        })?;
        Ok(signed_in)
    }

    /// Answer MFA question `id` (the code is dropped here; it went to the resolver).
    pub fn answer_mfa(&self, id: u64, code: String) -> bool {
        let code = Sensitive::new(code);
        self.prompt.answer(id, code.expose_str())
    }

    /// Cancel MFA question `id`: everything waiting on it fails with "cancelled".
    pub fn cancel_mfa(&self, id: u64) -> bool {
        self.prompt.cancel(id)
    }

    /// The MFA questions open now (for a reloaded window).
    pub fn pending_mfa(&self) -> Vec<Question> {
        self.prompt.pending()
    }

    /// List the instances of `profile` (else the active identity), sending updates as they
    /// come; returns when everything is listed.
    pub async fn list_instances(
        &self,
        profile: Option<String>,
        send: impl Fn(ListingUpdate),
    ) -> Result<(), Report> {
        let (resolver, profile) = self.with_loaded(|l| {
            (
                l.postern.resolver().clone(),
                profile.or_else(|| l.active.clone()),
            )
        })?;
        let scope = Scope::active(&resolver, profile.as_deref(), None)
            .await
            .map_err(|e| Report::of(&e))?;
        let request = Request::for_scopes(resolver, vec![scope]).map_err(|e| Report::of(&e))?;
        let mut listing = Listing::start(request);
        while let Some(event) = listing.next().await {
            send(match event {
                Event::Progress(progress) => ListingUpdate::Progress(progress),
                Event::Part(part) => ListingUpdate::Part {
                    identity: part.identity,
                    region: part.region,
                    rows: part.rows,
                    problem: part.problem,
                    note: part.note,
                },
            });
        }
        Ok(())
    }

    /// Open a shell and hand it to the registry.
    pub async fn open_shell(&self, ask: OpenShell) -> Result<SessionView, Report> {
        let (resolver, registry, profile) = self.with_loaded(|l| {
            (
                l.postern.resolver().clone(),
                l.postern.registry().clone(),
                ask.profile.clone().or_else(|| l.active.clone()),
            )
        })?;
        inventory::check_instance_id(&ask.instance).map_err(|e| Report::of(&e))?;
        // Where else the instance may be, if AWS says it is not here.
        let regions = resolver.profile_regions();
        let access = AwsAccess::new(
            resolver,
            Selection::from_option(profile.as_deref()),
            ask.region.as_deref(),
        )
        .await
        .map_err(|e| Report::of(&e))?;
        let ssm = access.ssm();
        let shell = match session::open(
            &ssm,
            SessionRequest::shell(&ask.instance),
            SessionOptions::default(),
        )
        .await
        {
            Ok(shell) => shell,
            Err(refusal) => {
                // A refusal that stands is remembered (the row says "denied when last tried");
                // an instance in another region or nowhere is said as such.
                let explained =
                    inventory::explain_refusal(&access, &ask.instance, refusal, &regions).await;
                return Err(Report::of(&explained));
            }
        };
        let id = registry.adopt(
            shell,
            About {
                target: ask.instance.clone(),
                profile,
                region: ssm.region().to_owned(),
                kind: "shell".into(),
            },
        );
        self.session(&id)
            .ok_or_else(|| problem(Code::Internal, "the session vanished as it opened"))
    }

    /// Session `id` as a tab shows it.
    pub fn session(&self, id: &SessionId) -> Option<SessionView> {
        let info = self.registry().ok()?.info(id)?;
        Some(SessionView::of(&info, None))
    }

    /// Every session of the registry.
    pub fn sessions(&self) -> Vec<SessionView> {
        self.registry()
            .map(|r| {
                r.sessions()
                    .iter()
                    .map(|s| SessionView::of(s, None))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Type into session `id`.
    pub async fn send_input(&self, id: &SessionId, bytes: Vec<u8>) -> Result<(), Report> {
        let writer = self.writer(id)?;
        writer
            .send(bytes)
            .await
            .map_err(|_| problem(Code::BadInput, "The session has ended: input is closed."))
    }

    /// The terminal of session `id` is now `cols` × `rows`.
    pub async fn resize(&self, id: &SessionId, cols: u32, rows: u32) -> Result<(), Report> {
        let writer = self.writer(id)?;
        // An ended session has no size to change: nothing to say.
        let _ = writer
            .resize(cols.clamp(1, 1000), rows.clamp(1, 1000))
            .await;
        Ok(())
    }

    fn writer(&self, id: &SessionId) -> Result<postern_core::session::SessionWriter, Report> {
        self.registry()?
            .writer(id)
            .ok_or_else(|| problem(Code::BadInput, format!("No session {id} is open.")))
    }

    /// End session `id` (Session Manager is told) and forget it.
    pub async fn close_session(&self, id: &SessionId) -> Result<(), Report> {
        let registry = self.registry()?;
        registry.close(id).await;
        registry.forget(id).await;
        Ok(())
    }

    /// The app quits: end every session and tunnel, stop the sandbox.
    pub async fn shut_down(&self) {
        if let Ok(registry) = self.registry() {
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), registry.close_all()).await;
        }
        let previous = std::mem::replace(
            &mut *self.world(),
            World::Broken(problem(Code::Internal, "Postern is quitting.")),
        );
        drop(previous);
    }
}

impl Loaded {
    fn new(postern: Postern, sandbox: Option<Sandbox>) -> Self {
        let active = if sandbox.is_some() {
            Some(ROLE_PROFILE.to_owned())
        } else {
            default_identity(&postern)
        };
        Self {
            postern,
            sandbox,
            active,
            signed_in: None,
        }
    }
}

/// The identity a window starts with: `AWS_PROFILE`, else the environment's keys, else the
/// most recently used profile, else `default`, else the first profile.
fn default_identity(postern: &Postern) -> Option<String> {
    let setup = postern.setup();
    if let Some(profile) = &setup.environment.profile {
        return Some(profile.clone());
    }
    if setup.environment.access_key_id.is_some() {
        return None;
    }
    let profiles = postern.resolver().profiles();
    let state = State::load(postern.resolver().paths()).unwrap_or_default();
    state
        .recents
        .iter()
        .map(|r| r.profile.clone())
        .find(|p| profiles.get(p).is_some())
        .or_else(|| profiles.get("default").map(|_| "default".to_owned()))
        .or_else(|| profiles.iter().next().map(|p| p.name.clone()))
}
