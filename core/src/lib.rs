//! Consentry's native core: the per-event work of the privacy gateway, in Rust, with no Python
//! in it (the PyO3 binding lives in `python/`, built by maturin as `consentry._core`).
//!
//! This first slice holds the primitives the rest builds on:
//! - [`seal`]: AES-256-GCM sealing in exactly the stored format Consentry has always used
//!   (`0x01 || nonce(12) || ciphertext || tag(16)`), nonces from the OS random source, and the
//!   associated data that binds an event's sealed values to the event.
//! - [`pseudonym`]: keyed HMAC-SHA256 pseudonyms (a field's value, a subject named to one
//!   downstream system), lowercase hex, exactly as stored and delivered today.
//!
//! - [`shape`] and [`json`]: an accepted event's row, its kept values split into clear and
//!   sealed by its plan and written as the stored JSON, spelled as msgspec spelled it.
//!
//! Every entry point works on batches: the binding releases the GIL and makes one call per
//! batch.

pub mod batch;
pub mod calendar;
pub mod decode;
pub mod json;
pub mod pseudonym;
pub mod random;
pub mod redact;
pub mod seal;
pub mod shape;
