/**
 * The Host asks peer routing for a peer id it has no address for (issue 13
 * §6, go's `routedhost`, js's dial queue): the router registered with
 * `host.useRouting` is asked once, what it finds is dialed and kept, and a
 * router's own dials never ask it again (no lookup inside a lookup).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Result, Scope } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Host from "../../src/host/Host.ts"
import { PeerRouting, RoutingError } from "../../src/routing/PeerRouting.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { memoryNode } from "../support/node.ts"

const newId = Effect.map(Keys.generate("Ed25519"), (k) => PeerId.fromPrivateKey(k))

describe("Host peer routing (issue 13 §6: the Host uses PeerRouting)", () => {
  it.effect("a peer id with no address is looked up once, dialed at what routing found and kept", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const bAddr = Multiaddr.decapsulateCode(b.addr, Multiaddr.codes.p2p)
      const stranger = yield* newId
      const asked: Array<string> = []
      const nested: Array<string> = []
      const router = PeerRouting.of({
        findPeer: (peer) =>
          Effect.gen(function*() {
            asked.push(PeerId.toString(peer))
            // the router's own dial of an address-less peer must not ask the router again
            const inner = yield* Effect.result(a.host.dial(stranger))
            nested.push(Result.isFailure(inner) ? inner.failure.reason._tag : "connected")
            if (PeerId.equals(peer, b.host.peerId)) return { peerId: peer, addrs: [bAddr] }
            return yield* new RoutingError({ reason: "NotFound", message: "nobody has it" })
          }),
        getClosestPeers: () => Effect.succeed([])
      })
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(Host.layerRouting, scope).pipe(
        Effect.provideService(Host.Host, a.host),
        Effect.provideService(PeerRouting, router)
      )
      const conn = yield* a.host.dial(b.host.peerId)
      expect(PeerId.equals(conn.remotePeer, b.host.peerId)).toBe(true)
      expect(asked).toEqual([PeerId.toString(b.host.peerId)])
      expect(nested).toEqual(["NoAddresses"])
      expect(a.peerstore.get(b.host.peerId)?.addrs.map(String)).toContain(String(bAddr))
      // connected: the next dial reuses the connection and asks nobody
      yield* a.host.dial(b.host.peerId)
      expect(asked).toHaveLength(1)
      // not found: NoAddresses whose cause is the router's RoutingError
      const missing = yield* Effect.flip(a.host.dial(stranger))
      expect(missing.reason._tag).toBe("NoAddresses")
      const cause = (missing.reason as { cause?: unknown }).cause
      expect(cause).toBeInstanceOf(RoutingError)
      expect((cause as RoutingError).reason).toBe("NotFound")
      // withoutRouting: not asked
      const before = asked.length
      yield* Effect.flip(Host.withoutRouting(a.host.dial(yield* newId)))
      expect(asked).toHaveLength(before)
      // the registration ends with its scope
      yield* Scope.close(scope, Exit.void)
      yield* Effect.flip(a.host.dial(yield* newId))
      expect(asked).toHaveLength(before)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
