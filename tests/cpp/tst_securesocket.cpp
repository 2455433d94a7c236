// SecureSocket and SecureServer with a real event loop on 127.0.0.1: both directions, queued
// writes, large messages, graceful close, Rust channel errors reaching errorOccurred, and a blob
// fetched from a running `megatorrent serve`.

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QPointer>
#include <QProcess>
#include <QRandomGenerator>
#include <QSignalSpy>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

#include "megatorrent/secure_server.h"
#include "megatorrent/secure_socket.h"

using Megatorrent::SecureServer;
using Megatorrent::SecureSocket;

namespace
{
    const QString vectorBlobId = QStringLiteral("a38087dffe587c0706d67aadd517c715f78413d8a47216ac1592079bc30aa1d9");

    // A connected client/server pair through SecureServer.
    struct Pair
    {
        SecureServer server;
        SecureSocket client;
        QPointer<SecureSocket> accepted;
    };

    bool connectPair(Pair &pair)
    {
        if (!pair.server.listen(QHostAddress::LocalHost, 0))
            return false;
        QObject::connect(&pair.server, &SecureServer::newConnection, &pair.server, [&pair](SecureSocket *socket) { pair.accepted = socket; });
        QSignalSpy clientConnected {&pair.client, &SecureSocket::connected};
        pair.client.connectToHost(QStringLiteral("127.0.0.1"), pair.server.serverPort());
        if (!clientConnected.wait(10000))
            return false;
        return QTest::qWaitFor([&pair] { return !pair.accepted.isNull(); }, 10000);
    }
}

class TestSecureSocket final : public QObject
{
    Q_OBJECT

private slots:
    void messagesFlowBothWays();
    void largeMessagesBothWays();
    void writesBeforeHandshakeAreQueued();
    void closeIsSeenByThePeer();
    void tamperedFrameReachesErrorOccurred();
    void lowOrderKeyIsRefusedByTheServer();
    void connectionRefusedIsReported();
    void fetchesBlobFromMegatorrentServe();
};

void TestSecureSocket::messagesFlowBothWays()
{
    Pair pair;
    QVERIFY(connectPair(pair));
    QVERIFY(pair.client.isEncrypted());
    QVERIFY(pair.accepted->isEncrypted());

    QSignalSpy serverData {pair.accepted.data(), &SecureSocket::dataReceived};
    QSignalSpy serverMessages {pair.accepted.data(), &SecureSocket::messageReceived};
    pair.client.write(QByteArrayLiteral("hello server"));
    QVERIFY(serverData.wait(10000));
    QCOMPARE(serverData.at(0).at(0).toByteArray(), QByteArrayLiteral("hello server"));
    QCOMPARE(serverMessages.count(), 1);
    QCOMPARE(serverMessages.at(0).at(0).value<quint8>(), quint8 {SecureSocket::Data});

    QSignalSpy clientMessages {&pair.client, &SecureSocket::messageReceived};
    QSignalSpy clientData {&pair.client, &SecureSocket::dataReceived};
    pair.accepted->sendMessage(SecureSocket::Ok, QByteArrayLiteral("fine"));
    pair.accepted->sendMessage(SecureSocket::Peers, QByteArrayLiteral("[\"127.0.0.1:1\"]"));
    QTRY_COMPARE_WITH_TIMEOUT(clientMessages.count(), 2, 10000);
    QCOMPARE(clientMessages.at(0).at(0).value<quint8>(), quint8 {SecureSocket::Ok});
    QCOMPARE(clientMessages.at(0).at(1).toByteArray(), QByteArrayLiteral("fine"));
    QCOMPARE(clientMessages.at(1).at(0).value<quint8>(), quint8 {SecureSocket::Peers});
    QCOMPARE(clientData.count(), 0); // only DATA messages are dataReceived
}

