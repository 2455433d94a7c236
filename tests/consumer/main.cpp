// Links qbt_base (and through it megatorrent::megatorrent) into an executable and runs calls
// through the Rust core, to prove the static libraries resolve and work from a consumer: a
// manifest check, an identity file, and a Session that starts on loopback and stops at once.
#include <cstdio>

#include <QCoreApplication>
#include <QFile>
#include <QTemporaryDir>
#include <QTimer>

#include "channels.h"
#include "megatorrentsession.h"

int main(int argc, char **argv)
{
    QCoreApplication app {argc, argv};
    MegatorrentSession session;
    QString error;
    if (session.loadManifest(QByteArrayLiteral("{\"publicKey\":1}"), error) || error.isEmpty())
    {
        std::fprintf(stderr, "a malformed manifest was accepted\n");
        return 1;
    }
    std::printf("consumer ok: malformed manifest refused (%s)\n", qPrintable(error));

    QTemporaryDir profile;
    if (!profile.isValid())
        return 1;
    // Loopback only: nothing listens on port 1, the session starts alone.
    auto *channels = new Channels(profile.path(), QStringLiteral("127.0.0.1:1"), &app);
    const QString identityFile = profile.filePath(QStringLiteral("identity.json"));
    const QString publicKey = channels->createIdentity(identityFile);
    if ((publicKey.size() != 64) || !channels->createIdentity(identityFile, error).isEmpty() || error.isEmpty())
    {
        std::fprintf(stderr, "identity: %s / %s\n", qPrintable(publicKey), qPrintable(error));
        return 1;
    }
    const QFileDevice::Permissions others {QFile::ReadGroup | QFile::WriteGroup | QFile::ExeGroup | QFile::ReadOther | QFile::WriteOther | QFile::ExeOther};
    if (QFile::permissions(identityFile).testAnyFlags(others))
    {
        std::fprintf(stderr, "the identity file is readable by others\n");
        return 1;
    }
    bool started = false;
    QObject::connect(channels, &Channels::logMessage, &app, [&started](const QString &message)
    {
        std::printf("consumer: %s\n", qPrintable(message));
        if (message.startsWith(QStringLiteral("Listening on ")))
        {
            started = true;
            QCoreApplication::quit();
        }
    });
    QTimer::singleShot(20000, &app, &QCoreApplication::quit);
    app.exec();
    std::printf("%s\n", qPrintable(channels->describe()));
    delete channels;
    if (!started)
    {
        std::fprintf(stderr, "the session did not start\n");
        return 1;
    }
    std::printf("consumer ok: session started and stopped\n");
    return 0;
}
