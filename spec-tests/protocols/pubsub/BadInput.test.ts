/**
 * Bad input to the pubsub core (ARCHITECTURE.md §5: a typed error and a closed stream,
 * bounded memory, never a crash or hang; honest traffic keeps flowing), from an attacker
 * node that speaks /meshsub/1.1.0 by hand over the memory transport.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Result, Stream } from "effect"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as Keys from "../../../src/core/Keys.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Varint from "../../../src/core/Varint.ts"
import * as Gossipsub from "../../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as PeerScore from "../../../src/protocols/pubsub/gossipsub/PeerScore.ts"
import * as Messages from "../../../src/protocols/pubsub/messages.ts"
import * as Pubsub from "../../../src/protocols/pubsub/Pubsub.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { memoryNode } from "../../support/node.ts"
import { decode, pubsubNode, text, waitFor } from "../../support/pubsub.ts"

const PROTO = Gossipsub.PROTOCOL_V11

/**
 * A victim (our gossipsub), an honest publisher connected to it, and an attacker node
 * (no pubsub service, a sink handler for PROTO so the victim's outbound stream opens)
 * with a raw stream to the victim.
 */
const setup = (
  options: Gossipsub.GossipsubOptions = {},
  score: Layer.Layer<PeerScore.PeerScore> = PeerScore.layerZero
) =>
  Effect.gen(function*() {
    const victim = yield* pubsubNode(
      Gossipsub.layerWithScore({ heartbeatInterval: "50 millis", heartbeatInitialDelay: "20 millis", ...options }).pipe(
        Layer.provide(score)
      )
    )
    const honest = yield* pubsubNode(Gossipsub.layer({ heartbeatInterval: "50 millis" }))
    const attacker = yield* memoryNode()
    /** What the victim sends the attacker. */
    const received: Array<Messages.RPC> = []
    yield* attacker.registrar.handle(PROTO, (stream) =>
      Effect.gen(function*() {
        const msgs = LengthPrefixed.messages(stream, { maxLength: Messages.MAX_RPC_SIZE })
        while (true) {
          const bytes = yield* msgs.read
          if (bytes === undefined) return
          received.push(Result.getOrThrow(Messages.RPC.decode(bytes)))
        }
      }))
    const sub = yield* victim.pubsub.subscribe("t")
    yield* honest.pubsub.subscribe("t")
    yield* honest.host.dial(victim.addr)
    const conn = yield* attacker.host.dial(victim.addr)
    const mesh = Context.get(victim.context, Gossipsub.Gossipsub)
    yield* waitFor(() =>
      victim.pubsub.peers().length === 2 && mesh.mesh("t").some((p) => PeerId.equals(p, honest.host.peerId))
    )
    const stream = yield* conn.newStream([PROTO])
    return { victim, honest, attacker, sub, stream, conn, received, mesh }
  })

/** Whether the stream was reset or ended by the victim (reading gives an error or EOF). */
const endedByVictim = (stream: Duplex.Duplex) =>
  Effect.gen(function*() {
    while (true) {
      const r = yield* Effect.result(stream.read)
      if (Result.isFailure(r) || Duplex.isEOF(r.success)) return true
    }
  }).pipe(Effect.timeout("5 seconds"))

/** The honest node's message still reaches the victim's subscriber. */
const honestStillFlows = (
  s: { honest: { pubsub: Pubsub.Pubsub["Service"] }; victim: { pubsub: Pubsub.Pubsub["Service"] } },
  label: string
) =>
  Effect.gen(function*() {
    const sub = yield* s.victim.pubsub.subscribe("t")
    const got = yield* Effect.forkChild(Stream.runHead(Stream.filter(sub, (m) => decode(m.data) === label)))
    yield* s.honest.pubsub.publish("t", text(label))
    const m = yield* Fiber.join(got)
    expect(m._tag).toBe("Some")
  })

const rpc = (r: Partial<Messages.RPC>) =>
  LengthPrefixed.encode(Messages.RPC.encode({ subscriptions: [], publish: [], ...r }))

