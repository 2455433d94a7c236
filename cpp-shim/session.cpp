#include "megatorrent/session.h"

#include <functional>
#include <limits>

#include <QMetaObject>
#include <QPointer>

#include "bridge_util.h"
#include "engine_host.h"

namespace
{
    using namespace Megatorrent;

    QByteArray keyFromHex(const rust::String &hex)
    {
        return QByteArray::fromHex(QByteArray(hex.data(), static_cast<qsizetype>(hex.size())));
    }

    qint64 toInt64(const std::uint64_t value)
    {
        return static_cast<qint64>(qMin<std::uint64_t>(value, static_cast<std::uint64_t>(std::numeric_limits<qint64>::max())));
    }

    int toInt(const std::uint64_t value)
    {
        return static_cast<int>(qMin<std::uint64_t>(value, static_cast<std::uint64_t>(std::numeric_limits<int>::max())));
    }

    SyncState toSyncState(const megatorrent::ffi::SyncStateData state)
    {
        using megatorrent::ffi::SyncStateData;
        switch (state)
        {
        case SyncStateData::Checking:
            return SyncState::Checking;
        case SyncStateData::Downloading:
            return SyncState::Downloading;
        case SyncStateData::Synced:
            return SyncState::Synced;
        case SyncStateData::Failed:
            return SyncState::Failed;
        case SyncStateData::Stopped:
            break;
        }
        return SyncState::Stopped;
    }

    SubscriptionStatus toSubscriptionStatus(const megatorrent::ffi::SubscriptionData &data)
    {
        SubscriptionStatus status;
        status.publicKey = Detail::toQByteArray(data.public_key);
        status.salt = Detail::toQString(data.salt);
        status.label = Detail::toQString(data.label);
        status.savePath = Detail::toQString(data.save_path);
        status.lastSequence = toInt64(data.last_sequence);
        status.state = toSyncState(data.state);
        status.bytesDone = toInt64(data.bytes_done);
        status.bytesTotal = toInt64(data.bytes_total);
        status.peers = toInt(data.peers);
        status.downloadRate = toInt64(data.download_rate);
        status.error = Detail::toQString(data.error);
        return status;
    }

    PublishedChannel toPublishedChannel(const megatorrent::ffi::PublishedData &data)
    {
        PublishedChannel channel;
        channel.publicKey = Detail::toQByteArray(data.public_key);
        channel.salt = Detail::toQString(data.salt);
        channel.title = Detail::toQString(data.title);
        channel.sequence = toInt64(data.sequence);
        channel.files = toInt(data.files);
        channel.bytes = toInt64(data.bytes);
        channel.active = data.active;
        return channel;
    }

    SessionStatus toSessionStatus(const megatorrent::ffi::StatusData &data)
    {
        SessionStatus status;
        status.dhtPort = data.dht_port;
        status.listenPort = data.listen_port;
        status.dhtNodes = toInt(data.dht_nodes);
        status.blobs = toInt64(data.blobs);
        status.blobBytes = toInt64(data.blob_bytes);
        status.subscriptions = toInt(data.subscriptions);
        status.published = toInt(data.published);
        return status;
    }
}

namespace Megatorrent::Detail
{
    class SessionPrivate
    {
    public:
        SessionPrivate(Session *session, const SessionSettings &settings);

        // Runs a bridge call that submits a command (whose failures arrive as events); a thrown
        // error (a caught panic, or no engine) becomes errorOccurred(), later, like any result.
        void submit(const std::function<void(const megatorrent::ffi::Engine &)> &call);
        void failLater(ErrorKind kind, const QString &message);
        void handleEvent(const megatorrent::ffi::Event &event);

        Session *m_q = nullptr;
        EngineHost *m_host = nullptr;
        bool m_started = false;
        // Snapshots the engine sends before the events that changed them.
        QVector<SubscriptionStatus> m_subscriptions;
        QVector<PublishedChannel> m_published;
        SessionStatus m_status;
    };

