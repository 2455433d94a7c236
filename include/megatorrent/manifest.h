#pragma once

#include <QObject>

#include "global.h"

class QByteArray;
class QString;

namespace Megatorrent
{
    // Parses and verifies signed manifests with the Rust core: it accepts and rejects exactly
    // what `megatorrent manifest verify` does (PROTOCOL.md 2.3 and 2.4).
    class ManifestVerifier : public QObject
    {
        Q_OBJECT
        Q_DISABLE_COPY_MOVE(ManifestVerifier)

    public:
        explicit ManifestVerifier(QObject *parent = nullptr);

        // True if jsonData is a valid signed manifest; outManifest is then filled (and left
        // untouched otherwise).
        static bool parseAndValidate(const QByteArray &jsonData, Manifest &outManifest);
        // As above; on failure reason names why (e.g. "signature does not verify").
        static bool parseAndValidate(const QByteArray &jsonData, Manifest &outManifest, QString &reason);
        // For a private manifest: verifies it, decrypts it with the 32-byte readKey and fills
        // outManifest including its collections.
        static bool decryptAndValidate(const QByteArray &jsonData, const QByteArray &readKey, Manifest &outManifest, QString &reason);
    };
}
