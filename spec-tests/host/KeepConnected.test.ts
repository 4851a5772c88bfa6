/**
 * ARCHITECTURE.md §7 `--bootstrap`: "dialed at start and kept", "redialed with
 * backoff when dropped and tagged so trimming keeps them".
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Scope } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as KeepConnected from "../../src/host/KeepConnected.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { ma } from "../support/multiaddr.ts"
import { memoryNode } from "../support/node.ts"

/** Poll `cond` every 10 ms, up to 5 s. */
const until = (cond: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500 && !cond(); i++) yield* Effect.sleep(Duration.millis(10))
    expect(cond()).toBe(true)
  })

describe("KeepConnected (§7 --bootstrap kept connected)", () => {
  it.live("§7: the peer is dialed, protected and tagged; trimming keeps it; a dropped connection is redialed", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode({ connectionManager: { lowWater: 0, highWater: 0, gracePeriod: 0 } })
      const b = yield* memoryNode()
      const keep = yield* Scope.make()
      yield* KeepConnected.keepConnected(a.host, a.connectionManager, b.addr, { initialBackoff: "20 millis" }).pipe(
        Scope.provide(keep)
      )
      yield* until(() => a.host.connections(b.host.peerId).length === 1)
      expect(a.connectionManager.isProtected(b.host.peerId, KeepConnected.TAG)).toBe(true)
      expect(a.connectionManager.tags(b.host.peerId).get(KeepConnected.TAG)).toBe(KeepConnected.TAG_VALUE)
      expect(yield* a.connectionManager.trim).toEqual([])
      const first = a.host.connections(b.host.peerId)[0]!
      // b drops it: a dials again
      yield* until(() => b.host.connections(a.host.peerId).length === 1)
      yield* b.host.connections(a.host.peerId)[0]!.close
      yield* until(() => a.host.connections(b.host.peerId).some((c) => c.id !== first.id && !c.isClosed()))
      // kept no longer: neither protected nor tagged (a peer dropped from the list is not protected forever)
      yield* Scope.close(keep, Exit.void)
      expect(a.connectionManager.isProtected(b.host.peerId)).toBe(false)
      expect(a.connectionManager.tags(b.host.peerId).size).toBe(0)
      expect(a.peerstore.get(b.host.peerId)?.protectedBy).toEqual([])
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("§7: a failed dial is retried with a backoff that doubles up to maxBackoff", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const gone = Multiaddr.encapsulate(ma("/memory/999999"), ma(`/p2p/${PeerId.toString(b.host.peerId)}`))
      const failures: Array<number> = []
      yield* KeepConnected.keepConnected(a.host, a.connectionManager, gone, {
        initialBackoff: "20 millis",
        maxBackoff: "80 millis",
        onDialFailure: () => Effect.sync(() => void failures.push(performance.now()))
      })
      yield* until(() => failures.length >= 6)
      const gaps = failures.slice(1).map((t, i) => t - failures[i]!)
      // 20, 40, 80, 80, 80 ms (the dial itself adds a little)
      expect(gaps[0]!).toBeGreaterThanOrEqual(15)
      expect(gaps[2]!).toBeGreaterThanOrEqual(70)
      expect(gaps[4]!).toBeGreaterThanOrEqual(70)
      expect(gaps[4]!).toBeLessThan(1000)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
