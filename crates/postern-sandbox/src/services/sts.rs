//! AWS STS: GetCallerIdentity, GetSessionToken and AssumeRole, with MFA codes, trust policies,
//! source identity, session tags and the duration limits enforced as AWS enforces them.
//!
//! Choices where AWS's documents leave room (see `docs/aws-wire-reference.md`):
//! - A trust policy that names the caller's own ARN (user, role, or role session) is enough on
//!   its own within one account; one that names only the account (`…:root` or the id) also needs
//!   an identity policy of the caller allowing the action; across accounts both are always needed.
//!   This holds for `sts:AssumeRole`, and for `sts:SetSourceIdentity` and `sts:TagSession` when
//!   the request sets a source identity or tags (or the caller's session carries a source
//!   identity, which a role chain keeps and may not change).
//! - MFA context carries over: credentials from GetSessionToken with MFA, and roles assumed with
//!   MFA or from such credentials, present `aws:MultiFactorAuthPresent = true` to the next hop.
//! - The model's `ExpiredTokenException` is the web-identity error; expired session credentials
//!   get `ExpiredToken` (403), as AWS answers.
//! - Session policies (`Policy`, `PolicyArns`) are not evaluated, so a request carrying them is
//!   refused with a `ValidationError` that says so, rather than granting more than AWS would.

use serde_json::json;
use time::Duration;

use crate::iam::{Caller, Issuer, Principal, SessionFacts};
use crate::mfa::CodeRejection;
use crate::policy::{self, Decision, PrincipalSpec, RequestContext};
use crate::services::Call;
use crate::trail::{self, Outcome};
use crate::wire::query::Params;
use crate::wire::xml::Writer;
use crate::wire::{AwsError, Service, is_iam_name, iso_seconds, validation};
use crate::world::{IssuedCredentials, World};

const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
const VERSION: &str = "2011-06-15";

/// Run the STS action named in `params` and render its answer.
pub fn handle(world: &mut World, call: &Call<'_>, params: &Params) -> Result<String, AwsError> {
    if let Some(version) = params.get("Version")
        && version != VERSION
    {
        return Err(AwsError::bad_request(
            "InvalidAction",
            format!(
                "Could not find operation {} for version {version}",
                params.get("Action").unwrap_or("")
            ),
        ));
    }
    match params.get("Action") {
        Some("GetCallerIdentity") => Ok(get_caller_identity(call)),
        Some("GetSessionToken") => get_session_token(world, call, params),
        Some("AssumeRole") => assume_role(world, call, params),
        Some(other) => Err(AwsError::bad_request(
            "InvalidAction",
            format!("Could not find operation {other} for version {VERSION}"),
        )),
        None => Err(AwsError::bad_request("MissingAction", "Missing Action")),
    }
}

fn respond(action: &str, request_id: &str, body: impl FnOnce(&mut Writer)) -> String {
    let mut x = Writer::document();
    x.open_ns(&format!("{action}Response"), NAMESPACE);
    x.open(&format!("{action}Result"));
    body(&mut x);
    x.close(&format!("{action}Result"));
    x.open("ResponseMetadata");
    x.leaf("RequestId", request_id);
    x.close("ResponseMetadata");
    x.close(&format!("{action}Response"));
    x.finish()
}

fn write_credentials(x: &mut Writer, credentials: &IssuedCredentials) {
    x.open("Credentials");
    x.leaf("AccessKeyId", &credentials.access_key_id);
    x.leaf("SecretAccessKey", &credentials.secret_access_key);
    x.leaf("SessionToken", &credentials.session_token);
    x.leaf("Expiration", &iso_seconds(credentials.expires));
    x.close("Credentials");
}

/// `responseElements.credentials` as CloudTrail writes them: no secret key.
fn trail_credentials(credentials: &IssuedCredentials) -> serde_json::Value {
    json!({
        "accessKeyId": credentials.access_key_id,
        "sessionToken": credentials.session_token,
        "expiration": trail::console_time(credentials.expires),
    })
}

fn get_caller_identity(call: &Call<'_>) -> String {
    let principal = &call.caller.principal;
    respond("GetCallerIdentity", call.request_id, |x| {
        x.leaf("UserId", &principal.user_id());
        x.leaf("Account", principal.account());
        x.leaf("Arn", &principal.arn());
    })
}

