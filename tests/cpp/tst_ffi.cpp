// The FFI boundary: Rust panics reach C++ as errors (never an abort), and asynchronous results
// reach the Qt thread through the engine's event queue and notifier, with no polling.

#include <QCoreApplication>
#include <QSignalSpy>
#include <QTest>
#include <QThread>

#include "megatorrent/dht_client.h"

#include "cpp-shim/engine_host.h"

using Megatorrent::Detail::EngineHost;

class TestFfi final : public QObject
{
    Q_OBJECT

private slots:
    void syncPanicBecomesErrorSignal();
    void asyncPanicArrivesOnQtThread();
    void manyEventsAllArrive();
    void destroyingWithWorkInFlightIsSafe();
    void panicReachesPublicErrorSignal();
};

void TestFfi::syncPanicBecomesErrorSignal()
{
    EngineHost host;
    QVERIFY2(host.isValid(), qPrintable(host.startError()));
    QSignalSpy spy {&host, &EngineHost::errorOccurred};
    host.debugPanic(QStringLiteral("boom from the test"));
    // Emitted synchronously from the catch block: the process is still alive to see it.
    QCOMPARE(spy.count(), 1);
    QCOMPARE(spy.at(0).at(0).toString(), QStringLiteral("panic: boom from the test"));
}

void TestFfi::asyncPanicArrivesOnQtThread()
{
    EngineHost host;
    QVERIFY(host.isValid());
    QThread *receivedOn = nullptr;
    QString message;
    connect(&host, &EngineHost::errorOccurred, this, [&receivedOn, &message](const QString &error)
    {
        receivedOn = QThread::currentThread();
        message = error;
    });
    QSignalSpy spy {&host, &EngineHost::errorOccurred};
    host.debugPanicAsync(QStringLiteral("worker exploded"));
    // Nothing is delivered synchronously: the result must come back through the event loop.
    QCOMPARE(spy.count(), 0);
    QVERIFY(spy.wait(10000));
    QCOMPARE(receivedOn, QThread::currentThread());
    QCOMPARE(message, QStringLiteral("panic: worker exploded"));
}

void TestFfi::manyEventsAllArrive()
{
    EngineHost host;
    QVERIFY(host.isValid());
    QStringList messages;
    connect(&host, &EngineHost::errorOccurred, this, [&messages](const QString &error) { messages.append(error); });
    const int count = 200;
    for (int i = 0; i < count; ++i)
        host.debugPanicAsync(QString::number(i));
    QTRY_COMPARE_WITH_TIMEOUT(messages.size(), count, 20000);
    messages.sort();
    QStringList expected;
    for (int i = 0; i < count; ++i)
        expected.append(QStringLiteral("panic: ") + QString::number(i));
    expected.sort();
    QCOMPARE(messages, expected);
}

void TestFfi::destroyingWithWorkInFlightIsSafe()
{
    for (int round = 0; round < 20; ++round)
    {
        auto *host = new EngineHost;
        QVERIFY(host->isValid());
        for (int i = 0; i < 10; ++i)
            host->debugPanicAsync(QStringLiteral("in flight"));
        delete host;
    }
    // Any notify that raced with the deletions was either prevented or discarded by Qt.
    QCoreApplication::processEvents();
    QTest::qWait(50);
    QCoreApplication::processEvents();
}

void TestFfi::panicReachesPublicErrorSignal()
{
    // The engine behind a DHTClient is the same EngineHost: a panic on one of its threads
    // arrives as the public DHTClient::errorOccurred, and the client keeps working.
    Megatorrent::DHTClient client;
    auto *host = client.findChild<EngineHost *>();
    QVERIFY(host);
    QSignalSpy errors {&client, &Megatorrent::DHTClient::errorOccurred};
    host->debugPanicAsync(QStringLiteral("inside the DHT engine"));
    QVERIFY(errors.wait(10000));
    QCOMPARE(errors.at(0).at(0).toString(), QStringLiteral("panic: inside the DHT engine"));
    host->debugPanic(QStringLiteral("in a bridge call"));
    QCOMPARE(errors.count(), 2);
    QCOMPARE(errors.at(1).at(0).toString(), QStringLiteral("panic: in a bridge call"));

    QSignalSpy failed {&client, &Megatorrent::DHTClient::findBlobPeersFailed};
    client.setBootstrapNodes({});
    client.setBindAddress(QStringLiteral("bad"));
    client.findBlobPeers(QString(64, u'a'));
    QVERIFY(failed.wait(10000));
}

QTEST_GUILESS_MAIN(TestFfi)
#include "tst_ffi.moc"
