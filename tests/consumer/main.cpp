// Links qbt_base (and through it megatorrent::megatorrent) into an executable and runs one call
// through the Rust core, to prove the static libraries resolve and work from a consumer.
#include <cstdio>

#include <QCoreApplication>

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
    return 0;
}
