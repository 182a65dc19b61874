// The desktop's IPC types, generated from the Rust ones by `make bindings` (src-tauri/src/ipc.rs).
// Do not edit: `make test` fails when this file and the Rust types differ.

export type Code = "mfa_required" | "mfa_rejected" | "cancelled" | "no_credentials" | "bad_keys" | "access_denied" | "target_not_connected" | "in_other_region" | "no_such_instance" | "expired" | "session_refused" | "no_keychain" | "network" | "throttled" | "bad_profile" | "bad_settings" | "no_region" | "bad_input" | "unsupported" | "aws" | "internal";

export type Remedy = { "remedy": "none" } | { "remedy": "sign_in", 
/**
 * The profile.
 */
profile: string, } | { "remedy": "sign_in_again" } | { "remedy": "store_keys", 
/**
 * The profile.
 */
profile: string, } | { "remedy": "replace_keys" } | { "remedy": "check_device", 
/**
 * The device.
 */
serial: string, } | { "remedy": "choose_profile" } | { "remedy": "choose_region" } | { "remedy": "use_region", 
/**
 * Where the instance is.
 */
region: string, } | { "remedy": "check_instance", 
/**
 * The instance.
 */
target: string, } | { "remedy": "ask_for_access" } | { "remedy": "check_clock" } | { "remedy": "renew_credentials" } | { "remedy": "unlock_keychain" } | { "remedy": "fix_file", 
/**
 * Which file, if known.
 */
path: string | null, } | { "remedy": "check_network" } | { "remedy": "try_again" } | { "remedy": "list_instances" } | { "remedy": "remove_keychain_entry", 
/**
 * The entry.
 */
entry: string, };

export type Report = { 
/**
 * What kind of problem.
 */
code: Code, 
/**
 * The sentence.
 */
message: string, } & ({ "remedy": "none" } | { "remedy": "sign_in", 
/**
 * The profile.
 */
profile: string, } | { "remedy": "sign_in_again" } | { "remedy": "store_keys", 
/**
 * The profile.
 */
profile: string, } | { "remedy": "replace_keys" } | { "remedy": "check_device", 
/**
 * The device.
 */
serial: string, } | { "remedy": "choose_profile" } | { "remedy": "choose_region" } | { "remedy": "use_region", 
/**
 * Where the instance is.
 */
region: string, } | { "remedy": "check_instance", 
/**
 * The instance.
 */
target: string, } | { "remedy": "ask_for_access" } | { "remedy": "check_clock" } | { "remedy": "renew_credentials" } | { "remedy": "unlock_keychain" } | { "remedy": "fix_file", 
/**
 * Which file, if known.
 */
path: string | null, } | { "remedy": "check_network" } | { "remedy": "try_again" } | { "remedy": "list_instances" } | { "remedy": "remove_keychain_entry", 
/**
 * The entry.
 */
entry: string, });

export type Retry = "rejected" | "already_used" | "malformed";

export type Question = { 
/**
 * Its id, for the answer.
 */
id: number, 
/**
 * The device.
 */
serial: string, 
/**
 * The profile that owns the device, when known.
 */
owner: string | null, 
/**
 * Every profile waiting on the code, in the order they asked.
 */
waiting: Array<string>, 
/**
 * Why the previous answer was not taken, when asking again.
 */
retry: Retry | null, 
/**
 * The question in a sentence (no code in it).
 */
message: string, };

export type PromptEvent = { "event": "asking" } & Question | { "event": "settled", 
/**
 * Its id.
 */
id: number, };

export type SsmStatus = "online" | "connection_lost" | "inactive" | "not_managed" | "unknown";

export type Unreachable = { "code": "not_running", 
/**
 * Its EC2 state.
 */
state: string, } | { "code": "not_managed" } | { "code": "offline", 
/**
 * Connection lost or inactive.
 */
status: SsmStatus, } | { "code": "ssm_status_unknown" } | { "code": "agent_too_old", 
/**
 * Its version.
 */
version: string, 
/**
 * The version needed.
 */
needed: string, } | { "code": "outside_tag_rules" } | { "code": "tag_rules_invalid" } | { "code": "denied", 
/**
 * When (seconds since the Unix epoch).
 */
at: number, };

