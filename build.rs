//! Generates and compiles the C++ side of the cxx bridge (`src/ffi/bridge.rs`).
//!
//! The generated header and source are also reachable under
//! `$CARGO_TARGET_DIR/cxxbridge/megatorrent/src/ffi/bridge.rs.{h,cc}` (cxx-build links them
//! there), which is where CMake picks the header up for the Qt shim. The bridge's C++ is compiled
//! here, with cxx's own flags, and bundled into the static library: qBittorrent's strict warning
//! flags never see generated code.

#[cfg(feature = "ffi")]
fn main() {
    cxx_build::bridge("src/ffi/bridge.rs")
        .std("c++17")
        .include(".")
        .compile("megatorrent-cxxbridge");
    println!("cargo:rerun-if-changed=src/ffi/bridge.rs");
    println!("cargo:rerun-if-changed=cpp-shim/ffi_notifier.h");
}

/// Without the `ffi` feature there is no bridge: a pure Rust library, no C++ compiler needed.
#[cfg(not(feature = "ffi"))]
fn main() {}
