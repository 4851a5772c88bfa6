/**
 * The router-agnostic core (libp2p specs pubsub/README.md): signing policies, message
 * ids, the seen-cache and the validation pipeline, over floodsub on the memory transport.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result, Stream } from "effect"
import fc from "fast-check"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Floodsub from "../../../src/protocols/pubsub/floodsub/Floodsub.ts"
import * as Messages from "../../../src/protocols/pubsub/messages.ts"
import * as Pubsub from "../../../src/protocols/pubsub/Pubsub.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { decode, pubsubNode, text, waitFor } from "../../support/pubsub.ts"

/** a - b - c in a line, all floodsub with `options`, b and c subscribed to "t". */
const line = (options: Pubsub.PubsubOptions = {}) =>
  Effect.gen(function*() {
    const a = yield* pubsubNode(Floodsub.layer(options))
    const b = yield* pubsubNode(Floodsub.layer(options))
    const c = yield* pubsubNode(Floodsub.layer(options))
    const subB = yield* b.pubsub.subscribe("t")
    const subC = yield* c.pubsub.subscribe("t")
    yield* a.host.dial(b.addr)
    yield* c.host.dial(b.addr)
    yield* waitFor(() => a.pubsub.peers("t").length === 1 && b.pubsub.peers("t").length === 1)
    return { a, b, c, subB, subC }
  })

const collect = (sub: Stream.Stream<Pubsub.PubsubMessage>, into: Array<string>) =>
  Effect.forkChild(Stream.runForEach(sub, (m) => Effect.sync(() => into.push(decode(m.data)))))

/** A `bytes` field: short, or long enough for a two- or three-byte length varint. */
const bytesField = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.integer({ min: 127, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff))
)