    SessionPrivate::SessionPrivate(Session *session, const SessionSettings &settings)
        : m_q {session}
        , m_host {new EngineHost(session)}
    {
        megatorrent::ffi::SessionSettingsData data;
        data.state_folder = toRustString(settings.stateFolder);
        for (const QString &node : settings.bootstrapNodes)
            data.bootstrap.push_back(toRustString(node));
        data.listen_address = toRustString(settings.listenAddress);
        data.listen_port = settings.listenPort;
        data.dht_port = settings.dhtPort;
        data.download_rate_limit = static_cast<std::uint64_t>(qMax<qint64>(0, settings.downloadRateLimit));
        data.upload_rate_limit = static_cast<std::uint64_t>(qMax<qint64>(0, settings.uploadRateLimit));
        submit([data](const megatorrent::ffi::Engine &engine) { megatorrent::ffi::sessionStart(engine, data); });
    }

    void SessionPrivate::submit(const std::function<void(const megatorrent::ffi::Engine &)> &call)
    {
        if (!m_host->isValid())
        {
            failLater(ErrorKind::Internal, m_host->startError());
            return;
        }
        try
        {
            call(m_host->engine());
        }
        catch (const rust::Error &error)
        {
            failLater(ErrorKind::Internal, errorText(error));
        }
    }

    void SessionPrivate::failLater(const ErrorKind kind, const QString &message)
    {
        QMetaObject::invokeMethod(m_q, [q = m_q, kind, message] { emit q->errorOccurred(kind, message); }, Qt::QueuedConnection);
    }

    void SessionPrivate::handleEvent(const megatorrent::ffi::Event &event)
    {
        using megatorrent::ffi::Operation;
        if (!event.ok)
        {
            // Failed commands and the session's own failures.
            if (event.operation == Operation::SessionStart)
                m_status = {};
            emit m_q->errorOccurred(toErrorKind(event.kind), toQString(event.message));
            return;
        }
        const QByteArray key = keyFromHex(event.subject);
        switch (event.operation)
        {
        case Operation::SessionStart:
            m_started = true;
            m_status.listenPort = event.port;
            m_status.dhtPort = event.dht_port;
            emit m_q->started(event.port, event.dht_port);
            break;
        case Operation::SubscriptionsSnapshot:
            m_subscriptions.clear();
            m_subscriptions.reserve(static_cast<qsizetype>(event.subscriptions.size()));
            for (const megatorrent::ffi::SubscriptionData &data : event.subscriptions)
                m_subscriptions.append(toSubscriptionStatus(data));
            break;
        case Operation::PublishedSnapshot:
            m_published.clear();
            m_published.reserve(static_cast<qsizetype>(event.published.size()));
            for (const megatorrent::ffi::PublishedData &data : event.published)
                m_published.append(toPublishedChannel(data));
            emit m_q->publishedChannelsChanged();
            break;
        case Operation::StatusSnapshot:
            m_status = toSessionStatus(event.status);
            break;
        case Operation::SubscriptionsChanged:
            emit m_q->subscriptionsChanged();
            break;
        case Operation::ChannelUpdated:
            emit m_q->channelUpdated(key, toInt64(event.sequence));
            break;
        case Operation::SyncProgress:
            emit m_q->syncProgress(key, toInt64(event.bytes_done), toInt64(event.bytes_total));
            break;
        case Operation::FileCompleted:
            emit m_q->fileCompleted(key, toQString(event.path));
            break;
        case Operation::LocalChangeKept:
            emit m_q->localChangeKept(key, toQString(event.path));
            break;
        case Operation::Synced:
            {
                const QPointer<Session> alive {m_q};
                emit m_q->synced(key, toInt64(event.sequence));
                if (alive)
                    emit m_q->syncFinished(key, toInt64(event.sequence), toInt(event.blobs_fetched), toInt(event.blobs_present));
            }
            break;
        case Operation::Published:
            emit m_q->published(key, toInt64(event.sequence));
            break;
        default:
            // Successful commands: the session's events and snapshots say what changed.
            break;
        }
    }
}

