//! transport layer (filled in by its issue).
