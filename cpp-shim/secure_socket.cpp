#include "megatorrent/secure_socket.h"

#include <optional>
#include <utility>

#include <QNetworkProxy>
#include <QPointer>
#include <QTcpSocket>

#ifdef Q_OS_WIN
#include <winsock2.h>
#else
#include <sys/socket.h>
#endif

#include "bridge_util.h"

namespace
{
    // Through a proxy the socket descriptor is the connection to the proxy, whose half-close
    // semantics Qt does not expose: such connections close with disconnectFromHost().
    bool usesProxy(const QTcpSocket &socket)
    {
        const QNetworkProxy::ProxyType type = socket.proxy().type();
        if (type == QNetworkProxy::DefaultProxy)
        {
            const QNetworkProxy::ProxyType appType = QNetworkProxy::applicationProxy().type();
            return (appType != QNetworkProxy::NoProxy) && (appType != QNetworkProxy::DefaultProxy);
        }
        return type != QNetworkProxy::NoProxy;
    }
}

namespace Megatorrent::Detail
{
    // The Rust channel plus the messages queued before the handshake completed.
    class SecureChannel
    {
    public:
        std::optional<rust::Box<megatorrent::ffi::Channel>> channel;
        QVector<QPair<quint8, QByteArray>> pending;
        bool encrypted = false;
        bool closing = false;
    };
}

namespace Megatorrent
{
    SecureSocket::SecureSocket(QObject *parent)
        : QObject(parent)
        , m_socket {new QTcpSocket(this)}
        , m_channel {std::make_unique<Detail::SecureChannel>()}
    {
        setUpSocket();
    }

    SecureSocket::SecureSocket(QTcpSocket *acceptedSocket, QObject *parent)
        : QObject(parent)
        , m_socket {acceptedSocket}
        , m_channel {std::make_unique<Detail::SecureChannel>()}
        , m_server {true}
    {
        m_socket->setParent(this);
        setUpSocket();
    }

    SecureSocket::~SecureSocket() = default;

    void SecureSocket::setUpSocket()
    {
        connect(m_socket, &QTcpSocket::connected, this, &SecureSocket::startHandshake);
        connect(m_socket, &QTcpSocket::readyRead, this, &SecureSocket::onReadyRead);
        connect(m_socket, &QTcpSocket::errorOccurred, this, &SecureSocket::onSocketError);
        connect(m_socket, &QTcpSocket::disconnected, this, &SecureSocket::onSocketDisconnected);
    }

    void SecureSocket::setProxy(const QNetworkProxy &proxy)
    {
        m_socket->setProxy(proxy);
    }

    void SecureSocket::connectToHost(const QString &host, const quint16 port)
    {
        m_failed = false;
        *m_channel = Detail::SecureChannel();
        m_socket->connectToHost(host, port);
    }

    void SecureSocket::startHandshake()
    {
        try
        {
            m_channel->channel.emplace(megatorrent::ffi::newChannel(m_server));
            // PROTOCOL.md 5.1: each side sends its ephemeral key at once, without waiting.
            sendBytes(Detail::toQByteArray(megatorrent::ffi::channelHello(**m_channel->channel)));
        }
        catch (const rust::Error &error)
        {
            fail(Detail::errorText(error));
            return;
        }
        if (m_socket->bytesAvailable() > 0)
            onReadyRead();
    }

    void SecureSocket::write(const QByteArray &data)
    {
        sendMessage(Data, data);
    }

    void SecureSocket::sendMessage(const quint8 type, const QByteArray &payload)
    {
        if (m_failed || m_channel->closing)
        {
            emit errorOccurred(tr("Cannot send: the connection is closed"));
            return;
        }
        if (!m_channel->encrypted)
        {
            m_channel->pending.append({type, payload});
            return;
        }
        try
        {
            sendBytes(Detail::toQByteArray(megatorrent::ffi::channelSeal(**m_channel->channel, type, Detail::toRustSlice(payload))));
        }
        catch (const rust::Error &error)
        {
            // A message too large is refused before anything is sent: the connection stays usable.
            emit errorOccurred(Detail::errorText(error));
        }
    }

