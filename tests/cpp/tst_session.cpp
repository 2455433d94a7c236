// Megatorrent::Session with a real event loop, on a local testnet of `megatorrent dht node`
// processes (127.0.0.1 only): subscribing by hex key and by megatorrent:// link to a channel that
// `megatorrent publish` serves, new versions, resuming after destruction without fetching stored
// blobs again, publishing from a Session, failures with their kinds, and destruction with
// transfers in flight.

#include <memory>

#include <QCryptographicHash>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "megatorrent/session.h"

#include "testnet.h"

using Megatorrent::ErrorKind;
using Megatorrent::Session;
using Megatorrent::SessionSettings;
using Megatorrent::SubscriptionSettings;

namespace
{
    constexpr int timeoutMs = 90000;

    QByteArray pattern(const qint64 size, const char seed)
    {
        QByteArray bytes;
        bytes.resize(static_cast<qsizetype>(size));
        for (qsizetype i = 0; i < bytes.size(); ++i)
            bytes[i] = static_cast<char>((i * 31 + seed + (i >> 12)) & 0xff);
        return bytes;
    }

    bool writeFile(const QString &path, const QByteArray &content)
    {
        QDir().mkpath(QFileInfo(path).path());
        QFile file {path};
        return file.open(QIODevice::WriteOnly) && (file.write(content) == content.size());
    }

    QByteArray readFile(const QString &path)
    {
        QFile file {path};
        return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
    }

    // `megatorrent publish` of files with an identity; waits for its "published seq" line.
    class Publisher
    {
    public:
        Publisher(const QString &bootstrap, const QString &identity, const QString &blobs, const QStringList &files, const QStringList &extra = {})
        {
            // Files first: --bootstrap takes every value that follows it.
            QStringList args {QStringLiteral("publish")};
            args << files << QStringLiteral("--identity") << identity;
            args << QStringLiteral("--blobs") << blobs << QStringLiteral("--listen") << QStringLiteral("127.0.0.1:0");
            args << extra << QStringLiteral("--bootstrap") << bootstrap;
            m_process = std::make_unique<TestNet::CliProcess>(args);
            const QString line = m_process->waitForLine(QByteArrayLiteral("published seq "));
            m_sequence = line.section(u' ', 0, 0).toLongLong();
        }

        qint64 sequence() const
        {
            return m_sequence;
        }

    private:
        std::unique_ptr<TestNet::CliProcess> m_process;
        qint64 m_sequence = 0;
    };

    QByteArray newIdentity(const QString &file)
    {
        TestNet::CliProcess keygen {{QStringLiteral("keygen"), QStringLiteral("--out"), file}};
        return QByteArray::fromHex(keygen.waitForLine({}).toLatin1());
    }
}

class TestSession final : public QObject
{
    Q_OBJECT

private slots:
    void initTestCase();
    void cleanupTestCase();
    void createIdentityWritesAPrivateFileOnce();
    void subscribesByKeyAndLinkAndFollowsNewVersions();
    void resumesWithoutFetchingStoredBlobs();
    void sessionPublishesAFolderAnotherSessionSyncs();
    void failuresArriveWithTheirKind();
    void unreachableNetworkIsANetworkError();

private:
    SessionSettings settings(const QString &stateFolder, const QString &bootstrap = {}) const;

    std::unique_ptr<TestNet::Testnet> m_testnet;
    QString m_bootstrap;
    QTemporaryDir m_dir;
};

void TestSession::initTestCase()
{
    QVERIFY(m_dir.isValid());
    m_testnet = std::make_unique<TestNet::Testnet>(4);
    m_bootstrap = m_testnet->bootstrap();
    QVERIFY2(!m_bootstrap.isEmpty(), "the DHT testnet did not start");
}

void TestSession::cleanupTestCase()
{
    m_testnet.reset();
}

SessionSettings TestSession::settings(const QString &stateFolder, const QString &bootstrap) const
{
    SessionSettings settings;
    settings.stateFolder = stateFolder;
    // Always loopback nodes: never the public routers an empty list would mean.
    settings.bootstrapNodes = QStringList {bootstrap.isEmpty() ? m_bootstrap : bootstrap};
    settings.listenAddress = QStringLiteral("127.0.0.1");
    return settings;
}

