#pragma once

#include <cstdint>

#include <QByteArray>
#include <QString>

#include "megatorrent/global.h"
#include "rust/cxx.h"
#include "megatorrent/src/ffi/bridge.rs.h"

// Conversions between Qt and cxx types. Internal to the shim: the public headers never expose
// cxx types.
namespace Megatorrent::Detail
{
    rust::Str toRustStr(const QByteArray &utf8);
    rust::String toRustString(const QString &text);
    rust::Slice<const std::uint8_t> toRustSlice(const QByteArray &bytes);
    rust::Vec<std::uint8_t> toRustVec(const QByteArray &bytes);
    QString toQString(const rust::String &text);
    QString toQString(rust::Str text);
    QByteArray toQByteArray(const rust::Vec<std::uint8_t> &bytes);
    QByteArray toQByteArray(rust::Slice<const std::uint8_t> bytes);
    // The reason carried by a bridge exception (a Rust error, or a caught Rust panic).
    QString errorText(const rust::Error &error);
    // The public kind of a bridge error kind (Internal for None, which no failure carries).
    ErrorKind toErrorKind(megatorrent::ffi::ErrorKind kind);
}