export type Row = { 
/**
 * `i-…`, or `mi-…` for a hybrid node.
 */
id: string, 
/**
 * The `Name` tag (for a hybrid node, its registered name).
 */
name: string | null, 
/**
 * The EC2 state (`running`, `stopped`…); `None` for a hybrid node.
 */
state: string | null, 
/**
 * The platform (`Linux/UNIX`, `Windows`…).
 */
platform: string | null, 
/**
 * The private IPv4 address.
 */
private_ip: string | null, 
/**
 * Every tag.
 */
tags: { [key in string]: string }, 
/**
 * What Systems Manager says.
 */
ssm_status: SsmStatus, 
/**
 * The SSM Agent's version, when registered.
 */
agent_version: string | null, 
/**
 * The agent's last ping (RFC 3339), when registered.
 */
last_ping: string | null, 
/**
 * The account id.
 */
account: string, 
/**
 * The account's alias, when one is set.
 */
account_alias: string | null, 
/**
 * The region.
 */
region: string, 
/**
 * The profile it was listed with (`environment` for the environment's credentials).
 */
identity: string, 
/**
 * Whether a session can be opened on it, as far as Postern can tell without trying.
 */
reachable: boolean, 
/**
 * Why not, when it is not.
 */
unreachable: Unreachable | null, 
/**
 * Whether its agent can forward ports to another host.
 */
remote_host_tunnels: boolean, };

export type Progress = { 
/**
 * Parts finished (listed, gathered, or failed).
 */
done: number, 
/**
 * Parts known so far (grows while identities' regions are learned).
 */
total: number, 
/**
 * Calls waiting out throttling right now.
 */
throttled: number, };

export type SessionState = "connecting" | "live" | "resuming" | "ended";

export type Mode = "first_run" | "aws" | "sandbox" | "broken";

export type AppView = { 
/**
 * The app's version.
 */
version: string, 
/**
 * A debug build (xterm then draws with the DOM renderer, which tests can read).
 */
debug_build: boolean, 
/**
 * What the window shows Postern on.
 */
mode: Mode, 
/**
 * Started with `--sandbox`: skip the first run, sign in at once.
 */
launch_sandbox: boolean, 
/**
 * The identities to switch between.
 */
identities: Array<IdentityView>, 
/**
 * The identity new sessions use.
 */
active: string | null, 
/**
 * Who the active identity is, once signed in.
 */
signed_in: SignedIn | null, 
/**
 * Why Postern could not load, in [`Mode::Broken`].
 */
problem: Report | null, 
/**
 * The files Postern read profiles from (shown on the first run).
 */
looked_in: Array<string>, };

export type IdentityKindView = "role" | "keys" | "sso" | "other";

export type IdentityView = { 
/**
 * The profile.
 */
profile: string, 
/**
 * What it is.
 */
kind: IdentityKindView, 
/**
 * The role's name, for a role.
 */
role: string | null, 
/**
 * The account, when known.
 */
account: string | null, 
/**
 * The account's alias.
 */
alias: string | null, 
/**
 * Whether it needs an MFA code.
 */
mfa: boolean, 
/**
 * Its region.
 */
region: string | null, 
/**
 * A favourite.
 */
favourite: boolean, 
/**
 * Why it cannot be used.
 */
problem: string | null, };

export type SignedIn = { 
/**
 * The profile (`None`: the environment's keys).
 */
profile: string | null, 
/**
 * The account.
 */
account: string, 
/**
 * The caller's ARN.
 */
arn: string, 
/**
 * The role, for an assumed role.
 */
role: string | null, 
/**
 * When the MFA session ends (Unix seconds), when one is used.
 */
mfa_until: number | null, 
/**
 * The region new sessions open in.
 */
region: string | null, };

export type SandboxCode = { 
/**
 * Six digits.
 */
code: string, 
/**
 * Seconds until the device shows the next one.
 */
seconds_left: number, };

export type SessionView = { 
/**
 * The session id.
 */
id: string, 
/**
 * The instance.
 */
target: string, 
/**
 * The profile it was opened with.
 */
profile: string | null, 
/**
 * The region.
 */
region: string, 
/**
 * What it is (`shell`).
 */
kind: string, 
/**
 * Where it stands.
 */
state: SessionState, 
/**
 * When it opened (Unix seconds).
 */
started: number, 
/**
 * How it ended, in a sentence, once it has.
 */
end: string | null, 
/**
 * The problem it ended with, when it did not end well.
 */
problem: Report | null, 
/**
 * While resuming: why the connection dropped.
 */
note: string | null, };

export type ListingUpdate = { "kind": "progress" } & Progress | { "kind": "part", 
/**
 * The identity.
 */
identity: string, 
/**
 * The region (empty when the identity could not be used).
 */
region: string, 
/**
 * Its instances.
 */
rows: Array<Row>, 
/**
 * Why it could not be listed.
 */
problem: string | null, 
/**
 * What the rows do not show.
 */
note: string | null, };

export type OpenShell = { 
/**
 * The identity (`None`: the active one).
 */
profile: string | null, 
/**
 * The instance id.
 */
instance: string, 
/**
 * Its region (`None`: the identity's).
 */
region: string | null, };

export type AddProfile = { 
/**
 * The profile's name.
 */
profile: string, 
/**
 * The access key id (`AKIA…`).
 */
access_key_id: string, 
/**
 * The secret key, typed into a password field.
 */
secret_access_key: string, 
/**
 * The region.
 */
region: string, 
/**
 * The user's MFA device, if it has one.
 */
mfa_serial: string | null, };