void TestSession::createIdentityWritesAPrivateFileOnce()
{
    const QString file = m_dir.filePath(QStringLiteral("identity-once.json"));
    const QByteArray publicKey = Session::createIdentity(file);
    QCOMPARE(publicKey.size(), 32);
    const QFileDevice::Permissions others {QFile::ReadGroup | QFile::WriteGroup | QFile::ExeGroup | QFile::ReadOther | QFile::WriteOther | QFile::ExeOther};
    QVERIFY(!QFile::permissions(file).testAnyFlags(others));
    QVERIFY(readFile(file).contains(publicKey.toHex()));
    const QByteArray before = readFile(file);

    QString error;
    QVERIFY(Session::createIdentity(file, error).isEmpty());
    QVERIFY2(error.contains(QStringLiteral("exists")), qPrintable(error));
    QCOMPARE(readFile(file), before);
}

void TestSession::subscribesByKeyAndLinkAndFollowsNewVersions()
{
    const QString base = m_dir.filePath(QStringLiteral("follow"));
    const QString identity = base + QStringLiteral("/identity.json");
    QDir().mkpath(base);
    const QByteArray publicKey = newIdentity(identity);
    QCOMPARE(publicKey.size(), 32);
    const QByteArray big = pattern(2500000, 1);
    const QByteArray small = QByteArrayLiteral("version one\n");
    QVERIFY(writeFile(base + QStringLiteral("/content/big.bin"), big));
    QVERIFY(writeFile(base + QStringLiteral("/content/notes.txt"), small));
    const QStringList files {base + QStringLiteral("/content/big.bin"), base + QStringLiteral("/content/notes.txt")};
    auto publisher = std::make_unique<Publisher>(m_bootstrap, identity, base + QStringLiteral("/blobs"), files);
    QVERIFY2(publisher->sequence() > 0, "the publisher did not publish");

    // One session by hex key (upper case, as users paste it), one by link.
    Session byKey {settings(base + QStringLiteral("/state-key"))};
    Session byLink {settings(base + QStringLiteral("/state-link"))};
    QSignalSpy progress {&byKey, &Session::syncProgress};
    QSignalSpy syncedByKey {&byKey, &Session::synced};
    QSignalSpy syncedByLink {&byLink, &Session::synced};
    QSignalSpy changed {&byKey, &Session::subscriptionsChanged};
    QSignalSpy errorsByKey {&byKey, &Session::errorOccurred};
    byKey.addSubscription(QString::fromLatin1(publicKey.toHex().toUpper()), {base + QStringLiteral("/out-key"), QStringLiteral("by key"), true});
    byLink.addSubscription(QStringLiteral("megatorrent://") + QString::fromLatin1(publicKey.toHex()), {base + QStringLiteral("/out-link"), QStringLiteral("by link"), true});

    QTRY_VERIFY_WITH_TIMEOUT(!syncedByKey.isEmpty(), timeoutMs);
    QTRY_VERIFY_WITH_TIMEOUT(!syncedByLink.isEmpty(), timeoutMs);
    QVERIFY(!changed.isEmpty());
    QVERIFY(!progress.isEmpty());
    QCOMPARE(progress.last().at(0).toByteArray(), publicKey);
    QCOMPARE(progress.last().at(2).toLongLong(), big.size() + small.size());
    QCOMPARE(syncedByKey.at(0).at(0).toByteArray(), publicKey);
    QCOMPARE(syncedByKey.at(0).at(1).toLongLong(), publisher->sequence());
    QCOMPARE(syncedByLink.at(0).at(1).toLongLong(), publisher->sequence());
    for (const QString &out : {QStringLiteral("/out-key"), QStringLiteral("/out-link")})
    {
        QCOMPARE(readFile(base + out + QStringLiteral("/big.bin")), big);
        QCOMPARE(readFile(base + out + QStringLiteral("/notes.txt")), small);
    }

    // The snapshot the Qt side keeps, and the files of the channel.
    QTRY_VERIFY_WITH_TIMEOUT(!byKey.subscriptions().isEmpty() && (byKey.subscriptions().at(0).state == Megatorrent::SyncState::Synced), timeoutMs);
    const Megatorrent::SubscriptionStatus status = byKey.subscriptions().at(0);
    QCOMPARE(status.publicKey, publicKey);
    QCOMPARE(status.label, QStringLiteral("by key"));
    QCOMPARE(status.lastSequence, publisher->sequence());
    QCOMPARE(status.bytesDone, big.size() + small.size());
    QVERIFY(status.error.isEmpty());
    const QVector<Megatorrent::ChannelFile> channelFiles = byKey.channelFiles(QString::fromLatin1(publicKey.toHex()));
    QCOMPARE(channelFiles.size(), 2);
    for (const Megatorrent::ChannelFile &file : channelFiles)
        QCOMPARE(file.bytesDone, file.size);
    QTRY_VERIFY_WITH_TIMEOUT(byKey.status().blobs >= 3, timeoutMs);
    QCOMPARE(byKey.status().subscriptions, 1);
    QVERIFY(byKey.status().dhtPort != 0);
    QVERIFY(byKey.status().listenPort != 0);

    // A new version: channelUpdated, then synced with its sequence.
    QSignalSpy updated {&byKey, &Session::channelUpdated};
    const qint64 first = publisher->sequence();
    publisher.reset();
    const QByteArray small2 = QByteArrayLiteral("version two, longer\n");
    QVERIFY(writeFile(base + QStringLiteral("/content/notes.txt"), small2));
    publisher = std::make_unique<Publisher>(m_bootstrap, identity, base + QStringLiteral("/blobs"), files);
    QVERIFY(publisher->sequence() > first);
    QTRY_VERIFY_WITH_TIMEOUT(syncedByKey.size() >= 2, timeoutMs);
    QVERIFY(!updated.isEmpty());
    QCOMPARE(updated.last().at(1).toLongLong(), publisher->sequence());
    QCOMPARE(syncedByKey.last().at(1).toLongLong(), publisher->sequence());
    QCOMPARE(readFile(base + QStringLiteral("/out-key/notes.txt")), small2);
    QCOMPARE(readFile(base + QStringLiteral("/out-key/big.bin")), big);
    QVERIFY2(errorsByKey.isEmpty(), qPrintable(errorsByKey.isEmpty() ? QString() : errorsByKey.at(0).at(1).toString()));

    // Unsubscribing (files kept) empties the snapshot.
    byKey.removeSubscription(QString::fromLatin1(publicKey.toHex()));
    QTRY_VERIFY_WITH_TIMEOUT(byKey.subscriptions().isEmpty(), timeoutMs);
    QCOMPARE(readFile(base + QStringLiteral("/out-key/big.bin")), big);
}

