//! Virtual MFA devices: RFC 6238 time-based one-time passwords, as IAM's virtual devices use them.
//!
//! HMAC-SHA1, six digits, a 30-second step; a code is accepted for the current step and one step
//! either side. As RFC 6238 §5.2 recommends and AWS does, a code is accepted at most once: once
//! a step has been used, that step and every earlier one are refused for the device.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use time::OffsetDateTime;

/// The length of one TOTP time step, in seconds.
pub const STEP_SECONDS: i64 = 30;

/// The seed of a virtual MFA device, as IAM hands it out: the raw key bytes, shown base32-encoded.
#[derive(Clone)]
pub struct MfaSecret(Vec<u8>);

impl std::fmt::Debug for MfaSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MfaSecret(<redacted>)")
    }
}

/// A seed that is not valid base32.
#[derive(Debug, thiserror::Error)]
#[error("an MFA seed must be base32 (A-Z and 2-7, as IAM shows it), at least 16 characters")]
pub struct BadMfaSecret;

impl MfaSecret {
    /// A fresh 160-bit seed (IAM's size).
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        let mut key = vec![0u8; 20];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// Parse a base32 seed (case-insensitive, `=` padding and spaces allowed).
    pub fn from_base32(text: &str) -> Result<Self, BadMfaSecret> {
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if cleaned.len() < 16 {
            return Err(BadMfaSecret);
        }
        data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map(Self)
            .map_err(|_| BadMfaSecret)
    }

    /// The seed as IAM shows it: base32 without padding.
    pub fn to_base32(&self) -> String {
        data_encoding::BASE32_NOPAD.encode(&self.0)
    }

    /// The six-digit code for time step `step`.
    pub fn code_at_step(&self, step: u64) -> String {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for HMAC.
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let binary = u32::from_be_bytes([
            digest[offset] & 0x7f,
            digest[offset + 1],
            digest[offset + 2],
            digest[offset + 3],
        ]);
        format!("{:06}", binary % 1_000_000)
    }

    /// The code a device shows at `at`.
    pub fn code_at(&self, at: OffsetDateTime) -> String {
        self.code_at_step(step_of(at))
    }
}

/// The TOTP time step that `at` falls in.
pub fn step_of(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp().div_euclid(STEP_SECONDS)).unwrap_or(0)
}

/// Why a code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeRejection {
    /// The code is not six digits, or matches none of the accepted steps.
    Invalid,
    /// The code matches a step that was already used (or is older than one that was).
    Reused,
}

/// A virtual MFA device assigned to an IAM user.
#[derive(Debug)]
pub struct MfaDevice {
    /// The device's ARN, `arn:aws:iam::<account>:mfa/<name>`.
    pub serial: String,
    /// The seed shared with the authenticator app.
    pub secret: MfaSecret,
    last_used_step: Option<u64>,
}

impl MfaDevice {
    /// A device that has never accepted a code.
    pub fn new(serial: String, secret: MfaSecret) -> Self {
        Self {
            serial,
            secret,
            last_used_step: None,
        }
    }

    /// Check `code` at `now`; on success the step is spent and cannot be used again.
    pub fn verify(&mut self, code: &str, now: OffsetDateTime) -> Result<(), CodeRejection> {
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CodeRejection::Invalid);
        }
        let current = step_of(now);
        let window = [current.saturating_sub(1), current, current + 1];
        let Some(step) = window
            .into_iter()
            .find(|&s| self.secret.code_at_step(s) == code)
        else {
            return Err(CodeRejection::Invalid);
        };
        if self.last_used_step.is_some_and(|used| step <= used) {
            return Err(CodeRejection::Reused);
        }
        self.last_used_step = Some(step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the RFC's 8-digit codes, last six digits).
    #[test]
    fn matches_rfc_6238_vectors() {
        let secret = MfaSecret(b"12345678901234567890".to_vec());
        for (unix, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let at = OffsetDateTime::from_unix_timestamp(unix).expect("valid time");
            assert_eq!(secret.code_at(at), code, "at {unix}");
        }
    }

    #[test]
    fn base32_round_trips_and_rejects_garbage() {
        let secret = MfaSecret::from_base32("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp").expect("ok");
        assert_eq!(secret.to_base32(), "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        assert!(MfaSecret::from_base32("not base32 at all!").is_err());
        assert!(MfaSecret::from_base32("JBSW").is_err());
    }

    #[test]
    fn accepts_one_step_either_side_once() {
        let now = datetime!(2026-06-01 12:00:10 UTC);
        let mut device = MfaDevice::new("arn:aws:iam::1:mfa/a".into(), MfaSecret(vec![7; 20]));
        let previous = device.secret.code_at(now - time::Duration::seconds(30));
        let next = device.secret.code_at(now + time::Duration::seconds(30));
        let far = device.secret.code_at(now + time::Duration::seconds(90));
        assert_eq!(device.verify(&far, now), Err(CodeRejection::Invalid));
        assert_eq!(device.verify("12345", now), Err(CodeRejection::Invalid));
        assert_eq!(device.verify(&previous, now), Ok(()));
        assert_eq!(device.verify(&previous, now), Err(CodeRejection::Reused));
        assert_eq!(device.verify(&next, now), Ok(()));
        // The current step is older than the step just used: refused too.
        let current = device.secret.code_at(now);
        assert_eq!(device.verify(&current, now), Err(CodeRejection::Reused));
    }
}
