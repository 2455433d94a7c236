//! The operating system's CSPRNG, for every key and nonce this crate makes.

use rand::rand_core::UnwrapErr;
use rand::rngs::{SysError, SysRng};
use rand::TryRng;

/// Fill `buf` from the OS generator, reporting its (practically impossible) failure.
pub(crate) fn try_fill(buf: &mut [u8]) -> Result<(), SysError> {
    SysRng.try_fill_bytes(buf)
}

/// The OS generator as an infallible [`rand::CryptoRng`], for APIs that take one and cannot
/// report errors (key generation). It panics if the OS has no entropy source at all, as the
/// `OsRng` of earlier `rand` releases did: there is nothing safe to fall back to.
pub(crate) fn os_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// Fill `buf` from the OS generator; panics like [`os_rng`].
pub(crate) fn fill(buf: &mut [u8]) {
    use rand::Rng;
    os_rng().fill_bytes(buf);
}
