/**
 * Helpers for the Noise tests: run handshakes over in-memory pairs, record
 * what crosses the wire, rechunk the wire, and play a hand-driven (possibly
 * misbehaving) Noise peer built from the internal HandshakeState.
 */
import { Effect, Result } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Reader from "../../src/core/Reader.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
import type * as SecureChannel from "../../src/security/SecureChannel.ts"

export const keyCache = new Map<Keys.KeyType, Keys.PrivateKey>()

/** One identity key per type, generated once per test file. */
export const identity = (type: Keys.KeyType): Effect.Effect<Keys.PrivateKey, Keys.KeyError> =>
  Effect.suspend(() => {
    const k = keyCache.get(type)
    if (k !== undefined) return Effect.succeed(k)
    return Effect.tap(Keys.generate(type), (key) => Effect.sync(() => keyCache.set(type, key)))
  })

/** A Duplex that records every batch written through it. */
export const spy = (raw: Duplex.Duplex): { readonly duplex: Duplex.Duplex; readonly writes: Array<Duplex.Chunks> } => {
  const writes: Array<Duplex.Chunks> = []
  return {
    writes,
    duplex: {
      ...raw,
      write: (chunks) => Effect.suspend(() => {
        writes.push(chunks.map((c) => Uint8Array.from(c)))
        return raw.write(chunks)
      })
    }
  }
}

/**
 * Two ends connected through a relay that applies `tamper` to every chunk going
 * from the first end to the second; a reset or error on one side resets the other.
 */
export const relayPair = (
  tamper: (chunk: Uint8Array) => Uint8Array
): Effect.Effect<readonly [Duplex.Duplex, Duplex.Duplex], never, import("effect").Scope.Scope> =>
  Effect.gen(function*() {
    const [a, a2] = yield* Duplex.pair()
    const [b2, b] = yield* Duplex.pair()
    const pump = (from: Duplex.Duplex, to: Duplex.Duplex, f: (c: Uint8Array) => Uint8Array) =>
      Effect.gen(function*() {
        while (true) {
          const batch = yield* from.read
          if (batch.length === 0) return yield* to.closeWrite
          yield* to.write(batch.map(f))
        }
      }).pipe(Effect.catch(() => Effect.andThen(from.reset, to.reset)))
    yield* Effect.forkScoped(pump(a2, b2, tamper))
    yield* Effect.forkScoped(pump(b2, a2, (c) => c))
    return [a, b] as const
  })

/** Two ends connected through a pump that re-splits every batch with `split` (sizes cycle). */
export const rechunkedPair = (
  sizesAtoB: ReadonlyArray<number>,
  sizesBtoA: ReadonlyArray<number>
): Effect.Effect<readonly [Duplex.Duplex, Duplex.Duplex], never, import("effect").Scope.Scope> =>
  Effect.gen(function*() {
    const [a, a2] = yield* Duplex.pair()
    const [b2, b] = yield* Duplex.pair()
    const pump = (from: Duplex.Duplex, to: Duplex.Duplex, sizes: ReadonlyArray<number>) =>
      Effect.gen(function*() {
        let k = 0
        while (true) {
          const batch = yield* from.read
          if (batch.length === 0) {
            yield* to.closeWrite
            return
          }
          const all = Duplex.concat(batch)
          const out: Array<Uint8Array> = []
          let at = 0
          while (at < all.byteLength) {
            const n = Math.max(1, sizes[k++ % sizes.length]!)
            out.push(all.slice(at, at + n))
            at += n
          }
          // alternate: the whole re-split batch in one write, or one write per piece
          if (k % 2 === 0) yield* to.write(out)
          else for (const piece of out) yield* to.write([piece])
        }
      }).pipe(Effect.catch(() => Effect.andThen(from.reset, to.reset)))
    yield* Effect.forkScoped(pump(a2, b2, sizesAtoB))
    yield* Effect.forkScoped(pump(b2, a2, sizesBtoA))
    return [a, b] as const
  })

