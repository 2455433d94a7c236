#include "megatorrent/manifest.h"

#include <QByteArray>
#include <QString>

#include "bridge_util.h"
#include "manifest_convert.h"

namespace
{
    // Runs one bridge call that yields a verified manifest: on success fills `outManifest` and
    // clears `reason`; a Rust error becomes `reason` and leaves `outManifest` untouched.
    template <typename Call>
    bool fillManifest(Call &&call, Megatorrent::Manifest &outManifest, QString &reason)
    {
        try
        {
            outManifest = Megatorrent::Detail::toManifest(call());
            reason.clear();
            return true;
        }
        catch (const rust::Error &error)
        {
            reason = Megatorrent::Detail::errorText(error);
            return false;
        }
    }
}

namespace Megatorrent
{
    ManifestVerifier::ManifestVerifier(QObject *parent)
        : QObject(parent)
    {
    }

    bool ManifestVerifier::parseAndValidate(const QByteArray &jsonData, Manifest &outManifest)
    {
        QString reason;
        return parseAndValidate(jsonData, outManifest, reason);
    }

    bool ManifestVerifier::parseAndValidate(const QByteArray &jsonData, Manifest &outManifest, QString &reason)
    {
        const auto verify = [&] { return megatorrent::ffi::manifestVerify(Detail::toRustSlice(jsonData)); };
        return fillManifest(verify, outManifest, reason);
    }

    bool ManifestVerifier::decryptAndValidate(const QByteArray &jsonData, const QByteArray &readKey, Manifest &outManifest, QString &reason)
    {
        const auto decrypt = [&] {
            return megatorrent::ffi::manifestDecrypt(Detail::toRustSlice(jsonData), Detail::toRustSlice(readKey));
        };
        return fillManifest(decrypt, outManifest, reason);
    }
}
