//! AES-256-GCM sealing, in the one stored format every sealed value has (keys, identities,
//! events' personal values, vault entries, evidence, notes...):
//!
//! ```text
//! 0x01 || nonce (12 bytes) || ciphertext || tag (16 bytes)
//! ```
//!
//! The nonce is 12 bytes from the OS random source, never chosen by a caller; the associated
//! data (AAD) binds a blob to where it belongs, so a blob moved elsewhere no longer opens.
//! What the Python of earlier versions sealed opens here, and the other way round.

use std::fmt;

use aes_gcm::aead::array::Array;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};

use crate::random::{self, RandomError};

/// The layout version, the blob's first byte.
pub const FORMAT: u8 = 0x01;
/// AES-GCM's 96-bit nonce.
pub const NONCE_LEN: usize = 12;
/// AES-GCM's 128-bit tag.
pub const TAG_LEN: usize = 16;
/// AES-256.
pub const KEY_LEN: usize = 32;
/// How much longer a blob is than its plaintext.
pub const OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;
/// The associated data of an event's sealed values is this prefix and the event id.
pub const EVENT_AAD_PREFIX: &[u8] = b"consentry:event:";

/// A nonce, as stored in a blob.
pub type Nonce = [u8; NONCE_LEN];

/// Why a value could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealError {
    /// The OS random source gave no nonce.
    Random(RandomError),
    /// Longer than AES-GCM may encrypt under one nonce (about 64 GiB).
    TooLong,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random(e) => e.fmt(f),
            Self::TooLong => f.write_str("the value is too long to seal"),
        }
    }
}

impl std::error::Error for SealError {}

impl From<RandomError> for SealError {
    fn from(e: RandomError) -> Self {
        Self::Random(e)
    }
}

/// Why a blob did not open. The messages are the ones Consentry has always given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Too short, or not of layout 0x01.
    Layout,
    /// The blob or its associated data was altered, or the key is another one.
    Inauthentic,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Layout => "sealed value has an unknown layout",
            Self::Inauthentic => "sealed value does not open under this key",
        })
    }
}

impl std::error::Error for OpenError {}

/// A key that is not 32 bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLengthError;

impl fmt::Display for KeyLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AES-256 needs a 32-byte key")
    }
}

impl std::error::Error for KeyLengthError {}

/// AES-256-GCM under one key, its key schedule expanded once.
#[derive(Clone)]
pub struct Sealer {
    aead: Aes256Gcm,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for a 32-byte key.
    pub fn new(key: &[u8]) -> Result<Self, KeyLengthError> {
        let aead = Aes256Gcm::new_from_slice(key).map_err(|_| KeyLengthError)?;
        Ok(Self { aead })
    }

    /// `plaintext` sealed under a fresh nonce from the OS random source.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        random::fill(&mut nonce)?;
        self.seal_with_nonce(plaintext, aad, &nonce)
    }

    /// `plaintext` sealed under `nonce`, which must never have been used with this key before:
    /// the batch functions draw them (see [`nonces`]); outside the core, only tests pass one.
    pub fn seal_with_nonce(
        &self,
        plaintext: &[u8],
        aad: &[u8],
        nonce: &Nonce,
    ) -> Result<Vec<u8>, SealError> {
        let mut blob = Vec::with_capacity(plaintext.len() + OVERHEAD);
        blob.push(FORMAT);
        blob.extend_from_slice(nonce);
        blob.extend_from_slice(plaintext);
        let tag = self
            .aead
            .encrypt_inout_detached(
                &Array::from(*nonce),
                aad,
                blob[1 + NONCE_LEN..].as_mut().into(),
            )
            .map_err(|_| SealError::TooLong)?;
        blob.extend_from_slice(&tag);
        Ok(blob)
    }

    /// The plaintext of `blob`, if it was sealed under this key with this associated data.
    pub fn open(&self, blob: &[u8], aad: &[u8]) -> Result<Vec<u8>, OpenError> {
        if blob.len() < OVERHEAD || blob[0] != FORMAT {
            return Err(OpenError::Layout);
        }
        let (head, rest) = blob.split_at(1 + NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: Nonce = head[1..].try_into().map_err(|_| OpenError::Layout)?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| OpenError::Layout)?;
        let mut plaintext = ciphertext.to_vec();
        self.aead
            .decrypt_inout_detached(
                &Array::from(nonce),
                aad,
                plaintext.as_mut_slice().into(),
                &Array::from(tag),
            )
            .map_err(|_| OpenError::Inauthentic)?;
        Ok(plaintext)
    }
}

/// `count` nonces from one read of the OS random source.
pub fn nonces(count: usize) -> Result<Vec<Nonce>, RandomError> {
    let mut pool = vec![0u8; count * NONCE_LEN];
    random::fill(&mut pool)?;
    Ok(pool
        .chunks_exact(NONCE_LEN)
        .map(|c| c.try_into().expect("chunks of NONCE_LEN"))
        .collect())
}

/// Each `(sealer, plaintext, aad)` sealed, in order, the nonces drawn in one read.
pub fn seal_batch(jobs: &[(&Sealer, &[u8], &[u8])]) -> Result<Vec<Vec<u8>>, SealError> {
    let nonces = nonces(jobs.len())?;
    jobs.iter()
        .zip(&nonces)
        .map(|((sealer, plaintext, aad), nonce)| sealer.seal_with_nonce(plaintext, aad, nonce))
        .collect()
}

