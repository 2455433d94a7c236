// DHTClient against a local network of `megatorrent dht node` processes on 127.0.0.1:
// put/get of a manifest between two clients, announce/find of a blob, a salted record published
// by `megatorrent publish --salt`, and failures that arrive as signals with their reasons and
// kinds.

#include <memory>

#include <QDir>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "megatorrent/dht_client.h"

#include "cpp-shim/manifest_convert.h"
#include "testnet.h"

using Megatorrent::DHTClient;
using Megatorrent::ErrorKind;
using Megatorrent::Manifest;

namespace
{
    constexpr int timeoutMs = 60000;

    Manifest sampleManifest()
    {
        Megatorrent::BlobEntry blob;
        blob.id = QStringLiteral("a38087dffe587c0706d67aadd517c715f78413d8a47216ac1592079bc30aa1d9");
        blob.length = 1048592;
        blob.realSize = 300000;
        blob.key = QByteArray(32, '\x11');
        blob.iv = QByteArray(12, '\x22');
        Manifest manifest;
        manifest.timestamp = 1732500000000;
        manifest.collections.append({QStringLiteral("Test"), {{QStringLiteral("small.bin"), 300000, QString(), {blob}}}});
        return manifest;
    }

    void configure(DHTClient &client, const QString &bootstrap)
    {
        client.setBootstrapNodes({bootstrap});
        client.setBindAddress(QStringLiteral("127.0.0.1"));
        client.setPort(0);
        // Our own nodes only: answering keeps lookups from waiting on silent client-mode nodes.
        client.setServerMode(true);
        client.setRequestTimeout(500);
    }
}

class TestDhtClient final : public QObject
{
    Q_OBJECT

private slots:
    void initTestCase();
    void cleanupTestCase();
    void putThenGetAcrossClients();
    void announceThenFindPeers();
    void largeManifestGoesThroughBlobServer();
    void saltedRecordOfThePublisherCli();
    void failuresArriveWithReasons();
    void badConfigurationFailsStart();

private:
    std::unique_ptr<TestNet::Testnet> m_testnet;
    QString m_bootstrap;
};

void TestDhtClient::initTestCase()
{
    m_testnet = std::make_unique<TestNet::Testnet>(4);
    m_bootstrap = m_testnet->bootstrap();
    QVERIFY2(!m_bootstrap.isEmpty(), "the DHT testnet did not start");
}

void TestDhtClient::cleanupTestCase()
{
    m_testnet.reset();
}

void TestDhtClient::putThenGetAcrossClients()
{
    const QByteArray seed(32, '\x05');
    const QByteArray publicKey = QByteArray::fromHex(Megatorrent::Detail::toManifest(megatorrent::ffi::manifestCreate(
        Megatorrent::Detail::toRustSlice(seed), {}, 1, Megatorrent::Detail::toManifestData(Manifest()))).publicKey.toLatin1());
    QCOMPARE(publicKey.size(), 32);

    DHTClient publisher;
    configure(publisher, m_bootstrap);
    QSignalSpy started {&publisher, &DHTClient::started};
    publisher.start();
    QVERIFY(started.wait(timeoutMs));
    QVERIFY(started.at(0).at(0).value<quint16>() != 0);
    QVERIFY(publisher.isStarted());
    QCOMPARE(publisher.boundPort(), started.at(0).at(0).value<quint16>());

    Manifest manifest = sampleManifest();
    manifest.sequence = 7;
    QSignalSpy put {&publisher, &DHTClient::manifestPut};
    QSignalSpy putFailed {&publisher, &DHTClient::putManifestFailed};
    publisher.putManifest(publicKey, seed, manifest);
    QTRY_VERIFY_WITH_TIMEOUT((put.count() + putFailed.count()) > 0, timeoutMs);
    QVERIFY2(putFailed.isEmpty(), qPrintable(putFailed.isEmpty() ? QString() : putFailed.at(0).at(1).toString()));
    QCOMPARE(put.at(0).at(0).toByteArray(), publicKey);
    QCOMPARE(put.at(0).at(1).toLongLong(), 7);

    // A second client, never started explicitly: the first operation starts it.
    DHTClient reader;
    configure(reader, m_bootstrap);
    QVector<Manifest> found;
    connect(&reader, &DHTClient::manifestFound, this, [&found](const Manifest &m) { found.append(m); });
    QSignalSpy getFailed {&reader, &DHTClient::getManifestFailed};
    reader.getManifest(publicKey.toHex());
    QTRY_VERIFY_WITH_TIMEOUT((found.size() + getFailed.count()) > 0, timeoutMs);
    QVERIFY2(getFailed.isEmpty(), qPrintable(getFailed.isEmpty() ? QString() : getFailed.at(0).at(1).toString()));
    const Manifest &got = found.at(0);
    QCOMPARE(got.publicKey, QString::fromLatin1(publicKey.toHex()));
    QCOMPARE(got.sequence, 7);
    QCOMPARE(got.timestamp, manifest.timestamp);
    QCOMPARE(got.collections.size(), 1);
    QCOMPARE(got.collections.at(0).title, QStringLiteral("Test"));
    QCOMPARE(got.files.at(0).chunks.at(0).key, QByteArray(32, '\x11'));
    QCOMPARE(got.signature.size(), 64);
}