namespace Megatorrent
{
    Session::Session(const SessionSettings &settings, QObject *parent)
        : QObject(parent)
        , m_d {std::make_unique<Detail::SessionPrivate>(this, settings)}
    {
        connect(m_d->m_host, &Detail::EngineHost::eventReceived, this, [this](const megatorrent::ffi::Event &event)
        {
            m_d->handleEvent(event);
        });
        // The engine's own failures: a caught panic in one of its tasks.
        connect(m_d->m_host, &Detail::EngineHost::errorOccurred, this, [this](const QString &message)
        {
            emit errorOccurred(ErrorKind::Internal, message);
        });
    }

    Session::~Session()
    {
        // Stops the engine first (bounded: the session saves its state, then everything in
        // flight is dropped); once this returns no notification can reach this object, and Qt
        // discards a call still queued for it.
        delete m_d->m_host;
    }

    QByteArray Session::createIdentity(const QString &identityFile)
    {
        QString errorMessage;
        return createIdentity(identityFile, errorMessage);
    }

    QByteArray Session::createIdentity(const QString &identityFile, QString &errorMessage)
    {
        try
        {
            const QByteArray publicKey = Detail::toQByteArray(megatorrent::ffi::identityCreate(Detail::toRustStr(identityFile.toUtf8())));
            errorMessage.clear();
            return publicKey;
        }
        catch (const rust::Error &error)
        {
            errorMessage = Detail::errorText(error);
            return {};
        }
    }

    void Session::addSubscription(const QString &channel, const SubscriptionSettings &settings)
    {
        const QByteArray text = channel.toUtf8();
        const QByteArray savePath = settings.savePath.toUtf8();
        const QByteArray label = settings.label.toUtf8();
        const bool autoDownload = settings.autoDownload;
        m_d->submit([&](const megatorrent::ffi::Engine &engine)
        {
            megatorrent::ffi::sessionSubscribe(engine, Detail::toRustStr(text), Detail::toRustStr(savePath), Detail::toRustStr(label), autoDownload);
        });
    }

    void Session::removeSubscription(const QString &channel, const bool deleteFiles)
    {
        const QByteArray text = channel.toUtf8();
        m_d->submit([&](const megatorrent::ffi::Engine &engine)
        {
            megatorrent::ffi::sessionUnsubscribe(engine, Detail::toRustStr(text), deleteFiles);
        });
    }

    QVector<SubscriptionStatus> Session::subscriptions() const
    {
        return m_d->m_subscriptions;
    }

    QVector<ChannelFile> Session::channelFiles(const QString &channel) const
    {
        if (!m_d->m_host->isValid())
            return {};
        try
        {
            const QByteArray text = channel.toUtf8();
            QVector<ChannelFile> files;
            for (const megatorrent::ffi::FileStatusData &file : megatorrent::ffi::sessionChannelFiles(m_d->m_host->engine(), Detail::toRustStr(text)))
                files.append({Detail::toQString(file.path), toInt64(file.size), toInt64(file.bytes_done)});
            return files;
        }
        catch (const rust::Error &)
        {
            // Not a channel, or not subscribed: no files.
            return {};
        }
    }

    void Session::publish(const QString &identityFile, const QStringList &paths, const PublishSettings &settings)
    {
        const QByteArray identity = identityFile.toUtf8();
        const QByteArray title = settings.title.toUtf8();
        const QByteArray salt = settings.salt.toUtf8();
        const QByteArray readKey = settings.readKey;
        m_d->submit([&](const megatorrent::ffi::Engine &engine)
        {
            rust::Vec<rust::String> rustPaths;
            for (const QString &path : paths)
                rustPaths.push_back(Detail::toRustString(path));
            megatorrent::ffi::sessionPublish(engine, Detail::toRustStr(identity), std::move(rustPaths), Detail::toRustStr(title)
                , Detail::toRustStr(salt), Detail::toRustSlice(readKey));
        });
    }

    void Session::stopPublishing(const QByteArray &publicKey)
    {
        m_d->submit([&](const megatorrent::ffi::Engine &engine)
        {
            megatorrent::ffi::sessionStopPublishing(engine, Detail::toRustSlice(publicKey));
        });
    }

    SessionStatus Session::status() const
    {
        return m_d->m_status;
    }

    QVector<PublishedChannel> Session::publishedChannels() const
    {
        return m_d->m_published;
    }

    bool Session::isStarted() const
    {
        return m_d->m_started;
    }
}
