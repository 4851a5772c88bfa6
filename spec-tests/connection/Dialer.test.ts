/**
 * The Dialer under TestClock with a scripted `connect` (no transport): dial
 * deduplication, the global queue, per-address timeouts, backoff on a
 * Schedule, Happy Eyeballs ranking and staggering (RFC 8305), cancellation.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Random, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Dialer from "../../src/connection/Dialer.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import type * as PeerId from "../../src/core/PeerId.ts"
import * as Transport from "../../src/transport/Transport.ts"
import { fakeConnection, type FakePeer, fakePeer } from "../support/connection.ts"
import { chain } from "../support/errors.ts"
import { ma } from "../support/multiaddr.ts"

interface Call {
  readonly addr: string
  readonly at: number
}

/** A `connect` that records each call and runs `behave` (default: a connection after `latency`). */
const scripted = (
  peers: ReadonlyMap<string, FakePeer>,
  behave?: (addr: string, peer: PeerId.PeerId | undefined) => Effect.Effect<"ok", Dialer.DialError, Scope.Scope>
) => {
  const calls: Array<Call> = []
  const finalized: Array<string> = []
  const connect: Dialer.Connect = (addr, peer) =>
    Effect.gen(function*() {
      const a = Multiaddr.toString(addr)
      calls.push({ addr: a, at: yield* Clock.currentTimeMillis })
      yield* Effect.addFinalizer(() => Effect.sync(() => void finalized.push(a)))
      if (behave !== undefined) yield* behave(a, peer)
      const p = peers.get(a)
      if (p === undefined) return yield* Effect.die(`no fake peer for ${a}`)
      return yield* fakeConnection(p, { direction: "outbound", remoteAddr: addr })
    })
  return { calls, finalized, connect }
}

const refused = (addr: string) =>
  new Dialer.DialError({
    reason: new Transport.TransportError({ reason: "Refused", address: addr, message: `${addr}: refused` })
  })

/** Let forked fibers run up to their next suspension. */
const settle = Effect.andThen(TestClock.adjust(0), Effect.yieldNow)

describe("dialer: ranking (RFC 8305 Happy Eyeballs v2)", () => {
  it("RFC 8305 §4: IPv6 first, then IPv4, interleaved; faster transports first; relays last", () => {
    const addrs = [
      "/ip4/1.2.3.4/tcp/4001/ws",
      "/ip4/5.6.7.8/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit",
      "/ip4/1.2.3.4/tcp/4001",
      "/ip4/1.2.3.5/tcp/4001",
      "/ip6/2001:db8::1/tcp/4001",
      "/ip4/1.2.3.4/udp/4001/quic-v1",
      "/ip6/2001:db8::2/tcp/4001"
    ].map(ma)
    const ranked = Dialer.rank(addrs)
    expect(ranked.map((r) => Multiaddr.toString(r.addr))).toEqual([
      "/ip4/1.2.3.4/udp/4001/quic-v1",
      "/ip6/2001:db8::1/tcp/4001",
      "/ip4/1.2.3.4/tcp/4001",
      "/ip6/2001:db8::2/tcp/4001",
      "/ip4/1.2.3.5/tcp/4001",
      "/ip4/1.2.3.4/tcp/4001/ws",
      "/ip4/5.6.7.8/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit"
    ])
    // §5 Connection Attempt Delay: 250 ms between attempts, the relay another 500 ms later
    expect(ranked.map((r) => r.delay)).toEqual([0, 250, 500, 750, 1000, 1250, 1750])
  })

  it("RFC 8305 §5: local addresses are staggered by the shorter private delay; duplicates dropped", () => {
    const ranked = Dialer.rank(
      ["/ip4/127.0.0.1/tcp/1", "/ip6/::1/tcp/1", "/ip4/127.0.0.1/tcp/1", "/ip4/10.0.0.1/tcp/1"].map(ma),
      {
        privateStagger: "10 millis"
      }
    )
    expect(ranked.map((r) => [Multiaddr.toString(r.addr), r.delay])).toEqual([
      ["/ip6/::1/tcp/1", 0],
      ["/ip4/127.0.0.1/tcp/1", 10],
      ["/ip4/10.0.0.1/tcp/1", 20]
    ])
  })
})

