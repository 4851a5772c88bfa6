/**
 * Properties of multistream-select 1.0 (multiformats/multistream-select README §Protocol,
 * §Listing; libp2p/specs connections/README.md §Protocol Negotiation):
 * - negotiation agrees: the protocol chosen is the initiator's first proposal that the
 *   responder supports, on both sides; when there is none, the initiator fails with
 *   `UnsupportedProtocol` (listing its proposals) and the responder sees the stream end;
 * - this holds under any chunking of the byte stream in both directions (messages are
 *   length-prefixed, so packet boundaries carry no meaning);
 * - application bytes sent around the negotiation (pipelined behind the proposal, or right
 *   behind the echo) are delivered exactly once and in order, never lost or duplicated;
 * - arbitrary input ends in a typed failure, never a defect or a hang;
 * - the message and `ls` codecs round-trip.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Result, Scope } from "effect"
import fc from "fast-check"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"

/** A Duplex whose writes are re-cut into pieces of the given sizes (cycled), one write per piece. */
const rechunked = (d: Duplex.Duplex, sizes: ReadonlyArray<number>): Duplex.Duplex => {
  let i = 0
  return {
    ...d,
    write: (chunks) =>
      Effect.gen(function*() {
        const all = Duplex.concat(chunks)
        let at = 0
        while (at < all.length) {
          const n = sizes[i++ % sizes.length]!
          yield* d.write([all.slice(at, at + n)])
          at += n
        }
      })
  }
}

const writeThenClose = (d: Duplex.Duplex, bytes: Uint8Array) =>
  Effect.andThen(bytes.length > 0 ? d.write([bytes]) : Effect.void, d.closeWrite)

const run = <A, E>(eff: Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(eff).pipe(Effect.timeout("10 seconds")))

const protocolId = fc.oneof(
  fc.constantFrom("/noise", "/tls/1.0.0", "/yamux/1.0.0", "/mplex/6.7.0", "/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"),
  fc.string({ minLength: 1, maxLength: 40, unit: "grapheme" }).map((s) => `/${s.replace(/\n/g, "")}`)
)
const protocolList = (min: number) => fc.uniqueArray(protocolId, { minLength: min, maxLength: 5 })
const cuts = fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 10 })
const payload = fc.uint8Array({ maxLength: 200 })

const bytesOf = (u: Uint8Array) => Array.from(u)
const reasonOf = (exit: Exit.Exit<unknown, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const f = exit.cause.reasons.find(Cause.isFailReason)
  if (f === undefined) return `defect: ${String(exit.cause)}`
  const e = f.error as { readonly _tag: string; readonly reason?: string }
  return `${e._tag}:${e.reason}`
}

