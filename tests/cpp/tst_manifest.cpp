// ManifestVerifier on the shared test vectors: it accepts and rejects exactly what the Rust core
// does, and the Manifest it fills matches the JSON field for field (read here independently with
// QJsonDocument).

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTest>

#include "megatorrent/manifest.h"

#include "cpp-shim/manifest_convert.h"

using Megatorrent::Manifest;
using Megatorrent::ManifestVerifier;

namespace
{
    QByteArray readVector(const QString &name)
    {
        QFile file {QStringLiteral(MEGATORRENT_VECTORS_DIR "/manifests/") + name};
        if (!file.open(QIODevice::ReadOnly))
            qFatal("cannot open vector %s", qPrintable(name));
        return file.readAll();
    }

    QJsonObject jsonOf(const QByteArray &bytes)
    {
        return QJsonDocument::fromJson(bytes).object();
    }

    // Compares the collections of a Manifest with a JSON "collections" array.
    void compareCollections(const Manifest &manifest, const QJsonArray &collections)
    {
        QCOMPARE(manifest.collections.size(), collections.size());
        qsizetype fileIndex = 0;
        for (qsizetype c = 0; c < collections.size(); ++c)
        {
            const QJsonObject collection = collections.at(c).toObject();
            QCOMPARE(manifest.collections.at(c).title, collection.value(QStringLiteral("title")).toString());
            const QJsonArray items = collection.value(QStringLiteral("items")).toArray();
            QCOMPARE(manifest.collections.at(c).items.size(), items.size());
            for (qsizetype i = 0; i < items.size(); ++i, ++fileIndex)
            {
                const QJsonObject item = items.at(i).toObject();
                const Megatorrent::FileEntry &file = manifest.collections.at(c).items.at(i);
                QCOMPARE(file.name, item.value(QStringLiteral("name")).toString());
                QCOMPARE(file.size, item.value(QStringLiteral("size")).toInteger());
                QCOMPARE(manifest.files.at(fileIndex).name, file.name);
                const QJsonArray chunks = item.value(QStringLiteral("chunks")).toArray();
                QCOMPARE(file.chunks.size(), chunks.size());
                for (qsizetype k = 0; k < chunks.size(); ++k)
                {
                    const QJsonObject chunk = chunks.at(k).toObject();
                    const Megatorrent::BlobEntry &blob = file.chunks.at(k);
                    QCOMPARE(blob.id, chunk.value(QStringLiteral("blobId")).toString());
                    QCOMPARE(blob.key.size(), 32);
                    QCOMPARE(QString::fromLatin1(blob.key.toHex()), chunk.value(QStringLiteral("key")).toString());
                    QCOMPARE(blob.iv.size(), 12);
                    QCOMPARE(QString::fromLatin1(blob.iv.toHex()), chunk.value(QStringLiteral("nonce")).toString());
                    QCOMPARE(blob.offset, chunk.value(QStringLiteral("offset")).toInteger());
                    QCOMPARE(blob.length, chunk.value(QStringLiteral("length")).toInteger());
                    QCOMPARE(blob.realSize, chunk.value(QStringLiteral("realSize")).toInteger());
                    QCOMPARE(blob.size, blob.realSize);
                }
            }
        }
        QCOMPARE(manifest.files.size(), fileIndex);
    }
}

class TestManifest final : public QObject
{
    Q_OBJECT

private slots:
    void vectors_data();
    void vectors();
    void privateManifestStaysSealedWithoutKey();
    void privateManifestDecrypts();
    void wrongReadKeyIsRefused();
    void malformedInputNamesTheReason();
    void createdManifestRoundTrips();
    void createRefusesMismatchedKeys();
};

void TestManifest::vectors_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<bool>("valid");
    const QJsonArray cases = jsonOf(readVector(QStringLiteral("index.json"))).value(QStringLiteral("cases")).toArray();
    QVERIFY(cases.size() >= 10);
    for (const QJsonValue &value : cases)
    {
        const QJsonObject entry = value.toObject();
        const QString file = entry.value(QStringLiteral("file")).toString();
        QTest::newRow(qPrintable(file)) << file << entry.value(QStringLiteral("valid")).toBool();
    }
}

void TestManifest::vectors()
{
    QFETCH(QString, file);
    QFETCH(bool, valid);
    const QByteArray bytes = readVector(file);

    Manifest manifest;
    manifest.sequence = -7; // must stay untouched on failure
    QString reason;
    const bool accepted = ManifestVerifier::parseAndValidate(bytes, manifest, reason);
    QVERIFY2(accepted == valid, qPrintable(file + QStringLiteral(": ") + reason));
    // The stub's two-argument form agrees.
    Manifest again;
    QCOMPARE(ManifestVerifier::parseAndValidate(bytes, again), valid);
    if (!valid)
    {
        QVERIFY(!reason.isEmpty());
        QCOMPARE(manifest.sequence, -7);
        return;
    }
    QVERIFY(reason.isEmpty());
    const QJsonObject json = jsonOf(bytes);
    QCOMPARE(manifest.publicKey, json.value(QStringLiteral("publicKey")).toString());
    QCOMPARE(manifest.sequence, json.value(QStringLiteral("sequence")).toInteger());
    QCOMPARE(manifest.signature.size(), 64);
    QCOMPARE(QString::fromLatin1(manifest.signature.toHex()), json.value(QStringLiteral("signature")).toString());
    QCOMPARE(manifest.rawJson.trimmed(), bytes.trimmed());
    QCOMPARE(manifest.originalJson, json);
    QCOMPARE(manifest.encrypted, json.value(QStringLiteral("encrypted")).toBool());
    if (!manifest.encrypted)
    {
        QCOMPARE(manifest.timestamp, json.value(QStringLiteral("timestamp")).toInteger());
        compareCollections(manifest, json.value(QStringLiteral("collections")).toArray());
        QVERIFY(!manifest.files.isEmpty());
    }
}

