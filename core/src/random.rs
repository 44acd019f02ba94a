//! The OS random source: the one place the core draws randomness (nonces, later tokens).

use std::fmt;

/// The operating system's random source could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomError(getrandom::Error);

impl fmt::Display for RandomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the system's random source failed: {}", self.0)
    }
}

impl std::error::Error for RandomError {}

/// Fill `dest` from the OS random source (getrandom(2) on Linux), in one read.
pub fn fill(dest: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(dest).map_err(RandomError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_with_distinct_draws() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
