//! The panic boundary: no unwinding ever crosses into C++.
//!
//! cxx aborts the process when an `extern "Rust"` function panics, whatever its return type, so
//! every bridge function runs its body through [`guard`], which turns a panic into an ordinary
//! error (thrown as `rust::Error` on the C++ side, where the shim catches it). The same idea as
//! rustls-ffi's `ffi_panic_boundary!`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::FfiError;

/// Runs `body`; a panic inside it becomes [`FfiError::Panic`] carrying the panic message.
///
/// `AssertUnwindSafe` is sound here because a panicking body leaves nothing half-updated that
/// C++ can observe: bridge functions either return a fresh value or mutate state behind a mutex
/// whose poisoning the callers tolerate.
pub(crate) fn guard<T>(body: impl FnOnce() -> Result<T, FfiError>) -> Result<T, FfiError> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| Err(panic_error(&*payload)))
}

/// Converts a panic payload (usually `&str` or `String`) into an error.
pub(crate) fn panic_error(payload: &(dyn Any + Send)) -> FfiError {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    FfiError::Panic(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_and_err_pass_through() {
        assert_eq!(guard(|| Ok(7)).ok(), Some(7));
        let err = guard::<()>(|| Err(FfiError::InvalidArgument("x".into()))).unwrap_err();
        assert!(matches!(err, FfiError::InvalidArgument(ref m) if m == "x"));
    }

    #[test]
    fn panics_become_errors() {
        let err = guard::<()>(|| panic!("boom {}", 1)).unwrap_err();
        assert!(
            matches!(err, FfiError::Panic(ref m) if m == "boom 1"),
            "{err}"
        );
        let err = guard::<()>(|| std::panic::panic_any(5_u8)).unwrap_err();
        assert!(matches!(err, FfiError::Panic(ref m) if m == "non-string panic payload"));
    }
}
