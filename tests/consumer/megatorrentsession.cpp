#include "megatorrentsession.h"

#include <megatorrent/dht_client.h>
#include <megatorrent/global.h>
#include <megatorrent/manifest.h>
#include <megatorrent/secure_server.h>
#include <megatorrent/secure_socket.h>

#include <QNetworkProxy>

MegatorrentSession::MegatorrentSession(QObject *parent)
    : QObject(parent)
    , m_dht {new Megatorrent::DHTClient(this)}
    , m_server {new Megatorrent::SecureServer(this)}
{
    m_dht->setPort(0);
    connect(m_dht, &Megatorrent::DHTClient::manifestFound, this, &MegatorrentSession::onManifestFound);
    connect(m_dht, &Megatorrent::DHTClient::peersFound, this, &MegatorrentSession::onPeersFound);
    connect(m_dht, &Megatorrent::DHTClient::errorOccurred, this, &MegatorrentSession::failed);
    connect(m_dht, &Megatorrent::DHTClient::getManifestFailed, this, [this](const QByteArray &, const QString &reason)
    {
        emit failed(reason);
    });
    connect(m_dht, &Megatorrent::DHTClient::failed, this, [this](const Megatorrent::ErrorKind kind, const QString &)
    {
        m_lastErrorKind = kind;
    });
    connect(m_dht, &Megatorrent::DHTClient::getManifestError, this, [this](const QByteArray &, const Megatorrent::ErrorKind kind, const QString &)
    {
        if (kind == Megatorrent::ErrorKind::WrongReadKey)
            emit readKeyNeeded();
    });
    connect(m_server, &Megatorrent::SecureServer::newConnection, this, &MegatorrentSession::onIncoming);
    connect(m_server, &Megatorrent::SecureServer::acceptError, this, &MegatorrentSession::failed);
}

MegatorrentSession::~MegatorrentSession() = default;

bool MegatorrentSession::loadManifest(const QByteArray &json, QString &error)
{
    Megatorrent::Manifest manifest;
    if (!Megatorrent::ManifestVerifier::parseAndValidate(json, manifest, error))
        return false;
    m_manifestJson = manifest.rawJson;
    m_sequence = manifest.sequence;
    m_fileCount = manifest.files.size();
    return Megatorrent::ManifestVerifier::parseAndValidate(json, manifest);
}

bool MegatorrentSession::loadPrivateManifest(const QByteArray &json, const QByteArray &readKey, QString &error)
{
    Megatorrent::Manifest manifest;
    if (!Megatorrent::ManifestVerifier::decryptAndValidate(json, readKey, manifest, error))
        return false;
    m_manifestJson = manifest.rawJson;
    m_sequence = manifest.sequence;
    m_fileCount = manifest.files.size();
    return true;
}

void MegatorrentSession::subscribe(const QByteArray &publicKey)
{
    m_dht->getManifest(publicKey);
}

void MegatorrentSession::subscribe(const QByteArray &publicKey, const QByteArray &salt)
{
    m_dht->getManifest(publicKey, salt);
}

void MegatorrentSession::publish(const QByteArray &publicKey, const QByteArray &secretKey)
{
    Megatorrent::Manifest manifest;
    QString error;
    if (!Megatorrent::ManifestVerifier::parseAndValidate(m_manifestJson, manifest, error))
    {
        emit failed(error);
        return;
    }
    manifest.sequence += 1;
    m_dht->putManifest(publicKey, secretKey, manifest);
}

void MegatorrentSession::seed(const QString &blobId)
{
    if (m_dht->blobServerPort() == 0)
    {
        connect(m_dht, &Megatorrent::DHTClient::blobServerStarted, this, [this, blobId](const quint16 port)
        {
            m_dht->announceBlob(blobId, port);
        });
        m_dht->serveBlobs(QStringLiteral("blobs"));
    }
    else
    {
        m_dht->announceBlob(blobId, m_dht->blobServerPort());
    }
    m_dht->findBlobPeers(blobId);
}

bool MegatorrentSession::listen(const quint16 port)
{
    return m_server->listen(QHostAddress::Any, port);
}

void MegatorrentSession::fetchBlob(const QString &host, const quint16 port, const QString &blobId)
{
    auto *socket = new Megatorrent::SecureSocket(this);
    socket->setProxy(QNetworkProxy::applicationProxy());
    connect(socket, &Megatorrent::SecureSocket::connected, this, [socket, blobId]
    {
        socket->sendMessage(Megatorrent::SecureSocket::Request, blobId.toLatin1());
    });
    connect(socket, &Megatorrent::SecureSocket::dataReceived, this, [this, socket, blobId](const QByteArray &data)
    {
        emit blobReceived(blobId, data);
        socket->close();
    });
    connect(socket, &Megatorrent::SecureSocket::messageReceived, this, [this](const quint8 type, const QByteArray &payload)
    {
        if (type == Megatorrent::SecureSocket::Error)
            emit failed(QString::fromUtf8(payload));
    });
    connect(socket, &Megatorrent::SecureSocket::errorOccurred, this, &MegatorrentSession::failed);
    connect(socket, &Megatorrent::SecureSocket::disconnected, socket, &QObject::deleteLater);
    socket->connectToHost(host, port);
}

qsizetype MegatorrentSession::fileCount() const
{
    return m_fileCount;
}

void MegatorrentSession::onManifestFound(const Megatorrent::Manifest &manifest)
{
    if (manifest.sequence > m_sequence)
    {
        m_manifestJson = manifest.rawJson;
        m_sequence = manifest.sequence;
        m_fileCount = manifest.files.size();
    }
}

void MegatorrentSession::onPeersFound(const QString &blobId, const QVector<QString> &endpoints)
{
    for (const QString &endpoint : endpoints)
    {
        const qsizetype colon = endpoint.lastIndexOf(u':');
        fetchBlob(endpoint.left(colon), static_cast<quint16>(endpoint.mid(colon + 1).toUInt()), blobId);
    }
}

void MegatorrentSession::onIncoming(Megatorrent::SecureSocket *socket)
{
    connect(socket, &Megatorrent::SecureSocket::disconnected, socket, &QObject::deleteLater);
}