/** Read until `n` bytes arrived (or EOF), concatenated. */
export const readBytes = (duplex: Duplex.Duplex, n: number): Effect.Effect<Uint8Array, Duplex.DuplexError> =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    let got = 0
    while (got < n) {
      const batch = yield* duplex.read
      if (batch.length === 0) break
      for (const c of batch) {
        parts.push(c)
        got += c.byteLength
      }
    }
    return Duplex.concat(parts)
  })

export interface Secured {
  readonly initiator: Noise.NoiseConnection
  readonly responder: Noise.NoiseConnection
}

/** A full handshake between two of our nodes over `wire` (default: Duplex.pair()). */
export const handshake = (options: {
  readonly initiatorKey: Keys.PrivateKey
  readonly responderKey: Keys.PrivateKey
  readonly initiator?: Partial<SecureChannel.SecureOptions>
  readonly responder?: Partial<SecureChannel.SecureOptions>
  readonly wire?: readonly [Duplex.Duplex, Duplex.Duplex]
}) =>
  Effect.gen(function*() {
    const [a, b] = options.wire ?? (yield* Duplex.pair())
    const na = yield* Noise.make()
    const nb = yield* Noise.make()
    const [initiator, responder] = yield* Effect.all([
      na.secureOutbound(a, { localKey: options.initiatorKey, ...options.initiator }),
      nb.secureInbound(b, { localKey: options.responderKey, ...options.responder })
    ], { concurrency: 2 })
    return { initiator, responder } satisfies Secured
  })

const frame = (message: Uint8Array): Uint8Array => {
  const out = new Uint8Array(2 + message.byteLength)
  out[0] = message.byteLength >>> 8
  out[1] = message.byteLength & 0xff
  out.set(message, 2)
  return out
}

/** A hand-driven Noise peer over a raw Duplex (for misbehaviour tests). */
export const manualPeer = (raw: Duplex.Duplex, initiator: boolean, staticKeyPair = X25519.generate()) => {
  const hs = HandshakeState.make({ initiator, staticKeyPair })
  const reader = Reader.make(raw)
  return {
    hs,
    staticKeyPair,
    reader,
    sendRaw: (bytes: Uint8Array) => raw.write([bytes]),
    send: (payload: Uint8Array) =>
      Effect.flatMap(Effect.fromResult(hs.writeMessage(payload)), (m) => raw.write([frame(m)])),
    receive: Effect.gen(function*() {
      const len = yield* reader.readExactly(2)
      const msg = yield* reader.readExactly((len[0]! << 8) | len[1]!)
      return Result.getOrThrow(hs.readMessage(msg))
    }),
    receiveFrame: Effect.gen(function*() {
      const len = yield* reader.readExactly(2)
      return yield* reader.readExactly((len[0]! << 8) | len[1]!)
    })
  }
}

export { frame }

/** Split a transport byte stream into its frames (start offset and message length); fails on a partial frame. */
export const parseFrames = (bytes: Uint8Array): Array<{ readonly start: number; readonly length: number }> => {
  const out: Array<{ readonly start: number; readonly length: number }> = []
  let at = 0
  while (at < bytes.byteLength) {
    if (at + 2 > bytes.byteLength) throw new Error("partial length prefix")
    const length = (bytes[at]! << 8) | bytes[at + 1]!
    if (at + 2 + length > bytes.byteLength) throw new Error("partial frame")
    out.push({ start: at, length })
    at += 2 + length
  }
  return out
}

/** Records the early-negotiated muxer of every connection our channel secures. */
export const spyMuxers = (channel: SecureChannel.SecureChannel) => {
  const muxers: Array<{ readonly direction: "inbound" | "outbound"; readonly muxer: string | undefined }> = []
  const wrapped: SecureChannel.SecureChannel = {
    protocol: channel.protocol,
    secureOutbound: (raw, options) =>
      Effect.tap(
        channel.secureOutbound(raw, options),
        (c) => Effect.sync(() => muxers.push({ direction: "outbound", muxer: c.muxer }))
      ),
    secureInbound: (raw, options) =>
      Effect.tap(
        channel.secureInbound(raw, options),
        (c) => Effect.sync(() => muxers.push({ direction: "inbound", muxer: c.muxer }))
      )
  }
  return { wrapped, muxers }
}