fn invalid_number(name: &str, text: &str) -> AwsError {
    AwsError::bad_request(
        "ValidationError",
        format!(
            "1 validation error detected: Value '{text}' at '{}' failed to satisfy constraint: Member must be a number",
            lower_first(name)
        ),
    )
}

fn lower_first(name: &str) -> String {
    crate::wire::json::lower_first(name)
}

fn check_duration(params: &Params, default: i64, max: i64) -> Result<i64, AwsError> {
    let seconds = params
        .integer("DurationSeconds", invalid_number)?
        .unwrap_or(default);
    if seconds < 900 {
        return Err(validation(
            "ValidationError",
            "durationSeconds",
            Some(&seconds.to_string()),
            "Member must have value greater than or equal to 900",
        ));
    }
    if seconds > max {
        return Err(validation(
            "ValidationError",
            "durationSeconds",
            Some(&seconds.to_string()),
            &format!("Member must have value less than or equal to {max}"),
        ));
    }
    Ok(seconds)
}

/// The MFA parameters of a request, checked for shape.
fn mfa_parameters(params: &Params) -> Result<Option<(String, String)>, AwsError> {
    match (params.get("SerialNumber"), params.get("TokenCode")) {
        (None, None) => Ok(None),
        (Some(_), None) | (None, Some(_)) => Err(AwsError::forbidden(
            "AccessDenied",
            "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code.",
        )),
        (Some(serial), Some(code)) => {
            if serial.len() < 9 || serial.len() > 256 {
                return Err(validation(
                    "ValidationError",
                    "serialNumber",
                    Some(serial),
                    "Member must have length greater than or equal to 9",
                ));
            }
            if code.len() != 6 {
                let constraint = if code.len() < 6 {
                    "Member must have length greater than or equal to 6"
                } else {
                    "Member must have length less than or equal to 6"
                };
                return Err(validation(
                    "ValidationError",
                    "tokenCode",
                    Some(code),
                    constraint,
                ));
            }
            if !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(validation(
                    "ValidationError",
                    "tokenCode",
                    Some(code),
                    "Member must satisfy regular expression pattern: [\\d]*",
                ));
            }
            Ok(Some((serial.to_owned(), code.to_owned())))
        }
    }
}

/// Check an MFA code for the calling user's device.
fn verify_mfa(
    world: &mut World,
    caller: &Caller,
    serial: &str,
    code: &str,
) -> Result<(), AwsError> {
    let now = world.now();
    let owner_matches = |account: &str, user: &str| match &caller.principal {
        Principal::User {
            account: a, name, ..
        } => a == account && name == user,
        Principal::AssumedRole { .. } => false,
    };
    let device = match world.mfa_devices.get_mut(serial) {
        Some((account, user, device)) if owner_matches(account, user) => device,
        _ => {
            return Err(AwsError::forbidden(
                "AccessDenied",
                "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.",
            ));
        }
    };
    match device.verify(code, now) {
        Ok(()) => Ok(()),
        Err(CodeRejection::Invalid | CodeRejection::Reused) => Err(AwsError::forbidden(
            "AccessDenied",
            "MultiFactorAuthentication failed with invalid MFA one time pass code. ",
        )),
    }
}

fn get_session_token(
    world: &mut World,
    call: &Call<'_>,
    params: &Params,
) -> Result<String, AwsError> {
    let caller = call.caller;
    if caller.is_temporary() {
        return Err(AwsError::forbidden(
            "AccessDenied",
            "Cannot call GetSessionToken with session credentials",
        ));
    }
    if !matches!(caller.principal, Principal::User { .. }) {
        return Err(AwsError::forbidden(
            "AccessDenied",
            "GetSessionToken is only for IAM users",
        ));
    }
    let seconds = check_duration(params, 43_200, 129_600)?;
    let mfa = mfa_parameters(params)?;
    if let Some((serial, code)) = &mfa {
        verify_mfa(world, caller, serial, code)?;
    }
    let now = world.now();
    let facts = SessionFacts {
        issuer: Issuer::SessionToken,
        issued: now,
        expires: now + Duration::seconds(seconds),
        mfa_authenticated_at: mfa.is_some().then_some(now),
        source_identity: None,
        tags: Vec::new(),
    };
    let credentials = world.issue_temporary(caller.principal.clone(), facts);
    trail::record(
        world,
        call,
        Outcome {
            name: "GetSessionToken",
            service: Service::Sts,
            request: trail::sts_request("GetSessionToken", params),
            response: Some(json!({ "credentials": trail_credentials(&credentials) })),
            error: None,
            resources: vec![(
                "AWS::IAM::AccessKey".into(),
                credentials.access_key_id.clone(),
            )],
            also_in: None,
        },
    );
    Ok(respond("GetSessionToken", call.request_id, |x| {
        write_credentials(x, &credentials)
    }))
}

