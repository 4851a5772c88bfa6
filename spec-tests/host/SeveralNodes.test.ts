/**
 * Several nodes in one program (issue 11 item 4): each preset is its own node,
 * also when one is provided inside the other (an inner `Effect.provide` would
 * otherwise reuse the outer node's Registrar, Identity and Peerstore).
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Result } from "effect"
import * as Nodes from "../../layers/Node.ts"
import { Registrar } from "../../src/connection/Registrar.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { Host } from "../../src/host/Host.ts"
import { Ping } from "../../src/protocols/ping/Ping.ts"
import * as Memory from "../../src/transport/Memory.ts"

const ma = (s: string) => Result.getOrThrow(Multiaddr.fromString(s))
const memoryNode = () => Nodes.Memory({ listen: [ma("/memory/0")] })

class SeenA extends Context.Service<SeenA, { readonly peerId: PeerId.PeerId }>()("test/SeenA") {}
class SeenB extends Context.Service<SeenB, { readonly peerId: PeerId.PeerId }>()("test/SeenB") {}

describe("several nodes in one program", () => {
  it.live("a preset provided inside another is a second, independent node that can ping the first", () =>
    Effect.gen(function*() {
      const outer = yield* Host
      const outerRegistrar = yield* Registrar
      const rtts = yield* Effect.gen(function*() {
        const inner = yield* Host
        expect(PeerId.equals(inner.peerId, outer.peerId)).toBe(false)
        expect(yield* Registrar).not.toBe(outerRegistrar)
        return yield* (yield* Ping).ping(outer.addrs()[0]!, { count: 2 })
      }).pipe(Effect.provide(memoryNode()))
      expect(rtts).toHaveLength(2)
      expect(outer.connections()).toHaveLength(1)
    }).pipe(Effect.provide(memoryNode()), Effect.provide(Memory.layerNetwork)))

  it.effect("one preset value used twice in one layer graph is one node", () =>
    Effect.gen(function*() {
      const node = memoryNode()
      const seen = <S>(tag: Context.Key<S, { readonly peerId: PeerId.PeerId }>) =>
        Layer.effect(tag, Effect.map(Host, (host) => ({ peerId: host.peerId }))).pipe(Layer.provide(node))
      const ctx = yield* Layer.build(Layer.merge(seen(SeenA), seen(SeenB)))
      expect(PeerId.equals(Context.get(ctx, SeenA).peerId, Context.get(ctx, SeenB).peerId)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork)))
})