describe("dialer: one dial per peer, the global queue", () => {
  it.effect("concurrent dials to one peer share one attempt and one connection", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const addr = "/ip4/1.2.3.4/tcp/1"
      const { calls, connect } = scripted(
        new Map([[addr, p]]),
        () => Effect.as(Effect.sleep("100 millis"), "ok" as const)
      )
      const dialer = yield* Dialer.make(connect)
      const fibers = yield* Effect.forEach(
        Array.from({ length: 10 }),
        () => Effect.forkChild(dialer.dial({ peer: p.peerId, addrs: [ma(addr)] }))
      )
      yield* settle
      expect(dialer.pending()).toBe(1)
      yield* TestClock.adjust("100 millis")
      const conns = yield* Effect.forEach(fibers, Fiber.join)
      expect(calls).toHaveLength(1)
      expect(new Set(conns).size).toBe(1)
      expect(dialer.pending()).toBe(0)
      expect(dialer.active()).toBe(0)
    }))

  it.effect("the queue is FIFO: with 2 slots, 6 peers dial in request order, two at a time", () =>
    Effect.gen(function*() {
      const peers = yield* Effect.forEach(Array.from({ length: 6 }), () => fakePeer)
      const addrs = peers.map((_, i) => `/ip4/1.2.3.${i + 1}/tcp/1`)
      const { calls, connect } = scripted(
        new Map(addrs.map((a, i) => [a, peers[i]!])),
        () => Effect.as(Effect.sleep("1 second"), "ok" as const)
      )
      const dialer = yield* Dialer.make(connect, { maxParallelDials: 2 })
      const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
      for (let i = 0; i < 6; i++) {
        fibers.push(yield* Effect.forkChild(dialer.dial({ peer: peers[i]!.peerId, addrs: [ma(addrs[i]!)] })))
        yield* settle
      }
      expect(dialer.active()).toBe(2)
      expect(dialer.queued()).toBe(4)
      for (let t = 0; t < 3; t++) yield* TestClock.adjust("1 second")
      yield* Effect.forEach(fibers, Fiber.join)
      expect(calls.map((c) => c.addr)).toEqual(addrs)
      expect(calls.map((c) => c.at)).toEqual([0, 0, 1000, 1000, 2000, 2000])
      expect(dialer.queued()).toBe(0)
      expect(dialer.active()).toBe(0)
    }))

  it.effect("an interrupted caller cancels the dial (queued or running) once no caller is left", () =>
    Effect.gen(function*() {
      const [a, b] = [yield* fakePeer, yield* fakePeer]
      const { calls, finalized, connect } = scripted(
        new Map([["/ip4/1.1.1.1/tcp/1", a], ["/ip4/2.2.2.2/tcp/1", b]]),
        () => Effect.never
      )
      const dialer = yield* Dialer.make(connect, { maxParallelDials: 1 })
      const running1 = yield* Effect.forkChild(dialer.dial({ peer: a.peerId, addrs: [ma("/ip4/1.1.1.1/tcp/1")] }))
      const running2 = yield* Effect.forkChild(dialer.dial({ peer: a.peerId, addrs: [ma("/ip4/1.1.1.1/tcp/1")] }))
      const queued = yield* Effect.forkChild(dialer.dial({ peer: b.peerId, addrs: [ma("/ip4/2.2.2.2/tcp/1")] }))
      yield* settle
      expect([dialer.pending(), dialer.active(), dialer.queued()]).toEqual([2, 1, 1])
      // the queued dial goes away with its only caller
      yield* Fiber.interrupt(queued)
      expect([dialer.pending(), dialer.queued()]).toEqual([1, 0])
      // one of two callers leaves: the dial goes on
      yield* Fiber.interrupt(running1)
      expect(dialer.pending()).toBe(1)
      expect(finalized).toEqual([])
      // the last caller leaves: the attempt is interrupted and its scope closed
      yield* Fiber.interrupt(running2)
      expect(finalized).toEqual(["/ip4/1.1.1.1/tcp/1"])
      expect([dialer.pending(), dialer.active(), dialer.queued()]).toEqual([0, 0, 0])
      expect(calls.map((c) => c.addr)).toEqual(["/ip4/1.1.1.1/tcp/1"])
    }))

  it.effect("a dial still running when the dialer's scope closes fails with Aborted", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const { connect } = scripted(new Map([["/ip4/1.1.1.1/tcp/1", p]]), () => Effect.never)
      const scope = yield* Scope.make()
      const dialer = yield* Scope.provide(Dialer.make(connect), scope)
      const fiber = yield* Effect.forkChild(dialer.dial({ peer: p.peerId, addrs: [ma("/ip4/1.1.1.1/tcp/1")] }))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      const err = yield* Effect.flip(Fiber.join(fiber))
      expect(chain(err)).toEqual(["DialError", "Aborted"])
    }))
})

