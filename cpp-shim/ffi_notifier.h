#pragma once

// Plain C++ (no Qt) so that the cxx-generated bridge source, compiled by cargo, can include it.

namespace megatorrent::ffi
{
    // Called by a Rust engine thread, once each time its event queue goes from empty to non-empty.
    // An implementation must be thread-safe, must not block and must not throw: the Qt shim only
    // posts a queued call to the object that drains the queue on its own thread.
    class Notifier
    {
    public:
        virtual ~Notifier() = default;
        virtual void notify() const = 0;
    };
}
