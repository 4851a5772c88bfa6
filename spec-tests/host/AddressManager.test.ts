/**
 * The AddressManager under TestClock: listen, observed, confirmed addresses and
 * reachability. No libp2p spec defines it; the observed-address rules follow
 * go-libp2p's p2p/host/observedaddrs (thin-waist matching, one observer per
 * IPv4 address or IPv6 /56, an activation threshold of distinct observers),
 * whose terms the test names use, plus our bounds and Clock-based expiry.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../src/core/MultiaddrNet.ts"
import * as AddressManager from "../../src/host/AddressManager.ts"
import { bare } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"

const ma = (s: string) => Result.getOrThrow(Multiaddr.fromString(s))
const strings = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => addrs.map(Multiaddr.toString)

const LISTEN = "/ip4/0.0.0.0/tcp/4001"
const LOCAL = "/ip4/192.168.1.5/tcp/4001"
const OBSERVED = "/ip4/198.51.100.7/tcp/4001"

/** A manager listening on `listen`, with `options`. */
const manager = (options: AddressManager.AddressManagerOptions = {}, listen: ReadonlyArray<string> = [LISTEN]) =>
  Effect.gen(function*() {
    const am = yield* AddressManager.make(options)
    yield* am.addListenAddrs(listen.map(ma))
    return am
  })

/** `observer` (an IPv4 or IPv6 address) saw us at `observed` on a connection to `local`. */
const report = (
  am: AddressManager.AddressManager["Service"],
  observer: string,
  observed = OBSERVED,
  local = LOCAL
) => {
  const family = observer.includes(":") ? "ip6" : "ip4"
  return am.observe({ observed: ma(observed), local: ma(local), remote: ma(`/${family}/${observer}/tcp/50000`) })
}

/** The first `n` events of the stream, collected by a fiber started (and subscribed) now. */
const takeEvents = (am: AddressManager.AddressManager["Service"], n: number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Stream.runCollect(Stream.take(am.events, n)))
    yield* TestClock.adjust(0)
    return fiber
  })

