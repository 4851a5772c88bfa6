/**
 * Bounded peer state under an identify push flood (issue 23, attack 3;
 * identify spec §identify/push: a push updates what we know about the peer,
 * and an implementation must bound what it keeps). Before: a peer's
 * addresses were merged by comparing each new one with the whole list, a
 * push cost grew with the list. Now: at most `maxAddrsPerPeer` addresses
 * kept by source rank, O(cap) per push, protocols and metadata capped, gone
 * peers forgotten after their TTLs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Keys from "../../src/core/Keys.ts"
import * as LengthPrefixed from "../../src/core/LengthPrefixed.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Peerstore from "../../src/host/Peerstore.ts"
import * as Identify from "../../src/protocols/identify/Identify.ts"
import { tcpNode } from "../support/node.ts"

/** The `n`th distinct /ip4/10.x.y.z/tcp/1024 address (n < 2^24), from its bytes (cheaper than parsing text). */
const nthAddr = (n: number): Multiaddr.Multiaddr =>
  Result.getOrThrow(
    Multiaddr.fromBytes(new Uint8Array([4, 10, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, 6, 4, 0]))
  )
const batch = (from: number, n: number) => Array.from({ length: n }, (_, i) => nthAddr(from + i))

const randomPeer = Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey)

describe("abuse: bounded peer state (issue 23)", () => {
  it.effect("identify spec §identify/push: 100,000 distinct pushed addresses keep the list capped (64), certified addresses kept first", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory()
      const peer = yield* randomPeer
      const certified = batch(900_000, 4)
      yield* ps.certify(peer, 1n, certified)
      let max = 0
      for (let i = 0; i < 125; i++) {
        yield* ps.merge(peer, { addrs: batch(i * 800, 800) })
        max = Math.max(max, ps.get(peer)!.addrEntries.length)
      }
      expect(max).toBeLessThanOrEqual(Peerstore.defaults.maxAddrsPerPeer)
      const kept = ps.get(peer)!.addrs.map(Multiaddr.toString)
      for (const c of certified) expect(kept).toContain(Multiaddr.toString(c))
      // the newest identify addresses replaced the older ones (of an update, the first 64 are looked at)
      expect(kept).toContain(Multiaddr.toString(nthAddr(124 * 800 + 63)))
      expect(kept).not.toContain(Multiaddr.toString(nthAddr(123 * 800)))
    }))

  it.effect("identify spec §identify/push: protocols (128), versions (256 chars) and metadata (64 KiB) per peer are capped", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory()
      const peer = yield* randomPeer
      yield* ps.merge(peer, {
        protocols: Array.from({ length: 10_000 }, (_, i) => `/p/${i}`),
        agentVersion: "a".repeat(100_000)
      })
      expect(ps.get(peer)!.protocols.length).toBe(128)
      expect(ps.get(peer)!.agentVersion!.length).toBe(256)
      for (let i = 0; i < 40; i++) yield* ps.setMetadata(peer, `k${i}`, new Uint8Array(4096))
      const bytes = Object.values(ps.get(peer)!.metadata).reduce((n, v) => n + v.byteLength, 0)
      expect(bytes).toBeLessThanOrEqual(64 * 1024)
      expect(bytes).toBeGreaterThan(56 * 1024)
    }))

  it.effect("peerstore TTLs: expired addresses are swept and gone peers forgotten after their TTL, connected and protected ones kept", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory({ recentlyConnectedTtl: "10 minutes", routingTtl: "5 minutes" })
      const gone = yield* randomPeer
      const routed = yield* randomPeer
      const connected = yield* randomPeer
      const kept = yield* randomPeer
      yield* ps.connected(gone, { addr: nthAddr(1) })
      yield* ps.disconnected(gone)
      yield* ps.merge(routed, { addrs: [nthAddr(2)], addrSource: "routing" })
      yield* ps.connected(connected, { addr: nthAddr(3) })
      yield* ps.merge(kept, { addrs: [nthAddr(4)], addrSource: "routing" })
      yield* ps.protect(kept, "test")
      yield* TestClock.adjust("11 minutes")
      // any write sweeps (at most once a minute)
      yield* ps.merge(yield* randomPeer, {})
      expect(ps.get(gone)).toBeUndefined()
      expect(ps.get(routed)).toBeUndefined()
      expect(ps.get(connected)?.addrs.length).toBe(1)
      expect(ps.get(kept)?.addrEntries.length).toBe(0)
    }))

  it.live(
    "identify spec §identify/push, attack 3: a flood of pushes with ~100,000 distinct addresses over the wire keeps the list capped and the push cost flat; another peer's pings stay answered within 2 s",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const victim = yield* tcpNode()
        const attacker = yield* tcpNode()
        const friend = yield* tcpNode()
        yield* attacker.host.dial(victim.addr)
        yield* friend.host.dial(victim.addr)
        const pings = { ok: 0, failed: [] as Array<string> }
        const pinging = yield* Effect.forkScoped(Effect.forever(Effect.andThen(
          friend.ping.ping(victim.host.peerId).pipe(
            Effect.timeout("2 seconds"),
            Effect.match({ onSuccess: () => void pings.ok++, onFailure: (e) => void pings.failed.push(String(e)) })
          ),
          Effect.sleep("100 millis")
        )))
        const costs: Array<number> = []
        let max = 0
        const PER_PUSH = 800 // ~8 KiB of addresses: identify's message limit (8,192 bytes)
        for (let i = 0; i < 125; i++) {
          const msg = Identify.IdentifyMessage.encode({
            listenAddrs: batch(i * PER_PUSH, PER_PUSH).map(Multiaddr.toBytes).filter((_, j) => j < 780),
            protocols: []
          })
          const started = performance.now()
          yield* Effect.scoped(Effect.gen(function*() {
            const stream = yield* attacker.host.newStream(victim.host.peerId, [Identify.PUSH_PROTOCOL], { lazy: false })
            yield* LengthPrefixed.write(stream, msg)
            yield* stream.closeWrite
            yield* stream.read
          }))
          costs.push(performance.now() - started)
          max = Math.max(max, victim.peerstore.get(attacker.host.peerId)?.addrEntries.length ?? 0)
        }
        yield* Fiber.interrupt(pinging)
        const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
        console.error(
          `[abuse] identify push flood: ${
            125 * 780
          } addresses in 125 pushes; list at most ${max}; push round trip first 10 ${
            mean(costs.slice(0, 10)).toFixed(1)
          } ms, last 10 ${
            mean(costs.slice(-10)).toFixed(1)
          } ms; friend pings ok ${pings.ok}, failed ${pings.failed.length}`
        )
        expect(max).toBeLessThanOrEqual(Peerstore.defaults.maxAddrsPerPeer)
        expect(pings.failed).toEqual([])
        expect(pings.ok).toBeGreaterThan(0)
        expect(Math.max(...costs)).toBeLessThan(2000)
      })),
    60_000
  )
})
