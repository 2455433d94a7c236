#pragma once

#include <QObject>
#include <QString>

// Linked PRIVATE, like qBittorrent's qbt_base: only a forward declaration here.
namespace Megatorrent
{
    class Session;
    enum class ErrorKind;
}

// Shaped like the Megatorrent part of BitTorrent::SessionImpl: owns a Megatorrent::Session,
// follows channels into folders, publishes, and reports. Uses every member of Session.
// Compiled with qBittorrent's flags plus -Werror, as C++17 and C++20.
class Channels final : public QObject
{
    Q_OBJECT
    Q_DISABLE_COPY_MOVE(Channels)

public:
    Channels(const QString &profileFolder, const QString &bootstrapNode, QObject *parent = nullptr);
    ~Channels() override;

    QString createIdentity(const QString &fileName) const;
    QString createIdentity(const QString &fileName, QString &error) const;
    void subscribe(const QString &channel, const QString &savePath);
    void unsubscribe(const QString &channel);
    void publishFolder(const QString &identityFile, const QString &folder);
    void stopPublishing(const QString &publicKeyHex);
    QString describe() const;

signals:
    void logMessage(const QString &message);

private:
    void handleError(Megatorrent::ErrorKind kind, const QString &message);

    Megatorrent::Session *m_session = nullptr;
};
