/**
 * What a node advertises (issue 17 §Observed address handling): observed
 * addresses are advertised only once confirmed while an AutoNAT client holds
 * `requireConfirmation`; `announce` replaces the advertised addresses and
 * `noAnnounce` filters them (go-libp2p's `AddrsFactory` with kubo's
 * `Addresses.Announce`/`NoAnnounce`); identify sends what the AddressManager
 * advertises, and pushes when it changes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result, Stream } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../src/core/MultiaddrNet.ts"
import * as AddressManager from "../../src/host/AddressManager.ts"
import { tcpNode } from "../support/node.ts"

const ma = (s: string) => Result.getOrThrow(Multiaddr.fromString(s))
const strings = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => addrs.map(Multiaddr.toString)

const LISTEN = "/ip4/0.0.0.0/tcp/4001"
const LOCAL = "/ip4/192.168.1.5/tcp/4001"
const OBSERVED = "/ip4/198.51.100.7/tcp/4001"

/** A manager on LISTEN whose OBSERVED address four observers reported (trusted). */
const trustedManager = (options: AddressManager.AddressManagerOptions = {}) =>
  Effect.gen(function*() {
    const am = yield* AddressManager.make(options)
    yield* am.addListenAddrs([ma(LISTEN), ma(LOCAL)])
    for (const observer of ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]) {
      yield* am.observe({ observed: ma(OBSERVED), local: ma(LOCAL), remote: ma(`/ip4/${observer}/tcp/5000`) })
    }
    return am
  })

describe("AddressManager: confirmation, announce, no-announce", () => {
  it.effect("while requireConfirmation is held, a trusted observed address is advertised only once confirmed", () =>
    Effect.gen(function*() {
      const am = yield* trustedManager()
      expect(strings(yield* am.addrs)).toEqual([LOCAL, OBSERVED])
      yield* Effect.scoped(Effect.gen(function*() {
        yield* am.requireConfirmation
        expect(strings(yield* am.addrs)).toEqual([LOCAL])
        expect((yield* am.observed).map((o) => o.trusted)).toEqual([true]) // still an AutoNAT candidate
        yield* am.confirm(ma(OBSERVED))
        expect(strings(yield* am.addrs)).toEqual([LOCAL, OBSERVED])
        yield* am.unconfirm(ma(OBSERVED))
        expect(strings(yield* am.addrs)).toEqual([LOCAL])
      }))
      // released with its scope
      expect(strings(yield* am.addrs)).toEqual([LOCAL, OBSERVED])
    }))

  it.effect("a wildcard listen address is advertised as the machine's interface addresses, never as 0.0.0.0", () =>
    Effect.gen(function*() {
      const am = yield* AddressManager.make({})
      const advertised = strings(yield* am.advertise([ma(LISTEN), ma("/ip4/127.0.0.1/tcp/5")]))
      expect(advertised).not.toContain(LISTEN)
      // loopback is an interface everywhere; every interface address of the family, with the port
      expect(advertised).toContain("/ip4/127.0.0.1/tcp/4001")
      expect(advertised.filter((a) => a.endsWith("/tcp/4001"))).toEqual(
        strings(yield* MultiaddrNet.interfaceAddrs(ma(LISTEN)))
      )
      expect(advertised).toContain("/ip4/127.0.0.1/tcp/5")
      // a wildcard in noAnnounce leaves out what it stands for
      const quiet = yield* AddressManager.make({ noAnnounce: [ma(LISTEN)] })
      expect(strings(yield* quiet.advertise([ma(LISTEN)]))).toEqual([])
    }))

  it.effect("announce replaces every advertised address; noAnnounce removes addresses by prefix", () =>
    Effect.gen(function*() {
      const announced = yield* trustedManager({
        announce: [ma("/dns4/example.com/tcp/4001"), ma("/ip4/192.0.2.1/tcp/4001")]
      })
      expect(strings(yield* announced.addrs)).toEqual(["/dns4/example.com/tcp/4001", "/ip4/192.0.2.1/tcp/4001"])
      expect(strings(yield* announced.advertise([ma(LISTEN)]))).toEqual([
        "/dns4/example.com/tcp/4001",
        "/ip4/192.0.2.1/tcp/4001"
      ])
      const filtered = yield* trustedManager({ noAnnounce: [ma("/ip4/192.168.1.5"), ma(LISTEN)] })
      expect(strings(yield* filtered.addrs)).toEqual([OBSERVED])
      expect(strings(yield* filtered.advertise([ma(LISTEN), ma("/ip4/127.0.0.1/tcp/4001")]))).toEqual([
        "/ip4/127.0.0.1/tcp/4001",
        OBSERVED
      ])
      const both = yield* trustedManager({
        announce: [ma("/ip4/192.0.2.1/tcp/4001"), ma("/ip4/192.0.2.2/tcp/4001")],
        noAnnounce: [ma("/ip4/192.0.2.2/tcp/4001")]
      })
      expect(strings(yield* both.addrs)).toEqual(["/ip4/192.0.2.1/tcp/4001"])
    }))

  it.live("identify sends the announced addresses, without the no-announce ones", () =>
    Effect.gen(function*() {
      const announcer = yield* tcpNode({
        addressManager: {
          announce: [ma("/ip4/192.0.2.1/tcp/4001"), ma("/ip4/192.0.2.9/tcp/4001")],
          noAnnounce: [ma("/ip4/192.0.2.9")]
        }
      })
      const plain = yield* tcpNode({ addressManager: { noAnnounce: [ma("/ip4/127.0.0.1")] } })
      const asker = yield* tcpNode()
      const r1 = yield* asker.identify.identify(yield* asker.host.dial(announcer.addr))
      expect(strings(r1.listenAddrs)).toEqual(["/ip4/192.0.2.1/tcp/4001"])
      expect(strings(r1.signedPeerRecord?.addrs ?? [])).toEqual(["/ip4/192.0.2.1/tcp/4001"])
      const r2 = yield* asker.identify.identify(yield* asker.host.dial(plain.addr))
      expect(strings(r2.listenAddrs)).toEqual([])
    }), 30_000)

  it.live(
    "a confirmed address is pushed to connected peers (identify push on AddressesChanged)",
    () =>
      Effect.gen(function*() {
        const node = yield* tcpNode()
        const peer = yield* tcpNode()
        yield* peer.identify.identify(yield* peer.host.dial(node.addr))
        const pushed = yield* peer.identify.subscribe
        yield* node.addressManager.confirm(ma("/ip4/192.0.2.7/tcp/4001"))
        const got = yield* Stream.runHead(
          Stream.filter(pushed, (r) => r.listenAddrs.some((a) => Multiaddr.toString(a) === "/ip4/192.0.2.7/tcp/4001"))
        )
        expect(got._tag).toBe("Some")
      }),
    30_000
  )
})
