/**
 * Properties of noise-libp2p (https://github.com/libp2p/specs/blob/master/noise/README.md):
 * - §Wire Format / §Encryption and I/O: the secured Duplex is a faithful byte
 *   stream: for arbitrary batches of writes and arbitrary re-chunking of the
 *   wire, in both directions at once, what one side writes the other reads
 *   identically (message boundaries are not preserved, bytes and order are);
 * - Noise Protocol Framework §5.1 / RFC 8439 AEAD: any single bit flip on the
 *   wire in the transport phase is detected (a Decrypt failure, or Closed when
 *   the flip lengthened a frame past the end of the stream), and no plaintext
 *   from the altered message or after it is ever delivered.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Result } from "effect"
import fc from "fast-check"
import { handshake, identity, parseFrames, rechunkedPair } from "../../spec-tests/support/security.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as SecureDuplex from "../../src/security/noise/SecureDuplex.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"

const run = <A, E>(eff: Effect.Effect<A, E, import("effect").Scope.Scope>) => Effect.runPromise(Effect.scoped(eff))

/** Deterministic pseudo-random bytes (cheap to generate large buffers in properties). */
const bytesOf = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n)
  let x = seed | 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** A chunk: small arbitrary bytes, or a large buffer (crossing the 65519-byte message limit). */
const chunkArb = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1000, max: 140_000 }), fc.nat()).map(([n, s]) => bytesOf(n, s)) }
)
const batchesArb = fc.array(fc.array(chunkArb, { maxLength: 6 }), { maxLength: 6 })
const sizesArb = fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 8 })

/** Both sides of a local XX handshake (no network needed), ready to split. */
const completedHandshake = () => {
  const init = HandshakeState.make({ initiator: true, staticKeyPair: X25519.generate() })
  const resp = HandshakeState.make({ initiator: false, staticKeyPair: X25519.generate() })
  const empty = new Uint8Array(0)
  Result.getOrThrow(resp.readMessage(Result.getOrThrow(init.writeMessage(empty))))
  Result.getOrThrow(init.readMessage(Result.getOrThrow(resp.writeMessage(empty))))
  Result.getOrThrow(resp.readMessage(Result.getOrThrow(init.writeMessage(empty))))
  return [init, resp] as const
}

const readAll = (d: Duplex.Duplex) => Duplex.readAll(d, 1 << 30)