describe("pubsub bad input", () => {
  it.live(
    "pubsub §The RPC: an RPC that is not protobuf resets the stream; the connection and honest traffic go on",
    () =>
      Effect.gen(function*() {
        const s = yield* setup()
        yield* s.stream.write([LengthPrefixed.encode(Uint8Array.of(0x0a, 0x05, 1))])
        expect(yield* endedByVictim(s.stream)).toBe(true)
        expect(s.conn.isClosed()).toBe(false)
        yield* honestStillFlows(s, "after garbage")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §The Message (size limit): a length prefix over 1 MiB resets the stream before the body is read [pubsub:the-message:2]",
    () =>
      Effect.gen(function*() {
        const s = yield* setup()
        yield* s.stream.write([Varint.encode(Messages.MAX_RPC_SIZE + 1), new Uint8Array(1024)])
        expect(yield* endedByVictim(s.stream)).toBe(true)
        yield* honestStillFlows(s, "after oversized")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §The Message: a message over maxMessageSize is dropped; the stream stays [pubsub:the-message:2]",
    () =>
      Effect.gen(function*() {
        const s = yield* setup({ maxMessageSize: 1000 })
        const key = yield* Keys.generate("Ed25519")
        const big = Result.getOrThrow(Pubsub.signMessage(key, {
          from: PeerId.toBytes(PeerId.fromPrivateKey(key)),
          seqno: new Uint8Array(8),
          topic: "t",
          data: new Uint8Array(2000)
        }))
        const seen: Array<string> = []
        const collect = yield* Effect.forkChild(
          Stream.runForEach(s.sub, (m) => Effect.sync(() => seen.push(decode(m.data))))
        )
        yield* s.stream.write([rpc({ publish: [big] })])
        yield* honestStillFlows(s, "after big")
        yield* Fiber.interrupt(collect)
        expect(seen).toEqual(["after big"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §Message Signing: forged signatures, a wrong author, a foreign key and unsigned messages are not delivered or forwarded [pubsub:message-signing:1] [pubsub:message-signing:2]",
    () =>
      Effect.gen(function*() {
        const s = yield* setup()
        const honestId = PeerId.toBytes(s.honest.host.peerId)
        const attackerKey = yield* Keys.generate("Ed25519")
        const attackerId = PeerId.toBytes(PeerId.fromPrivateKey(attackerKey))
        const seq = (n: number) => Uint8Array.of(0, 0, 0, 0, 0, 0, 0, n)
        const sign = (m: Messages.Message) => Result.getOrThrow(Pubsub.signMessage(attackerKey, m))
        const otherKey = yield* Keys.generate("Ed25519")
        const bad: Array<Messages.Message> = [
          // signed by the attacker, claiming the honest node as author
          sign({ from: honestId, seqno: seq(1), topic: "t", data: text("wrong author") }),
          // a signature that does not verify
          { ...sign({ from: attackerId, seqno: seq(2), topic: "t", data: text("x") }), data: text("tampered") },
          // a key that is not the author's
          {
            ...sign({ from: attackerId, seqno: seq(3), topic: "t", data: text("foreign key") }),
            key: Keys.marshalPublicKey(otherKey.publicKey)
          },
          // unsigned under StrictSign
          { topic: "t", data: text("unsigned") },
          // a seqno that is not 8 bytes
          sign({ from: attackerId, seqno: Uint8Array.of(1), topic: "t", data: text("short seqno") })
        ]
        const good = sign({ from: attackerId, seqno: seq(9), topic: "t", data: text("valid") })
        // a forged copy with the real message's id (same from and seqno) sent first does not shadow it
        bad.push({ ...good, data: text("forged copy") })
        const seenVictim: Array<string> = []
        const seenHonest: Array<string> = []
        const f1 = yield* Effect.forkChild(
          Stream.runForEach(s.sub, (m) => Effect.sync(() => seenVictim.push(decode(m.data))))
        )
        const honestT = yield* s.honest.pubsub.subscribe("t")
        const f2 = yield* Effect.forkChild(
          Stream.runForEach(honestT, (m) => Effect.sync(() => seenHonest.push(decode(m.data))))
        )
        yield* s.stream.write([rpc({ subscriptions: [{ subscribe: true, topicid: "t" }], publish: [...bad, good] })])
        yield* waitFor(() => seenVictim.includes("valid") && seenHonest.includes("valid"))
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(f1)
        yield* Fiber.interrupt(f2)
        expect(seenVictim).toEqual(["valid"])
        expect(seenHonest).toEqual(["valid"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §The RPC (bounds): a subscription flood is cut at maxSubscriptionsPerRpc and maxTopicsPerPeer",
    () =>
      Effect.gen(function*() {
        const s = yield* setup({ maxSubscriptionsPerRpc: 50, maxTopicsPerPeer: 120 })
        const subs = (from: number, n: number) =>
          Array.from({ length: n }, (_, i) => ({ subscribe: true, topicid: `flood-${from + i}` }))
        // 3 RPCs of 60 subscriptions: 50 of each are read, and only 120 topics are kept
        yield* s.stream.write([rpc({ subscriptions: subs(0, 60) }), rpc({ subscriptions: subs(60, 60) })])
        yield* s.stream.write([rpc({ subscriptions: subs(120, 60) })])
        const attackerId = s.attacker.host.peerId
        const has = (topic: string) => s.victim.pubsub.peers(topic).some((p) => PeerId.equals(p, attackerId))
        yield* waitFor(() => has("flood-139"))
        expect(has("flood-49")).toBe(true)
        expect(has("flood-50")).toBe(false) // past the first RPC's 50
        expect(has("flood-109")).toBe(true)
        expect(has("flood-110")).toBe(false)
        // the third RPC brings 20 more before the per-peer cap of 120 (50 + 50 + 20)
        expect(has("flood-139")).toBe(true)
        expect(has("flood-140")).toBe(false)
        yield* honestStillFlows(s, "after flood")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "gossipsub-v1.1 §Spam Protection: IWANT for unknown ids and IHAVE floods get no answers, GRAFT during backoff is refused [gossipsub-v1.1:prune-backoff-and-peer-exchange:1]",
    () =>
      Effect.gen(function*() {
        // one heartbeat (the IHAVE limits are per heartbeat) for the whole test
        const s = yield* setup({ heartbeatInterval: "1 minute" })
        const ids = Array.from({ length: 6000 }, (_, i) => Uint8Array.of(i >> 8, i & 0xff, 7))
        const control = (c: Partial<Messages.ControlMessage>): Messages.ControlMessage => ({
          ...Messages.emptyControl(),
          ...c
        })
        yield* s.stream.write([
          rpc({ subscriptions: [{ subscribe: true, topicid: "t" }] }),
          rpc({ control: control({ iwant: [{ messageIDs: ids }] }) }),
          ...Array.from(
            { length: 20 },
            () => rpc({ control: control({ ihave: [{ topicID: "t", messageIDs: ids }] }) })
          ),
          rpc({ control: control({ prune: [{ topicID: "t", peers: [], backoff: 60n }] }) }),
          rpc({ control: control({ graft: [{ topicID: "t" }] }) })
        ])
        yield* honestStillFlows(s, "after spam")
        const controls = s.received.flatMap((r) => r.control === undefined ? [] : [r.control])
        // IWANT for ids we never had: nothing sent back
        expect(s.received.flatMap((r) => r.publish).map((m) => decode(m.data ?? new Uint8Array()))).not.toContain("x")
        expect(s.received.flatMap((r) => r.publish).length).toBeLessThanOrEqual(1) // at most "after spam" itself
        // 20 IHAVEs of 6000 unknown ids: at most maxIHaveMessages (10) answered, 5000 ids asked in all
        const asked = controls.flatMap((c) => c.iwant).reduce((n, w) => n + w.messageIDs.length, 0)
        expect(asked).toBeLessThanOrEqual(Gossipsub.defaults.maxIHaveLength)
        expect(asked).toBeGreaterThan(0)
        // GRAFT after our PRUNE with backoff: refused with a PRUNE, not in the mesh
        yield* waitFor(() =>
          controls.length > 0 && s.received.some((r) => (r.control?.prune ?? []).some((p) => p.topicID === "t"))
        )
        expect(s.mesh.mesh("t").some((p) => PeerId.equals(p, s.attacker.host.peerId))).toBe(false)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "gossipsub-v1.1 §Spam Protection: an IHAVE whose IWANT is never answered costs a behavioural penalty (P7) per broken promise",
    () =>
      Effect.gen(function*() {
        const penalties: Array<readonly [string, number]> = []
        const zero = Context.get(yield* Layer.build(PeerScore.layerZero), PeerScore.PeerScore)
        const spy = Layer.succeed(PeerScore.PeerScore, {
          ...zero,
          addPenalty: (peer, count) => void penalties.push([peer.toString(), count])
        })
        const s = yield* setup({ iwantFollowupTime: "200 millis" }, spy)
        const control = { ...Messages.emptyControl(), ihave: [{ topicID: "t", messageIDs: [Uint8Array.of(1, 2, 3)] }] }
        yield* s.stream.write([rpc({ control })])
        yield* waitFor(() => s.received.some((r) => (r.control?.iwant.length ?? 0) > 0))
        expect(penalties).toEqual([])
        yield* waitFor(() => penalties.length > 0)
        expect(penalties).toEqual([[s.attacker.host.peerId.toString(), 1]])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )
})
