//! dht layer (filled in by its issue).