void TestSession::resumesWithoutFetchingStoredBlobs()
{
    const QString base = m_dir.filePath(QStringLiteral("resume"));
    const QString identity = base + QStringLiteral("/identity.json");
    QDir().mkpath(base);
    const QByteArray publicKey = newIdentity(identity);
    const QByteArray content = pattern(8 * 1048576, 7);
    QVERIFY(writeFile(base + QStringLiteral("/content/large.bin"), content));
    Publisher publisher {m_bootstrap, identity, base + QStringLiteral("/blobs"), {base + QStringLiteral("/content/large.bin")}};
    QVERIFY2(publisher.sequence() > 0, "the publisher did not publish");

    const QString state = base + QStringLiteral("/state");
    const QString channel = QString::fromLatin1(publicKey.toHex());
    qint64 doneBefore = 0;
    {
        // Slow enough to be stopped midway.
        SessionSettings slow = settings(state);
        slow.downloadRateLimit = 1048576;
        auto *session = new Session(slow);
        int emittedAfter = 0;
        bool destroyed = false;
        const auto count = [&emittedAfter, &destroyed] { if (destroyed) ++emittedAfter; };
        connect(session, &Session::syncProgress, this, [&](const QByteArray &, const qint64 done, qint64) { doneBefore = done; count(); });
        connect(session, &Session::synced, this, count);
        connect(session, &Session::subscriptionsChanged, this, count);
        connect(session, &Session::errorOccurred, this, count);
        connect(session, &Session::publishedChannelsChanged, this, count);
        session->addSubscription(channel, {base + QStringLiteral("/out"), QString(), true});
        QTRY_VERIFY_WITH_TIMEOUT(doneBefore >= 2 * 1048576, timeoutMs);
        QVERIFY(doneBefore < content.size());

        // Destroyed with transfers in flight: within a second, and nothing afterwards.
        QElapsedTimer timer;
        timer.start();
        delete session;
        const qint64 elapsed = timer.elapsed();
        destroyed = true;
        QVERIFY2(elapsed < 1000, qPrintable(QStringLiteral("destruction took %1 ms").arg(elapsed)));
        QTest::qWait(1500);
        QCOMPARE(emittedAfter, 0);
    }
    const int storedBefore = QDir(state + QStringLiteral("/blobs")).entryList(QDir::Files).size();
    QVERIFY2(storedBefore >= 2, qPrintable(QString::number(storedBefore)));

    // The same state folder: the subscription resumes by itself and fetches only what it lacks.
    Session resumed {settings(state)};
    QSignalSpy finished {&resumed, &Session::syncFinished};
    QTRY_VERIFY_WITH_TIMEOUT(!finished.isEmpty(), timeoutMs);
    QCOMPARE(finished.at(0).at(0).toByteArray(), publicKey);
    QCOMPARE(finished.at(0).at(1).toLongLong(), publisher.sequence());
    const int fetched = finished.at(0).at(2).toInt();
    const int present = finished.at(0).at(3).toInt();
    QCOMPARE(fetched + present, 8);
    QVERIFY2(present >= storedBefore - 1, qPrintable(QStringLiteral("%1 present, %2 stored before").arg(present).arg(storedBefore)));
    QVERIFY(fetched <= 8 - present);
    QCOMPARE(readFile(base + QStringLiteral("/out/large.bin")), content);
    QCOMPARE(resumed.subscriptions().size(), 1);
}

