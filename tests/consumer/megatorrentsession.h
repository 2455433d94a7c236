#pragma once

#include <QObject>
#include <QString>
#include <QVector>

// Linked PRIVATE (as qBittorrent links it into qbt_base): headers of qbt_base that other
// targets include only forward-declare megatorrent types; the .cpp includes the real headers.
namespace Megatorrent
{
    class DHTClient;
    class SecureServer;
    class SecureSocket;
    struct Manifest;
    enum class ErrorKind;
}

// Shaped like a qBittorrent src/base component: owns the DHT client and the secure server,
// checks manifests, fetches blobs. Compiled with qBittorrent's flags and -Werror.
class MegatorrentSession final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(MegatorrentSession)

public:
    explicit MegatorrentSession(QObject *parent = nullptr);
    ~MegatorrentSession() override;

    bool loadManifest(const QByteArray &json, QString &error);
    bool loadPrivateManifest(const QByteArray &json, const QByteArray &readKey, QString &error);
    void subscribe(const QByteArray &publicKey);
    void subscribe(const QByteArray &publicKey, const QByteArray &salt);
    void publish(const QByteArray &publicKey, const QByteArray &secretKey);
    void seed(const QString &blobId);
    bool listen(quint16 port);
    void fetchBlob(const QString &host, quint16 port, const QString &blobId);
    qsizetype fileCount() const;

signals:
    void blobReceived(const QString &blobId, const QByteArray &blob);
    void failed(const QString &reason);
    void readKeyNeeded();

private:
    void onManifestFound(const Megatorrent::Manifest &manifest);
    void onPeersFound(const QString &blobId, const QVector<QString> &endpoints);
    void onIncoming(Megatorrent::SecureSocket *socket);

    Megatorrent::DHTClient *m_dht = nullptr;
    Megatorrent::SecureServer *m_server = nullptr;
    QByteArray m_manifestJson;
    qint64 m_sequence = 0;
    qsizetype m_fileCount = 0;
    Megatorrent::ErrorKind m_lastErrorKind {};
};
