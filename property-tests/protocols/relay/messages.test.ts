/**
 * Circuit relay v2's codecs (relay/circuit-v2.md §Protobuf, §Reservation Vouchers): every hop
 * and stop message round-trips, a sealed voucher opens to what was sealed, decoding arbitrary
 * bytes never throws (a failure is a `ProtobufError` or a `VoucherError`), and the splice's limit
 * conversion keeps seconds and bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Circuit from "../../../src/protocols/relay/circuit.ts"
import * as Messages from "../../../src/protocols/relay/messages.ts"
import * as Voucher from "../../../src/protocols/relay/Voucher.ts"

const bytes = fc.uint8Array({ maxLength: 40 })
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
const opt = <A>(key: string, arb: fc.Arbitrary<A>) =>
  fc.option(arb, { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }))
const status = fc.constantFrom(...Object.values(Messages.Status))

const peer: fc.Arbitrary<Messages.Peer> = fc.tuple(opt("id", bytes), fc.array(bytes, { maxLength: 3 }))
  .map(([id, addrs]) => ({ ...id, addrs }))
const limit: fc.Arbitrary<Messages.Limit> = fc.tuple(opt("duration", fc.nat({ max: 0xffffffff })), opt("data", u64))
  .map(([d, b]) => ({ ...d, ...b }))
const reservation: fc.Arbitrary<Messages.Reservation> = fc
  .tuple(opt("expire", u64), fc.array(bytes, { maxLength: 3 }), opt("voucher", bytes))
  .map(([e, addrs, v]) => ({ ...e, addrs, ...v }))

const hop: fc.Arbitrary<Messages.HopMessage> = fc
  .tuple(
    opt("type", fc.constantFrom(0, 1, 2)),
    opt("peer", peer),
    opt("reservation", reservation),
    opt("limit", limit),
    opt("status", status)
  )
  .map((parts) => Object.assign({}, ...parts))
const stop: fc.Arbitrary<Messages.StopMessage> = fc
  .tuple(opt("type", fc.constantFrom(0, 1)), opt("peer", peer), opt("limit", limit), opt("status", status))
  .map((parts) => Object.assign({}, ...parts))

const seeded = (n: number) => Result.getOrThrow(Keys.ed25519FromSeed(new Uint8Array(32).fill(n)))

describe("circuit relay v2 codecs", () => {
  it("property: every HopMessage and StopMessage round-trips through encode/decode", () => {
    fc.assert(
      fc.property(hop, stop, (h, s) => {
        expect(Result.getOrThrow(Messages.HopMessage.decode(Messages.HopMessage.encode(h)))).toEqual(h)
        expect(Result.getOrThrow(Messages.StopMessage.decode(Messages.StopMessage.encode(s)))).toEqual(s)
      }),
      { numRuns: 300 }
    )
  })

  it("property: decoding arbitrary bytes never throws", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        for (const r of [Messages.HopMessage.decode(b), Messages.StopMessage.decode(b)]) {
          expect(Result.isSuccess(r) || r.failure._tag === "ProtobufError").toBe(true)
        }
        const v = Voucher.open(b)
        expect(Result.isFailure(v) && v.failure._tag).toBe("VoucherError")
      }),
      { numRuns: 1000 }
    )
  })

  it("property: a sealed voucher opens to what was sealed", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 200 }), u64, (r, p, expiration) => {
        const key = seeded(r)
        const voucher = {
          relay: PeerId.fromPublicKey(key.publicKey),
          peer: PeerId.fromPublicKey(seeded(p).publicKey),
          expiration
        }
        const opened = Result.getOrThrow(Voucher.open(Result.getOrThrow(Voucher.seal(key, voucher))))
        expect(PeerId.equals(opened.relay, voucher.relay) && PeerId.equals(opened.peer, voucher.peer)).toBe(true)
        expect(opened.expiration).toBe(expiration)
      }),
      { numRuns: 50 }
    )
  })

  it("property: limits survive the wire: whole seconds up, bytes exact, 0 is no limit", () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000_000 }), u64, (ms, data) => {
        const wire = Circuit.toWire({ durationMs: ms, data })
        if (ms === 0 && data === 0n) return expect(wire).toBeUndefined()
        const back = Circuit.fromWire(wire)!
        if (ms > 0) expect(back.durationMs).toBe(Math.ceil(ms / 1000) * 1000)
        else expect(back.durationMs).toBeUndefined()
        expect(back.data).toBe(data > 0n ? data : undefined)
      }),
      { numRuns: 500 }
    )
  })
})