    void SecureSocket::close()
    {
        if (m_channel->closing)
            return;
        m_channel->closing = true;
        m_channel->encrypted = false;
        m_channel->pending.clear();
        if (m_socket->state() != QAbstractSocket::ConnectedState)
        {
            m_socket->abort();
            return;
        }
        // Shut down only the write side and keep reading until the peer closes: closing both
        // ways while the peer may still write makes the kernel send a reset, which crashes
        // reference peers (PROTOCOL.md 5.2).
        m_socket->flush();
        const qintptr descriptor = m_socket->socketDescriptor();
        if (!usesProxy(*m_socket) && (descriptor != -1) && (m_socket->bytesToWrite() == 0))
        {
#ifdef Q_OS_WIN
            ::shutdown(static_cast<SOCKET>(descriptor), SD_SEND);
#else
            ::shutdown(static_cast<int>(descriptor), SHUT_WR);
#endif
        }
        else
        {
            m_socket->disconnectFromHost();
        }
    }

    bool SecureSocket::isEncrypted() const
    {
        return m_channel->encrypted;
    }

    QString SecureSocket::peerAddress() const
    {
        return m_socket->peerAddress().toString();
    }

    quint16 SecureSocket::peerPort() const
    {
        return m_socket->peerPort();
    }

    void SecureSocket::onReadyRead()
    {
        const QByteArray input = m_socket->readAll();
        if (m_failed || !m_channel->channel || input.isEmpty())
            return;
        if (m_channel->closing)
            return; // draining after close(): the peer's last bytes are read and dropped

        megatorrent::ffi::Received received;
        try
        {
            received = megatorrent::ffi::channelReceive(**m_channel->channel, Detail::toRustSlice(input));
        }
        catch (const rust::Error &error)
        {
            fail(Detail::errorText(error));
            return;
        }

        // A slot may delete this socket while we emit.
        const QPointer<SecureSocket> self {this};
        if (received.handshake_completed)
        {
            m_channel->encrypted = true;
            const auto pending = std::exchange(m_channel->pending, {});
            for (const auto &[type, payload] : pending)
                sendMessage(type, payload);
            emit connected();
            if (!self)
                return;
        }
        for (const megatorrent::ffi::MessageData &message : received.messages)
        {
            const QByteArray payload = Detail::toQByteArray(message.payload);
            emit messageReceived(message.kind, payload);
            if (!self || m_failed)
                return;
            if (message.kind == Data)
            {
                emit dataReceived(payload);
                if (!self || m_failed)
                    return;
            }
        }
    }

    void SecureSocket::onSocketError()
    {
        if (m_socket->error() == QAbstractSocket::RemoteHostClosedError)
            return; // handled by onSocketDisconnected()
        fail(m_socket->errorString());
    }

    void SecureSocket::onSocketDisconnected()
    {
        const bool wasClosing = m_channel->closing;
        if (!m_failed && !wasClosing && m_channel->channel)
        {
            try
            {
                megatorrent::ffi::channelEndOfStream(**m_channel->channel);
            }
            catch (const rust::Error &error)
            {
                fail(Detail::errorText(error));
                return;
            }
        }
        m_channel->encrypted = false;
        if (!m_failed)
            emit disconnected();
    }

    void SecureSocket::fail(const QString &reason)
    {
        if (m_failed)
            return;
        m_failed = true;
        m_channel->encrypted = false;
        m_channel->pending.clear();
        emit errorOccurred(reason);
        // disconnectFromHost() lets queued bytes go out and closes without a reset.
        if (m_socket->state() != QAbstractSocket::UnconnectedState)
            m_socket->disconnectFromHost();
    }

    void SecureSocket::sendBytes(const QByteArray &bytes)
    {
        m_socket->write(bytes);
    }
}