describe("dialer: timeouts and failures", () => {
  it.effect("an address that does not answer fails with Timeout at the per-address deadline; its scope is closed", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const { finalized, connect } = scripted(new Map([["/ip4/1.1.1.1/tcp/1", p]]), () => Effect.never)
      const dialer = yield* Dialer.make(connect, { dialTimeout: "3 seconds" })
      const fiber = yield* Effect.forkChild(dialer.dial({ peer: p.peerId, addrs: [ma("/ip4/1.1.1.1/tcp/1")] }))
      yield* TestClock.adjust("2999 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const err = yield* Effect.flip(Fiber.join(fiber))
      expect(chain(err)).toEqual(["DialError", "DialTimeout"])
      expect(err.reason._tag === "DialTimeout" && [err.reason.address, err.reason.timeout]).toEqual([
        "/ip4/1.1.1.1/tcp/1",
        3000
      ])
      expect(finalized).toEqual(["/ip4/1.1.1.1/tcp/1"])
    }))

  it.effect("several addresses that all fail give AllAddressesFailed with each address's error; one keeps its own reason", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const { connect } = scripted(new Map(), (a) => Effect.fail(refused(a)))
      const dialer = yield* Dialer.make(connect)
      const one = yield* Effect.flip(dialer.dial({ peer: p.peerId, addrs: [ma("/ip4/1.1.1.1/tcp/1")] }))
      expect(chain(one)).toEqual(["DialError", "TransportError", "Refused"])
      const all = yield* Effect.flip(
        dialer.dial({ peer: p.peerId, addrs: [ma("/ip4/2.2.2.2/tcp/1"), ma("/ip6/2001:db8::1/tcp/1")] })
      )
      expect(chain(all)).toEqual(["DialError", "AllAddressesFailed"])
      // IPv6 was tried first; the IPv4 attempt started at once when it failed
      expect(
        all.reason._tag === "AllAddressesFailed" &&
          all.reason.errors.map((e) => [e.addr, e.reason._tag, "reason" in e.reason ? e.reason.reason : undefined])
      ).toEqual([
        ["/ip6/2001:db8::1/tcp/1", "TransportError", "Refused"],
        ["/ip4/2.2.2.2/tcp/1", "TransportError", "Refused"]
      ])
      const none = yield* Effect.flip(dialer.dial({ peer: p.peerId, addrs: [] }))
      expect(chain(none)).toEqual(["DialError", "NoAddresses"])
    }))

  it.effect("RFC 8305 §5: attempts are staggered; a failure starts the next at once; the first connection wins and the others are cancelled", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const v6 = "/ip6/2001:db8::1/tcp/1"
      const v4a = "/ip4/1.1.1.1/tcp/1"
      const v4b = "/ip4/1.1.1.2/tcp/1"
      const { calls, finalized, connect } = scripted(new Map([[v6, p], [v4a, p], [v4b, p]]), (a) => {
        if (a === v6) return Effect.andThen(Effect.sleep("100 millis"), Effect.fail(refused(a)))
        if (a === v4a) return Effect.never
        return Effect.as(Effect.sleep("50 millis"), "ok" as const)
      })
      const dialer = yield* Dialer.make(connect)
      const fiber = yield* Effect.forkChild(dialer.dial({ peer: p.peerId, addrs: [v4a, v4b, v6].map(ma) }))
      yield* TestClock.adjust("100 millis") // v6 fails: v4a starts now instead of at 250 ms
      yield* TestClock.adjust("400 millis") // v4b starts at its scheduled 500 ms
      yield* TestClock.adjust("50 millis")
      const conn = yield* Fiber.join(fiber)
      expect(Multiaddr.toString(conn.remoteAddr)).toBe(v4b)
      expect(calls).toEqual([{ addr: v6, at: 0 }, { addr: v4a, at: 100 }, { addr: v4b, at: 500 }])
      // the failed attempt and the loser were closed; the winner's scope stays open
      expect(finalized.sort()).toEqual([v4a, v6].sort())
      expect(dialer.active()).toBe(0)
    }))
})

