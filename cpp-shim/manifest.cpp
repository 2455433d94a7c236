#include "megatorrent/manifest.h"

#include <QByteArray>
#include <QString>

#include "bridge_util.h"
#include "manifest_convert.h"

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
        try
        {
            const megatorrent::ffi::ManifestData data = megatorrent::ffi::manifestVerify(Detail::toRustSlice(jsonData));
            outManifest = Detail::toManifest(data);
            reason.clear();
            return true;
        }
        catch (const rust::Error &error)
        {
            reason = Detail::errorText(error);
            return false;
        }
    }

    bool ManifestVerifier::decryptAndValidate(const QByteArray &jsonData, const QByteArray &readKey, Manifest &outManifest, QString &reason)
    {
        try
        {
            const megatorrent::ffi::ManifestData data = megatorrent::ffi::manifestDecrypt(Detail::toRustSlice(jsonData), Detail::toRustSlice(readKey));
            outManifest = Detail::toManifest(data);
            reason.clear();
            return true;
        }
        catch (const rust::Error &error)
        {
            reason = Detail::errorText(error);
            return false;
        }
    }
}
