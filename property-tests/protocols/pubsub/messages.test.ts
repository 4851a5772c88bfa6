/**
 * The pubsub RPC codec (messages.ts): every RPC round-trips, and decoding arbitrary bytes
 * never throws (a failure is a `ProtobufError`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Messages from "../../../src/protocols/pubsub/messages.ts"

const bytes = fc.uint8Array({ maxLength: 40 })
const ids = fc.array(bytes, { maxLength: 4 })
const topic = fc.string({ maxLength: 12 })
const opt = <A>(key: string, arb: fc.Arbitrary<A>) =>
  fc.option(arb, { nil: undefined }).map((v) => (v === undefined ? {} : { [key]: v }))

const message: fc.Arbitrary<Messages.Message> = fc
  .tuple(
    opt("from", bytes),
    opt("data", bytes),
    opt("seqno", bytes),
    opt("topic", topic),
    opt("signature", bytes),
    opt("key", bytes)
  )
  .map((parts) => Object.assign({}, ...parts))

const control: fc.Arbitrary<Messages.ControlMessage> = fc.record({
  ihave: fc.array(fc.tuple(opt("topicID", topic), ids).map(([t, m]) => ({ ...t, messageIDs: m })), { maxLength: 3 }),
  iwant: fc.array(ids.map((m) => ({ messageIDs: m })), { maxLength: 3 }),
  graft: fc.array(opt("topicID", topic), { maxLength: 3 }),
  prune: fc.array(
    fc.tuple(
      opt("topicID", topic),
      fc.array(fc.tuple(opt("peerID", bytes), opt("signedPeerRecord", bytes)).map(([a, b]) => ({ ...a, ...b })), {
        maxLength: 2
      }),
      opt("backoff", fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }))
    ).map(([t, peers, b]) => ({ ...t, peers, ...b })),
    { maxLength: 3 }
  ),
  idontwant: fc.array(ids.map((m) => ({ messageIDs: m })), { maxLength: 3 })
})

const rpc: fc.Arbitrary<Messages.RPC> = fc
  .tuple(
    fc.array(fc.tuple(opt("subscribe", fc.boolean()), opt("topicid", topic)).map(([a, b]) => ({ ...a, ...b })), {
      maxLength: 4
    }),
    fc.array(message, { maxLength: 3 }),
    opt("control", control)
  )
  .map(([subscriptions, publish, c]) => ({ subscriptions, publish, ...c }))

describe("pubsub RPC codec", () => {
  it("property: every RPC round-trips through encode/decode", () => {
    fc.assert(
      fc.property(rpc, (value) => {
        const decoded = Messages.RPC.decode(Messages.RPC.encode(value))
        expect(Result.isSuccess(decoded)).toBe(true)
        expect(Result.getOrThrow(decoded)).toEqual(value)
      }),
      { numRuns: 300 }
    )
  })

  it("property: decoding arbitrary bytes never throws", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const r = Messages.RPC.decode(b)
        expect(Result.isSuccess(r) || r.failure._tag === "ProtobufError").toBe(true)
      }),
      { numRuns: 1000 }
    )
  })
})
