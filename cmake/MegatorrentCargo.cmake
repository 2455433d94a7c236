# Builds the Rust crate with cargo and imports its static library as `megatorrent_rust`.
# Nothing is fetched at configure time; cargo itself fetches crates at build time unless they are
# already vendored or cached (pass MEGATORRENT_CARGO_FLAGS=--offline to forbid it).
#
# Dependencies are file-level, not target-level: only the objects that include the generated
# bridge header (megatorrent_use_bridge) and the link steps that take the static library wait
# for cargo. A target-level dependency (add_dependencies) would be inherited by every target that
# links megatorrent, so that all of qBittorrent's objects waited for cargo with Ninja.

set(MEGATORRENT_CARGO_FLAGS "--locked" CACHE STRING "Extra flags for `cargo build`")

function(megatorrent_add_cargo_build)
    if(CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo|MinSizeRel)$")
        set(profile_flag "--release")
        set(profile_dir "release")
    else()
        set(profile_flag "")
        set(profile_dir "debug")
    endif()
    set(out "${MEGATORRENT_CARGO_TARGET_DIR}/${profile_dir}")
    set(lib "${out}/${CMAKE_STATIC_LIBRARY_PREFIX}megatorrent${CMAKE_STATIC_LIBRARY_SUFFIX}")
    set(cli "${out}/megatorrent${CMAKE_EXECUTABLE_SUFFIX}")
    set(bridge_dir "${MEGATORRENT_CARGO_TARGET_DIR}/cxxbridge")
    set(bridge_headers "${bridge_dir}/megatorrent/src/ffi/bridge.rs.h" "${bridge_dir}/rust/cxx.h")
    set(what --lib)
    if(MEGATORRENT_BUILD_TESTS)
        # The C++ tests start `megatorrent serve` and `megatorrent dht node` processes: default
        # features (`ffi` and `cli`), the very build `cargo test` made, reused as is.
        list(APPEND what --bin megatorrent)
    else()
        # The shim needs only the cxx bridge: the CLI's dependencies are left out.
        list(APPEND what --no-default-features --features ffi)
    endif()
    separate_arguments(extra UNIX_COMMAND "${MEGATORRENT_CARGO_FLAGS}")

    # Always run cargo (a no-op when nothing changed): cargo tracks the crate's sources far better
    # than a glob here could. The symbolic output never exists, so the command runs on every
    # build; the real files are byproducts, which Ninja re-stats, so an unchanged library relinks
    # nothing and an unchanged header recompiles nothing.
    set(stamp "${CMAKE_CURRENT_BINARY_DIR}/megatorrent_cargo.always")
    set_source_files_properties("${stamp}" PROPERTIES SYMBOLIC ON)
    add_custom_command(
        OUTPUT "${stamp}"
        BYPRODUCTS "${lib}" "${cli}" ${bridge_headers}
        COMMAND ${CMAKE_COMMAND} -E env "CARGO_TARGET_DIR=${MEGATORRENT_CARGO_TARGET_DIR}"
            ${MEGATORRENT_CARGO} build ${what} ${profile_flag} ${extra}
            --manifest-path "${PROJECT_SOURCE_DIR}/Cargo.toml"
        WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
        COMMENT "cargo build (megatorrent, ${profile_dir})"
        USES_TERMINAL
        VERBATIM
    )
    add_custom_target(megatorrent_cargo DEPENDS "${stamp}")

    add_library(megatorrent_rust STATIC IMPORTED GLOBAL)
    # A Rust staticlib needs these system libraries (`cargo rustc -- --print native-static-libs`);
    # the cxx bridge's own C++ is bundled in it and needs the C++ runtime the linker adds anyway.
    set_target_properties(megatorrent_rust PROPERTIES
        IMPORTED_LOCATION "${lib}"
        INTERFACE_LINK_LIBRARIES "Threads::Threads;${CMAKE_DL_LIBS};m"
    )
    if(NOT CMAKE_GENERATOR MATCHES "Ninja")
        # Make-style generators only see file dependencies inside one target's Makefile: order
        # the whole target after cargo there.
        add_dependencies(megatorrent_rust megatorrent_cargo)
    endif()

    set(MEGATORRENT_CXXBRIDGE_DIR "${bridge_dir}" PARENT_SCOPE)
    set(MEGATORRENT_CXXBRIDGE_HEADERS "${bridge_headers}" PARENT_SCOPE)
    set(MEGATORRENT_CLI "${cli}" PARENT_SCOPE)
endfunction()

# `target`'s sources include the generated bridge header: they compile after cargo generated it.
function(megatorrent_use_bridge target)
    target_include_directories(${target} SYSTEM PRIVATE "${MEGATORRENT_CXXBRIDGE_DIR}")
    get_target_property(sources ${target} SOURCES)
    # Source properties are per directory: call this where `target` is defined.
    foreach(source IN LISTS sources)
        if(source MATCHES "\\.cpp$")
            set_property(SOURCE "${source}"
                APPEND PROPERTY OBJECT_DEPENDS ${MEGATORRENT_CXXBRIDGE_HEADERS})
        endif()
    endforeach()
    if(NOT CMAKE_GENERATOR MATCHES "Ninja")
        add_dependencies(${target} megatorrent_cargo)
    endif()
endfunction()
