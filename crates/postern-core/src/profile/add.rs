//! Adding a profile for an IAM user's keys, as the desktop's "Add an AWS profile" does: a
//! `[profile NAME]` section appended to the AWS config file (its region and MFA device; never a
//! key), the keys themselves in the keychain. What the file held before is kept byte for byte.

use std::path::Path;

use crate::keychain::{AccessKeys, KeychainError};
use crate::profile::{ConfigFiles, Profiles};
use crate::sensitive::Secret;

/// A new profile for an IAM user's long-lived keys.
#[derive(Debug)]
pub struct NewProfile {
    /// Its name.
    pub name: String,
    /// The key id (`AKIA…`).
    pub access_key_id: String,
    /// The secret key.
    pub secret_access_key: Secret,
    /// Its region.
    pub region: String,
    /// The user's MFA device (an ARN, or a hardware token's serial), if it has one.
    pub mfa_serial: Option<String>,
}

/// Why a profile cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum AddProfileError {
    /// The name cannot be a profile's.
    #[error(
        "{0:?} cannot name a profile: use letters, digits and - _ . @ + only (like work-admin)"
    )]
    BadName(String),
    /// A profile of that name exists.
    #[error("there is already a profile named {0} in your AWS config: choose another name")]
    Exists(String),
    /// The key id is not one.
    #[error("{0}")]
    BadKey(String),
    /// The secret key is too short to be one.
    #[error("that secret access key is too short: copy all 40 characters")]
    ShortSecret,
    /// The region is not a region's name.
    #[error("{0:?} is not a region (like eu-west-1)")]
    BadRegion(String),
    /// The MFA device is not an ARN or a serial.
    #[error(
        "{0:?} is not an MFA device: copy its ARN (arn:aws:iam::123456789012:mfa/NAME) from the IAM console"
    )]
    BadDevice(String),
    /// The AWS config could not be read or written.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The keychain refused the keys.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
}

/// Whether `id` can be an IAM user's access key id: an error saying what is wrong if not.
pub fn check_access_key_id(id: &str) -> Result<(), String> {
    let valid = (16..=128).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(
            "that is not an access key id (16 to 128 letters and digits, like AKIAIOSFODNN7EXAMPLE)"
                .into(),
        );
    }
    if id.starts_with("ASIA") {
        return Err(format!(
            "{id} is a temporary key (ASIA…): store an IAM user's long-lived key (AKIA…); Postern makes the temporary ones"
        ));
    }
    Ok(())
}

fn check(new: &NewProfile, profiles: &Profiles) -> Result<(), AddProfileError> {
    let name_ok = !new.name.is_empty()
        && new.name.len() <= 64
        && new
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+".contains(c));
    if !name_ok {
        return Err(AddProfileError::BadName(new.name.clone()));
    }
    if profiles.get(&new.name).is_some() {
        return Err(AddProfileError::Exists(new.name.clone()));
    }
    check_access_key_id(&new.access_key_id).map_err(AddProfileError::BadKey)?;
    if new.secret_access_key.expose().len() < 16 {
        return Err(AddProfileError::ShortSecret);
    }
    let region_ok = {
        let parts: Vec<&str> = new.region.split('-').collect();
        parts.len() >= 3
            && parts.iter().all(|p| !p.is_empty())
            && new
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !region_ok {
        return Err(AddProfileError::BadRegion(new.region.clone()));
    }
    if let Some(serial) = &new.mfa_serial {
        let arn = serial.starts_with("arn:aws") && serial.contains(":mfa/");
        let token =
            (9..=64).contains(&serial.len()) && serial.chars().all(|c| c.is_ascii_alphanumeric());
        let plain = serial
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control());
        if !(arn || token) || !plain {
            return Err(AddProfileError::BadDevice(serial.clone()));
        }
    }
    Ok(())
}

/// Add `new`: its keys to the keychain, then its section to the AWS config file (created if
/// there is none). Checked first; nothing is written when a check fails.
pub fn add_profile(
    files: &ConfigFiles,
    profiles: &Profiles,
    keychain: &crate::keychain::Keychain,
    new: NewProfile,
) -> Result<(), AddProfileError> {
    check(&new, profiles)?;
    let path = &files.config;
    let failed = |source| AddProfileError::File {
        path: path.display().to_string(),
        source,
    };
    let before = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(failed(e)),
    };
    keychain.set_access_keys(
        &new.name,
        &AccessKeys {
            access_key_id: new.access_key_id.clone(),
            secret_access_key: new.secret_access_key,
        },
    )?;
    let mut text = before.clone().unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "[profile {}]\nregion = {}\n",
        new.name, new.region
    ));
    if let Some(serial) = &new.mfa_serial {
        text.push_str(&format!("mfa_serial = {serial}\n"));
    }
    write_keeping_mode(path, &text, before.is_some()).map_err(failed)
}

