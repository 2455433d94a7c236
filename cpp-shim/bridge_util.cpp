#include "bridge_util.h"

#include <string>

namespace Megatorrent::Detail
{
    rust::Str toRustStr(const QByteArray &utf8)
    {
        return {utf8.constData(), static_cast<std::size_t>(utf8.size())};
    }

    rust::String toRustString(const QString &text)
    {
        const QByteArray utf8 = text.toUtf8();
        return {utf8.constData(), static_cast<std::size_t>(utf8.size())};
    }

    rust::Slice<const std::uint8_t> toRustSlice(const QByteArray &bytes)
    {
        return {reinterpret_cast<const std::uint8_t *>(bytes.constData()), static_cast<std::size_t>(bytes.size())};
    }

    rust::Vec<std::uint8_t> toRustVec(const QByteArray &bytes)
    {
        rust::Vec<std::uint8_t> out;
        out.reserve(static_cast<std::size_t>(bytes.size()));
        for (const char byte : bytes)
            out.push_back(static_cast<std::uint8_t>(byte));
        return out;
    }

    QString toQString(const rust::String &text)
    {
        return QString::fromUtf8(text.data(), static_cast<qsizetype>(text.size()));
    }

    QString toQString(const rust::Str text)
    {
        return QString::fromUtf8(text.data(), static_cast<qsizetype>(text.size()));
    }

    QByteArray toQByteArray(const rust::Vec<std::uint8_t> &bytes)
    {
        return {reinterpret_cast<const char *>(bytes.data()), static_cast<qsizetype>(bytes.size())};
    }

    QByteArray toQByteArray(const rust::Slice<const std::uint8_t> bytes)
    {
        return {reinterpret_cast<const char *>(bytes.data()), static_cast<qsizetype>(bytes.size())};
    }

    QString errorText(const rust::Error &error)
    {
        return QString::fromUtf8(error.what());
    }

    ErrorKind toErrorKind(const megatorrent::ffi::ErrorKind kind)
    {
        using megatorrent::ffi::ErrorKind;
        switch (kind)
        {
        case ErrorKind::InvalidChannel:
            return Megatorrent::ErrorKind::InvalidChannel;
        case ErrorKind::NotFound:
            return Megatorrent::ErrorKind::NotFound;
        case ErrorKind::Network:
            return Megatorrent::ErrorKind::Network;
        case ErrorKind::BadManifest:
            return Megatorrent::ErrorKind::BadManifest;
        case ErrorKind::WrongReadKey:
            return Megatorrent::ErrorKind::WrongReadKey;
        case ErrorKind::Storage:
            return Megatorrent::ErrorKind::Storage;
        case ErrorKind::Io:
            return Megatorrent::ErrorKind::Io;
        case ErrorKind::InvalidArgument:
            return Megatorrent::ErrorKind::InvalidArgument;
        case ErrorKind::Internal:
        case ErrorKind::None:
            break;
        }
        return Megatorrent::ErrorKind::Internal;
    }
}
