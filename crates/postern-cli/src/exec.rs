//! `postern credential-process` and `postern exec`: Postern's cached credentials for other
//! tools.

use postern_core::credentials::{Resolver, Selection, format_time};

/// `postern credential-process`: the JSON the AWS CLI and SDKs read from a `credential_process`.
pub(crate) async fn credential_process(
    resolver: &Resolver,
    selection: &Selection,
) -> anyhow::Result<u8> {
    let resolved = resolver.credentials(selection).await?;
    let c = &resolved.credentials;
    let mut out = serde_json::json!({
        "Version": 1,
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.expose(),
    });
    if let Some(token) = &c.session_token {
        out["SessionToken"] = token.expose_str().into();
    }
    if let Some(expires) = c.expires {
        out["Expiration"] = format_time(expires).into();
    }
    println!("{out}");
    Ok(0)
}

/// `postern exec -- COMMAND…`: run a command with the credentials in its environment; exit
/// with its exit code.
pub(crate) async fn exec(
    resolver: &Resolver,
    selection: &Selection,
    command: &[String],
) -> anyhow::Result<u8> {
    let resolved = resolver.credentials(selection).await?;
    let c = &resolved.credentials;
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("give the command to run after --");
    };
    let mut child = tokio::process::Command::new(program);
    child
        .args(args)
        // The child must use these credentials, not resolve a profile again.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .env_remove("AWS_SECURITY_TOKEN")
        .env("AWS_ACCESS_KEY_ID", &c.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", c.secret_access_key.expose());
    match &c.session_token {
        Some(token) => child.env("AWS_SESSION_TOKEN", token.expose()),
        None => child.env_remove("AWS_SESSION_TOKEN"),
    };
    if let Some(expires) = c.expires {
        child.env("AWS_CREDENTIAL_EXPIRATION", format_time(expires));
    }
    if let Some(region) = &resolved.region {
        child
            .env("AWS_REGION", region)
            .env("AWS_DEFAULT_REGION", region);
    }
    if let Some(profile) = &resolved.profile {
        child.env("POSTERN_PROFILE", profile);
    }
    let status = child
        .status()
        .await
        .map_err(|e| anyhow::anyhow!("cannot run {program}: {e}"))?;
    Ok(exit_code(status))
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}