describe("AddressManager: observed addresses (go-libp2p observedaddrs)", () => {
  it.effect("an observed address is trusted only once activationThreshold (4) distinct observers reported it", () =>
    Effect.gen(function*() {
      const am = yield* manager()
      for (const o of ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) expect(yield* report(am, o)).toBe("Recorded")
      expect(strings(yield* am.addrs)).toEqual([])
      expect((yield* am.observed).map((o) => [o.observers, o.trusted])).toEqual([[3, false]])
      yield* report(am, "4.4.4.4")
      expect(strings(yield* am.addrs)).toEqual([OBSERVED])
      expect((yield* am.observed).map((o) => [Multiaddr.toString(o.observed), o.observers, o.trusted])).toEqual([
        [OBSERVED, 4, true]
      ])
    }))

  it.effect("one IPv4 address is one observer, and so is one IPv6 /56", () =>
    Effect.gen(function*() {
      const am = yield* manager()
      // one host on four ports, one home network on four addresses of one /56
      for (let i = 0; i < 4; i++) {
        yield* am.observe({ observed: ma(OBSERVED), local: ma(LOCAL), remote: ma(`/ip4/5.5.5.5/tcp/${4000 + i}`) })
        yield* report(am, `2001:4860:1:2${i}::1`)
      }
      expect((yield* am.observed).map((o) => o.observers)).toEqual([2])
      // four different /56 prefixes
      for (let i = 0; i < 4; i++) yield* report(am, `2001:4860:1:${i}00::1`, "/ip4/198.51.100.8/tcp/4001")
      expect(strings(yield* am.addrs)).toEqual(["/ip4/198.51.100.8/tcp/4001"])
      expect(AddressManager.observerOf(ma("/ip6/2001:4860:1:2ff::1/tcp/1"))).toBe(
        AddressManager.observerOf(ma("/ip6/2001:4860:1:200::2/tcp/2"))
      )
      expect(AddressManager.observerOf(ma("/memory/1"))).toBeUndefined()
    }))

  it.effect("an observer's newer observation for a listener replaces its older one", () =>
    Effect.gen(function*() {
      const am = yield* manager()
      const observers = ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]
      for (const o of observers) yield* report(am, o)
      expect(strings(yield* am.addrs)).toEqual([OBSERVED])
      // the NAT mapping changed: the same four now see another port
      for (const o of observers) yield* report(am, o, "/ip4/198.51.100.7/tcp/5555")
      expect(strings(yield* am.addrs)).toEqual(["/ip4/198.51.100.7/tcp/5555"])
      expect((yield* am.observed).map((o) => Multiaddr.toString(o.observed))).toEqual(["/ip4/198.51.100.7/tcp/5555"])
    }))

  it.effect("ignored: loopback and relayed observations, other shapes, other listeners, a mismatched transport, a non-IP observer", () =>
    Effect.gen(function*() {
      const am = yield* manager()
      expect(yield* report(am, "1.1.1.1", "/ip4/127.0.0.1/tcp/4001")).toBe("Loopback")
      expect(
        yield* report(
          am,
          "1.1.1.1",
          "/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/p2p-circuit"
        )
      ).toBe("Relayed")
      expect(yield* report(am, "1.1.1.1", "/dns4/example.com/tcp/4001")).toBe("NotThinWaist")
      expect(yield* report(am, "1.1.1.1", OBSERVED, "/ip4/192.168.1.5/tcp/51234")).toBe("NotListening")
      expect(yield* report(am, "1.1.1.1", "/ip4/198.51.100.7/udp/4001")).toBe("TransportMismatch")
      expect(yield* report(am, "1.1.1.1", "/ip6/2001:db8::7/tcp/4001")).toBe("TransportMismatch")
      expect(yield* am.observe({ observed: ma(OBSERVED), local: ma(LOCAL), remote: ma("/memory/7") })).toBe(
        "UnknownObserver"
      )
      expect(yield* am.observed).toEqual([])
    }))

  it.effect("a trusted address is advertised with the rest of each listener it belongs to (a wildcard matches any IP)", () =>
    Effect.gen(function*() {
      const am = yield* manager({}, ["/ip4/0.0.0.0/tcp/4002/ws", "/ip4/192.168.1.5/tcp/4003", "/ip6/::/tcp/4002"])
      for (const o of ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]) {
        yield* report(am, o, "/ip4/198.51.100.7/tcp/1234", "/ip4/10.0.0.2/tcp/4002")
      }
      expect(strings(yield* am.addrs)).toEqual([
        "/ip4/192.168.1.5/tcp/4003",
        "/ip4/198.51.100.7/tcp/1234/ws"
      ])
      // a specific listener matches only its own IP
      expect(yield* report(am, "1.1.1.1", OBSERVED, "/ip4/192.168.1.6/tcp/4003")).toBe("NotListening")
    }))

  it.effect("at most maxPerListenAddr trusted addresses per listener, those with the most observers", () =>
    Effect.gen(function*() {
      const am = yield* manager({ activationThreshold: 2, maxPerListenAddr: 2 })
      // address k is reported by k + 2 observers
      for (let k = 0; k < 3; k++) {
        for (let i = 0; i < k + 2; i++) yield* report(am, `9.9.${k}.${i}`, `/ip4/198.51.100.${k}/tcp/4001`)
      }
      expect(strings(yield* am.addrs)).toEqual(["/ip4/198.51.100.2/tcp/4001", "/ip4/198.51.100.1/tcp/4001"])
      expect((yield* am.observed).map((o) => o.trusted)).toEqual([true, true, false])
    }))
})

