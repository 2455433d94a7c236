#include "megatorrent/secure_server.h"

#include <QTcpServer>
#include <QTcpSocket>

#include "megatorrent/secure_socket.h"

namespace Megatorrent
{
    SecureServer::SecureServer(QObject *parent)
        : QObject(parent)
        , m_server {new QTcpServer(this)}
    {
        connect(m_server, &QTcpServer::newConnection, this, &SecureServer::onNewConnection);
    }

    SecureServer::~SecureServer() = default;

    bool SecureServer::listen(const QHostAddress &address, const quint16 port)
    {
        return m_server->listen(address, port);
    }

    void SecureServer::close()
    {
        m_server->close();
    }

    bool SecureServer::isListening() const
    {
        return m_server->isListening();
    }

    quint16 SecureServer::serverPort() const
    {
        return m_server->serverPort();
    }

    QString SecureServer::errorString() const
    {
        return m_server->errorString();
    }

    void SecureServer::onNewConnection()
    {
        while (QTcpSocket *tcpSocket = m_server->nextPendingConnection())
        {
            auto *socket = new SecureSocket(tcpSocket, this);
            connect(socket, &SecureSocket::connected, this, [this, socket]
            {
                // From now on the socket reports to whoever takes it.
                socket->disconnect(this);
                emit newConnection(socket);
            });
            connect(socket, &SecureSocket::errorOccurred, this, [this, socket](const QString &error)
            {
                socket->deleteLater();
                emit acceptError(error);
            });
            connect(socket, &SecureSocket::disconnected, this, [socket]
            {
                socket->deleteLater();
            });
            socket->startHandshake();
        }
    }
}