describe("noise-libp2p properties", () => {
  it(
    "§Encryption and I/O: arbitrary batches and arbitrary wire re-chunking deliver identical bytes both ways",
    async () => {
      const ik = await Effect.runPromise(identity("Ed25519"))
      const rk = await Effect.runPromise(identity("Secp256k1"))
      await fc.assert(
        fc.asyncProperty(batchesArb, batchesArb, sizesArb, sizesArb, async (fromA, fromB, cutsAB, cutsBA) => {
          const [gotB, gotA] = await run(Effect.gen(function*() {
            const wire = yield* rechunkedPair(cutsAB, cutsBA)
            const { initiator, responder } = yield* handshake({ initiatorKey: ik, responderKey: rk, wire })
            const writeAll = (d: Duplex.Duplex, batches: ReadonlyArray<ReadonlyArray<Uint8Array>>) =>
              Effect.andThen(Effect.forEach(batches, (b) => d.write(b), { discard: true }), d.closeWrite)
            const [, , b, a] = yield* Effect.all([
              writeAll(initiator.duplex, fromA),
              writeAll(responder.duplex, fromB),
              readAll(responder.duplex),
              readAll(initiator.duplex)
            ], { concurrency: "unbounded" })
            return [b, a] as const
          }))
          expect(Buffer.from(gotB).equals(Buffer.from(Duplex.concat(fromA.flat())))).toBe(true)
          expect(Buffer.from(gotA).equals(Buffer.from(Duplex.concat(fromB.flat())))).toBe(true)
        }),
        { numRuns: 60 }
      )
    },
    120_000
  )

  it(
    "RFC 8439 AEAD via Noise §5.1: a single bit flip on the wire is detected, and no altered plaintext is delivered",
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(chunkArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
          fc.nat(),
          fc.integer({ min: 0, max: 7 }),
          sizesArb,
          async (batches, at, bit, cuts) => {
            const [init, resp] = completedHandshake()
            const outcome = await run(Effect.gen(function*() {
              // capture the sender's wire bytes
              const wire: Array<Uint8Array> = []
              const capture: Duplex.Duplex = {
                read: Effect.succeed(Duplex.EOF),
                write: (chunks) => Effect.sync(() => void wire.push(...chunks.map((c) => Uint8Array.from(c)))),
                closeWrite: Effect.void,
                reset: Effect.void
              }
              const sender = SecureDuplex.make(capture, Result.getOrThrow(init.split()), [])
              const frameStarts: Array<number> = []
              for (const batch of batches) yield* sender.write(batch)
              const bytes = Duplex.concat(wire)
              for (const f of parseFrames(bytes)) frameStarts.push(f.start)
              if (bytes.byteLength === 0) return undefined // only empty chunks were written: nothing to flip
              const flipAt = at % bytes.byteLength
              const tampered = Uint8Array.from(bytes)
              tampered[flipAt]! ^= 1 << bit
              // the frame hit and whether the flip was in its 2-byte length
              let hit = 0
              while (hit + 1 < frameStarts.length && frameStarts[hit + 1]! <= flipAt) hit++
              const inLength = flipAt - frameStarts[hit]! < 2
              // deliver the tampered wire, re-chunked, then EOF
              const [rawA, rawB] = yield* Duplex.pair()
              const pieces: Array<Uint8Array> = []
              for (let i = 0, k = 0; i < tampered.byteLength; k++) {
                const n = cuts[k % cuts.length]!
                pieces.push(tampered.subarray(i, i + n))
                i += n
              }
              const receiver = SecureDuplex.make(rawB, Result.getOrThrow(resp.split()), [])
              yield* Effect.forkScoped(Effect.andThen(rawA.write(pieces), rawA.closeWrite))
              const delivered: Array<Uint8Array> = []
              const exit = yield* Effect.exit(Effect.gen(function*() {
                while (true) {
                  const got = yield* receiver.read
                  if (got.length === 0) return
                  delivered.push(...got)
                }
              }))
              // plaintext of the frames before the hit one
              let plainBefore = 0
              for (let i = 0; i < hit; i++) {
                const len = (bytes[frameStarts[i]!]! << 8) | bytes[frameStarts[i]! + 1]!
                plainBefore += len - 16
              }
              return { exit, delivered: Duplex.concat(delivered), plainBefore, inLength }
            }))
            if (outcome === undefined) return
            const all = Duplex.concat(batches.flat())
            expect(Exit.isFailure(outcome.exit)).toBe(true)
            const message = JSON.stringify(outcome.exit)
            if (outcome.inLength) expect(message).toMatch(/noise (Decrypt|Closed):/)
            else expect(message).toMatch(/noise Decrypt:/)
            // exactly the untouched messages before the altered one, never anything else
            expect(outcome.delivered.byteLength).toBe(outcome.plainBefore)
            expect(Buffer.from(outcome.delivered).equals(Buffer.from(all.subarray(0, outcome.plainBefore)))).toBe(true)
          }
        ),
        { numRuns: 200 }
      )
    },
    120_000
  )

  it("§Wire Format: every frame written is ≤ 65535 bytes and one write makes one raw write", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(chunkArb, { maxLength: 8 }), async (batch) => {
        const [init] = completedHandshake()
        const writes: Array<Duplex.Chunks> = []
        const capture: Duplex.Duplex = {
          read: Effect.succeed(Duplex.EOF),
          write: (chunks) => Effect.sync(() => void writes.push(chunks)),
          closeWrite: Effect.void,
          reset: Effect.void
        }
        const sender = SecureDuplex.make(capture, Result.getOrThrow(init.split()), [])
        await Effect.runPromise(sender.write(batch))
        const total = Duplex.byteLength(batch)
        expect(writes.length).toBe(total === 0 ? 0 : 1)
        const frames = parseFrames(Duplex.concat(writes.flat()))
        expect(frames.length).toBe(Math.ceil(total / SecureDuplex.MAX_PLAINTEXT_LEN))
        let plain = 0
        for (const f of frames) {
          expect(f.length).toBeLessThanOrEqual(65535)
          expect(f.length).toBeGreaterThanOrEqual(17) // never an empty message
          plain += f.length - 16
        }
        expect(plain).toBe(total)
      }),
      { numRuns: 100 }
    )
  })
})
