/**
 * Floodsub over the memory transport (libp2p specs pubsub/README.md).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Floodsub from "../../../src/protocols/pubsub/floodsub/Floodsub.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { decode, pubsubNode, text, waitFor } from "../../support/pubsub.ts"

const untilPeers = (n: { pubsub: { peers: (t?: string) => ReadonlyArray<unknown> } }, topic: string, count: number) =>
  waitFor(() => n.pubsub.peers(topic).length >= count)

describe("floodsub", () => {
  it.live(
    "pubsub §The RPC: a message published on one node reaches a subscriber on another, signed (§Message Signing)",
    () =>
      Effect.gen(function*() {
        const a = yield* pubsubNode(Floodsub.layer())
        const b = yield* pubsubNode(Floodsub.layer())
        const c = yield* pubsubNode(Floodsub.layer())
        const sub = yield* b.pubsub.subscribe("t")
        const subC = yield* c.pubsub.subscribe("t")
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 2)))
        // a line a - b - c: c gets a's messages through b
        yield* a.host.dial(b.addr)
        yield* c.host.dial(b.addr)
        yield* untilPeers(a, "t", 1)
        yield* untilPeers(b, "t", 1)
        const gotC = yield* Effect.forkChild(Stream.runCollect(Stream.take(subC, 2)))
        const r1 = yield* a.pubsub.publish("t", text("one"))
        expect(r1.recipients).toBe(1)
        yield* a.pubsub.publish("t", text("two"))
        const msgs = yield* Fiber.join(got)
        expect(msgs.map((m) => decode(m.data))).toEqual(["one", "two"])
        expect(PeerId.equals(msgs[0]!.from!, a.host.peerId)).toBe(true)
        expect(msgs[1]!.seqno! > msgs[0]!.seqno!).toBe(true)
        const msgsC = yield* Fiber.join(gotC)
        expect(msgsC.map((m) => decode(m.data))).toEqual(["one", "two"])
        expect(PeerId.equals(msgsC[0]!.receivedFrom, b.host.peerId)).toBe(true)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pubsub §The RPC: when the connection carrying our stream closes, a second connection to the peer takes over [pubsub:stream-management:1]",
    () =>
      Effect.gen(function*() {
        const a = yield* pubsubNode(Floodsub.layer())
        const b = yield* pubsubNode(Floodsub.layer())
        const sub = yield* b.pubsub.subscribe("t")
        const first = yield* a.host.dial(b.addr)
        yield* untilPeers(a, "t", 1)
        // without /p2p the host dials a new connection
        const second = yield* a.host.dial(Multiaddr.decapsulateCode(b.addr, Multiaddr.codes.p2p))
        expect(second.id).not.toBe(first.id)
        yield* first.close
        yield* Effect.sleep("50 millis")
        yield* untilPeers(a, "t", 1)
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        yield* a.pubsub.publish("t", text("over the second"))
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["over the second"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )
})
