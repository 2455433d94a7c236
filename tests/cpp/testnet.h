#pragma once

// Helpers of the QtTest suites: `megatorrent` CLI processes (DHT nodes of a local testnet on
// 127.0.0.1, publishers), each started by the test and stopped by it (SIGTERM, then SIGKILL).

#include <memory>
#include <vector>

#include <QByteArray>
#include <QProcess>
#include <QString>
#include <QStringList>
#include <QTest>

namespace TestNet
{
    // One `megatorrent` process; stopped when destroyed.
    class CliProcess
    {
    public:
        explicit CliProcess(const QStringList &args)
        {
            m_process.setProcessChannelMode(QProcess::ForwardedErrorChannel);
            m_process.start(QStringLiteral(MEGATORRENT_CLI), args);
        }

        ~CliProcess()
        {
            stop();
        }

        CliProcess(const CliProcess &) = delete;
        CliProcess &operator=(const CliProcess &) = delete;

        // The rest of the first stdout line that starts with prefix (waiting up to timeoutMs);
        // empty if none came or the process ended first.
        QString waitForLine(const QByteArray &prefix, const int timeoutMs = 60000)
        {
            QString found;
            // Either way, found says whether the line came.
            [[maybe_unused]] const bool done = QTest::qWaitFor([this, &prefix, &found]
            {
                while (m_process.canReadLine())
                {
                    const QByteArray line = m_process.readLine().trimmed();
                    if (line.startsWith(prefix))
                    {
                        found = QString::fromUtf8(line.mid(prefix.size()));
                        return true;
                    }
                }
                return m_process.state() == QProcess::NotRunning;
            }, timeoutMs);
            return found;
        }

        void stop()
        {
            if (m_process.state() == QProcess::NotRunning)
                return;
            m_process.terminate();
            if (!m_process.waitForFinished(10000))
            {
                m_process.kill();
                m_process.waitForFinished(5000);
            }
        }

        QProcess &process()
        {
            return m_process;
        }

    private:
        QProcess m_process;
    };

    // A DHT testnet of `megatorrent dht node` processes on 127.0.0.1.
    class Testnet
    {
    public:
        // Starts `count` nodes; bootstrap() is empty if one did not start.
        explicit Testnet(const int count = 4)
        {
            for (int i = 0; i < count; ++i)
            {
                QStringList args {QStringLiteral("dht"), QStringLiteral("node"), QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0")};
                if (!m_bootstrap.isEmpty())
                    args << QStringLiteral("--bootstrap") << m_bootstrap;
                m_nodes.push_back(std::make_unique<CliProcess>(args));
                const QString address = m_nodes.back()->waitForLine(QByteArrayLiteral("dht listening "), 20000);
                if (address.isEmpty())
                {
                    m_bootstrap.clear();
                    return;
                }
                if (m_bootstrap.isEmpty())
                    m_bootstrap = address;
            }
        }

        // "127.0.0.1:PORT" of the first node.
        QString bootstrap() const
        {
            return m_bootstrap;
        }

    private:
        std::vector<std::unique_ptr<CliProcess>> m_nodes;
        QString m_bootstrap;
    };
}
