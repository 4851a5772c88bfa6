/**
 * Helpers for the TLS tests: crafted certificates (good and bad), a plain
 * node:tls endpoint of our choosing on one end of an in-memory pair (to play a
 * misbehaving peer), a Duplex that counts resets and records writes, and a
 * ClientHello parser.
 */
import type { Scope } from "effect"
import { Effect, FiberSet } from "effect"
import * as crypto from "node:crypto"
import * as NodeTls from "node:tls"
import type * as Duplex from "../../src/core/Duplex.ts"
import type * as Keys from "../../src/core/Keys.ts"
import * as Certificate from "../../src/security/tls/Certificate.ts"
import * as NodeStream from "../../src/security/tls/NodeStream.ts"
import { ok } from "./result.ts"

export const HOUR = 60 * 60 * 1000

export interface CertKey {
  readonly privateKey: crypto.KeyObject
  readonly publicKey: crypto.KeyObject
}

export const p256 = (): CertKey => crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" })

export interface Crafted {
  readonly der: Uint8Array
  readonly pem: string
  readonly keyPem: string
}

/**
 * A self-signed certificate for a fresh (or given) key. `extensions` receives
 * the key's SubjectPublicKeyInfo and returns the extensions to put in.
 */
export const craft = (options: {
  readonly key?: CertKey
  readonly notBefore?: number
  readonly notAfter?: number
  readonly hash?: "sha256" | "sha384" | "sha512"
  readonly extensions: (spki: Uint8Array) => ReadonlyArray<Certificate.Extension>
  readonly tbsExtra?: ReadonlyArray<Uint8Array>
  readonly serial?: Uint8Array
}): Crafted => {
  const key = options.key ?? p256()
  const der = ok(Certificate.build({
    privateKey: key.privateKey,
    publicKey: key.publicKey,
    notBefore: options.notBefore ?? Date.now() - HOUR,
    notAfter: options.notAfter ?? Date.now() + 24 * HOUR,
    extensions: options.extensions(Certificate.spkiOf(key.publicKey)),
    ...(options.hash !== undefined ? { hash: options.hash } : {}),
    ...(options.tbsExtra !== undefined ? { tbsExtra: options.tbsExtra } : {}),
    ...(options.serial !== undefined ? { serial: options.serial } : {})
  }))
  return {
    der,
    pem: Certificate.toPem(der),
    keyPem: key.privateKey.export({ type: "pkcs8", format: "pem" }).toString()
  }
}

/** The libp2p extension of `identity` over `spki`. */
export const libp2pExt = (identity: Keys.PrivateKey, spki: Uint8Array, critical = true): Certificate.Extension =>
  ok(Certificate.libp2pExtension(identity, spki, critical))

/** A Duplex that counts `reset` calls and records every written batch. */
export const watch = (raw: Duplex.Duplex) => {
  const state = { resets: 0, writes: [] as Array<Uint8Array> }
  const duplex: Duplex.Duplex = {
    ...raw,
    write: (chunks) =>
      Effect.suspend(() => {
        for (const c of chunks) state.writes.push(Uint8Array.from(c))
        return raw.write(chunks)
      }),
    reset: Effect.suspend(() => {
      state.resets++
      return raw.reset
    })
  }
  return { duplex, state }
}

export interface NodePeerOptions {
  readonly isServer: boolean
  readonly cert?: string
  readonly key?: string
  readonly alpn?: ReadonlyArray<string>
  readonly maxVersion?: NodeTls.SecureVersion
  readonly minVersion?: NodeTls.SecureVersion
  /** A client's saved session to offer for resumption. */
  readonly session?: Buffer
  /** Key exchange groups (node:tls `ecdhCurve`), e.g. to force a HelloRetryRequest. */
  readonly ecdhCurve?: string
  /** A client's Server Name Indication (libp2p clients send none; a server must ignore it). */
  readonly servername?: string
}

export interface NodePeer {
  readonly socket: NodeTls.TLSSocket
  /** Resolves when node:tls reports the handshake done, fails with its error. */
  readonly secure: Effect.Effect<void, Error>
  readonly errors: Array<Error>
}

/** A plain node:tls endpoint (no libp2p checks of its own) over `raw`. */
export const nodePeer = (raw: Duplex.Duplex, options: NodePeerOptions): Effect.Effect<NodePeer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runFork = yield* FiberSet.makeRuntime<never>()
    const stream = NodeStream.make(raw, runFork)
    const common = {
      ...(options.cert !== undefined ? { cert: options.cert } : {}),
      ...(options.key !== undefined ? { key: options.key } : {}),
      minVersion: options.minVersion ?? ("TLSv1.3" as const),
      maxVersion: options.maxVersion ?? ("TLSv1.3" as const),
      rejectUnauthorized: false,
      ...(options.ecdhCurve !== undefined ? { ecdhCurve: options.ecdhCurve } : {})
    }
    const socket = options.isServer
      ? new NodeTls.TLSSocket(stream, {
        isServer: true,
        requestCert: true,
        ...common,
        ...(options.alpn !== undefined ? { ALPNProtocols: [...options.alpn] } : {})
      })
      : NodeTls.connect({
        socket: stream,
        ...common,
        ...(options.alpn !== undefined ? { ALPNProtocols: [...options.alpn] } : {}),
        ...(options.session !== undefined ? { session: options.session } : {}),
        ...(options.servername !== undefined ? { servername: options.servername } : {})
      })
    const errors: Array<Error> = []
    socket.on("error", (e) => errors.push(e))
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    const secure = Effect.callback<void, Error>((resume) => {
      const done = () => resume(Effect.void)
      const failed = (e: Error) => resume(Effect.fail(e))
      socket.once(options.isServer ? "secure" : "secureConnect", done)
      socket.once("error", failed)
      return Effect.sync(() => {
        socket.off(options.isServer ? "secure" : "secureConnect", done)
        socket.off("error", failed)
      })
    })
    return { socket, secure, errors }
  })

/** The extensions of a TLS ClientHello record (type → body), from the first bytes a client writes. */
export const clientHelloExtensions = (bytes: Uint8Array): Map<number, Uint8Array> => {
  const b = Buffer.from(bytes)
  if (b[0] !== 22 || b[5] !== 1) throw new Error("not a ClientHello record")
  let p = 5 + 4 + 2 + 32 // record header, handshake header, legacy_version, random
  p += 1 + b[p]! // legacy_session_id
  p += 2 + b.readUInt16BE(p) // cipher_suites
  p += 1 + b[p]! // legacy_compression_methods
  const end = p + 2 + b.readUInt16BE(p)
  p += 2
  const out = new Map<number, Uint8Array>()
  while (p < end) {
    const type = b.readUInt16BE(p)
    const len = b.readUInt16BE(p + 2)
    out.set(type, b.subarray(p + 4, p + 4 + len))
    p += 4 + len
  }
  return out
}

/** The protocol names of an ALPN extension body (RFC 7301 §3.1). */
export const alpnNames = (body: Uint8Array): Array<string> => {
  const b = Buffer.from(body)
  const names: Array<string> = []
  let p = 2
  while (p < 2 + b.readUInt16BE(0)) {
    const n = b[p]!
    names.push(b.subarray(p + 1, p + 1 + n).toString("latin1"))
    p += 1 + n
  }
  return names
}