describe("pubsub core", () => {
  it("pubsub §The Message, property: `encodedLength` is the length of the message's protobuf encoding, for every combination of fields, multi-byte topics and long data, sent or decoded", () => {
    fc.assert(
      fc.property(
        fc.record(
          {
            from: bytesField,
            data: bytesField,
            seqno: bytesField,
            topic: fc.string({ unit: "grapheme", maxLength: 40 }),
            signature: bytesField,
            key: bytesField
          },
          { requiredKeys: [] }
        ),
        (msg: Messages.Message) => {
          const bytes = Messages.Message.encode(msg)
          expect(Messages.encodedLength(msg)).toBe(bytes.byteLength)
          const decoded = Result.getOrThrow(Messages.Message.decode(bytes))
          expect(Messages.encodedLength(decoded)).toBe(Messages.Message.encode(decoded).byteLength)
        }
      ),
      { seed: 20261208, numRuns: 300 }
    )
  })

  it.effect("pubsub §Message Signing: the signature covers 'libp2p-pubsub:' ++ the message without signature and key", () =>
    Effect.gen(function*() {
      const key = yield* Keys.generate("Ed25519")
      const from = PeerId.toBytes(PeerId.fromPrivateKey(key))
      const body: Messages.Message = { from, data: text("d"), seqno: new Uint8Array(8), topic: "t" }
      const signed = Result.getOrThrow(Pubsub.signMessage(key, body))
      const expected = new Uint8Array([...new TextEncoder().encode("libp2p-pubsub:"), ...Messages.Message.encode(body)])
      expect(key.publicKey.verify(expected, signed.signature!)).toBe(true)
      // an Ed25519 key is inlined in the peer id: no `key` field
      expect(signed.key).toBeUndefined()
      expect(Result.isSuccess(Pubsub.checkMessage("StrictSign", signed))).toBe(true)
      // a message that is fine under StrictSign is invalid under StrictNoSign, and the reverse
      expect(Result.isFailure(Pubsub.checkMessage("StrictNoSign", signed))).toBe(true)
      expect(Result.isFailure(Pubsub.checkMessage("StrictSign", { topic: "t", data: text("d") }))).toBe(true)
      expect(Result.isSuccess(Pubsub.checkMessage("StrictNoSign", { topic: "t", data: text("d") }))).toBe(true)
    }))

  it.effect(
    "pubsub §Message Signing: an author whose key is not inlined in its peer id (ECDSA) carries it in `key`, and it must be the author's [pubsub:message-signing:1]",
    () =>
      Effect.gen(function*() {
        const key = yield* Keys.generate("ECDSA")
        const other = yield* Keys.generate("ECDSA")
        const from = PeerId.toBytes(PeerId.fromPrivateKey(key))
        const signed = Result.getOrThrow(
          Pubsub.signMessage(key, { from, data: text("d"), seqno: new Uint8Array(8), topic: "t" })
        )
        expect(signed.key).toBeDefined()
        expect(Result.isSuccess(Pubsub.checkMessage("StrictSign", signed))).toBe(true)
        const swapped = { ...signed, key: Keys.marshalPublicKey(other.publicKey) }
        const r = Pubsub.checkMessage("StrictSign", swapped)
        expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidSignature")
      }),
    30_000
  )

  it.live(
    "pubsub §The Message: no two messages from one publisher carry the same seqno [pubsub:the-message:1]",
    () =>
      Effect.gen(function*() {
        const { a, subB } = yield* line()
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(subB, 40)))
        for (let i = 0; i < 40; i++) yield* a.pubsub.publish("t", text(`m${i}`))
        const seqnos = (yield* Fiber.join(got)).map((m) => m.seqno)
        expect(seqnos.every((q) => q !== undefined)).toBe(true)
        expect(new Set(seqnos).size).toBe(40)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §Message Signing (StrictNoSign): messages carry no from/seqno/signature/key and flow; ids are SHA-256 of data [pubsub:signature-policy-options:3]",
    () =>
      Effect.gen(function*() {
        const { a, subC } = yield* line({ signaturePolicy: "StrictNoSign" })
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(subC, 1)))
        yield* a.pubsub.publish("t", text("anon"))
        const [m] = yield* Fiber.join(got)
        expect(m!.from).toBeUndefined()
        expect(m!.seqno).toBeUndefined()
        expect(m!.raw.signature).toBeUndefined()
        expect(m!.id).toEqual(Pubsub.defaultMessageId({ data: text("anon") }))
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §The Message (message_id): the seen-cache drops a message with an id already seen; a custom id function decides",
    () =>
      Effect.gen(function*() {
        // every message gets the same id: only the first one is delivered
        const { a, subC } = yield* line({ messageId: () => Uint8Array.of(1) })
        const seen: Array<string> = []
        const f = yield* collect(subC, seen)
        yield* a.pubsub.publish("t", text("first"))
        yield* waitFor(() => seen.length === 1)
        const second = yield* Effect.result(a.pubsub.publish("t", text("second")))
        expect(Result.isFailure(second) && second.failure.reason).toBe("Duplicate") // a saw the id itself
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(f)
        expect(seen).toEqual(["first"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub validation: Accept delivers and forwards, Reject and Ignore neither; a validator past the timeout is Ignore [pubsub:topic-validation:1] [gossipsub-v1.1:extended-validators:1] [gossipsub-v1.1:extended-validators:2] [gossipsub-v1.1:extended-validators:3] [gossipsub-v1.1:extended-validators:4]",
    () =>
      Effect.gen(function*() {
        const { a, b, subB, subC } = yield* line({ validateTimeout: "100 millis" })
        yield* b.pubsub.addValidator("t", (m) => {
          const t = decode(m.data)
          return t.startsWith("reject")
            ? Effect.succeed("Reject")
            : t.startsWith("ignore")
            ? Effect.succeed("Ignore")
            : t.startsWith("slow")
            ? Effect.as(Effect.never, "Accept")
            : Effect.succeed("Accept")
        })
        const atB: Array<string> = []
        const atC: Array<string> = []
        const f1 = yield* collect(subB, atB)
        const f2 = yield* collect(subC, atC)
        for (const t of ["reject me", "ignore me", "slow one", "ok"]) yield* a.pubsub.publish("t", text(t))
        yield* waitFor(() => atB.includes("ok") && atC.includes("ok"))
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(f1)
        yield* Fiber.interrupt(f2)
        expect(atB).toEqual(["ok"])
        expect(atC).toEqual(["ok"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub: closing a subscription's scope unsubscribes; peers learn it (§The RPC SubOpts subscribe=false)",
    () =>
      Effect.gen(function*() {
        const { a, b, c } = yield* line()
        expect(c.pubsub.topics()).toEqual(["t"])
        yield* Effect.scoped(Effect.asVoid(a.pubsub.subscribe("u")))
        expect(a.pubsub.topics()).toEqual([])
        // b keeps its own subscription to t
        expect(b.pubsub.topics()).toEqual(["t"])
        yield* waitFor(() => b.pubsub.peers("u").length === 0)
        const r = yield* Effect.result(a.pubsub.subscribe(""))
        expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidTopic")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )
})