/// How a trust-policy statement's principal covers the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PrincipalMatch {
    /// It does not.
    None,
    /// Through the caller's account (`…:root`, the account id, or `*`).
    Account,
    /// By the caller's own ARN.
    Specific,
}

fn principal_match(spec: Option<&PrincipalSpec>, caller: &Principal) -> PrincipalMatch {
    let Some(spec) = spec else {
        return PrincipalMatch::None;
    };
    match spec {
        PrincipalSpec::Anyone => PrincipalMatch::Account,
        PrincipalSpec::Other => PrincipalMatch::None,
        PrincipalSpec::Aws(entries) => {
            let account = caller.account();
            let own = [caller.arn(), caller.principal_arn()];
            entries.iter().fold(PrincipalMatch::None, |best, entry| {
                let this = if own.iter().any(|arn| arn == entry) {
                    PrincipalMatch::Specific
                } else if entry == account || *entry == format!("arn:aws:iam::{account}:root") {
                    PrincipalMatch::Account
                } else {
                    PrincipalMatch::None
                };
                best.max(this)
            })
        }
    }
}

/// Whether `caller` may perform the STS `action` on `role_arn`, given the role's trust policy.
fn trust_allows(
    world: &World,
    caller: &Caller,
    trust: &policy::PolicyDocument,
    role_account: &str,
    action: &str,
    role_arn: &str,
    keys: &std::collections::BTreeMap<String, String>,
) -> bool {
    let context = RequestContext {
        action,
        resource: role_arn,
        keys,
    };
    let mut best = PrincipalMatch::None;
    for statement in &trust.statements {
        let reach = principal_match(statement.principal.as_ref(), &caller.principal);
        if reach == PrincipalMatch::None || !statement.matches(&context) {
            continue;
        }
        match statement.effect {
            policy::Effect::Deny => return false,
            policy::Effect::Allow => best = best.max(reach),
        }
    }
    if best == PrincipalMatch::None {
        return false;
    }
    let identity = policy::evaluate(world.identity_policies(&caller.principal), &context);
    let needs_identity =
        best == PrincipalMatch::Account || caller.principal.account() != role_account;
    match identity {
        Decision::ExplicitlyDenied => false,
        Decision::Allowed => true,
        Decision::ImplicitlyDenied => !needs_identity,
    }
}

