#include "megatorrent/dht_client.h"

#include <functional>

#include <QByteArray>
#include <QHash>
#include <QMetaObject>
#include <QPointer>

#include "bridge_util.h"
#include "engine_host.h"
#include "manifest_convert.h"

namespace Megatorrent::Detail
{
    class DHTClientPrivate
    {
    public:
        enum class State
        {
            Idle,
            Starting,
            Started,
            Failed
        };

        // An operation called before the node was up: run once it is, or fail with the reason.
        struct PendingOperation
        {
            std::function<void()> run;
            std::function<void(ErrorKind, const QString &)> fail;
        };

        explicit DHTClientPrivate(DHTClient *client);

        void start();
        void whenStarted(PendingOperation operation);
        void handleEvent(const megatorrent::ffi::Event &event);
        // Emits a failure later, from the event loop, like every other result.
        void failLater(std::function<void()> emitFailure);
        // errorOccurred() then failed(), unless a slot of the first deleted the client.
        void emitError(ErrorKind kind, const QString &error);
        // A failed operation's signals: its specific one, its kind overload, then emitError().
        // Stops as soon as a slot deleted the client.
        void emitFailure(const std::function<void()> &specific, const std::function<void()> &specificWithKind, ErrorKind kind, const QString &error);
        // Runs a bridge call that submits an operation; a thrown error (only a caught panic)
        // fails it later with kind Internal.
        void submit(const std::function<quint64()> &call, const std::function<void(quint64)> &submitted, const std::function<void(ErrorKind, const QString &)> &fail);

        DHTClient *m_q = nullptr;
        EngineHost *m_host = nullptr;
        QStringList m_bootstrap;
        quint16 m_port = 0;
        QString m_bindAddress;
        bool m_serverMode = false;
        int m_requestTimeout = 2000;
        State m_state = State::Idle;
        ErrorKind m_startErrorKind = ErrorKind::Internal;
        quint16 m_boundPort = 0;
        quint16 m_blobServerPort = 0;
        QVector<PendingOperation> m_pending;
        QHash<quint64, QByteArray> m_keyRequests;
        QHash<quint64, QString> m_blobRequests;
    };

    DHTClientPrivate::DHTClientPrivate(DHTClient *client)
        : m_q {client}
        , m_host {new EngineHost(client)}
    {
        try
        {
            for (const rust::String &node : megatorrent::ffi::dhtDefaultBootstrap())
                m_bootstrap.append(toQString(node));
        }
        catch (const rust::Error &)
        {
            // Only a panic could land here; the list then starts empty.
        }
    }

    void DHTClientPrivate::start()
    {
        if ((m_state == State::Starting) || (m_state == State::Started))
            return;
        if (!m_host->isValid())
        {
            m_state = State::Failed;
            const QString reason = m_host->startError();
            failLater([this, reason] { emitError(ErrorKind::Internal, reason); });
            return;
        }
        megatorrent::ffi::DhtSettings settings;
        for (const QString &node : m_bootstrap)
            settings.bootstrap.push_back(toRustString(node));
        settings.bind_address = toRustString(m_bindAddress);
        settings.port = m_port;
        settings.server_mode = m_serverMode;
        settings.request_timeout_ms = static_cast<std::uint32_t>(qMax(0, m_requestTimeout));
        try
        {
            megatorrent::ffi::dhtStart(m_host->engine(), settings);
            m_state = State::Starting;
        }
        catch (const rust::Error &error)
        {
            m_state = State::Failed;
            const QString reason = errorText(error);
            failLater([this, reason] { emitError(ErrorKind::Internal, reason); });
        }
    }

    void DHTClientPrivate::whenStarted(PendingOperation operation)
    {
        if (m_state == State::Started)
        {
            operation.run();
            return;
        }
        m_pending.append(std::move(operation));
        start();
        if (m_state == State::Failed)
        {
            const auto pending = std::exchange(m_pending, {});
            const QString reason = m_host->isValid() ? DHTClient::tr("the DHT node could not start") : m_host->startError();
            for (const PendingOperation &op : pending)
                failLater([op, reason] { op.fail(ErrorKind::Internal, reason); });
        }
    }

