#pragma once

#include <memory>

#include <QByteArray>
#include <QObject>
#include <QString>
#include <QStringList>
#include <QVector>

#include "global.h"

namespace Megatorrent
{
    namespace Detail
    {
        class SessionPrivate;
    }

    struct SessionSettings
    {
        QString stateFolder;            // everything persistent lives here (qBittorrent: its profile)
        QStringList bootstrapNodes;     // "host:port"; empty = the public Mainline routers
        QString listenAddress;          // empty = all interfaces
        quint16 listenPort = 0;         // blob server, 0 = any free port
        quint16 dhtPort = 0;            // 0 = any free port, never 6881 by default
        qint64 downloadRateLimit = 0;   // bytes/s, 0 = unlimited
        qint64 uploadRateLimit = 0;
    };

    struct SubscriptionSettings { QString savePath; QString label; bool autoDownload = true; };
    struct PublishSettings { QString title; QString salt; QByteArray readKey; };
    enum class SyncState { Checking, Downloading, Synced, Stopped, Failed };
    // enum class ErrorKind: see global.h.

    struct SubscriptionStatus
    {
        QByteArray publicKey; QString salt; QString label; QString savePath;
        qint64 lastSequence = 0; SyncState state = SyncState::Checking;
        qint64 bytesDone = 0; qint64 bytesTotal = 0; int peers = 0; qint64 downloadRate = 0; QString error;
    };

    // One file of a subscribed channel's current (or last synced) version.
    struct ChannelFile { QString path; qint64 size = 0; qint64 bytesDone = 0; };   // progress = bytesDone / size
    // A channel published from the state folder; active: kept alive (re-put, announced) now.
    struct PublishedChannel { QByteArray publicKey; QString salt; QString title; qint64 sequence = 0; int files = 0; qint64 bytes = 0; bool active = false; };
    // The session as a whole.
    struct SessionStatus { quint16 dhtPort = 0; quint16 listenPort = 0; int dhtNodes = 0; qint64 blobs = 0; qint64 blobBytes = 0; int subscriptions = 0; int published = 0; };

    // Megatorrent channels for an application: subscriptions that follow channels and download
    // each new version into a folder, publishing of files and folders, seeding of every blob
    // held, all persisted in stateFolder and resumed by the next Session on it. The Rust core
    // runs it on its own threads: every call returns at once, and results arrive as signals on
    // this object's thread (which needs an event loop). publicKey values are raw 32 bytes.
    class Session final : public QObject
    {
        Q_OBJECT
        Q_DISABLE_COPY_MOVE(Session)

    public:
        explicit Session(const SessionSettings &settings, QObject *parent = nullptr);
        // Returns within a second, whatever is in flight: the state is saved, downloads stop
        // (their verified blobs stay in the store and the next Session resumes them), and no
        // signal is emitted afterwards.
        ~Session() override;

        static QByteArray createIdentity(const QString &identityFile);  // new identity file (0600), returns its public key
        // The same; on failure (e.g. the file exists: it is never overwritten) returns an empty
        // key and sets errorMessage.
        static QByteArray createIdentity(const QString &identityFile, QString &errorMessage);

        void addSubscription(const QString &channel, const SubscriptionSettings &settings);  // hex key or megatorrent:// link
        void removeSubscription(const QString &channel, bool deleteFiles = false);
        QVector<SubscriptionStatus> subscriptions() const;
        QVector<ChannelFile> channelFiles(const QString &channel) const;  // path, size, done
        void publish(const QString &identityFile, const QStringList &paths, const PublishSettings &settings);
        void stopPublishing(const QByteArray &publicKey);

        SessionStatus status() const;
        QVector<PublishedChannel> publishedChannels() const;
        // True once started() was emitted.
        bool isStarted() const;

    signals:
        void subscriptionsChanged();
        void channelUpdated(const QByteArray &publicKey, qint64 sequence);
        void syncProgress(const QByteArray &publicKey, qint64 bytesDone, qint64 bytesTotal);
        void synced(const QByteArray &publicKey, qint64 sequence);
        void published(const QByteArray &publicKey, qint64 sequence);
        void errorOccurred(Megatorrent::ErrorKind kind, const QString &message);

        // The session runs: its blob server and DHT ports are bound (also in status()).
        void started(quint16 listenPort, quint16 dhtPort);
        // A file of a channel is complete in its save folder (path relative to it, '/'-separated).
        void fileCompleted(const QByteArray &publicKey, const QString &path);
        // A file the user changed was kept: the channel's new version of it was not written.
        void localChangeKept(const QByteArray &publicKey, const QString &path);
        // Right after synced(): how many blobs this version needed from peers, and how many the
        // store already held (a resumed download fetches only what it lacks).
        void syncFinished(const QByteArray &publicKey, qint64 sequence, int blobsFetched, int blobsPresent);
        // publishedChannels() changed (a publish, stopPublishing()).
        void publishedChannelsChanged();

    private:
        std::unique_ptr<Detail::SessionPrivate> m_d;
    };
}
