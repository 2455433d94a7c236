#pragma once

#include <optional>

#include <QObject>
#include <QString>

#include "bridge_util.h"

namespace Megatorrent::Detail
{
    // Owns one Rust engine (its runtime and event queue) for a public class such as DHTClient.
    //
    // Threading: the engine's notifier runs on a Rust worker thread and only posts a queued call
    // to readEvents(), which drains the queue on this object's thread and hands each event to
    // the handler. Nothing blocks this thread; destroying the host first guarantees (in Rust)
    // that the notifier is never called again, and Qt discards a call still queued for a
    // destroyed object.
    class EngineHost final : public QObject
    {
        Q_OBJECT
        Q_DISABLE_COPY_MOVE(EngineHost)

    public:
        explicit EngineHost(QObject *parent = nullptr);
        ~EngineHost() override;

        // False if the runtime failed to start; startError() says why.
        bool isValid() const;
        QString startError() const;
        // Precondition: isValid().
        const megatorrent::ffi::Engine &engine() const;

        // Test hooks: a panic inside a bridge call, and one inside a task on an engine thread.
        // Both arrive as errorOccurred() and never abort the process.
        void debugPanic(const QString &message);
        void debugPanicAsync(const QString &message);

    signals:
        void eventReceived(const megatorrent::ffi::Event &event);
        void errorOccurred(const QString &message);

    private:
        void readEvents();
        void handleEvent(const megatorrent::ffi::Event &event);

        std::optional<rust::Box<megatorrent::ffi::Engine>> m_engine;
        QString m_startError;
    };
}