void TestSession::sessionPublishesAFolderAnotherSessionSyncs()
{
    const QString base = m_dir.filePath(QStringLiteral("publish"));
    const QString identity = base + QStringLiteral("/identity.json");
    QDir().mkpath(base);
    const QByteArray publicKey = Session::createIdentity(identity);
    QCOMPARE(publicKey.size(), 32);
    const QByteArray a = pattern(1500000, 3);
    const QByteArray b = QByteArrayLiteral("a second file\n");
    QVERIFY(writeFile(base + QStringLiteral("/album/a.bin"), a));
    // Flat: sub-folders need FileEntry.path, which the session gets with branch folders.
    QVERIFY(writeFile(base + QStringLiteral("/album/b.txt"), b));

    Session publisher {settings(base + QStringLiteral("/state-pub"))};
    QSignalSpy published {&publisher, &Session::published};
    QSignalSpy publishedChanged {&publisher, &Session::publishedChannelsChanged};
    QSignalSpy publisherErrors {&publisher, &Session::errorOccurred};
    publisher.publish(identity, {base + QStringLiteral("/album")}, {QStringLiteral("Album"), QString(), QByteArray()});
    QTRY_VERIFY_WITH_TIMEOUT(!published.isEmpty() || !publisherErrors.isEmpty(), timeoutMs);
    QVERIFY2(publisherErrors.isEmpty(), qPrintable(publisherErrors.isEmpty() ? QString() : publisherErrors.at(0).at(1).toString()));
    QCOMPARE(published.at(0).at(0).toByteArray(), publicKey);
    const qint64 sequence = published.at(0).at(1).toLongLong();
    QTRY_VERIFY_WITH_TIMEOUT(!publisher.publishedChannels().isEmpty(), timeoutMs);
    QVERIFY(!publishedChanged.isEmpty());
    const Megatorrent::PublishedChannel channel = publisher.publishedChannels().at(0);
    QCOMPARE(channel.publicKey, publicKey);
    QCOMPARE(channel.title, QStringLiteral("Album"));
    QCOMPARE(channel.sequence, sequence);
    QCOMPARE(channel.files, 2);
    QCOMPARE(channel.bytes, a.size() + b.size());
    QVERIFY(channel.active);

    Session subscriber {settings(base + QStringLiteral("/state-sub"))};
    QSignalSpy synced {&subscriber, &Session::synced};
    subscriber.addSubscription(QString::fromLatin1(publicKey.toHex()), {base + QStringLiteral("/got"), QString(), true});
    QTRY_VERIFY_WITH_TIMEOUT(!synced.isEmpty(), timeoutMs);
    QCOMPARE(synced.at(0).at(1).toLongLong(), sequence);
    QCOMPARE(readFile(base + QStringLiteral("/got/a.bin")), a);
    QCOMPARE(readFile(base + QStringLiteral("/got/b.txt")), b);

    // Stopping keeps the channel listed, no longer active.
    publisher.stopPublishing(publicKey);
    QTRY_VERIFY_WITH_TIMEOUT(!publisher.publishedChannels().at(0).active, timeoutMs);
}

