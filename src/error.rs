//! How errors print, one rule for the whole crate.
//!
//! Every error type's message (`Display`) describes only its own layer: what failed, naming the
//! file, peer or id concerned. The cause, when there is one, is returned by `source()` and is
//! never repeated in the message. [`ErrorChain`] prints an error with all its causes once,
//! joined by `": "`; use it wherever an error becomes text (logs, the CLI, the C++ bridge).

use std::error::Error;
use std::fmt;

/// Displays an error followed by its causes, each once, joined by `": "`.
///
/// A cause whose text the line already ends with is skipped, so a foreign error that does put
/// its source in its message (against this crate's rule) still prints it only once.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a dyn Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(e) = cause {
            let text = e.to_string();
            if !text.is_empty() && !line.ends_with(&text) {
                if !line.is_empty() {
                    line.push_str(": ");
                }
                line.push_str(&text);
            }
            cause = e.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The one-line text of `error` and all its causes (see [`ErrorChain`]).
pub fn chain(error: &dyn Error) -> String {
    ErrorChain(error).to_string()
}

/// The OS error of `e` without the temporary file's path that `tempfile` appends to it
/// ("... at path \"/dir/.tmpXyZ\""): callers name the file the user asked for instead.
pub fn without_temp_path(e: std::io::Error) -> std::io::Error {
    let text = e.to_string();
    match text.rfind(" at path ") {
        Some(end) if e.get_ref().is_some() => std::io::Error::new(e.kind(), &text[..end]),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot open {0}")]
    struct Outer(&'static str, #[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("reading: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn each_cause_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            chain(&Outer("a.txt", io())),
            "cannot open a.txt: no such file"
        );
        // A foreign error that repeats its source in its message is not printed twice.
        assert_eq!(chain(&Repeats(io())), "reading: no such file");
        assert_eq!(chain(&io()), "no such file");
    }

    #[test]
    fn temp_path_is_dropped() {
        let e = tempfile::NamedTempFile::new_in("/nonexistent/megatorrent-test").unwrap_err();
        assert!(e.to_string().contains(".tmp"), "{e}");
        let plain = without_temp_path(e);
        assert_eq!(plain.kind(), std::io::ErrorKind::NotFound);
        assert!(!plain.to_string().contains("/nonexistent"), "{plain}");
        assert!(plain.to_string().contains("os error 2"), "{plain}");
    }
}
