#pragma once

#include "megatorrent/global.h"

#include "bridge_util.h"

namespace Megatorrent::Detail
{
    // A manifest verified by the Rust core, as the public struct. Binary fields the bridge does
    // not carry (signature, private nonce and ciphertext) come from the verified text itself.
    Manifest toManifest(const megatorrent::ffi::ManifestData &data);
    // The content of a public Manifest for the Rust core to sign (publicKey/signature ignored).
    megatorrent::ffi::ManifestData toManifestData(const Manifest &manifest);
}