    void DHTClientPrivate::failLater(std::function<void()> emitFailure)
    {
        QMetaObject::invokeMethod(m_q, std::move(emitFailure), Qt::QueuedConnection);
    }

    void DHTClientPrivate::emitError(const ErrorKind kind, const QString &error)
    {
        const QPointer<DHTClient> alive {m_q};
        emit m_q->errorOccurred(error);
        if (alive)
            emit m_q->failed(kind, error);
    }

    void DHTClientPrivate::emitFailure(const std::function<void()> &specific, const std::function<void()> &specificWithKind, const ErrorKind kind, const QString &error)
    {
        const QPointer<DHTClient> alive {m_q};
        specific();
        if (alive)
            specificWithKind();
        if (alive)
            emitError(kind, error);
    }

    void DHTClientPrivate::submit(const std::function<quint64()> &call, const std::function<void(quint64)> &submitted, const std::function<void(ErrorKind, const QString &)> &fail)
    {
        try
        {
            submitted(call());
        }
        catch (const rust::Error &error)
        {
            const QString reason = errorText(error);
            failLater([fail, reason] { fail(ErrorKind::Internal, reason); });
        }
    }

    void DHTClientPrivate::handleEvent(const megatorrent::ffi::Event &event)
    {
        using megatorrent::ffi::Operation;
        const QString reason = toQString(event.message);
        const ErrorKind kind = toErrorKind(event.kind);
        switch (event.operation)
        {
        case Operation::DhtStart:
            {
                const auto pending = std::exchange(m_pending, {});
                if (event.ok)
                {
                    m_state = State::Started;
                    m_boundPort = event.port;
                    emit m_q->started(m_boundPort);
                    for (const PendingOperation &op : pending)
                        op.run();
                }
                else
                {
                    m_state = State::Failed;
                    m_startErrorKind = kind;
                    const QPointer<DHTClient> alive {m_q};
                    emitError(kind, DHTClient::tr("DHT start: %1").arg(reason));
                    for (const PendingOperation &op : pending)
                    {
                        if (!alive)
                            return;
                        op.fail(kind, reason);
                    }
                }
            }
            break;
        case Operation::PutManifest:
            {
                const QByteArray key = m_keyRequests.take(event.request);
                if (event.ok)
                {
                    emit m_q->manifestPut(key, static_cast<qint64>(event.sequence));
                }
                else
                {
                    const auto specific = [&] { emit m_q->putManifestFailed(key, reason); };
                    const auto withKind = [&] { emit m_q->putManifestError(key, kind, reason); };
                    emitFailure(specific, withKind, kind, DHTClient::tr("putManifest: %1").arg(reason));
                }
            }
            break;
        case Operation::GetManifest:
            {
                const QByteArray key = m_keyRequests.take(event.request);
                if (event.ok)
                {
                    emit m_q->manifestFound(toManifest(event.manifest));
                }
                else
                {
                    const auto specific = [&] { emit m_q->getManifestFailed(key, reason); };
                    const auto withKind = [&] { emit m_q->getManifestError(key, kind, reason); };
                    emitFailure(specific, withKind, kind, DHTClient::tr("getManifest: %1").arg(reason));
                }
            }
            break;
        case Operation::AnnounceBlob:
            {
                const QString blobId = m_blobRequests.take(event.request);
                if (event.ok)
                {
                    emit m_q->blobAnnounced(blobId);
                }
                else
                {
                    const auto specific = [&] { emit m_q->announceBlobFailed(blobId, reason); };
                    const auto withKind = [&] { emit m_q->announceBlobError(blobId, kind, reason); };
                    emitFailure(specific, withKind, kind, DHTClient::tr("announceBlob: %1").arg(reason));
                }
            }
            break;
        case Operation::FindBlobPeers:
            {
                const QString blobId = m_blobRequests.take(event.request);
                if (event.ok)
                {
                    QVector<QString> endpoints;
                    endpoints.reserve(static_cast<qsizetype>(event.endpoints.size()));
                    for (const rust::String &endpoint : event.endpoints)
                        endpoints.append(toQString(endpoint));
                    emit m_q->peersFound(blobId, endpoints);
                }
                else
                {
                    const auto specific = [&] { emit m_q->findBlobPeersFailed(blobId, reason); };
                    const auto withKind = [&] { emit m_q->findBlobPeersError(blobId, kind, reason); };
                    emitFailure(specific, withKind, kind, DHTClient::tr("findBlobPeers: %1").arg(reason));
                }
            }
            break;
        case Operation::ServeBlobs:
            if (event.ok)
            {
                m_blobServerPort = event.port;
                emit m_q->blobServerStarted(m_blobServerPort);
            }
            else
            {
                emitError(kind, DHTClient::tr("serveBlobs: %1").arg(reason));
            }
            break;
        default:
            break;
        }
    }
}