void TestDhtClient::announceThenFindPeers()
{
    const QString blobId = QStringLiteral("1111111111111111111111111111111111111111111111111111111111111111");
    DHTClient announcer;
    configure(announcer, m_bootstrap);
    QSignalSpy announced {&announcer, &DHTClient::blobAnnounced};
    QSignalSpy announceFailed {&announcer, &DHTClient::announceBlobFailed};
    announcer.announceBlob(blobId, 4321);
    QTRY_VERIFY_WITH_TIMEOUT((announced.count() + announceFailed.count()) > 0, timeoutMs);
    QVERIFY2(announceFailed.isEmpty(), qPrintable(announceFailed.isEmpty() ? QString() : announceFailed.at(0).at(1).toString()));
    QCOMPARE(announced.at(0).at(0).toString(), blobId);

    DHTClient finder;
    configure(finder, m_bootstrap);
    QVector<QString> endpoints;
    QString foundFor;
    connect(&finder, &DHTClient::peersFound, this, [&endpoints, &foundFor](const QString &id, const QVector<QString> &peers)
    {
        foundFor = id;
        endpoints = peers;
    });
    finder.findBlobPeers(blobId);
    QTRY_VERIFY_WITH_TIMEOUT(!foundFor.isEmpty(), timeoutMs);
    QCOMPARE(foundFor, blobId);
    QVERIFY2(endpoints.contains(QStringLiteral("127.0.0.1:4321")), qPrintable(QStringList(endpoints.begin(), endpoints.end()).join(u',')));
}

void TestDhtClient::largeManifestGoesThroughBlobServer()
{
    // Three chunks do not fit in one BEP 44 value: the manifest is published as a pointer record
    // whose parts the publisher's blob server serves, and the reader fetches them from it.
    const QByteArray seed(32, '\x09');
    QTemporaryDir folder;
    QVERIFY(folder.isValid());

    DHTClient publisher;
    configure(publisher, m_bootstrap);
    QSignalSpy serving {&publisher, &DHTClient::blobServerStarted};
    publisher.serveBlobs(folder.path());
    QVERIFY(serving.wait(timeoutMs));
    QVERIFY(publisher.blobServerPort() != 0);
    QCOMPARE(serving.at(0).at(0).value<quint16>(), publisher.blobServerPort());

    Manifest manifest;
    manifest.sequence = 11;
    manifest.timestamp = 1732500000000;
    Megatorrent::FileEntry file {QStringLiteral("big.bin"), 3 * 1048576, QString(), {}};
    for (int i = 0; i < 3; ++i)
    {
        Megatorrent::BlobEntry blob;
        blob.id = QString(64, QChar(u'a' + i));
        blob.length = 1048592;
        blob.realSize = 1048576;
        blob.key = QByteArray(32, static_cast<char>(i + 1));
        blob.iv = QByteArray(12, static_cast<char>(i + 10));
        file.chunks.append(blob);
    }
    manifest.collections.append({QStringLiteral("Large"), {file}});

    QSignalSpy put {&publisher, &DHTClient::manifestPut};
    QSignalSpy putFailed {&publisher, &DHTClient::putManifestFailed};
    publisher.putManifest({}, seed, manifest);
    QTRY_VERIFY_WITH_TIMEOUT((put.count() + putFailed.count()) > 0, timeoutMs);
    QVERIFY2(putFailed.isEmpty(), qPrintable(putFailed.isEmpty() ? QString() : putFailed.at(0).at(1).toString()));
    QVERIFY2(!QDir(folder.path()).entryList(QDir::Files).isEmpty(), "no manifest part was stored for the blob server");

    const QByteArray publicKey = QByteArray::fromHex(Megatorrent::Detail::toManifest(megatorrent::ffi::manifestCreate(
        Megatorrent::Detail::toRustSlice(seed), {}, 1, Megatorrent::Detail::toManifestData(Manifest()))).publicKey.toLatin1());
    DHTClient reader;
    configure(reader, m_bootstrap);
    QVector<Manifest> found;
    connect(&reader, &DHTClient::manifestFound, this, [&found](const Manifest &m) { found.append(m); });
    QSignalSpy getFailed {&reader, &DHTClient::getManifestFailed};
    reader.getManifest(publicKey);
    QTRY_VERIFY_WITH_TIMEOUT((found.size() + getFailed.count()) > 0, timeoutMs);
    QVERIFY2(getFailed.isEmpty(), qPrintable(getFailed.isEmpty() ? QString() : getFailed.at(0).at(1).toString()));
    QCOMPARE(found.at(0).sequence, 11);
    QCOMPARE(found.at(0).files.size(), 1);
    QCOMPARE(found.at(0).files.at(0).chunks.size(), 3);
    QCOMPARE(found.at(0).files.at(0).chunks.at(2).key, QByteArray(32, '\x03'));
    QVERIFY(found.at(0).rawJson.size() > 1000);
}