void TestManifest::privateManifestStaysSealedWithoutKey()
{
    const QByteArray bytes = readVector(QStringLiteral("private-small.json"));
    Manifest manifest;
    QString reason;
    QVERIFY2(ManifestVerifier::parseAndValidate(bytes, manifest, reason), qPrintable(reason));
    const QJsonObject json = jsonOf(bytes);
    QVERIFY(manifest.encrypted);
    QCOMPARE(manifest.nonce.size(), 24);
    QCOMPARE(QString::fromLatin1(manifest.nonce.toHex()), json.value(QStringLiteral("nonce")).toString());
    QCOMPARE(QString::fromLatin1(manifest.ciphertext.toHex()), json.value(QStringLiteral("ciphertext")).toString());
    QVERIFY(manifest.collections.isEmpty());
    QVERIFY(manifest.files.isEmpty());
}

void TestManifest::privateManifestDecrypts()
{
    const QByteArray bytes = readVector(QStringLiteral("private-small.json"));
    const QByteArray readKey = QByteArray::fromHex(QByteArrayLiteral("3333333333333333333333333333333333333333333333333333333333333333"));
    Manifest manifest;
    QString reason;
    QVERIFY2(ManifestVerifier::decryptAndValidate(bytes, readKey, manifest, reason), qPrintable(reason));
    QVERIFY(manifest.encrypted);
    const QJsonObject decrypted = jsonOf(readVector(QStringLiteral("private-small.decrypted.json")));
    QCOMPARE(manifest.timestamp, decrypted.value(QStringLiteral("timestamp")).toInteger());
    compareCollections(manifest, decrypted.value(QStringLiteral("collections")).toArray());
    QVERIFY(!manifest.files.isEmpty());
}

void TestManifest::wrongReadKeyIsRefused()
{
    const QByteArray bytes = readVector(QStringLiteral("private-small.json"));
    Manifest manifest;
    QString reason;
    QVERIFY(!ManifestVerifier::decryptAndValidate(bytes, QByteArray(32, '\x44'), manifest, reason));
    QVERIFY(!reason.isEmpty());
    QVERIFY(!ManifestVerifier::decryptAndValidate(bytes, QByteArray(31, '\x33'), manifest, reason));
    QVERIFY2(reason.contains(QStringLiteral("32 bytes")), qPrintable(reason));
    QVERIFY(manifest.collections.isEmpty());
}

void TestManifest::malformedInputNamesTheReason()
{
    Manifest manifest;
    QString reason;
    QVERIFY(!ManifestVerifier::parseAndValidate(QByteArrayLiteral("{\"publicKey\":"), manifest, reason));
    QVERIFY2(reason.contains(QStringLiteral("JSON")), qPrintable(reason));
    QVERIFY(!ManifestVerifier::parseAndValidate(QByteArray(), manifest, reason));
    QVERIFY(!reason.isEmpty());
    QVERIFY(!ManifestVerifier::parseAndValidate(QByteArrayLiteral("{}"), manifest, reason));
    QVERIFY2(reason.contains(QStringLiteral("missing field")), qPrintable(reason));
}

void TestManifest::createdManifestRoundTrips()
{
    Manifest input;
    input.timestamp = 1732500000000;
    Megatorrent::BlobEntry blob;
    blob.id = QString(64, u'a');
    blob.offset = 0;
    blob.length = 1048592;
    blob.realSize = 1000;
    blob.key = QByteArray(32, '\x01');
    blob.iv = QByteArray(12, '\x02');
    input.collections.append({QStringLiteral("Films \u00e9\"\n"), {{QStringLiteral("a.bin"), 1000, QString(), {blob}}}});

    const QByteArray seed(32, '\x07');
    const megatorrent::ffi::ManifestData signedData = megatorrent::ffi::manifestCreate(
        Megatorrent::Detail::toRustSlice(seed), {}, 42, Megatorrent::Detail::toManifestData(input));
    const Manifest created = Megatorrent::Detail::toManifest(signedData);

    Manifest verified;
    QString reason;
    QVERIFY2(ManifestVerifier::parseAndValidate(created.rawJson, verified, reason), qPrintable(reason));
    QCOMPARE(verified.sequence, 42);
    QCOMPARE(verified.timestamp, input.timestamp);
    QCOMPARE(verified.collections.size(), 1);
    QCOMPARE(verified.collections.at(0).title, input.collections.at(0).title);
    const Megatorrent::BlobEntry &out = verified.collections.at(0).items.at(0).chunks.at(0);
    QCOMPARE(out.id, blob.id);
    QCOMPARE(out.key, blob.key);
    QCOMPARE(out.iv, blob.iv);
    QCOMPARE(out.realSize, blob.realSize);
    QCOMPARE(verified.publicKey.size(), 64);
}

void TestManifest::createRefusesMismatchedKeys()
{
    const Manifest empty;
    try
    {
        megatorrent::ffi::manifestCreate(Megatorrent::Detail::toRustSlice(QByteArray(32, '\x07')),
            Megatorrent::Detail::toRustSlice(QByteArray(32, '\x00')), 1, Megatorrent::Detail::toManifestData(empty));
        QFAIL("a public key that does not match the secret was accepted");
    }
    catch (const rust::Error &error)
    {
        QVERIFY2(QString::fromUtf8(error.what()).contains(QStringLiteral("does not match")), error.what());
    }
}

QTEST_GUILESS_MAIN(TestManifest)
#include "tst_manifest.moc"
