#!/usr/bin/env node
// Independent manifest verifier (PROTOCOL.md 2.3) sharing no code with the Rust crate.
//
// Usage: node verify_manifest.mjs --sorted|--received FILE...
//
// --sorted:   what the newest reference checks: fast-json-stable-stringify (keys sorted at every
//             level) of the parsed manifest without "signature".
// --received: what the older reference (cf6dffe) checks: JSON.stringify of JSON.parse, which keeps
//             the received key order (except integer-like keys, which manifests do not have).
// The signature is checked with Node's own Ed25519 (the raw public key imported as a JWK).
// Prints one line per file, "valid" or "invalid: <reason>"; exits 1 if any file is invalid.
import { readFileSync } from 'node:fs'
import { createPublicKey, verify } from 'node:crypto'
import stableStringify from 'fast-json-stable-stringify'

function check (text, mode) {
  const manifest = JSON.parse(text)
  if (typeof manifest !== 'object' || manifest === null) throw new Error('not an object')
  if (!/^[0-9a-fA-F]{64}$/.test(manifest.publicKey)) throw new Error('bad publicKey')
  if (!/^[0-9a-fA-F]{128}$/.test(manifest.signature)) throw new Error('bad signature field')
  const clean = { ...manifest }
  delete clean.signature
  const message = mode === 'sorted' ? stableStringify(clean) : JSON.stringify(clean)
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(manifest.publicKey, 'hex').toString('base64url') },
    format: 'jwk'
  })
  if (!verify(null, Buffer.from(message, 'utf8'), key, Buffer.from(manifest.signature, 'hex'))) {
    throw new Error('signature does not verify')
  }
}

const args = process.argv.slice(2)
const mode = args.includes('--sorted') ? 'sorted' : args.includes('--received') ? 'received' : null
const files = args.filter((a) => !a.startsWith('--'))
if (!mode || files.length === 0) {
  console.error('usage: verify_manifest.mjs --sorted|--received FILE...')
  process.exit(2)
}
let failed = false
for (const file of files) {
  try {
    check(readFileSync(file, 'utf8'), mode)
    console.log('valid')
  } catch (e) {
    failed = true
    console.log('invalid: ' + e.message)
  }
}
process.exit(failed ? 1 : 0)