describe("AddressManager: bounds and expiry", () => {
  it.effect("observations expire after observationTtl (Clock), and the pruning fiber says so without a call", () =>
    Effect.gen(function*() {
      const am = yield* manager({ observationTtl: "10 minutes", pruneInterval: "1 minute" })
      for (const o of ["1.1.1.1", "2.2.2.2", "3.3.3.3"]) yield* report(am, o)
      yield* TestClock.adjust("5 minutes")
      yield* report(am, "4.4.4.4")
      expect(strings(yield* am.addrs)).toEqual([OBSERVED])
      const events = yield* takeEvents(am, 1)
      // the first three expire at 10 minutes; the fiber prunes at the next minute
      yield* TestClock.adjust("5 minutes")
      const [changed] = yield* Fiber.join(events)
      expect(changed).toEqual({ _tag: "AddressesChanged", addrs: [] })
      expect((yield* am.observed).map((o) => o.observers)).toEqual([1])
      yield* TestClock.adjust("5 minutes")
      expect(yield* am.observed).toEqual([])
    }))

  it.effect("maxObservedAddrs: a new address evicts a single-observer one, least recently seen first; Full when none has one", () =>
    Effect.gen(function*() {
      const am = yield* manager({ maxObservedAddrs: 2, activationThreshold: 2 })
      yield* report(am, "1.1.1.1", "/ip4/198.51.100.1/tcp/4001")
      yield* TestClock.adjust("1 second")
      yield* report(am, "2.2.2.2", "/ip4/198.51.100.2/tcp/4001")
      yield* report(am, "3.3.3.3", "/ip4/198.51.100.3/tcp/4001")
      expect((yield* am.observed).map((o) => Multiaddr.toString(o.observed)).sort()).toEqual([
        "/ip4/198.51.100.2/tcp/4001",
        "/ip4/198.51.100.3/tcp/4001"
      ])
      yield* report(am, "4.4.4.4", "/ip4/198.51.100.2/tcp/4001")
      yield* report(am, "5.5.5.5", "/ip4/198.51.100.3/tcp/4001")
      // both held addresses are trusted (two observers): a flood of new ones cannot push them out
      for (let i = 0; i < 10; i++) expect(yield* report(am, `8.8.8.${i}`, `/ip4/203.0.113.${i}/tcp/4001`)).toBe("Full")
      expect((yield* am.observed).map((o) => o.observers)).toEqual([2, 2])
      expect(strings(yield* am.addrs)).toHaveLength(2)
    }))

  it.effect("maxObserversPerAddr: the least recently seen observer makes room", () =>
    Effect.gen(function*() {
      const am = yield* manager({ maxObserversPerAddr: 4 })
      for (let i = 0; i < 10; i++) {
        yield* report(am, `7.7.7.${i}`)
        yield* TestClock.adjust("1 second")
      }
      const [held] = yield* am.observed
      expect(held?.observers).toBe(4)
      // observers 0..5 were dropped; 0 comes back and takes the place of the least recently seen, 6
      yield* report(am, "7.7.7.0")
      expect((yield* am.observed)[0]?.observers).toBe(4)
      expect(yield* am.observed).toHaveLength(1)
    }))

  it.effect("confirmed addresses: at most maxConfirmedAddrs, the oldest confirmation makes room; unconfirm removes", () =>
    Effect.gen(function*() {
      const am = yield* manager({ maxConfirmedAddrs: 2 })
      for (const a of ["/ip4/198.51.100.1/tcp/4001", "/ip4/198.51.100.2/tcp/4001", "/ip4/198.51.100.1/tcp/4001"]) {
        yield* am.confirm(ma(a))
      }
      yield* am.confirm(ma("/ip4/198.51.100.3/tcp/4001"))
      expect(strings(am.confirmed())).toEqual(["/ip4/198.51.100.1/tcp/4001", "/ip4/198.51.100.3/tcp/4001"])
      yield* am.unconfirm(ma("/ip4/198.51.100.1/tcp/4001"))
      expect(strings(yield* am.addrs)).toEqual(["/ip4/198.51.100.3/tcp/4001"])
    }))

  it.effect("events are a sliding buffer: a slow subscriber gets the newest eventBuffer events, the node never waits", () =>
    Effect.gen(function*() {
      const am = yield* manager({ eventBuffer: 2 })
      const reader = yield* Effect.forkChild(
        am.events.pipe(Stream.tap(() => Effect.sleep("1 minute")), Stream.take(3), Stream.runCollect)
      )
      yield* TestClock.adjust(0)
      yield* am.setReachability("private")
      yield* TestClock.adjust(0) // taken at once; the reader is now busy for a minute
      // three changes while it is busy: a buffer of two keeps the newest two
      yield* am.setReachability("public")
      yield* am.setReachability("unknown")
      yield* am.setReachability("private")
      yield* TestClock.adjust("3 minutes")
      const got = yield* Fiber.join(reader)
      expect(got.map((e) => e._tag === "ReachabilityChanged" ? e.reachability : e._tag)).toEqual([
        "private",
        "unknown",
        "private"
      ])
    }))
})

