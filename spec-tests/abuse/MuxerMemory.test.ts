/**
 * The resource manager covers muxer windows (issue 23, part 3; yamux spec
 * §Flow Control: the receiver decides how large a window it grants). Our
 * yamux grows a stream's receive window (up to 16 MiB) when the reader keeps
 * up; each growth now reserves memory against the connection, its peer and
 * the system, and is refused — the window stays as it is — past a limit, so
 * a peer cannot make us buffer more than its scope allows. Released when the
 * stream ends and when the connection closes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as ResourceManager from "../../src/connection/ResourceManager.ts"
import { eventually } from "../support/attacker.ts"
import { fakePeer } from "../support/connection.ts"
import { tcpNode } from "../support/node.ts"

const MiB = 1024 * 1024

describe("abuse: muxer windows within the resource manager (issue 23)", () => {
  it.effect("resource manager §memory: window growth is charged to connection, peer and system, refused past the peer's limit, given back on release and on close", () =>
    Effect.gen(function*() {
      const rm = ResourceManager.make({ peer: { memory: 4 * MiB } })
      const scope = yield* Scope.make()
      const conn = yield* Scope.provide(rm.openConnection("inbound"), scope)
      yield* conn.setPeer((yield* fakePeer).peerId)
      const key = [...rm.stats().peers.keys()][0]!
      expect(conn.memory.reserve(3 * MiB)).toBe(true)
      expect(rm.stats().peers.get(key)!.memory).toBe(3 * MiB)
      expect(rm.stats().system.memory).toBe(3 * MiB)
      expect(conn.memory.reserve(2 * MiB)).toBe(false)
      expect(rm.stats().blocked.get("peer/memory")).toBe(1)
      expect(conn.memory.reserve(1 * MiB)).toBe(true)
      conn.memory.release(2 * MiB)
      expect(rm.stats().peers.get(key)!.memory).toBe(2 * MiB)
      yield* Scope.close(scope, Exit.void)
      expect(rm.stats().system.memory).toBe(0)
      expect(rm.stats().peers.size).toBe(0)
      // after the close nothing more can be reserved, and a late release is harmless
      expect(conn.memory.reserve(1)).toBe(false)
      conn.memory.release(MiB)
      expect(rm.stats().system.memory).toBe(0)
    }))

  it.live(
    "yamux spec §Flow Control: a peer streaming 48 MiB cannot make us grow its windows past its memory limit (3 MiB); the memory comes back when the stream ends",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const LIMIT = 3 * MiB
        const victim = yield* tcpNode({ resources: { peer: { memory: LIMIT } } })
        const sender = yield* tcpNode()
        const received = { bytes: 0 }
        yield* victim.registrar.handle("/sink/1.0.0", (stream) =>
          Effect.gen(function*() {
            while (true) {
              const chunks = yield* stream.read
              if (chunks.length === 0) return
              for (const c of chunks) received.bytes += c.byteLength
            }
          }))
        yield* sender.host.dial(victim.addr)
        const key = sender.host.peerId.toString()
        const usage = () => victim.resourceManager.stats().peers.get(key)?.memory ?? 0
        const sampled = { max: 0 }
        const sampler = yield* Effect.forkScoped(Effect.forever(Effect.andThen(
          Effect.sync(() => void (sampled.max = Math.max(sampled.max, usage()))),
          Effect.sleep("5 millis")
        )))
        // the victim's side of the connection is registered (its 1 MiB connection buffer charged) and identify is done
        yield* eventually(Effect.sync(() => victim.host.connections(sender.host.peerId).length === 1 && usage() >= MiB))
        yield* Effect.sleep("200 millis")
        const before = usage()
        const TOTAL = 48 * MiB
        yield* Effect.scoped(Effect.gen(function*() {
          const stream = yield* sender.host.newStream(victim.host.peerId, ["/sink/1.0.0"])
          const chunk = new Uint8Array(256 * 1024)
          for (let sent = 0; sent < TOTAL; sent += chunk.byteLength) yield* stream.write([chunk])
          yield* stream.closeWrite
          yield* stream.read
        }))
        const back = yield* Effect.gen(function*() {
          for (let i = 0; i < 500; i++) {
            if (usage() <= before) return true
            yield* Effect.sleep("10 millis")
          }
          return false
        })
        yield* Fiber.interrupt(sampler)
        const blocked = victim.resourceManager.stats().blocked.get("peer/memory") ?? 0
        console.error(
          `[abuse] window growth: peer memory at most ${(sampled.max / MiB).toFixed(2)} MiB (limit ${
            LIMIT / MiB
          } MiB, ${(before / MiB).toFixed(2)} MiB before), growth refused ${blocked} times, ${
            (received.bytes / MiB).toFixed(0)
          } MiB received`
        )
        expect(received.bytes).toBe(TOTAL)
        expect(sampled.max).toBeLessThanOrEqual(LIMIT)
        expect(back).toBe(true)
      })),
    60_000
  )
})
