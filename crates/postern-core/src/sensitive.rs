//! [`Sensitive`]: the one wrapper for what must not leak: secret keys, session tokens, stream
//! tokens, MFA codes.
//!
//! It is never printed (`Debug` shows `Sensitive(…)`, there is no `Display`), never serialized
//! (no `Serialize`: the keychain has its own encoder), and wiped from memory when dropped. It
//! can be read in (`Deserialize`), from a credential_process's answer. [`Sensitive::expose`] is
//! for the one place that must send the value, and nowhere else. What AWS's SDK copies into its
//! own requests is out of Postern's reach: it is sent at once and dropped with the request.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroize;

/// A value that must not leak; see the module.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T: Zeroize>(T);

/// A secret string: a secret access key, a session token, a stream token.
pub type Secret = Sensitive<String>;

impl<T: Zeroize> Sensitive<T> {
    /// Wrap a value.
    pub fn new(value: impl Into<T>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl Sensitive<String> {
    /// The value as text, for the one place that must send it.
    pub fn expose_str(&self) -> &str {
        &self.0
    }

    /// Take the string out of another one, leaving it empty (so a record being decoded does
    /// not keep a copy).
    pub fn take(text: &mut String) -> Self {
        Self(std::mem::take(text))
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(…)")
    }
}

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<'de, T: Zeroize + Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::{Secret, Sensitive};

    #[test]
    fn never_printed_and_read_in_as_the_plain_value() {
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{secret:?}"), "Sensitive(…)");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Sensitive(…))");
        let read: Secret = serde_json::from_str("\"abc\"").expect("a string");
        assert_eq!(read.expose_str(), "abc");
        let bytes: Sensitive<Vec<u8>> = Sensitive::new(vec![1u8, 2, 3]);
        assert_eq!(bytes.expose(), &[1, 2, 3]);
        let mut text = String::from("token");
        let taken = Secret::take(&mut text);
        assert!(text.is_empty());
        assert_eq!(taken.expose_str(), "token");
    }
}
