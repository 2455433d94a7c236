# Compiler settings shared by the shim, the tests and the consumer check.

# qBittorrent 4.5's warning flags and Qt definitions (cmake/Modules/CommonConfig.cmake), which our
# headers and shim must pass, plus QT_NO_CONTEXTLESS_CONNECT from its master branch.
function(megatorrent_strict_flags target)
    if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
        target_compile_options(${target} PRIVATE
            -Wall -Wextra -Wcast-qual -Wcast-align -Winvalid-pch -Woverloaded-virtual
            -Wold-style-cast -Wnon-virtual-dtor -pedantic -pedantic-errors)
    endif()
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
        target_compile_options(${target} PRIVATE -Wstrict-null-sentinel)
    endif()
    target_compile_definitions(${target} PRIVATE
        QT_DISABLE_DEPRECATED_BEFORE=0x050f02
        QT_NO_CAST_FROM_ASCII
        QT_NO_CAST_TO_ASCII
        QT_NO_CAST_FROM_BYTEARRAY
        QT_USE_QSTRINGBUILDER
        QT_NO_CONTEXTLESS_CONNECT
        QT_STRICT_ITERATORS
        QT_NO_NARROWING_CONVERSIONS_IN_CONNECT
    )
endfunction()

# -DMEGATORRENT_SANITIZE=ON: ASan + UBSan on C++ code (the Rust static library stays
# uninstrumented, which ASan supports).
function(megatorrent_sanitize target)
    if(MEGATORRENT_SANITIZE)
        target_compile_options(${target} PRIVATE
            -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
        target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    endif()
endfunction()