void TestSecureSocket::largeMessagesBothWays()
{
    Pair pair;
    QVERIFY(connectPair(pair));
    QByteArray big(1048592, Qt::Uninitialized);
    QRandomGenerator::global()->fillRange(reinterpret_cast<quint32 *>(big.data()), big.size() / 4);

    QSignalSpy serverData {pair.accepted.data(), &SecureSocket::dataReceived};
    pair.client.write(big);
    pair.client.write(QByteArrayLiteral("after"));
    QTRY_COMPARE_WITH_TIMEOUT(serverData.count(), 2, 20000);
    QVERIFY(serverData.at(0).at(0).toByteArray() == big);
    QCOMPARE(serverData.at(1).at(0).toByteArray(), QByteArrayLiteral("after"));

    QSignalSpy clientData {&pair.client, &SecureSocket::dataReceived};
    pair.accepted->write(big);
    QVERIFY(clientData.wait(20000));
    QVERIFY(clientData.at(0).at(0).toByteArray() == big);

    // Beyond the frame limit: refused locally, and the connection stays usable.
    QSignalSpy clientErrors {&pair.client, &SecureSocket::errorOccurred};
    pair.client.write(QByteArray(1049600, 'x'));
    QCOMPARE(clientErrors.count(), 1);
    QVERIFY2(clientErrors.at(0).at(0).toString().contains(QStringLiteral("exceeds")), qPrintable(clientErrors.at(0).at(0).toString()));
    pair.client.write(QByteArrayLiteral("still fine"));
    QTRY_COMPARE_WITH_TIMEOUT(serverData.count(), 3, 10000);
    QCOMPARE(serverData.at(2).at(0).toByteArray(), QByteArrayLiteral("still fine"));
}

void TestSecureSocket::writesBeforeHandshakeAreQueued()
{
    SecureServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost, 0));
    QByteArrayList received;
    connect(&server, &SecureServer::newConnection, this, [this, &received](SecureSocket *socket)
    {
        connect(socket, &SecureSocket::dataReceived, this, [&received](const QByteArray &data) { received.append(data); });
    });
    SecureSocket client;
    client.connectToHost(QStringLiteral("127.0.0.1"), server.serverPort());
    client.write(QByteArrayLiteral("one"));
    client.write(QByteArrayLiteral("two"));
    QTRY_COMPARE_WITH_TIMEOUT(received.size(), 2, 10000);
    QCOMPARE(received, (QByteArrayList {QByteArrayLiteral("one"), QByteArrayLiteral("two")}));
}

void TestSecureSocket::closeIsSeenByThePeer()
{
    Pair pair;
    QVERIFY(connectPair(pair));
    QSignalSpy serverData {pair.accepted.data(), &SecureSocket::dataReceived};
    QSignalSpy serverDisconnected {pair.accepted.data(), &SecureSocket::disconnected};
    QSignalSpy serverErrors {pair.accepted.data(), &SecureSocket::errorOccurred};
    QSignalSpy clientDisconnected {&pair.client, &SecureSocket::disconnected};
    pair.client.write(QByteArrayLiteral("last words"));
    pair.client.close();
    QVERIFY(serverData.wait(10000));
    QCOMPARE(serverData.at(0).at(0).toByteArray(), QByteArrayLiteral("last words"));
    // The server closes its side in turn; the client, still reading, then sees the end.
    QTRY_COMPARE_WITH_TIMEOUT(serverDisconnected.count(), 1, 10000);
    QCOMPARE(serverErrors.count(), 0);
    pair.accepted->close();
    QTRY_COMPARE_WITH_TIMEOUT(clientDisconnected.count(), 1, 10000);
}

void TestSecureSocket::tamperedFrameReachesErrorOccurred()
{
    // A raw peer completes a real handshake (any valid X25519 key), then sends a frame that
    // cannot authenticate: the Rust channel's error must surface as errorOccurred.
    QTcpServer raw;
    QVERIFY(raw.listen(QHostAddress::LocalHost, 0));
    SecureSocket client;
    QSignalSpy errors {&client, &SecureSocket::errorOccurred};
    QSignalSpy connectedSpy {&client, &SecureSocket::connected};
    client.connectToHost(QStringLiteral("127.0.0.1"), raw.serverPort());
    QVERIFY(raw.waitForNewConnection(10000));
    QTcpSocket *peer = raw.nextPendingConnection();
    // The X25519 base point (u = 9) is a valid public key of prime order.
    QByteArray key(32, '\0');
    key[0] = 9;
    peer->write(key);
    QVERIFY(connectedSpy.wait(10000));
    QByteArray frame;
    frame.append(QByteArray::fromHex("00000020")); // 32-byte body: 1 type byte + 15 payload + 16 tag
    frame.append(QByteArray(32, '\x5a'));
    peer->write(frame);
    QVERIFY(errors.wait(10000));
    QVERIFY2(errors.at(0).at(0).toString().contains(QStringLiteral("authentication")), qPrintable(errors.at(0).at(0).toString()));
    QVERIFY(!client.isEncrypted());
    // Closed for good: further sends are refused with a reason.
    client.write(QByteArrayLiteral("x"));
    QCOMPARE(errors.count(), 2);
}

