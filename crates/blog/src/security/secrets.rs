//! Random tokens, their hashes, and the one constant-time comparison every check uses.
//!
//! Edit keys and CSRF tokens are 128 bits from the OS (`getrandom`), written as hex. Only a
//! SHA-256 hash of an edit key is stored, so a copy of the database edits nothing. Comparisons
//! of secrets go through [`same_secret`], which hashes both sides first: equal-length inputs
//! for `subtle`'s constant-time compare, and nothing learned from how long a guess was.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Random bytes per token: 128 bits, beyond guessing.
const TOKEN_BYTES: usize = 16;

/// A SHA-256 digest.
pub(crate) type Digest256 = [u8; 32];

/// A fresh random token as 32 lower-case hex digits; `None` when the OS has no randomness to
/// give (the caller answers 503 rather than hand out a guessable key).
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    if let Err(err) = getrandom::fill(&mut bytes) {
        log::error!("no randomness from the OS: {err}");
        return None;
    }
    Some(hex(&bytes))
}

/// SHA-256 of `label` and `text`, kept apart by a NUL so two labels never collide.
pub(crate) fn digest(label: &str, text: &str) -> Digest256 {
    let mut hasher = Sha256::new();
    hasher.update(label.as_bytes());
    hasher.update([0]);
    hasher.update(text.as_bytes());
    hasher.finalize().into()
}

/// Whether two digests are equal, in time that does not depend on where they differ.
pub(crate) fn same_digest(a: &Digest256, b: &Digest256) -> bool {
    a.ct_eq(b).into()
}

/// Whether a presented secret equals the expected one, in constant time whatever its length.
pub(crate) fn same_secret(presented: &str, expected: &str) -> bool {
    same_digest(&digest("compare", presented), &digest("compare", expected))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` looks like one of our tokens: hex digits only, at most 64 of them. Checked
/// before a cookie value is echoed into a page or a header.
pub(crate) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_fresh_128_bit_hex() {
        let a = random_token().unwrap();
        let b = random_token().unwrap();
        assert_eq!(a.len(), 32);
        assert!(is_token(&a), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_compare_by_value_not_by_length() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3cre"));
        assert!(!same_secret("", "s3cret"));
        assert!(!same_secret("S3cret", "s3cret"));
    }

    #[test]
    fn labels_separate_digests() {
        assert_ne!(digest("a", "bc"), digest("ab", "c"));
        assert_eq!(digest("a", "b"), digest("a", "b"));
    }

    #[test]
    fn only_short_hex_is_a_token() {
        assert!(is_token("00ff"));
        assert!(!is_token(""));
        assert!(!is_token("xyz"));
        assert!(!is_token("a b"));
        assert!(!is_token(&"a".repeat(65)));
    }
}
