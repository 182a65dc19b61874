//! `postern keys add|import|remove|list`: long-lived IAM keys in the OS keychain.

use postern_core::credentials::Resolver;
use postern_core::keychain::{AccessKeys, KeychainError, Secret};

use crate::prompt::{plain_line, secret_line};

fn check_key_id(id: &str) -> anyhow::Result<()> {
    postern_core::profile::add::check_access_key_id(id).map_err(anyhow::Error::msg)
}

/// `postern keys add PROFILE`: ask for the keys (no echo for the secret) and store them.
pub(crate) fn add(resolver: &Resolver, profile: &str) -> anyhow::Result<u8> {
    let id = plain_line("Access key id: ")?;
    check_key_id(&id)?;
    let typed = zeroize::Zeroizing::new(secret_line("Secret access key: ")?);
    let secret = Secret::new(typed.as_str());
    if secret.expose().len() < 16 {
        anyhow::bail!("that secret access key is too short: copy all 40 characters");
    }
    let old = previous_key_id(resolver, profile)?;
    resolver.keychain().set_access_keys(
        profile,
        &AccessKeys {
            access_key_id: id.clone(),
            secret_access_key: secret,
        },
    )?;
    let known = resolver.profiles().get(profile).is_some();
    println!("Stored {id} for profile {profile} in the keychain.");
    forget_sessions(resolver, profile, old.as_deref())?;
    if !known {
        println!(
            "There is no [profile {profile}] in your AWS config yet: add one (with region and mfa_serial) to use it."
        );
    }
    Ok(0)
}

/// `postern keys import PROFILE`: copy the keys out of the credentials file.
pub(crate) fn import(resolver: &Resolver, profile: &str) -> anyhow::Result<u8> {
    let Some(found) = resolver.profiles().get(profile) else {
        anyhow::bail!("no profile named {profile} (`postern profiles` lists them)");
    };
    let (Some(id), Some(secret)) = (
        found.settings.get("aws_access_key_id"),
        found.settings.get("aws_secret_access_key"),
    ) else {
        anyhow::bail!(
            "profile {profile} has no aws_access_key_id and aws_secret_access_key in your AWS files: use `postern keys add {profile}`"
        );
    };
    if found.settings.contains_key("aws_session_token") {
        anyhow::bail!(
            "profile {profile} holds temporary keys (it has aws_session_token): only long-lived IAM user keys belong in the keychain"
        );
    }
    let (Some(id_text), Some(secret_text)) = (id.value.text(), secret.value.text()) else {
        anyhow::bail!("the keys of profile {profile} are not plain values");
    };
    check_key_id(id_text)?;
    let old = previous_key_id(resolver, profile)?;
    resolver.keychain().set_access_keys(
        profile,
        &AccessKeys {
            access_key_id: id_text.to_owned(),
            secret_access_key: Secret::new(secret_text),
        },
    )?;
    forget_sessions(resolver, profile, old.as_deref())?;
    let mut lines = [id.line, secret.line];
    lines.sort_unstable();
    println!(
        "Stored {id_text} for profile {profile} in the keychain; Postern uses it from now on."
    );
    println!(
        "The keys are still in plain text in {} (lines {} and {}). Postern never edits that file: delete those lines yourself{}.",
        id.path.display(),
        lines[0],
        lines[1],
        if found.settings.len() <= 2 {
            format!(", and the [{profile}] line above them")
        } else {
            String::new()
        }
    );
    Ok(0)
}

/// The key id `profile` has in the keychain now (`None`: none, or an entry Postern cannot read,
/// which is about to be replaced).
fn previous_key_id(resolver: &Resolver, profile: &str) -> anyhow::Result<Option<String>> {
    match resolver.keychain().access_keys(profile) {
        Ok(keys) => Ok(keys.map(|k| k.access_key_id)),
        Err(KeychainError::Corrupt { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Sessions made with a profile's previous keys must not outlive them: forget that profile's
/// cached sessions (its MFA sessions, the roles whose chain starts from it), and only those.
fn forget_sessions(resolver: &Resolver, profile: &str, old: Option<&str>) -> anyhow::Result<()> {
    let forgotten = resolver.forget_profile_sessions(profile, old)?;
    if forgotten > 0 {
        println!(
            "Forgot {forgotten} cached session{} made with the previous keys of profile {profile}.",
            if forgotten == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// `postern keys remove PROFILE`.
pub(crate) fn remove(resolver: &Resolver, profile: &str) -> anyhow::Result<u8> {
    let old = previous_key_id(resolver, profile)?;
    if resolver.keychain().remove_access_keys(profile)? {
        println!("Removed the keys of profile {profile} from the keychain.");
        forget_sessions(resolver, profile, old.as_deref())?;
        Ok(0)
    } else {
        println!("The keychain holds no keys for profile {profile}.");
        Ok(1)
    }
}

/// `postern keys list`.
pub(crate) fn list(resolver: &Resolver) -> anyhow::Result<u8> {
    let profiles = resolver.keychain().profiles_with_keys()?;
    if profiles.is_empty() {
        println!(
            "No keys in the keychain yet: `postern keys add PROFILE` or `postern keys import PROFILE`."
        );
    }
    for profile in profiles {
        println!("{profile}");
    }
    Ok(0)
}
