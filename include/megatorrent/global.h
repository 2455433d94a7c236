#pragma once

#include <QtGlobal>
#include <QByteArray>
#include <QJsonObject>
#include <QString>
#include <QVector>

// Plain data types of the Megatorrent protocol v5 (PROTOCOL.md section 2). Field names of the
// former stubs are kept; binary values (keys, nonces, signatures) are raw bytes, not hex.
namespace Megatorrent
{
    // What kind of failure a signal reports: what the user or the application can do about it.
    enum class ErrorKind
    {
        InvalidChannel,     // the channel text is neither a public key nor a megatorrent:// link
        NotFound,           // nothing is published under the key (and salt), or unknown channel/file
        Network,            // nodes or peers unreachable or refusing; a later retry may succeed
        BadManifest,        // a manifest, record or blob breaks the protocol (the publisher's side)
        WrongReadKey,       // a private channel's read key is missing or does not open it
        Storage,            // the state folder or blob store failed (disk full, corrupt data)
        Io,                 // a user file (identity, saved or published file) cannot be read or written
        Internal,           // a bug: a caught Rust panic, or the engine is gone
        InvalidArgument     // a malformed argument or setting (key length, port, address, path)
    };

    // One encrypted 1 MiB blob of a file (a manifest "chunk").
    struct BlobEntry
    {
        QString id;             // blob id: SHA-256 of the blob, 64 lowercase hex characters
        qint64 size = 0;        // plaintext bytes this blob contributes to the file (= realSize)
        QByteArray key;         // ChaCha20-Poly1305 key, 32 raw bytes
        QByteArray iv;          // ChaCha20-Poly1305 nonce of this blob, 12 raw bytes
        qint64 offset = 0;      // "offset" as written in the manifest (0 in protocol v5)
        qint64 length = 0;      // blob length in bytes (1048592 in protocol v5)
        qint64 realSize = 0;    // plaintext bytes kept after decryption (<= 1048576)
    };

    struct FileEntry
    {
        QString name;           // a file name, never a path
        qint64 size = 0;        // bytes; the sum of the chunks' realSize
        QString mimeType;       // not carried by protocol v5: always empty after parsing
        QVector<BlobEntry> chunks;
    };

    struct Collection
    {
        QString title;
        QVector<FileEntry> items;
    };

    struct Manifest
    {
        QString publicKey;      // publisher's Ed25519 key, 64 lowercase hex characters
        qint64 sequence = 0;    // 1 to 2^53-1; a higher value supersedes a lower one
        QVector<FileEntry> files;   // every file of every collection, in order
        QByteArray signature;   // Ed25519 signature, 64 raw bytes
        QJsonObject originalJson;   // the manifest object as received
        QVector<Collection> collections;
        qint64 timestamp = 0;   // milliseconds since the epoch
        bool encrypted = false; // a private manifest: collections stay empty until decrypted
        QByteArray nonce;       // private manifests: XSalsa20-Poly1305 nonce, 24 raw bytes
        QByteArray ciphertext;  // private manifests: the sealed content
        QByteArray rawJson;     // the exact signed bytes (what the DHT stores)
    };
}
