/**
 * Fairness of the transient pools under attack (issue 23, attacks 1 and 2;
 * connections spec §Connection limits: an implementation SHOULD bound what a
 * peer can make it hold — here, so that one host cannot lock the others out).
 *
 * The attacker (the project's own attacker code, spec-tests/support/
 * attacker.ts) connects from 127.0.1.x; the honest peers from 127.0.0.1
 * (another /24: see spec-tests/support/abuse.ts). Numbers are scaled down
 * from the (5,000 streams, 2,000 handshakes) to what a loaded 2-core
 * machine handles in seconds, keeping the shape: the attacker can fill the
 * pool (its shares are set at or above the pool size where a test wants to
 * see eviction), and honest pings (2 s deadline) and fresh connections still
 * succeed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Scope } from "effect"
import * as ResourceManager from "../../src/connection/ResourceManager.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import * as Noise from "../../src/security/Noise.ts"
import { ATTACKER_IP, honestLoad } from "../support/abuse.ts"
import {
  connect,
  eventually,
  negotiate,
  noiseFrame,
  noiseInitiator,
  randomBytes,
  yamuxFrame
} from "../support/attacker.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode, type TestNode } from "../support/node.ts"

/** The largest pool group whose key starts with `prefix` (e.g. `net/7f0001` for 127.0.1.0/24). */
const largest = (groups: ReadonlyMap<string, number>, prefix: string): number => {
  let max = 0
  for (const [k, n] of groups) if (k.startsWith(prefix)) max = Math.max(max, n)
  return max
}
const ATTACKER_NET = "net/7f0001"
const ATTACKER_IP1 = "ip/7f000101"

/**
 * One attacker connection from `localAddress`: a fresh identity, Noise and
 * yamux (early muxer negotiation), then `open(n)` opens n yamux streams
 * (WindowUpdate+SYN) that never send a multistream-select line.
 */
const streamAttacker = (victim: TestNode, localAddress: string) =>
  Effect.gen(function*() {
    const identity = yield* Keys.generate("Ed25519")
    const attacker = yield* connect(victim.addr, { localAddress })
    const session = yield* noiseInitiator(attacker, { identity })
    let next = 1
    const open = (n: number) =>
      Effect.suspend(() => {
        const frames: Array<Uint8Array> = []
        for (let i = 0; i < n; i++, next += 2) {
          frames.push(yamuxFrame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, next, 0))
        }
        return session.send(Buffer.concat(frames))
      })
    return { open, attacker }
  })

/** Two attacker connections filling the unnegotiated-stream pool, refilled every 100 ms until interrupted. */
const streamFlood = (victim: TestNode, initial: number) =>
  Effect.gen(function*() {
    const a = yield* streamAttacker(victim, ATTACKER_IP(0))
    const b = yield* streamAttacker(victim, ATTACKER_IP(0))
    yield* a.open(initial)
    yield* b.open(initial)
    return yield* Effect.forkScoped(
      Effect.forever(Effect.andThen(Effect.andThen(a.open(10), b.open(10)), Effect.sleep("100 millis")))
    )
  })

/** Sample `f` every 20 ms until interrupted, keeping the maximum. */
const sampleMax = (f: () => number) =>
  Effect.gen(function*() {
    const box = { max: 0 }
    const fiber = yield* Effect.forkScoped(
      Effect.forever(
        Effect.andThen(Effect.sync(() => void (box.max = Math.max(box.max, f()))), Effect.sleep("20 millis"))
      )
    )
    return { box, fiber }
  })

const expectServed = (tally: Effect.Success<ReturnType<typeof honestLoad>>) => {
  expect(tally.pings.failed).toEqual([])
  // counts are loose (a loaded CI machine runs few rounds); what matters is that none failed
  expect(tally.pings.ok).toBeGreaterThanOrEqual(3)
  expect(tally.fresh.failed).toEqual([])
  expect(tally.fresh.ok).toBeGreaterThanOrEqual(1)
}