namespace Megatorrent
{
    DHTClient::DHTClient(QObject *parent)
        : QObject(parent)
        , m_d {std::make_unique<Detail::DHTClientPrivate>(this)}
    {
        connect(m_d->m_host, &Detail::EngineHost::eventReceived, this, [this](const megatorrent::ffi::Event &event)
        {
            m_d->handleEvent(event);
        });
        // The engine's own failures: its runtime did not start, or a caught panic.
        connect(m_d->m_host, &Detail::EngineHost::errorOccurred, this, [this](const QString &error)
        {
            m_d->emitError(ErrorKind::Internal, error);
        });
    }

    DHTClient::~DHTClient()
    {
        // Stops the engine first: once this returns no notification can reach this object.
        delete m_d->m_host;
    }

    void DHTClient::setBootstrapNodes(const QStringList &nodes)
    {
        m_d->m_bootstrap = nodes;
    }

    QStringList DHTClient::bootstrapNodes() const
    {
        return m_d->m_bootstrap;
    }

    void DHTClient::setPort(const quint16 port)
    {
        m_d->m_port = port;
    }

    quint16 DHTClient::port() const
    {
        return m_d->m_port;
    }

    void DHTClient::setBindAddress(const QString &address)
    {
        m_d->m_bindAddress = address;
    }

    QString DHTClient::bindAddress() const
    {
        return m_d->m_bindAddress;
    }

    void DHTClient::setServerMode(const bool enabled)
    {
        m_d->m_serverMode = enabled;
    }

    bool DHTClient::serverMode() const
    {
        return m_d->m_serverMode;
    }

    void DHTClient::setRequestTimeout(const int milliseconds)
    {
        m_d->m_requestTimeout = milliseconds;
    }

    int DHTClient::requestTimeout() const
    {
        return m_d->m_requestTimeout;
    }

    void DHTClient::start()
    {
        m_d->start();
    }

    bool DHTClient::isStarted() const
    {
        return m_d->m_state == Detail::DHTClientPrivate::State::Started;
    }

    quint16 DHTClient::boundPort() const
    {
        return isStarted() ? m_d->m_boundPort : 0;
    }

    void DHTClient::serveBlobs(const QString &folder, const quint16 port)
    {
        const auto fail = [this](const ErrorKind kind, const QString &reason)
        {
            m_d->emitError(kind, tr("serveBlobs: %1").arg(reason));
        };
        if (!m_d->m_host->isValid())
        {
            const QString reason = m_d->m_host->startError();
            m_d->failLater([fail, reason] { fail(ErrorKind::Internal, reason); });
            return;
        }
        const QString host = m_d->m_bindAddress.isEmpty() ? QStringLiteral("0.0.0.0") : m_d->m_bindAddress;
        const QString listen = host + u':' + QString::number(port);
        m_d->submit([this, folder, listen]
        {
            return megatorrent::ffi::serveBlobs(m_d->m_host->engine(), Detail::toRustStr(folder.toUtf8()), Detail::toRustStr(listen.toUtf8()));
        }, [](quint64) {}, fail);
    }