describe("multistream-select properties", () => {
  it("negotiation agrees on the initiator's first protocol the responder supports, or fails UnsupportedProtocol / EOF, under arbitrary chunking; app bytes arrive exactly once", async () => {
    await fc.assert(
      fc.asyncProperty(
        protocolList(1),
        protocolList(0),
        fc.boolean(),
        cuts,
        cuts,
        payload,
        payload,
        async (dialerList, listenerBase, share, cutsA, cutsB, appD, appL) => {
          // half the runs share at least one protocol
          const listenerList = share && !listenerBase.includes(dialerList[dialerList.length - 1]!)
            ? [...listenerBase, dialerList[dialerList.length - 1]!]
            : listenerBase
          const expected = dialerList.find((p) => listenerList.includes(p))
          const result = await run(Effect.gen(function*() {
            const [a, b] = yield* Duplex.pair({ capacity: 4096 })
            const dialer = Effect.gen(function*() {
              const n = yield* Multistream.select(rechunked(a, cutsA), dialerList)
              const [, got] = yield* Effect.all([
                writeThenClose(n.duplex, appD),
                Duplex.readAll(n.duplex, 1 << 20)
              ], { concurrency: 2 })
              return { protocol: n.protocol, got }
            }).pipe(Effect.ensuring(a.closeWrite))
            const listener = Effect.gen(function*() {
              const n = yield* Multistream.handle(rechunked(b, cutsB), listenerList)
              // written right behind the echo: the initiator's reader may already hold it
              const [, got] = yield* Effect.all([
                writeThenClose(n.duplex, appL),
                Duplex.readAll(n.duplex, 1 << 20)
              ], { concurrency: 2 })
              return { protocol: n.protocol, got }
            })
            return yield* Effect.all([Effect.exit(dialer), Effect.exit(listener)], { concurrency: 2 })
          }))
          const [d, l] = result
          if (expected !== undefined) {
            expect(reasonOf(d)).toBeUndefined()
            expect(reasonOf(l)).toBeUndefined()
            if (Exit.isSuccess(d) && Exit.isSuccess(l)) {
              expect(d.value.protocol).toBe(expected)
              expect(l.value.protocol).toBe(expected)
              expect(bytesOf(l.value.got)).toEqual(bytesOf(appD))
              expect(bytesOf(d.value.got)).toEqual(bytesOf(appL))
            }
          } else {
            expect(reasonOf(d)).toBe("MultistreamError:UnsupportedProtocol")
            if (Exit.isFailure(d)) {
              const e = d.cause.reasons.find(Cause.isFailReason)!.error as Multistream.MultistreamError
              expect(e.protocols).toEqual(dialerList)
            }
            expect(reasonOf(l)).toBe("MultistreamError:UnexpectedEOF")
          }
        }
      ),
      { numRuns: 200 }
    )
  })

  it("lazy select: bytes pipelined behind the proposal reach the responder exactly once; refusal fails the first read", async () => {
    await fc.assert(
      fc.asyncProperty(
        protocolId,
        protocolList(0),
        fc.boolean(),
        cuts,
        cuts,
        payload,
        payload,
        async (proto, listenerBase, share, cutsA, cutsB, appD, appL) => {
          const listenerList = share && !listenerBase.includes(proto) ? [proto, ...listenerBase] : listenerBase
          const accepted = listenerList.includes(proto)
          const [d, l] = await run(Effect.gen(function*() {
            const [a, b] = yield* Duplex.pair({ capacity: 4096 })
            const dialer = Effect.gen(function*() {
              const lazy = Multistream.lazySelect(rechunked(a, cutsA), proto)
              const readAll = Effect.gen(function*() {
                const got: Array<number> = []
                while (true) {
                  const batch = yield* lazy.read
                  if (batch.length === 0) return got
                  for (const c of batch) got.push(...c)
                }
              })
              const write = Effect.andThen(appD.length > 0 ? lazy.write([appD]) : Effect.void, lazy.closeWrite)
              const [, got] = yield* Effect.all([write, readAll], { concurrency: 2 })
              return got
            }).pipe(Effect.ensuring(a.closeWrite))
            const listener = Effect.gen(function*() {
              const n = yield* Multistream.handle(rechunked(b, cutsB), listenerList)
              const [, got] = yield* Effect.all([
                writeThenClose(n.duplex, appL),
                Duplex.readAll(n.duplex, 1 << 20)
              ], { concurrency: 2 })
              return { protocol: n.protocol, got }
            })
            return yield* Effect.all([Effect.exit(dialer), Effect.exit(listener)], { concurrency: 2 })
          }))
          if (accepted) {
            expect(reasonOf(d)).toBeUndefined()
            expect(reasonOf(l)).toBeUndefined()
            if (Exit.isSuccess(d) && Exit.isSuccess(l)) {
              expect(l.value.protocol).toBe(proto)
              expect(bytesOf(l.value.got)).toEqual(bytesOf(appD))
              expect(d.value).toEqual(bytesOf(appL))
            }
          } else {
            expect(reasonOf(d)).toBe("MultistreamError:UnsupportedProtocol")
            // the responder took the pipelined bytes for further proposals: any typed outcome, never a defect
            expect(reasonOf(l) ?? "").not.toMatch(/^defect/)
          }
        }
      ),
      { numRuns: 200 }
    )
  })

  it("arbitrary bytes from the remote end in a typed outcome on both roles (never a defect or a hang)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 80 }),
          fc.uint8Array({ maxLength: 60 }).map((tail) => Duplex.concat([Multistream.HEADER_FRAME, tail]))
        ),
        fc.constantFrom("handle", "select", "lazy", "list"),
        async (bytes, role) => {
          const exit = await run(Effect.exit(Effect.gen(function*() {
            const [a, b] = yield* Duplex.pair()
            yield* a.write([bytes])
            yield* a.closeWrite
            switch (role) {
              case "handle":
                return yield* Multistream.handle(b, ["/x"])
              case "select":
                return yield* Multistream.select(b, ["/x"])
              case "lazy":
                return yield* Multistream.lazySelect(b, "/x").read
              case "list":
                return yield* Multistream.list(b)
            }
          })))
          const r = reasonOf(exit)
          if (r !== undefined) expect(r).toMatch(/^MultistreamError:/)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("message codec round-trips every valid protocol id; decode rejects bodies without the newline", () => {
    fc.assert(fc.property(protocolId, (id) => {
      const f = Result.getOrThrow(Multistream.encodeMessage(id))
      const n = f[0]! < 0x80 ? 1 : 2
      expect(Result.getOrThrow(Multistream.decodeMessage(f.subarray(n)))).toBe(id)
      expect(Result.isFailure(Multistream.decodeMessage(f.subarray(n, -1)))).toBe(true)
    }))
  })

  it("ls codec round-trips any list of valid ids", () => {
    fc.assert(fc.property(fc.uniqueArray(protocolId, { maxLength: 20 }), (ids) => {
      const f = Result.getOrThrow(Multistream.encodeList(ids))
      const { bytes, value } = Result.getOrThrow(Varint.decode(f))
      expect(bytes + value).toBe(f.length)
      expect(Result.getOrThrow(Multistream.decodeList(f.subarray(bytes)))).toEqual(ids)
    }))
  })
})