describe("abuse: fairness of the transient pools (issue 23)", () => {
  it.effect("connections spec §Connection limits: per-IP and per-subnet shares of the handshake pool, eviction of the heaviest subnet's oldest when full, the allow list exempts", () =>
    Effect.gen(function*() {
      const rm = ResourceManager.make({
        transient: { connectionsInbound: 4 },
        fairness: { handshakesPerIp: 2, handshakesPerSubnet: 4, allow: [ma("/ip4/10.9.0.0/ipcidr/16")] }
      })
      // each handshake holds its reservation in its own fiber (eviction interrupts that fiber)
      const open = (ip: string) =>
        Effect.forkChild(
          Effect.scoped(Effect.andThen(
            rm.openConnection("inbound", { remoteAddr: ma(`/ip4/${ip}/tcp/1`) }),
            Effect.never
          )),
          { startImmediately: true }
        )
      const first = yield* open("1.1.1.1")
      yield* open("1.1.1.1")
      const third = yield* Fiber.await(yield* open("1.1.1.1"))
      expect(third._tag === "Failure" && Cause.squash(third.cause)).toMatchObject({
        _tag: "LimitExceeded",
        scope: "transient",
        share: "ip",
        limit: 2
      })
      yield* open("1.1.1.2")
      yield* open("1.1.1.2")
      expect(rm.stats().transient.connectionsInbound).toBe(4)
      // the pool is full of 1.1.1.0/24: a newcomer from elsewhere evicts its oldest handshake
      yield* open("2.2.2.2")
      const evicted = yield* Fiber.await(first)
      expect(evicted._tag === "Failure" && Cause.hasInterruptsOnly(evicted.cause)).toBe(true)
      expect(rm.stats().evicted.get("transient/connectionsInbound")).toBe(1)
      expect(rm.stats().transient.connectionsInbound).toBe(4)
      // the heaviest subnet's own newcomer is refused, not given someone else's slot
      const own = yield* Fiber.await(yield* open("1.1.1.3"))
      expect(own._tag === "Failure" && Cause.squash(own.cause)).toMatchObject({ scope: "transient", limit: 4 })
      // allow-listed sources have no share (only the pool's own limit)
      const rm2 = ResourceManager.make({ fairness: { handshakesPerIp: 1, allow: [ma("/ip4/10.9.0.0/ipcidr/16")] } })
      const scope = yield* Scope.make()
      for (let i = 0; i < 3; i++) {
        yield* Scope.provide(rm2.openConnection("inbound", { remoteAddr: ma("/ip4/10.9.1.1/tcp/1") }), scope)
      }
      expect(rm2.stats().transient.connectionsInbound).toBe(3)
      yield* Scope.close(scope, Exit.void)
      // the connection manager's allow list (layers/Node.ts) exempts too
      const rm3 = ResourceManager.make(
        ResourceManager.withAllowList({ fairness: { handshakesPerIp: 1 } }, [ma("/ip4/127.0.0.0/ipcidr/8")])
      )
      const scope3 = yield* Scope.make()
      for (let i = 0; i < 3; i++) {
        yield* Scope.provide(rm3.openConnection("inbound", { remoteAddr: ma("/ip4/127.0.1.1/tcp/1") }), scope3)
      }
      expect(rm3.stats().pools.handshakes.size).toBe(0)
      yield* Scope.close(scope3, Exit.void)
    }))

  it.live(
    "connections spec §Connection limits, attack 1: two attacker connections whose never-negotiated streams fill the unnegotiated-stream pool do not lock honest peers out (the heaviest subnet is evicted)",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // the attacker's shares are as large as the pool: it CAN fill it, so eviction is what saves the honest peers
        const POOL = 64
        const victim = yield* tcpNode({
          resources: {
            transient: { streamsInbound: POOL },
            fairness: { streamsPerPeer: 48, streamsPerIp: POOL, streamsPerSubnet: POOL }
          }
        })
        const client = yield* tcpNode()
        yield* client.host.dial(victim.addr)
        const rm = victim.resourceManager
        const held = yield* sampleMax(() => largest(rm.stats().pools.streams, ATTACKER_NET))
        yield* streamFlood(victim, 48)
        const full = yield* eventually(Effect.sync(() => rm.stats().transient.streamsInbound >= POOL), "10 seconds")
        expect(full).toBe(true)
        const tally = yield* honestLoad(client, victim.host.peerId, victim.addr, { duration: "5 seconds" })
        const stats = rm.stats()
        console.error(
          `[abuse] stream pool ${POOL}: attacker held at most ${held.box.max}, evicted ${
            stats.evicted.get("transient/streamsInbound") ?? 0
          }, refused by share ${
            stats.blocked.get("transient/streamsInbound/peer") ?? 0
          }; honest pings ok ${tally.pings.ok} (slowest ${tally.pings.slowest} ms), fresh connections ok ${tally.fresh.ok}`
        )
        expectServed(tally)
        expect(held.box.max).toBeLessThanOrEqual(POOL)
        expect(stats.evicted.get("transient/streamsInbound") ?? 0).toBeGreaterThan(0)
      })),
    60_000
  )

  it.live(
    "connections spec §Connection limits, attack 1 with the default shares: an attacker host holds at most its per-peer (128) and per-IP (256) shares of unnegotiated streams; honest peers are served",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const victim = yield* tcpNode()
        const client = yield* tcpNode()
        yield* client.host.dial(victim.addr)
        const rm = victim.resourceManager
        const byIp = yield* sampleMax(() => largest(rm.stats().pools.streams, ATTACKER_IP1))
        const byPeer = yield* sampleMax(() => largest(rm.stats().pools.streams, "peer/"))
        yield* streamFlood(victim, 400)
        const filled = yield* eventually(Effect.sync(() => byIp.box.max >= 256), "10 seconds")
        expect(filled).toBe(true)
        const tally = yield* honestLoad(client, victim.host.peerId, victim.addr, { duration: "4 seconds" })
        console.error(
          `[abuse] default shares: attacker IP held at most ${byIp.box.max}, one peer at most ${byPeer.box.max}; honest pings ok ${tally.pings.ok} (slowest ${tally.pings.slowest} ms), fresh ok ${tally.fresh.ok}`
        )
        expectServed(tally)
        expect(byIp.box.max).toBeLessThanOrEqual(256)
        expect(byPeer.box.max).toBeLessThanOrEqual(128)
      })),
    60_000
  )

  it.live(
    "connections spec §Connection limits, attack 2: stalled Noise handshakes from one subnet (valid message 1, then silence) do not lock fresh honest connections out",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // a handshake pool of 32, smaller than the subnet's share (64): the attacker fills it, eviction frees it
        const POOL = 32
        const victim = yield* tcpNode({
          resources: {
            transient: { connectionsInbound: POOL },
            fairness: { handshakesPerIp: 16, handshakesPerSubnet: 64 }
          }
        })
        const client = yield* tcpNode()
        yield* client.host.dial(victim.addr)
        const rm = victim.resourceManager
        const held = yield* sampleMax(() => largest(rm.stats().pools.handshakes, ATTACKER_NET))
        const attempts = { n: 0 }
        // 100 stallers over 2 source IPs of 127.0.1.0/24 (16 each, the per-IP share, fill the pool), each reconnecting as soon as it is dropped
        const staller = (i: number) =>
          Effect.forever(
            Effect.scoped(Effect.gen(function*() {
              attempts.n++
              const attacker = yield* connect(victim.addr, { localAddress: ATTACKER_IP(i % 2) })
              yield* negotiate(attacker, Noise.PROTOCOL)
              yield* attacker.send(noiseFrame(randomBytes(32, i)))
              yield* attacker.closed
            })).pipe(Effect.ignore, Effect.andThen(Effect.sleep("20 millis")))
          )
        const stallers = yield* Effect.forEach(
          Array.from({ length: 100 }, (_, i) => i),
          (i) => Effect.forkScoped(staller(i))
        )
        const full = yield* eventually(Effect.sync(() => rm.stats().transient.connectionsInbound >= POOL), "10 seconds")
        expect(full).toBe(true)
        const tally = yield* honestLoad(client, victim.host.peerId, victim.addr, { duration: "5 seconds" })
        yield* Fiber.interruptAll(stallers)
        const stats = rm.stats()
        console.error(
          `[abuse] handshake pool ${POOL}: ${attempts.n} attacker attempts, at most ${held.box.max} held by its subnet, evicted ${
            stats.evicted.get("transient/connectionsInbound") ?? 0
          }, refused by share ${
            (stats.blocked.get("transient/connectionsInbound/ip") ?? 0) +
            (stats.blocked.get("transient/connectionsInbound/subnet") ?? 0)
          }; honest pings ok ${tally.pings.ok} (slowest ${tally.pings.slowest} ms), fresh ok ${tally.fresh.ok}`
        )
        expectServed(tally)
        expect(held.box.max).toBeLessThanOrEqual(POOL)
        expect(stats.evicted.get("transient/connectionsInbound") ?? 0).toBeGreaterThan(0)
        expect(stats.blocked.get("transient/connectionsInbound/ip") ?? 0).toBeGreaterThan(0)
      })),
    60_000
  )
})