/// Each event's personal values `(sealer, plaintext, event_id)` sealed under its
/// [`event_aad`], in order, the nonces drawn in one read.
pub fn seal_events(jobs: &[(&Sealer, &[u8], &str)]) -> Result<Vec<Vec<u8>>, SealError> {
    let nonces = nonces(jobs.len())?;
    let mut aad = EVENT_AAD_PREFIX.to_vec();
    jobs.iter()
        .zip(&nonces)
        .map(|((sealer, plaintext, event_id), nonce)| {
            aad.truncate(EVENT_AAD_PREFIX.len());
            aad.extend_from_slice(event_id.as_bytes());
            sealer.seal_with_nonce(plaintext, &aad, nonce)
        })
        .collect()
}

/// What an event's sealed values are bound to: moved to another event, they no longer open.
pub fn event_aad(event_id: &str) -> Vec<u8> {
    [EVENT_AAD_PREFIX, event_id.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        25, 26, 27, 28, 29, 30, 31,
    ];
    const NONCE: Nonce = [100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111];
    const PLAINTEXT: &[u8] = br#"{"email":"ada@example.com"}"#;
    // Sealed by Consentry 0.2's Python (cryptography's AESGCM) with KEY, NONCE, PLAINTEXT and
    // the AAD of event "evt_01": the stored format, byte for byte.
    const STORED: &str = "016465666768696a6b6c6d6e6f3339bb0b18803abc04403e8cbb250f8523af76\
                          66ee42901dcaf3d18c99adee1ec0eb7950b1303cd52052a1";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn seals_in_the_stored_format() {
        let sealer = Sealer::new(&KEY).unwrap();
        let blob = sealer
            .seal_with_nonce(PLAINTEXT, &event_aad("evt_01"), &NONCE)
            .unwrap();
        assert_eq!(blob, unhex(STORED));
    }

    #[test]
    fn opens_what_was_stored() {
        let sealer = Sealer::new(&KEY).unwrap();
        let opened = sealer
            .open(&unhex(STORED), b"consentry:event:evt_01")
            .unwrap();
        assert_eq!(opened, PLAINTEXT);
    }

    #[test]
    fn nist_gcm_test_case_14() {
        // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (AES-256, zero
        // key, zero IV, one zero block).
        let sealer = Sealer::new(&[0u8; 32]).unwrap();
        let blob = sealer.seal_with_nonce(&[0u8; 16], b"", &[0u8; 12]).unwrap();
        assert_eq!(blob[..13], [&[FORMAT][..], &[0u8; 12]].concat()[..]);
        assert_eq!(
            blob[13..],
            unhex("cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919")[..]
        );
    }

    #[test]
    fn round_trips_with_random_nonces() {
        let sealer = Sealer::new(&KEY).unwrap();
        let a = sealer.seal(b"", b"aad").unwrap();
        let b = sealer.seal(b"", b"aad").unwrap();
        assert_eq!(a.len(), OVERHEAD);
        assert_ne!(a, b, "a fresh nonce each time");
        assert_eq!(sealer.open(&a, b"aad").unwrap(), b"");
    }

    #[test]
    fn refuses_what_was_altered() {
        let sealer = Sealer::new(&KEY).unwrap();
        let blob = sealer.seal(PLAINTEXT, b"here").unwrap();
        assert_eq!(sealer.open(&blob, b"there"), Err(OpenError::Inauthentic));
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            let expected = if i == 0 {
                OpenError::Layout
            } else {
                OpenError::Inauthentic
            };
            assert_eq!(sealer.open(&bad, b"here"), Err(expected));
        }
        let other = Sealer::new(&[7u8; 32]).unwrap();
        assert_eq!(other.open(&blob, b"here"), Err(OpenError::Inauthentic));
        assert_eq!(
            sealer.open(&blob[..OVERHEAD - 1], b"here"),
            Err(OpenError::Layout)
        );
        assert_eq!(sealer.open(b"", b"here"), Err(OpenError::Layout));
    }

    #[test]
    fn keys_are_32_bytes() {
        assert_eq!(Sealer::new(&[0u8; 16]).unwrap_err(), KeyLengthError);
        assert_eq!(Sealer::new(&[0u8; 33]).unwrap_err(), KeyLengthError);
    }

    #[test]
    fn batches_seal_each_under_its_own_key_and_nonce() {
        let (a, b) = (Sealer::new(&KEY).unwrap(), Sealer::new(&[9u8; 32]).unwrap());
        let sealed = seal_events(&[(&a, b"one", "evt_1"), (&b, b"two", "evt_2")]).unwrap();
        assert_eq!(a.open(&sealed[0], &event_aad("evt_1")).unwrap(), b"one");
        assert_eq!(b.open(&sealed[1], &event_aad("evt_2")).unwrap(), b"two");
        assert_ne!(sealed[0][1..13], sealed[1][1..13]);
        let sealed = seal_batch(&[(&a, b"x", b"p"), (&a, b"x", b"p")]).unwrap();
        assert_ne!(sealed[0], sealed[1]);
        assert_eq!(a.open(&sealed[1], b"p").unwrap(), b"x");
        assert!(seal_batch(&[]).unwrap().is_empty());
    }

    #[test]
    fn nonces_differ() {
        let drawn = nonces(1000).unwrap();
        let distinct: std::collections::HashSet<_> = drawn.iter().collect();
        assert_eq!(distinct.len(), 1000);
    }
}