describe("AddressManager: listen addresses, reachability, classification", () => {
  it.effect("listen addresses are advertised (wildcards left out); adding and removing them publishes AddressesChanged", () =>
    Effect.gen(function*() {
      const am = yield* manager({}, [])
      const events = yield* takeEvents(am, 2)
      yield* am.addListenAddrs([ma("/ip4/0.0.0.0/tcp/4001"), ma("/ip4/127.0.0.1/tcp/4002")])
      yield* am.addListenAddrs([ma("/ip4/127.0.0.1/tcp/4002")]) // no change, no event
      yield* am.removeListenAddrs([ma("/ip4/127.0.0.1/tcp/4002")])
      expect(strings(am.listenAddrs())).toEqual(["/ip4/0.0.0.0/tcp/4001"])
      const got = yield* Fiber.join(events)
      expect(got.map((e) => e._tag === "AddressesChanged" ? strings(e.addrs) : e._tag)).toEqual([
        ["/ip4/127.0.0.1/tcp/4002"],
        []
      ])
    }))

  it.effect("reachability is unknown until set; each change is published once, with the addresses it covers", () =>
    Effect.gen(function*() {
      const am = yield* manager()
      expect(am.reachability()).toBe("unknown")
      const events = yield* takeEvents(am, 2)
      const covered = [ma(OBSERVED)]
      yield* am.setReachability("public", covered)
      yield* am.setReachability("public", covered)
      yield* am.setReachability("private")
      expect(am.reachability()).toBe("private")
      expect(yield* Fiber.join(events)).toEqual([
        { _tag: "ReachabilityChanged", reachability: "public", addrs: covered },
        { _tag: "ReachabilityChanged", reachability: "private", addrs: [] }
      ])
    }))

  it.effect("classify uses the configured public CIDRs (--public-cidr); observed addresses carry their class", () =>
    Effect.gen(function*() {
      const cidr = Result.getOrThrow(MultiaddrNet.parseCidr("198.51.100.0/24"))
      const plain = yield* manager()
      const test = yield* manager({ publicCidrs: [cidr] })
      expect(plain.classify(ma(OBSERVED))).toBe("reserved")
      expect(test.classify(ma(OBSERVED))).toBe("public")
      expect(test.classify(ma("/ip4/203.0.113.1/tcp/1"))).toBe("reserved")
      yield* report(test, "1.1.1.1")
      expect((yield* test.observed).map((o) => o.addressClass)).toEqual(["public"])
    }))
})

describe("AddressManager in a node (the presets wire it to the Host)", () => {
  it.live("the Host hands what its transports bound to the AddressManager, /p2p-less, as listen addresses", () =>
    Effect.gen(function*() {
      const node = yield* tcpNode()
      const am = node.addressManager
      expect(strings(am.listenAddrs())).toEqual(node.host.addrs().map(bare))
      expect(am.listenAddrs().length).toBe(1)
    }))
})