/// Write `path` whole (a temporary file renamed over it), with the old file's permissions when
/// there was one, else readable by its owner only.
fn write_keeping_mode(path: &Path, text: &str, existed: bool) -> std::io::Result<()> {
    let mode = if existed {
        Some(std::fs::metadata(path)?.permissions())
    } else {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        None
    };
    crate::paths::write_atomically(path, text)?;
    match mode {
        Some(permissions) => std::fs::set_permissions(path, permissions),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keychain::{Keychain, MemoryStore};
    use crate::paths::Paths;

    fn new(name: &str) -> NewProfile {
        NewProfile {
            name: name.into(),
            access_key_id: "AKIAEXAMPLEEXAMPLE01".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMIEXAMPLEKEYEXAMPLEKEYEXAMPLE"),
            region: "eu-west-1".into(),
            mfa_serial: Some("arn:aws:iam::111122223333:mfa/alice".into()),
        }
    }

    #[test]
    fn appends_a_section_keeping_the_file_and_puts_the_keys_in_the_keychain() {
        let dir = std::env::temp_dir().join(format!("postern-add-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let files = ConfigFiles {
            config: dir.join("config"),
            credentials: dir.join("credentials"),
        };
        let old = "# mine\n[profile old]\nregion = us-east-1";
        std::fs::write(&files.config, old).expect("config");
        let keychain =
            Keychain::with_store(Arc::new(MemoryStore::default()), &Paths::at(&dir.join("p")));
        let profiles = Profiles::load(&files).expect("profiles");
        add_profile(&files, &profiles, &keychain, new("work")).expect("added");
        let text = std::fs::read_to_string(&files.config).expect("config");
        assert!(text.starts_with(old), "kept: {text}");
        assert!(text.ends_with("\n\n[profile work]\nregion = eu-west-1\nmfa_serial = arn:aws:iam::111122223333:mfa/alice\n"));
        assert!(
            !text.contains("wJalr") && !text.contains("AKIA"),
            "no key in the file"
        );
        let keys = keychain
            .access_keys("work")
            .expect("keychain")
            .expect("stored");
        assert_eq!(keys.access_key_id, "AKIAEXAMPLEEXAMPLE01");
        let profiles = Profiles::load(&files).expect("profiles");
        assert!(profiles.get("work").is_some());
        assert!(matches!(
            add_profile(&files, &profiles, &keychain, new("work")),
            Err(AddProfileError::Exists(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn refuses_what_cannot_be_right_before_writing_anything() {
        let profiles = Profiles::default();
        let with = |f: &dyn Fn(&mut NewProfile)| {
            let mut p = new("work");
            f(&mut p);
            check(&p, &profiles)
        };
        assert!(matches!(
            with(&|p| p.name = "a b]".into()),
            Err(AddProfileError::BadName(_))
        ));
        assert!(matches!(
            with(&|p| p.name = "x\n[evil]".into()),
            Err(AddProfileError::BadName(_))
        ));
        assert!(matches!(
            with(&|p| p.access_key_id = "ASIAEXAMPLEEXAMPLE01".into()),
            Err(AddProfileError::BadKey(_))
        ));
        assert!(matches!(
            with(&|p| p.secret_access_key = Secret::new("short")),
            Err(AddProfileError::ShortSecret)
        ));
        assert!(matches!(
            with(&|p| p.region = "Ireland".into()),
            Err(AddProfileError::BadRegion(_))
        ));
        assert!(matches!(
            with(&|p| p.mfa_serial = Some("arn:aws:iam::1:mfa/a\nregion=x".into())),
            Err(AddProfileError::BadDevice(_))
        ));
        assert!(
            with(&|p| p.mfa_serial = Some("GAHT12345678".into())).is_ok(),
            "a hardware token's serial"
        );
        assert!(with(&|p| p.mfa_serial = None).is_ok());
    }
}
