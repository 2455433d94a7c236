#include "manifest_convert.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QJsonValue>

namespace
{
    QByteArray hexField(const QJsonObject &object, const QString &key)
    {
        return QByteArray::fromHex(object.value(key).toString().toLatin1());
    }

    qint64 toQint64(const std::uint64_t value)
    {
        // Every integer of a valid manifest is at most 2^53 - 1 (checked by the Rust core).
        return static_cast<qint64>(value);
    }
}

namespace Megatorrent::Detail
{
    Manifest toManifest(const megatorrent::ffi::ManifestData &data)
    {
        Manifest manifest;
        manifest.publicKey = toQString(data.public_key);
        manifest.sequence = toQint64(data.sequence);
        manifest.timestamp = toQint64(data.timestamp);
        manifest.encrypted = data.encrypted;
        manifest.rawJson = QByteArray(data.text.data(), static_cast<qsizetype>(data.text.size()));
        manifest.originalJson = QJsonDocument::fromJson(manifest.rawJson).object();
        manifest.signature = hexField(manifest.originalJson, QStringLiteral("signature"));
        if (manifest.encrypted)
        {
            manifest.nonce = hexField(manifest.originalJson, QStringLiteral("nonce"));
            manifest.ciphertext = hexField(manifest.originalJson, QStringLiteral("ciphertext"));
        }
        for (const megatorrent::ffi::CollectionData &collectionData : data.collections)
        {
            Collection collection;
            collection.title = toQString(collectionData.title);
            for (const megatorrent::ffi::FileData &fileData : collectionData.items)
            {
                FileEntry file;
                file.name = toQString(fileData.name);
                file.size = toQint64(fileData.size);
                for (const megatorrent::ffi::ChunkData &chunkData : fileData.chunks)
                {
                    BlobEntry blob;
                    blob.id = toQString(chunkData.blob_id);
                    blob.size = toQint64(chunkData.real_size);
                    blob.key = toQByteArray(chunkData.key);
                    blob.iv = toQByteArray(chunkData.nonce);
                    blob.offset = toQint64(chunkData.offset);
                    blob.length = toQint64(chunkData.length);
                    blob.realSize = toQint64(chunkData.real_size);
                    file.chunks.append(blob);
                }
                collection.items.append(file);
                manifest.files.append(file);
            }
            manifest.collections.append(collection);
        }
        return manifest;
    }

    megatorrent::ffi::ManifestData toManifestData(const Manifest &manifest)
    {
        megatorrent::ffi::ManifestData data;
        data.sequence = static_cast<std::uint64_t>(manifest.sequence);
        data.timestamp = static_cast<std::uint64_t>(manifest.timestamp);
        data.encrypted = false;
        // Old stub users filled only `files`: publish them as one untitled collection.
        QVector<Collection> collections = manifest.collections;
        if (collections.isEmpty() && !manifest.files.isEmpty())
            collections.append(Collection {QString(), manifest.files});
        for (const Collection &collection : collections)
        {
            megatorrent::ffi::CollectionData collectionData;
            collectionData.title = toRustString(collection.title);
            for (const FileEntry &file : collection.items)
            {
                megatorrent::ffi::FileData fileData;
                fileData.name = toRustString(file.name);
                fileData.size = static_cast<std::uint64_t>(file.size);
                for (const BlobEntry &blob : file.chunks)
                {
                    megatorrent::ffi::ChunkData chunkData;
                    chunkData.blob_id = toRustString(blob.id);
                    chunkData.offset = static_cast<std::uint64_t>(blob.offset);
                    chunkData.length = static_cast<std::uint64_t>(blob.length);
                    chunkData.key = toRustVec(blob.key);
                    chunkData.nonce = toRustVec(blob.iv);
                    // realSize is the protocol's field; stub users set only `size`.
                    chunkData.real_size = static_cast<std::uint64_t>((blob.realSize != 0) ? blob.realSize : blob.size);
                    fileData.chunks.push_back(std::move(chunkData));
                }
                collectionData.items.push_back(std::move(fileData));
            }
            data.collections.push_back(std::move(collectionData));
        }
        return data;
    }
}
