#pragma once

#include <QHostAddress>
#include <QObject>
#include <QString>

// Complete type, so that newConnection() can also cross threads (queued connections).
#include "secure_socket.h"

class QTcpServer;

namespace Megatorrent
{
    // Accepts TCP connections (QTcpServer) and runs the v5 handshake on each as the server side.
    class SecureServer : public QObject
    {
        Q_OBJECT
        Q_DISABLE_COPY_MOVE(SecureServer)

    public:
        explicit SecureServer(QObject *parent = nullptr);
        ~SecureServer() override;

        // port 0 picks a free port (see serverPort()).
        bool listen(const QHostAddress &address = QHostAddress::Any, quint16 port = 0);
        void close();
        bool isListening() const;
        quint16 serverPort() const;
        QString errorString() const;

    signals:
        // A peer completed the handshake. The socket is a child of this server; reparent it or
        // delete it (deleteLater) when done.
        void newConnection(Megatorrent::SecureSocket *socket);
        // An incoming connection failed before its handshake completed.
        void acceptError(const QString &error);

    private:
        void onNewConnection();

        QTcpServer *m_server = nullptr;
    };
}
