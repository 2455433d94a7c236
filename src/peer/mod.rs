//! peer layer (filled in by its issue).