void TestSession::failuresArriveWithTheirKind()
{
    const QString base = m_dir.filePath(QStringLiteral("failures"));
    const QString identity = base + QStringLiteral("/identity.json");
    QDir().mkpath(base);
    const QByteArray publicKey = newIdentity(identity);
    QVERIFY(writeFile(base + QStringLiteral("/secret.txt"), QByteArrayLiteral("for key holders\n")));
    const QString readKey = QString(64, u'7');
    Publisher publisher {m_bootstrap, identity, base + QStringLiteral("/blobs"), {base + QStringLiteral("/secret.txt")}
        , {QStringLiteral("--read-key"), readKey}};
    QVERIFY2(publisher.sequence() > 0, "the publisher did not publish");

    Session session {settings(base + QStringLiteral("/state"))};
    QSignalSpy errors {&session, &Session::errorOccurred};

    // Not a channel: neither a key nor a link.
    session.addSubscription(QStringLiteral("not a channel"), {base + QStringLiteral("/bad"), QString(), true});
    QTRY_VERIFY_WITH_TIMEOUT(!errors.isEmpty(), timeoutMs);
    QCOMPARE(errors.at(0).at(0).value<ErrorKind>(), ErrorKind::InvalidChannel);
    session.addSubscription(QStringLiteral("megatorrent://") + QString(63, u'a'), {base + QStringLiteral("/bad"), QString(), true});
    QTRY_COMPARE_WITH_TIMEOUT(errors.size(), 2, timeoutMs);
    QCOMPARE(errors.at(1).at(0).value<ErrorKind>(), ErrorKind::InvalidChannel);

    // The private channel with a wrong read key.
    const QString wrongKey = QString(64, u'8');
    session.addSubscription(QStringLiteral("megatorrent://%1:%2").arg(QString::fromLatin1(publicKey.toHex()), wrongKey), {base + QStringLiteral("/secret"), QString(), true});
    QTRY_VERIFY_WITH_TIMEOUT(errors.size() >= 3, timeoutMs);
    QCOMPARE(errors.at(2).at(0).value<ErrorKind>(), ErrorKind::WrongReadKey);
    QVERIFY(!QFile::exists(base + QStringLiteral("/secret/secret.txt")));

    // Nothing published under this key.
    Session other {settings(base + QStringLiteral("/state-other"))};
    QSignalSpy otherErrors {&other, &Session::errorOccurred};
    other.removeSubscription(QString(64, u'c'));
    QTRY_VERIFY_WITH_TIMEOUT(!otherErrors.isEmpty(), timeoutMs);
    QCOMPARE(otherErrors.at(0).at(0).value<ErrorKind>(), ErrorKind::NotFound);
}

void TestSession::unreachableNetworkIsANetworkError()
{
    // A loopback port nobody listens on: the session starts alone and cannot reach the DHT.
    const QString base = m_dir.filePath(QStringLiteral("unreachable"));
    Session session {settings(base + QStringLiteral("/state"), QStringLiteral("127.0.0.1:1"))};
    QSignalSpy errors {&session, &Session::errorOccurred};
    session.addSubscription(QString(64, u'd'), {base + QStringLiteral("/out"), QString(), true});
    QTRY_VERIFY_WITH_TIMEOUT(!errors.isEmpty(), timeoutMs);
    QCOMPARE(errors.at(0).at(0).value<ErrorKind>(), ErrorKind::Network);
}

QTEST_GUILESS_MAIN(TestSession)
#include "tst_session.moc"