void TestSecureSocket::lowOrderKeyIsRefusedByTheServer()
{
    SecureServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost, 0));
    QSignalSpy acceptErrors {&server, &SecureServer::acceptError};
    int accepted = 0;
    connect(&server, &SecureServer::newConnection, this, [&accepted] { ++accepted; });
    QTcpSocket raw;
    raw.connectToHost(QHostAddress::LocalHost, server.serverPort());
    QVERIFY(raw.waitForConnected(10000));
    raw.write(QByteArray(32, '\0'));
    QVERIFY(acceptErrors.wait(10000));
    QVERIFY2(acceptErrors.at(0).at(0).toString().contains(QStringLiteral("low-order")), qPrintable(acceptErrors.at(0).at(0).toString()));
    QCOMPARE(accepted, 0);
}

void TestSecureSocket::connectionRefusedIsReported()
{
    QTcpServer probe;
    QVERIFY(probe.listen(QHostAddress::LocalHost, 0));
    const quint16 port = probe.serverPort();
    probe.close();
    SecureSocket client;
    QSignalSpy errors {&client, &SecureSocket::errorOccurred};
    client.connectToHost(QStringLiteral("127.0.0.1"), port);
    QVERIFY(errors.wait(10000));
    QVERIFY(!errors.at(0).at(0).toString().isEmpty());
}

void TestSecureSocket::fetchesBlobFromMegatorrentServe()
{
    QTemporaryDir store;
    QVERIFY(store.isValid());
    QVERIFY(QFile::copy(QStringLiteral(MEGATORRENT_VECTORS_DIR "/blobs/") + vectorBlobId, store.filePath(vectorBlobId)));

    QProcess serve;
    serve.setProgram(QStringLiteral(MEGATORRENT_CLI));
    serve.setArguments({QStringLiteral("serve"), QStringLiteral("--blobs"), store.path(), QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0")});
    serve.setProcessChannelMode(QProcess::ForwardedErrorChannel);
    serve.start();
    QVERIFY2(serve.waitForStarted(10000), qPrintable(serve.errorString()));
    const auto stopServe = qScopeGuard([&serve]
    {
        serve.terminate();
        if (!serve.waitForFinished(10000))
            serve.kill();
    });
    QVERIFY(QTest::qWaitFor([&serve] { return serve.canReadLine(); }, 20000));
    const QByteArray line = serve.readLine().trimmed();
    QVERIFY2(line.startsWith("listening 127.0.0.1:"), line.constData());
    const quint16 port = static_cast<quint16>(line.mid(line.lastIndexOf(':') + 1).toUInt());
    QVERIFY(port != 0);

    SecureSocket client;
    QSignalSpy messages {&client, &SecureSocket::messageReceived};
    QSignalSpy errors {&client, &SecureSocket::errorOccurred};
    client.connectToHost(QStringLiteral("127.0.0.1"), port);
    client.sendMessage(SecureSocket::Request, vectorBlobId.toLatin1());
    client.sendMessage(SecureSocket::Request, QByteArray(64, 'b'));
    QTRY_COMPARE_WITH_TIMEOUT(messages.count(), 2, 20000);
    QCOMPARE(errors.count(), 0);

    // Answers come in request order: the blob, then an ERROR for the unknown id.
    QCOMPARE(messages.at(0).at(0).value<quint8>(), quint8 {SecureSocket::Data});
    const QByteArray blob = messages.at(0).at(1).toByteArray();
    QCOMPARE(blob.size(), 1048592);
    QCOMPARE(QString::fromLatin1(QCryptographicHash::hash(blob, QCryptographicHash::Sha256).toHex()), vectorBlobId);
    QCOMPARE(messages.at(1).at(0).value<quint8>(), quint8 {SecureSocket::Error});
    QVERIFY(!messages.at(1).at(1).toByteArray().isEmpty());

    // close() half-closes; the server sees the end of the stream and closes in turn.
    QSignalSpy disconnectedSpy {&client, &SecureSocket::disconnected};
    client.close();
    QTRY_COMPARE_WITH_TIMEOUT(disconnectedSpy.count(), 1, 10000);
    QCOMPARE(errors.count(), 0);
}

QTEST_GUILESS_MAIN(TestSecureSocket)
#include "tst_securesocket.moc"
