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
        let arn = serial.starts_with("arn:aws")
            && serial.contains(":mfa/")
            && serial.len() <= 256
            && serial.chars().all(|c| c.is_ascii_graphic());
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
/// there is none). Checked first, against the files as they are now; nothing is written when a
/// check fails, and the keychain is put back as it was when the file cannot be written.
pub fn add_profile(
    files: &ConfigFiles,
    keychain: &crate::keychain::Keychain,
    new: NewProfile,
) -> Result<(), AddProfileError> {
    let failed = |source| AddProfileError::File {
        path: files.config.display().to_string(),
        source,
    };
    // Read now, not when Postern last loaded them: `aws configure` may have run meanwhile.
    let profiles = Profiles::load(files).map_err(failed)?;
    check(&new, &profiles)?;
    // A config that is a link (to a dotfiles repository) is written where it points.
    let path = match std::fs::canonicalize(&files.config) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => files.config.clone(),
        Err(e) => return Err(failed(e)),
    };
    let before = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(failed(e)),
    };
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
    let previous = keychain.access_keys(&new.name)?;
    keychain.set_access_keys(
        &new.name,
        &AccessKeys {
            access_key_id: new.access_key_id.clone(),
            secret_access_key: new.secret_access_key,
        },
    )?;
    if let Err(e) = write_whole(&path, &text) {
        // No profile names these keys: put the keychain back as it was.
        let _ = match previous {
            Some(old) => keychain.set_access_keys(&new.name, &old),
            None => keychain.remove_access_keys(&new.name).map(|_| ()),
        };
        return Err(failed(e));
    }
    Ok(())
}

/// Write `path` whole or not at all: a new file beside it with its permissions (readable by its
/// owner only when there was none), synced, renamed over it.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let permissions = std::fs::metadata(path).ok().map(|m| m.permissions());
    let tmp = dir.join(format!(
        ".{}.postern-{}.tmp",
        path.file_name()
            .map_or_else(Default::default, |n| n.to_string_lossy()),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // A file already there under that name is not ours: fail rather than touch it.
    let mut file = options.open(&tmp)?;
    let written = (|| {
        if let Some(permissions) = permissions {
            file.set_permissions(permissions)?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
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
        add_profile(&files, &keychain, new("work")).expect("added");
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
            add_profile(&files, &keychain, new("work")),
            Err(AddProfileError::Exists(_))
        ));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(unix)]
    #[test]
    fn writes_through_a_link_keeps_the_mode_and_puts_the_keychain_back_on_failure() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("postern-add-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("dotfiles")).expect("dir");
        let real = dir.join("dotfiles").join("aws-config");
        std::fs::write(&real, "[default]\nregion = us-east-1\n").expect("config");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).expect("mode");
        let link = dir.join("config");
        std::os::unix::fs::symlink(&real, &link).expect("link");
        let files = ConfigFiles {
            config: link.clone(),
            credentials: dir.join("credentials"),
        };
        let keychain =
            Keychain::with_store(Arc::new(MemoryStore::default()), &Paths::at(&dir.join("p")));
        add_profile(&files, &keychain, new("work")).expect("added");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("link")
                .file_type()
                .is_symlink(),
            "still a link"
        );
        assert!(
            std::fs::read_to_string(&real)
                .expect("real")
                .contains("[profile work]")
        );
        assert_eq!(
            std::fs::metadata(&real).expect("real").permissions().mode() & 0o777,
            0o600
        );

        // A config that cannot be written (its temporary file's name is taken): the keys do not
        // stay behind, and the file that was there is left alone.
        let blocked = ConfigFiles {
            config: dir.join("config2"),
            credentials: dir.join("credentials"),
        };
        let squatter = dir.join(format!(".config2.postern-{}.tmp", std::process::id()));
        std::fs::write(&squatter, "someone else's").expect("squatter");
        assert!(matches!(
            add_profile(&blocked, &keychain, new("other")),
            Err(AddProfileError::File { .. })
        ));
        assert!(keychain.access_keys("other").expect("keychain").is_none());
        assert_eq!(
            std::fs::read_to_string(&squatter).expect("kept"),
            "someone else's"
        );
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
