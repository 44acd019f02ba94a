//! Keyed HMAC-SHA256 pseudonyms (never a plain or salted hash): stable across restarts and
//! processes, irreversible without the key, lowercase hex as stored and delivered.
//!
//! - A field's value: `HMAC(key, field || 0x00 || value)`, the same value giving the same
//!   pseudonym per field (the `pseudonymise` treatment).
//! - A subject named to one downstream system: `HMAC(HMAC(secret, "system:" || system_id),
//!   subject_id)`, so two recipients cannot join what they receive.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A pseudonym's length: 32 bytes of HMAC-SHA256, in hex.
pub const HEX_LEN: usize = 64;

/// HMAC-SHA256 under one key, its inner and outer states computed once.
#[derive(Clone)]
pub struct Pseudonymiser {
    base: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymiser(..)")
    }
}

impl Pseudonymiser {
    /// Under `key`, of any length (as HMAC allows: a key longer than SHA-256's block is
    /// hashed first).
    pub fn new(key: &[u8]) -> Self {
        let base =
            <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
        Self { base }
    }

    /// Under the key a system's pseudonyms are made with: HMAC(secret, "system:" || id).
    pub fn for_system(secret: &[u8], system_id: &str) -> Self {
        let key = Self::new(secret).digest(&[b"system:", system_id.as_bytes()]);
        Self::new(&key)
    }

    /// HMAC of the concatenated `parts`.
    pub fn digest(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.base.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A field's value's pseudonym.
    pub fn field(&self, field: &str, value: &str) -> String {
        to_hex(&self.digest(&[field.as_bytes(), b"\x00", value.as_bytes()]))
    }

    /// A subject's pseudonym (under a system's key, see [`Pseudonymiser::for_system`]).
    pub fn subject(&self, subject_id: &str) -> String {
        to_hex(&self.digest(&[subject_id.as_bytes()]))
    }

    /// Each `(field, value)`'s pseudonym, in order.
    pub fn fields<'a>(&self, items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
        items
            .into_iter()
            .map(|(field, value)| self.field(field, value))
            .collect()
    }

    /// Each subject's pseudonym, in order.
    pub fn subjects<'a>(&self, subject_ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        subject_ids.into_iter().map(|s| self.subject(s)).collect()
    }
}

fn to_hex(digest: &[u8; 32]) -> String {
    let mut out = [0u8; HEX_LEN];
    hex::encode_to_slice(digest, &mut out).expect("64 hex digits for 32 bytes");
    String::from_utf8(out.to_vec()).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed by Consentry 0.2's Python (the hmac module): the stored and delivered values.
    #[test]
    fn field_pseudonyms_as_stored() {
        let p = Pseudonymiser::new(&[b'k'; 32]);
        assert_eq!(
            p.field("email", "ada@example.com"),
            "8eb47abceba007ca02072032f754aa8252760da1f267df4cf0bc12c5126a2108"
        );
        // A key longer than SHA-256's 64-byte block is hashed first, as in Python.
        let long = Pseudonymiser::new(&[b'k'; 100]);
        assert_eq!(
            long.field("age", "42"),
            "0da6b50075b87f69419a86b4ff357fda9b4944712434a2b046068f1aacabe0ac"
        );
    }

    #[test]
    fn system_pseudonyms_as_delivered() {
        let p = Pseudonymiser::for_system(&[b's'; 32], "sys_crm");
        assert_eq!(
            p.subject("sub_123"),
            "b62ad6eb2186c011e2b3fb5305937ad3bdde3922399920dff3603a55be623639"
        );
        let other = Pseudonymiser::for_system(&[b's'; 32], "sys_mail");
        assert_ne!(other.subject("sub_123"), p.subject("sub_123"));
    }

    #[test]
    fn rfc_4231_test_case_2() {
        let p = Pseudonymiser::new(b"Jefe");
        assert_eq!(
            to_hex(&p.digest(&[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_field_separates_equal_values() {
        let p = Pseudonymiser::new(b"key");
        assert_ne!(p.field("a", "b\x00c"), p.field("a\x00b", "c\x00"));
        assert_eq!(p.field("a", "x"), p.field("a", "x"));
        assert_ne!(p.field("a", "x"), p.field("b", "x"));
        assert_eq!(
            p.fields([("a", "x"), ("b", "y")]),
            vec![p.field("a", "x"), p.field("b", "y")]
        );
        assert_eq!(p.subjects(["s"]), vec![p.subject("s")]);
        assert_eq!(Pseudonymiser::new(b"").field("", "").len(), HEX_LEN);
    }
}
