#pragma once

#include <memory>

#include <QByteArray>
#include <QObject>
#include <QString>

class QNetworkProxy;
class QTcpSocket;

namespace Megatorrent
{
    namespace Detail
    {
        class SecureChannel;
    }

    class SecureServer;

    // An encrypted Megatorrent v5 connection (PROTOCOL.md section 5) over a QTcpSocket, so Qt
    // proxy settings (SOCKS5, Tor) apply. The handshake, framing and encryption are the Rust
    // core's sans-IO channel; this class only moves bytes between it and the socket, on the
    // thread the object lives in.
    class SecureSocket : public QObject
    {
        Q_OBJECT
        Q_DISABLE_COPY_MOVE(SecureSocket)

    public:
        // Message types of PROTOCOL.md 5.3.
        enum MessageType : quint8
        {
            Hello = 0x01,
            Request = 0x02,
            Data = 0x03,
            FindPeers = 0x04,
            Peers = 0x05,
            Publish = 0x06,
            Announce = 0x07,
            Ok = 0x08,
            Error = 0xFF
        };

        explicit SecureSocket(QObject *parent = nullptr);
        ~SecureSocket() override;

        // Before connectToHost(): the proxy used for the TCP connection.
        void setProxy(const QNetworkProxy &proxy);
        // Connects as the client side; connected() follows the handshake.
        void connectToHost(const QString &host, quint16 port);
        // Sends data as one DATA message (at most 1049583 bytes).
        void write(const QByteArray &data);
        // Sends one message of the given type; payload at most 1049583 bytes, never an empty
        // REQUEST/DATA/... that the peer would reject.
        void sendMessage(quint8 type, const QByteArray &payload);
        // Shuts the write side down gracefully (never a reset, which crashes reference peers).
        void close();

        // True between connected() and the end of the connection.
        bool isEncrypted() const;
        QString peerAddress() const;
        quint16 peerPort() const;

    signals:
        // The handshake completed: messages may be sent.
        void connected();
        // A DATA message arrived (messageReceived() is emitted for it too).
        void dataReceived(const QByteArray &data);
        // Any message arrived.
        void messageReceived(quint8 type, const QByteArray &payload);
        // The connection failed (network error, failed handshake, bad frame); it is closed.
        void errorOccurred(const QString &error);
        // The peer closed the connection, or close() finished.
        void disconnected();

    private:
        friend class SecureServer;

        // Accepting side: takes over a connected socket (the server role of PROTOCOL.md 5.1).
        SecureSocket(QTcpSocket *acceptedSocket, QObject *parent);

        void setUpSocket();
        void startHandshake();
        void onReadyRead();
        void onSocketError();
        void onSocketDisconnected();
        void fail(const QString &reason);
        void sendBytes(const QByteArray &bytes);

        QTcpSocket *m_socket = nullptr;
        std::unique_ptr<Detail::SecureChannel> m_channel;
        bool m_server = false;
        bool m_failed = false;
    };
}
