#pragma once

#include <memory>

#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include "global.h"

class QByteArray;

namespace Megatorrent
{
    namespace Detail
    {
        class DHTClientPrivate;
    }

    // A BitTorrent Mainline DHT node (client mode by default) that publishes and fetches signed
    // manifests (BEP 44) and announces and finds blob peers (BEP 5), run by the Rust core on its
    // own threads. Every operation returns at once; its result arrives as a signal on this
    // object's thread. The node starts on the first operation (or on start()) with the
    // configuration set before.
    class DHTClient : public QObject
    {
        Q_OBJECT
        Q_DISABLE_COPY_MOVE(DHTClient)

    public:
        explicit DHTClient(QObject *parent = nullptr);
        ~DHTClient() override;

        // "host:port" bootstrap nodes. Default: the public Mainline DHT routers. Call before
        // start(); an empty list makes a node that only knows peers added by others.
        void setBootstrapNodes(const QStringList &nodes);
        QStringList bootstrapNodes() const;
        // UDP port; 0 (the default) picks a free one. Never 6881 unless asked: that is
        // qBittorrent's own port.
        void setPort(quint16 port);
        quint16 port() const;
        // IPv4 address to bind; default 0.0.0.0.
        void setBindAddress(const QString &address);
        QString bindAddress() const;
        // Answer other nodes (only for networks made of our own nodes; see PROTOCOL.md 4.1).
        void setServerMode(bool enabled);
        bool serverMode() const;
        // Per-node request time-out in milliseconds (default 2000).
        void setRequestTimeout(int milliseconds);
        int requestTimeout() const;

        // Starts the node; emits started() with the bound port, or errorOccurred().
        void start();
        bool isStarted() const;
        // The bound UDP port once started() was emitted, else 0.
        quint16 boundPort() const;

        // Serves the blobs of folder (created if missing) to v5 peers on TCP port (0 picks one)
        // of bindAddress(). Emits blobServerStarted() or errorOccurred(). Once it runs,
        // putManifest() also publishes manifests too large for one DHT record (as a pointer
        // record whose parts this server serves).
        void serveBlobs(const QString &folder, quint16 port = 0);
        // The blob server's TCP port once blobServerStarted() was emitted, else 0.
        quint16 blobServerPort() const;

        // Signs (with the 32-byte Ed25519 seed, or libsodium's 64-byte secret key) and publishes
        // the manifest's content under its sequence (the current time in milliseconds when the
        // sequence is 0). Emits manifestPut() or putManifestFailed().
        void putManifest(const QByteArray &publicKey, const QByteArray &privateKey, const Manifest &manifest);
        // publicKey: 32 raw bytes or 64 hex characters. Emits manifestFound() with a verified
        // manifest, or getManifestFailed() (e.g. "not found").
        void getManifest(const QByteArray &publicKey);
        // The same for a sub-channel: the record published under publicKey and salt (at most 64
        // bytes; empty = none, as above).
        void getManifest(const QByteArray &publicKey, const QByteArray &salt);
        // Announces that this host serves blobId on TCP port. Emits blobAnnounced() or
        // announceBlobFailed().
        void announceBlob(const QString &blobId, int port);
        // Emits peersFound() ("ip:port" strings, possibly none) or findBlobPeersFailed().
        void findBlobPeers(const QString &blobId);

    signals:
        void started(quint16 port);
        void blobServerStarted(quint16 port);
        void manifestFound(const Megatorrent::Manifest &manifest);
        void peersFound(const QString &blobId, const QVector<QString> &endpoints);
        void manifestPut(const QByteArray &publicKey, qint64 sequence);
        void blobAnnounced(const QString &blobId);
        void putManifestFailed(const QByteArray &publicKey, const QString &reason);
        void getManifestFailed(const QByteArray &publicKey, const QString &reason);
        void announceBlobFailed(const QString &blobId, const QString &reason);
        void findBlobPeersFailed(const QString &blobId, const QString &reason);
        // Every failure, including the specific ones above, with a readable reason.
        void errorOccurred(const QString &error);

        // The failures above with their kind. Each is emitted right after its kind-less signal,
        // which is kept for code written against the stubs (a same-name overload would make
        // `&DHTClient::errorOccurred` ambiguous in connect()).
        void putManifestError(const QByteArray &publicKey, Megatorrent::ErrorKind kind, const QString &reason);
        void getManifestError(const QByteArray &publicKey, Megatorrent::ErrorKind kind, const QString &reason);
        void announceBlobError(const QString &blobId, Megatorrent::ErrorKind kind, const QString &reason);
        void findBlobPeersError(const QString &blobId, Megatorrent::ErrorKind kind, const QString &reason);
        // Every failure (as errorOccurred()) with its kind.
        void failed(Megatorrent::ErrorKind kind, const QString &error);

    private:
        std::unique_ptr<Detail::DHTClientPrivate> m_d;
    };
}
