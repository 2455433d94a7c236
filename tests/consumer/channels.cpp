#include "channels.h"

#include <megatorrent/session.h>

#include <QDir>
#include <QStringList>

Channels::Channels(const QString &profileFolder, const QString &bootstrapNode, QObject *parent)
    : QObject(parent)
{
    Megatorrent::SessionSettings settings;
    settings.stateFolder = QDir(profileFolder).filePath(QStringLiteral("megatorrent"));
    settings.bootstrapNodes = QStringList {bootstrapNode};
    settings.listenAddress = QStringLiteral("127.0.0.1");
    settings.listenPort = 0;
    settings.dhtPort = 0;
    settings.downloadRateLimit = 0;
    settings.uploadRateLimit = 0;
    m_session = new Megatorrent::Session(settings, this);

    connect(m_session, &Megatorrent::Session::subscriptionsChanged, this, [this]
    {
        emit logMessage(tr("%1 subscription(s)").arg(m_session->subscriptions().size()));
    });
    connect(m_session, &Megatorrent::Session::channelUpdated, this, [this](const QByteArray &publicKey, const qint64 sequence)
    {
        emit logMessage(tr("New version %1 of %2").arg(QString::number(sequence), QString::fromLatin1(publicKey.toHex())));
    });
    connect(m_session, &Megatorrent::Session::syncProgress, this, [](const QByteArray &, const qint64 bytesDone, const qint64 bytesTotal)
    {
        Q_UNUSED(bytesDone);
        Q_UNUSED(bytesTotal);
    });
    connect(m_session, &Megatorrent::Session::synced, this, [this](const QByteArray &publicKey, const qint64 sequence)
    {
        for (const Megatorrent::ChannelFile &file : m_session->channelFiles(QString::fromLatin1(publicKey.toHex())))
            emit logMessage(tr("%1: %2 of %3 bytes").arg(file.path, QString::number(file.bytesDone), QString::number(file.size)));
        emit logMessage(tr("Synced version %1").arg(sequence));
    });
    connect(m_session, &Megatorrent::Session::published, this, [this](const QByteArray &publicKey, const qint64 sequence)
    {
        emit logMessage(tr("Published %1 version %2").arg(QString::fromLatin1(publicKey.toHex()), QString::number(sequence)));
    });
    connect(m_session, &Megatorrent::Session::errorOccurred, this, &Channels::handleError);
    connect(m_session, &Megatorrent::Session::started, this, [this](const quint16 listenPort, const quint16 dhtPort)
    {
        emit logMessage(tr("Listening on %1, DHT on %2").arg(QString::number(listenPort), QString::number(dhtPort)));
    });
    connect(m_session, &Megatorrent::Session::fileCompleted, this, [this](const QByteArray &, const QString &path)
    {
        emit logMessage(tr("Completed %1").arg(path));
    });
    connect(m_session, &Megatorrent::Session::localChangeKept, this, [this](const QByteArray &, const QString &path)
    {
        emit logMessage(tr("Kept your changes to %1").arg(path));
    });
    connect(m_session, &Megatorrent::Session::publishedChannelsChanged, this, [this]
    {
        emit logMessage(tr("%1 published channel(s)").arg(m_session->publishedChannels().size()));
    });
}

Channels::~Channels() = default;

QString Channels::createIdentity(const QString &fileName) const
{
    return QString::fromLatin1(Megatorrent::Session::createIdentity(fileName).toHex());
}

QString Channels::createIdentity(const QString &fileName, QString &error) const
{
    return QString::fromLatin1(Megatorrent::Session::createIdentity(fileName, error).toHex());
}

void Channels::subscribe(const QString &channel, const QString &savePath)
{
    Megatorrent::SubscriptionSettings settings;
    settings.savePath = savePath;
    settings.label = tr("Channel");
    settings.autoDownload = true;
    m_session->addSubscription(channel, settings);
}

void Channels::unsubscribe(const QString &channel)
{
    m_session->removeSubscription(channel);
    m_session->removeSubscription(channel, true);
}

void Channels::publishFolder(const QString &identityFile, const QString &folder)
{
    Megatorrent::PublishSettings settings;
    settings.title = QDir(folder).dirName();
    settings.salt = QString();
    settings.readKey = QByteArray();
    m_session->publish(identityFile, QStringList {folder}, settings);
}

void Channels::stopPublishing(const QString &publicKeyHex)
{
    m_session->stopPublishing(QByteArray::fromHex(publicKeyHex.toLatin1()));
}

QString Channels::describe() const
{
    const Megatorrent::SessionStatus status = m_session->status();
    QStringList lines {tr("started: %1, DHT port %2, listen port %3, %4 DHT nodes, %5 blobs (%6 bytes), %7 subscriptions, %8 published")
        .arg((m_session->isStarted() ? tr("yes") : tr("no")), QString::number(status.dhtPort), QString::number(status.listenPort)
            , QString::number(status.dhtNodes), QString::number(status.blobs), QString::number(status.blobBytes)
            , QString::number(status.subscriptions), QString::number(status.published))};
    for (const Megatorrent::SubscriptionStatus &sub : m_session->subscriptions())
    {
        const bool syncing = (sub.state == Megatorrent::SyncState::Checking) || (sub.state == Megatorrent::SyncState::Downloading);
        const QString line = tr("%1 [%2] %3 -> %4: seq %5, %6/%7 bytes, %8 peers, %9 B/s")
            .arg(QString::fromLatin1(sub.publicKey.toHex()), sub.salt, sub.label, sub.savePath, QString::number(sub.lastSequence)
                , QString::number(sub.bytesDone), QString::number(sub.bytesTotal), QString::number(sub.peers), QString::number(sub.downloadRate));
        lines.append(line + (syncing ? tr(" (syncing)") : QString()) + sub.error);
    }
    for (const Megatorrent::PublishedChannel &channel : m_session->publishedChannels())
    {
        lines.append(tr("published %1 [%2] %3: seq %4, %5 files, %6 bytes%7").arg(QString::fromLatin1(channel.publicKey.toHex()), channel.salt, channel.title
            , QString::number(channel.sequence), QString::number(channel.files), QString::number(channel.bytes), (channel.active ? tr(", active") : QString())));
    }
    return lines.join(u'\n');
}

void Channels::handleError(const Megatorrent::ErrorKind kind, const QString &message)
{
    switch (kind)
    {
    case Megatorrent::ErrorKind::WrongReadKey:
        emit logMessage(tr("A read key is needed: %1").arg(message));
        break;
    case Megatorrent::ErrorKind::Network:
        emit logMessage(tr("Network (will retry): %1").arg(message));
        break;
    case Megatorrent::ErrorKind::InvalidChannel:
    case Megatorrent::ErrorKind::NotFound:
    case Megatorrent::ErrorKind::BadManifest:
    case Megatorrent::ErrorKind::Storage:
    case Megatorrent::ErrorKind::Io:
    case Megatorrent::ErrorKind::Internal:
    case Megatorrent::ErrorKind::InvalidArgument:
        emit logMessage(tr("Megatorrent: %1").arg(message));
        break;
    }
}