void TestDhtClient::failuresArriveWithReasons()
{
    DHTClient client;
    configure(client, m_bootstrap);
    QSignalSpy errors {&client, &DHTClient::errorOccurred};
    QSignalSpy failed {&client, &DHTClient::failed};
    QSignalSpy announceErrors {&client, &DHTClient::announceBlobError};
    QSignalSpy putErrors {&client, &DHTClient::putManifestError};
    QSignalSpy getErrors {&client, &DHTClient::getManifestError};

    QSignalSpy announceFailed {&client, &DHTClient::announceBlobFailed};
    client.announceBlob(QStringLiteral("not-a-blob-id"), 4321);
    client.announceBlob(QString(64, u'a'), 0);
    QTRY_COMPARE_WITH_TIMEOUT(announceFailed.count(), 2, timeoutMs);
    QStringList reasons {announceFailed.at(0).at(1).toString(), announceFailed.at(1).at(1).toString()};
    reasons.sort();
    QVERIFY2(reasons.at(0).contains(QStringLiteral("blob id")), qPrintable(reasons.at(0)));
    QVERIFY2(reasons.at(1).contains(QStringLiteral("out of range")), qPrintable(reasons.at(1)));

    QSignalSpy putFailed {&client, &DHTClient::putManifestFailed};
    client.putManifest(QByteArray(32, '\0'), QByteArray(32, '\x05'), sampleManifest());
    QTRY_COMPARE_WITH_TIMEOUT(putFailed.count(), 1, timeoutMs);
    QVERIFY2(putFailed.at(0).at(1).toString().contains(QStringLiteral("does not match")), qPrintable(putFailed.at(0).at(1).toString()));

    QSignalSpy getFailed {&client, &DHTClient::getManifestFailed};
    const QByteArray unknownKey = QByteArray::fromHex("3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
    client.getManifest(unknownKey);
    client.getManifest(QByteArrayLiteral("short"));
    QTRY_COMPARE_WITH_TIMEOUT(getFailed.count(), 2, timeoutMs);
    QStringList getReasons;
    for (const QList<QVariant> &args : getFailed)
        getReasons.append(args.at(1).toString());
    QVERIFY2(getReasons.join(u'|').contains(QStringLiteral("public key must be")), qPrintable(getReasons.join(u'|')));
    QVERIFY2(getReasons.join(u'|').contains(QStringLiteral("no record found")), qPrintable(getReasons.join(u'|')));
    QCOMPARE(errors.count(), 5);

    // The same failures with their kinds, each right after its kind-less signal.
    QCOMPARE(announceErrors.count(), 2);
    for (const QList<QVariant> &args : announceErrors)
        QCOMPARE(args.at(1).value<ErrorKind>(), ErrorKind::InvalidArgument);
    QCOMPARE(putErrors.count(), 1);
    QCOMPARE(putErrors.at(0).at(0).toByteArray(), QByteArray(32, '\0'));
    QCOMPARE(putErrors.at(0).at(1).value<ErrorKind>(), ErrorKind::InvalidArgument);
    QCOMPARE(putErrors.at(0).at(2).toString(), putFailed.at(0).at(1).toString());
    QCOMPARE(getErrors.count(), 2);
    for (const QList<QVariant> &args : getErrors)
    {
        const ErrorKind expected = (args.at(0).toByteArray() == unknownKey) ? ErrorKind::NotFound : ErrorKind::InvalidArgument;
        QCOMPARE(args.at(1).value<ErrorKind>(), expected);
    }
    QCOMPARE(failed.count(), 5);
    for (int i = 0; i < failed.count(); ++i)
        QCOMPARE(failed.at(i).at(1).toString(), errors.at(i).at(0).toString());

    // A salt longer than BEP 44 allows.
    client.getManifest(unknownKey, QByteArray(65, 's'));
    QTRY_COMPARE_WITH_TIMEOUT(getErrors.count(), 3, timeoutMs);
    QCOMPARE(getErrors.at(2).at(1).value<ErrorKind>(), ErrorKind::InvalidArgument);
    QVERIFY2(getErrors.at(2).at(2).toString().contains(QStringLiteral("salt")), qPrintable(getErrors.at(2).at(2).toString()));
}

void TestDhtClient::saltedRecordOfThePublisherCli()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString identity = dir.filePath(QStringLiteral("identity.json"));
    TestNet::CliProcess keygen {{QStringLiteral("keygen"), QStringLiteral("--out"), identity}};
    const QByteArray publicKey = QByteArray::fromHex(keygen.waitForLine({}).toLatin1());
    QCOMPARE(publicKey.size(), 32);
    QFile file {dir.filePath(QStringLiteral("notes.txt"))};
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("a sub-channel's file\n");
    file.close();

    QStringList args {QStringLiteral("publish"), QStringLiteral("--identity"), identity};
    args << QStringLiteral("--blobs") << dir.filePath(QStringLiteral("blobs"));
    args << QStringLiteral("--listen") << QStringLiteral("127.0.0.1:0");
    args << QStringLiteral("--bootstrap") << m_bootstrap << QStringLiteral("--salt") << QStringLiteral("sub") << file.fileName();
    TestNet::CliProcess publisher {args};
    QVERIFY2(!publisher.waitForLine(QByteArrayLiteral("published seq ")).isEmpty(), "the publisher did not publish");

    DHTClient reader;
    configure(reader, m_bootstrap);
    QVector<Manifest> found;
    connect(&reader, &DHTClient::manifestFound, this, [&found](const Manifest &m) { found.append(m); });
    QSignalSpy getErrors {&reader, &DHTClient::getManifestError};
    reader.getManifest(publicKey, QByteArrayLiteral("sub"));
    QTRY_VERIFY_WITH_TIMEOUT((found.size() + getErrors.count()) > 0, timeoutMs);
    QVERIFY2(getErrors.isEmpty(), qPrintable(getErrors.isEmpty() ? QString() : getErrors.at(0).at(2).toString()));
    QCOMPARE(found.at(0).publicKey, QString::fromLatin1(publicKey.toHex()));
    QCOMPARE(found.at(0).files.size(), 1);
    QCOMPARE(found.at(0).files.at(0).name, QStringLiteral("notes.txt"));

    // Without the salt it is another record, which nobody published.
    reader.getManifest(publicKey);
    QTRY_COMPARE_WITH_TIMEOUT(getErrors.count(), 1, timeoutMs);
    QCOMPARE(getErrors.at(0).at(1).value<ErrorKind>(), ErrorKind::NotFound);
    QCOMPARE(found.size(), 1);
}

void TestDhtClient::badConfigurationFailsStart()
{
    DHTClient client;
    client.setBootstrapNodes({});
    client.setBindAddress(QStringLiteral("not an address"));
    QSignalSpy errors {&client, &DHTClient::errorOccurred};
    QSignalSpy failed {&client, &DHTClient::failed};
    QSignalSpy findFailed {&client, &DHTClient::findBlobPeersFailed};
    QSignalSpy findErrors {&client, &DHTClient::findBlobPeersError};
    client.findBlobPeers(QString(64, u'a'));
    QTRY_COMPARE_WITH_TIMEOUT(findFailed.count(), 1, timeoutMs);
    QVERIFY(!client.isStarted());
    QVERIFY2(errors.at(0).at(0).toString().contains(QStringLiteral("IPv4")), qPrintable(errors.at(0).at(0).toString()));
    QCOMPARE(failed.at(0).at(0).value<ErrorKind>(), ErrorKind::InvalidArgument);
    QCOMPARE(findErrors.count(), 1);
    QCOMPARE(findErrors.at(0).at(1).value<ErrorKind>(), ErrorKind::InvalidArgument);
}

QTEST_GUILESS_MAIN(TestDhtClient)
#include "tst_dhtclient.moc"
