#include "engine_host.h"

#include <memory>

#include <QMetaObject>
#include <QPointer>

namespace
{
    // Runs on a Rust engine thread. QMetaObject::invokeMethod with a queued connection is
    // thread-safe; it is the only Qt call made off the Qt thread.
    class QueuedNotifier final : public megatorrent::ffi::Notifier
    {
    public:
        explicit QueuedNotifier(Megatorrent::Detail::EngineHost *host, void (Megatorrent::Detail::EngineHost::*slot)())
            : m_host {host}
            , m_slot {slot}
        {
        }

        void notify() const override
        {
            QMetaObject::invokeMethod(m_host, m_slot, Qt::QueuedConnection);
        }

    private:
        Megatorrent::Detail::EngineHost *m_host = nullptr;
        void (Megatorrent::Detail::EngineHost::*m_slot)() = nullptr;
    };
}

namespace Megatorrent::Detail
{
    EngineHost::EngineHost(QObject *parent)
        : QObject(parent)
    {
        try
        {
            auto notifier = std::make_unique<QueuedNotifier>(this, &EngineHost::readEvents);
            m_engine.emplace(megatorrent::ffi::newEngine(std::unique_ptr<megatorrent::ffi::Notifier>(std::move(notifier))));
        }
        catch (const rust::Error &error)
        {
            m_startError = errorText(error);
        }
    }

    // Dropping the engine detaches the notifier before anything else (see src/ffi/engine.rs).
    EngineHost::~EngineHost() = default;

    bool EngineHost::isValid() const
    {
        return m_engine.has_value();
    }

    QString EngineHost::startError() const
    {
        return m_startError;
    }

    const megatorrent::ffi::Engine &EngineHost::engine() const
    {
        return **m_engine;
    }

    void EngineHost::debugPanic(const QString &message)
    {
        try
        {
            megatorrent::ffi::debugPanic(toRustStr(message.toUtf8()));
        }
        catch (const rust::Error &error)
        {
            emit errorOccurred(errorText(error));
        }
    }

    void EngineHost::debugPanicAsync(const QString &message)
    {
        if (!isValid())
        {
            emit errorOccurred(m_startError);
            return;
        }
        try
        {
            megatorrent::ffi::debugPanicAsync(engine(), toRustStr(message.toUtf8()));
        }
        catch (const rust::Error &error)
        {
            emit errorOccurred(errorText(error));
        }
    }

    void EngineHost::readEvents()
    {
        if (!isValid())
            return;
        rust::Vec<megatorrent::ffi::Event> events;
        try
        {
            events = megatorrent::ffi::takeEvents(engine());
        }
        catch (const rust::Error &error)
        {
            emit errorOccurred(errorText(error));
            return;
        }
        // A handler may destroy this object (e.g. a slot deleting the owning client).
        const QPointer<EngineHost> guard {this};
        for (const megatorrent::ffi::Event &event : events)
        {
            if (!guard)
                return;
            handleEvent(event);
        }
    }

    void EngineHost::handleEvent(const megatorrent::ffi::Event &event)
    {
        if (event.operation == megatorrent::ffi::Operation::SelfTest)
        {
            emit errorOccurred(toQString(event.message));
            return;
        }
        emit eventReceived(event);
    }
}