describe("dialer: backoff (a Schedule)", () => {
  it.effect("failures back off exponentially (doubling, jitter within ±20 %); force bypasses; success resets", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const addr = "/ip4/1.1.1.1/tcp/1"
      let failing = true
      const { calls, connect } = scripted(
        new Map([[addr, p]]),
        (a) => failing ? Effect.fail(refused(a)) : Effect.succeed("ok" as const)
      )
      const dialer = yield* Dialer.make(connect)
      const dial = (force = false) => dialer.dial({ peer: p.peerId, addrs: [ma(addr)], force })
      let expected = 1000
      for (let i = 0; i < 5; i++) {
        const now = yield* Clock.currentTimeMillis
        expect(chain(yield* Effect.flip(dial()))).toEqual(["DialError", "TransportError", "Refused"])
        const [entry] = dialer.backoffs()
        expect(entry?.failures).toBe(i + 1)
        const delay = entry!.until - now
        expect(delay).toBeGreaterThanOrEqual(0.8 * expected)
        expect(delay).toBeLessThanOrEqual(1.2 * expected)
        // within the backoff: refused without an attempt, with the time it ends
        const before = calls.length
        const backoff = yield* Effect.flip(dial())
        expect(chain(backoff)).toEqual(["DialError", "Backoff"])
        expect(backoff.reason._tag === "Backoff" && backoff.reason.until).toBe(entry!.until)
        expect(calls.length).toBe(before)
        yield* TestClock.adjust(delay - 1)
        expect(chain(yield* Effect.flip(dial()))).toEqual(["DialError", "Backoff"])
        yield* TestClock.adjust(1)
        expected *= 2
      }
      // force dials through a backoff
      yield* Effect.flip(dial())
      const before = calls.length
      expect(chain(yield* Effect.flip(dial(true)))).toEqual(["DialError", "TransportError", "Refused"])
      expect(calls.length).toBe(before + 1)
      // a success forgets every failure: the next failure starts from the base delay again
      failing = false
      yield* dial(true)
      expect(dialer.backoffs()).toEqual([])
      failing = true
      const now = yield* Clock.currentTimeMillis
      yield* Effect.flip(dial(true))
      const delay = dialer.backoffs()[0]!.until - now
      expect(delay).toBeGreaterThanOrEqual(800)
      expect(delay).toBeLessThanOrEqual(1200)
    }).pipe(Random.withSeed("backoff")))

  it.effect("backoff is per address: a peer's other addresses are still dialed; a custom Schedule is used as given", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const bad = "/ip4/1.1.1.1/tcp/1"
      const good = "/ip4/2.2.2.2/tcp/1"
      const { calls, connect } = scripted(
        new Map([[good, p]]),
        (a) => a === bad ? Effect.fail(refused(a)) : Effect.succeed("ok" as const)
      )
      const dialer = yield* Dialer.make(connect, { backoff: Schedule.spaced("7 seconds") })
      yield* Effect.flip(dialer.dial({ peer: p.peerId, addrs: [ma(bad)] }))
      expect(dialer.backoffs().map((b) => b.until)).toEqual([7000])
      const conn = yield* dialer.dial({ peer: p.peerId, addrs: [ma(bad), ma(good)] })
      expect(Multiaddr.toString(conn.remoteAddr)).toBe(good)
      expect(calls.map((c) => c.addr)).toEqual([bad, good])
    }))

  it.effect("backoff entries are forgotten after backoffReset of quiet (the pruning fiber)", () =>
    Effect.gen(function*() {
      const p = yield* fakePeer
      const addr = "/ip4/1.1.1.1/tcp/1"
      const { connect } = scripted(new Map(), (a) => Effect.fail(refused(a)))
      const dialer = yield* Dialer.make(connect, { backoff: Schedule.spaced("1 second"), backoffReset: "1 minute" })
      yield* Effect.flip(dialer.dial({ peer: p.peerId, addrs: [ma(addr)] }))
      expect(dialer.backoffs()).toHaveLength(1)
      yield* TestClock.adjust("1 minute")
      expect(dialer.backoffs()).toHaveLength(1)
      yield* TestClock.adjust("1 minute")
      expect(dialer.backoffs()).toHaveLength(0)
    }))
})