    quint16 DHTClient::blobServerPort() const
    {
        return m_d->m_blobServerPort;
    }

    void DHTClient::putManifest(const QByteArray &publicKey, const QByteArray &privateKey, const Manifest &manifest)
    {
        const megatorrent::ffi::ManifestData content = Detail::toManifestData(manifest);
        const auto fail = [this, publicKey](const ErrorKind kind, const QString &reason)
        {
            const auto specific = [&] { emit putManifestFailed(publicKey, reason); };
            const auto withKind = [&] { emit putManifestError(publicKey, kind, reason); };
            m_d->emitFailure(specific, withKind, kind, tr("putManifest: %1").arg(reason));
        };
        m_d->whenStarted({[this, publicKey, privateKey, content, fail]
        {
            m_d->submit([this, publicKey, privateKey, content]
            {
                return megatorrent::ffi::dhtPutManifest(m_d->m_host->engine(), Detail::toRustSlice(privateKey), Detail::toRustSlice(publicKey), content);
            }, [this, publicKey](const quint64 request) { m_d->m_keyRequests.insert(request, publicKey); }, fail);
        }, fail});
    }

    void DHTClient::getManifest(const QByteArray &publicKey)
    {
        getManifest(publicKey, {});
    }

    void DHTClient::getManifest(const QByteArray &publicKey, const QByteArray &salt)
    {
        const auto fail = [this, publicKey](const ErrorKind kind, const QString &reason)
        {
            const auto specific = [&] { emit getManifestFailed(publicKey, reason); };
            const auto withKind = [&] { emit getManifestError(publicKey, kind, reason); };
            m_d->emitFailure(specific, withKind, kind, tr("getManifest: %1").arg(reason));
        };
        m_d->whenStarted({[this, publicKey, salt, fail]
        {
            m_d->submit([this, publicKey, salt]
            {
                return megatorrent::ffi::dhtGetManifest(m_d->m_host->engine(), Detail::toRustSlice(publicKey), Detail::toRustSlice(salt));
            }, [this, publicKey](const quint64 request) { m_d->m_keyRequests.insert(request, publicKey); }, fail);
        }, fail});
    }

    void DHTClient::announceBlob(const QString &blobId, const int port)
    {
        const auto fail = [this, blobId](const ErrorKind kind, const QString &reason)
        {
            const auto specific = [&] { emit announceBlobFailed(blobId, reason); };
            const auto withKind = [&] { emit announceBlobError(blobId, kind, reason); };
            m_d->emitFailure(specific, withKind, kind, tr("announceBlob: %1").arg(reason));
        };
        if ((port <= 0) || (port > 65535))
        {
            const QString reason = tr("port %1 is out of range").arg(port);
            m_d->failLater([fail, reason] { fail(ErrorKind::InvalidArgument, reason); });
            return;
        }
        m_d->whenStarted({[this, blobId, port, fail]
        {
            m_d->submit([this, blobId, port]
            {
                return megatorrent::ffi::dhtAnnounceBlob(m_d->m_host->engine(), Detail::toRustStr(blobId.toUtf8()), static_cast<quint16>(port));
            }, [this, blobId](const quint64 request) { m_d->m_blobRequests.insert(request, blobId); }, fail);
        }, fail});
    }

    void DHTClient::findBlobPeers(const QString &blobId)
    {
        const auto fail = [this, blobId](const ErrorKind kind, const QString &reason)
        {
            const auto specific = [&] { emit findBlobPeersFailed(blobId, reason); };
            const auto withKind = [&] { emit findBlobPeersError(blobId, kind, reason); };
            m_d->emitFailure(specific, withKind, kind, tr("findBlobPeers: %1").arg(reason));
        };
        m_d->whenStarted({[this, blobId, fail]
        {
            m_d->submit([this, blobId]
            {
                return megatorrent::ffi::dhtFindBlobPeers(m_d->m_host->engine(), Detail::toRustStr(blobId.toUtf8()));
            }, [this, blobId](const quint64 request) { m_d->m_blobRequests.insert(request, blobId); }, fail);
        }, fail});
    }
}