fn assume_role(world: &mut World, call: &Call<'_>, params: &Params) -> Result<String, AwsError> {
    let caller = call.caller;
    let role_arn = params.get("RoleArn").ok_or_else(|| {
        validation(
            "ValidationError",
            "roleArn",
            None,
            "Member must not be null",
        )
    })?;
    let session_name = params.get("RoleSessionName").ok_or_else(|| {
        validation(
            "ValidationError",
            "roleSessionName",
            None,
            "Member must not be null",
        )
    })?;
    if role_arn.len() < 20 {
        return Err(validation(
            "ValidationError",
            "roleArn",
            Some(role_arn),
            "Member must have length greater than or equal to 20",
        ));
    }
    check_name("roleSessionName", session_name, 64)?;
    let source_identity = params.get("SourceIdentity");
    if let Some(source) = source_identity {
        check_name("sourceIdentity", source, 64)?;
        if source.to_ascii_lowercase().starts_with("aws:") {
            return Err(AwsError::bad_request(
                "ValidationError",
                "The source identity cannot start with the prefix \"aws:\".",
            ));
        }
    }
    if params.get("Policy").is_some() || !params.structures("PolicyArns.member").is_empty() {
        return Err(AwsError::bad_request(
            "ValidationError",
            "postern-sandbox does not evaluate session policies: send AssumeRole without Policy and PolicyArns.",
        ));
    }
    let tags = session_tags(params)?;
    let external_id = params.get("ExternalId");
    if let Some(id) = external_id
        && (id.len() < 2 || id.len() > 1224)
    {
        return Err(validation(
            "ValidationError",
            "externalId",
            Some(id),
            "Member must have length greater than or equal to 2",
        ));
    }
    let mfa = mfa_parameters(params)?;

    let denied = || {
        AwsError::forbidden(
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.principal.arn()
            ),
        )
    };
    // arn:aws:iam::<account>:role/<optional path/><name>
    let Some((role_account, role_name)) = parse_role_arn(role_arn) else {
        return Err(AwsError::bad_request(
            "ValidationError",
            format!("{role_arn} is not a valid role ARN"),
        ));
    };
    let Some(role) = world
        .accounts
        .get(role_account)
        .and_then(|a| a.roles.get(role_name))
    else {
        return Err(denied());
    };
    let (role_id, max_duration) = (role.id.clone(), role.max_session_duration);
    let chained = matches!(caller.principal, Principal::AssumedRole { .. });

    // The MFA code is checked before the trust policy, so a wrong code is reported as such.
    if let Some((serial, code)) = &mfa {
        verify_mfa(world, caller, serial, code)?;
    }
    let now = world.now();
    let inherited = caller
        .session
        .as_ref()
        .and_then(|s| s.source_identity.clone());
    if let (Some(kept), Some(asked)) = (&inherited, source_identity)
        && kept != asked
    {
        return Err(AwsError::forbidden(
            "AccessDenied",
            format!(
                "The source identity {kept} is set for this role chain and cannot be changed to {asked}."
            ),
        ));
    }
    let source_identity = source_identity.map(str::to_owned).or(inherited);
    let mfa_at = if mfa.is_some() {
        Some(now)
    } else {
        caller.session.as_ref().and_then(|s| s.mfa_authenticated_at)
    };

    let mut keys = caller.context_keys(now);
    match (mfa.is_some(), caller.mfa_present()) {
        (true, _) => {
            keys.insert("aws:multifactorauthpresent".into(), "true".into());
            keys.insert("aws:multifactorauthage".into(), "0".into());
        }
        (false, None) => {
            keys.remove("aws:multifactorauthpresent");
        }
        (false, Some(_)) => {}
    }
    keys.insert("sts:rolesessionname".into(), session_name.to_owned());
    if let Some(source) = &source_identity {
        keys.insert("sts:sourceidentity".into(), source.clone());
    }
    if let Some(id) = external_id {
        keys.insert("sts:externalid".into(), id.to_owned());
    }
    for (key, value) in &tags {
        keys.insert(
            format!("aws:requesttag/{}", key.to_ascii_lowercase()),
            value.clone(),
        );
    }

    let Some(role) = world
        .accounts
        .get(role_account)
        .and_then(|a| a.roles.get(role_name))
    else {
        return Err(denied());
    };
    let trust = role.trust.clone();
    let allows =
        |action: &str| trust_allows(world, caller, &trust, role_account, action, role_arn, &keys);
    if !allows("sts:AssumeRole") {
        return Err(denied());
    }
    if source_identity.is_some() && !allows("sts:SetSourceIdentity") {
        return Err(AwsError::forbidden(
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sts:SetSourceIdentity on resource: {role_arn}",
                caller.principal.arn()
            ),
        ));
    }
    if !tags.is_empty() && !allows("sts:TagSession") {
        return Err(AwsError::forbidden(
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: sts:TagSession on resource: {role_arn}",
                caller.principal.arn()
            ),
        ));
    }

    let requested = params.integer("DurationSeconds", invalid_number)?;
    if chained && requested.is_some_and(|s| s > 3600) {
        return Err(AwsError::bad_request(
            "ValidationError",
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if requested.is_some_and(|s| s > max_duration && s <= 43_200) {
        return Err(AwsError::bad_request(
            "ValidationError",
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    let seconds = check_duration(params, 3600, 43_200)?;

    let principal = Principal::AssumedRole {
        account: role_account.to_owned(),
        role_name: role_name.to_owned(),
        role_id: role_id.clone(),
        session_name: session_name.to_owned(),
    };
    let facts = SessionFacts {
        issuer: Issuer::AssumeRole,
        issued: now,
        expires: now + Duration::seconds(seconds),
        mfa_authenticated_at: mfa_at,
        source_identity: source_identity.clone(),
        tags: tags.clone(),
    };
    let assumed_arn = principal.arn();
    let credentials = world.issue_temporary(principal, facts);
    let mut response = json!({
        "credentials": trail_credentials(&credentials),
        "assumedRoleUser": { "assumedRoleId": format!("{role_id}:{session_name}"), "arn": assumed_arn },
    });
    if let Some(source) = &source_identity {
        response["sourceIdentity"] = json!(source);
    }
    trail::record(
        world,
        call,
        Outcome {
            name: "AssumeRole",
            service: Service::Sts,
            request: trail::sts_request("AssumeRole", params),
            response: Some(response),
            error: None,
            resources: vec![
                ("AWS::IAM::Role".into(), role_arn.to_owned()),
                (
                    "AWS::IAM::AccessKey".into(),
                    credentials.access_key_id.clone(),
                ),
                ("AWS::STS::AssumedRole".into(), assumed_arn.clone()),
            ],
            also_in: (role_account != caller.principal.account()).then(|| role_account.to_owned()),
        },
    );
    Ok(respond("AssumeRole", call.request_id, |x| {
        x.leaf_opt("SourceIdentity", source_identity.as_deref());
        x.open("AssumedRoleUser");
        x.leaf("AssumedRoleId", &format!("{role_id}:{session_name}"));
        x.leaf("Arn", &assumed_arn);
        x.close("AssumedRoleUser");
        write_credentials(x, &credentials);
        if !tags.is_empty() {
            x.leaf("PackedPolicySize", &(tags.len() * 2).min(100).to_string());
        }
    }))
}

fn check_name(member: &str, value: &str, max: usize) -> Result<(), AwsError> {
    if value.len() < 2 {
        return Err(validation(
            "ValidationError",
            member,
            Some(value),
            "Member must have length greater than or equal to 2",
        ));
    }
    if value.len() > max {
        return Err(validation(
            "ValidationError",
            member,
            Some(value),
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !is_iam_name(value) {
        return Err(validation(
            "ValidationError",
            member,
            Some(value),
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}

fn session_tags(params: &Params) -> Result<Vec<(String, String)>, AwsError> {
    let entries = params.structures("Tags.member");
    if entries.len() > 50 {
        return Err(validation(
            "ValidationError",
            "tags",
            None,
            "Member must have length less than or equal to 50",
        ));
    }
    let mut tags = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let member = |name: &str| format!("tags.{}.member.{name}", i + 1);
        let key = entry.get("Key").ok_or_else(|| {
            validation(
                "ValidationError",
                &member("key"),
                None,
                "Member must not be null",
            )
        })?;
        let value = entry.get("Value").ok_or_else(|| {
            validation(
                "ValidationError",
                &member("value"),
                None,
                "Member must not be null",
            )
        })?;
        if key.is_empty() || key.len() > 128 {
            return Err(validation(
                "ValidationError",
                &member("key"),
                Some(key),
                "Member must have length less than or equal to 128",
            ));
        }
        if value.len() > 256 {
            return Err(validation(
                "ValidationError",
                &member("value"),
                Some(value),
                "Member must have length less than or equal to 256",
            ));
        }
        if tags
            .iter()
            .any(|(k, _): &(String, String)| k.eq_ignore_ascii_case(key))
        {
            return Err(AwsError::bad_request(
                "InvalidParameterValue",
                format!(
                    "Duplicate tag keys found. Please note that Tag keys are case insensitive: {key}"
                ),
            ));
        }
        tags.push(((*key).to_owned(), (*value).to_owned()));
    }
    Ok(tags)
}

/// Split `arn:aws:iam::<account>:role/<path/><name>` into the account and the role name.
pub fn parse_role_arn(arn: &str) -> Option<(&str, &str)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path = resource.strip_prefix("role/")?;
    let name = path.rsplit('/').next()?;
    let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (valid_account && !name.is_empty()).then_some((account, name))
}
