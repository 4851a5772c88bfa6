/**
 * TCP port reuse for hole punching (issue 17; relay/DCUtR.md §The Protocol
 * step 5, "TCP Simultaneous Connect"): with `reusePort` a listener is opened
 * with SO_REUSEPORT and a dial with `fromListenPort` leaves from its port
 * (Node's `net.BoundSocket`), on loopback; the upgrade takes an explicit role,
 * so two sides that both dialed (a simultaneous open) still agree on who is
 * the security and muxer initiator. The simultaneous open itself, through
 * NATs, is `spec-tests/transport/SimultaneousOpenNat.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Layer } from "effect"
import type * as Connection from "../../src/connection/Connection.ts"
import * as Registrar from "../../src/connection/Registrar.ts"
import * as Upgrader from "../../src/connection/Upgrader.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Identity from "../../src/core/Identity.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import { portOf } from "../support/transport.ts"

const LOOPBACK = ma("/ip4/127.0.0.1/tcp/0")

describe("TCP reusePort", () => {
  it.live("issue 17 / DCUtR §The Protocol step 5: a dial with fromListenPort leaves from the listening port", () =>
    Effect.gen(function*() {
      const a = Tcp.make({ reusePort: true })
      const b = Tcp.make({ reusePort: true })
      const seen = yield* Deferred.make<Multiaddr.Multiaddr>()
      const la = yield* a.listen(LOOPBACK, (conn) => Deferred.succeed(seen, conn.remoteAddr))
      const lb = yield* b.listen(LOOPBACK, () => Effect.void)
      const raw = yield* b.dial(la.addrs[0]!, { fromListenPort: true })
      expect(portOf(raw.localAddr)).toBe(portOf(lb.addrs[0]!))
      expect(portOf(yield* Deferred.await(seen))).toBe(portOf(lb.addrs[0]!))
      // the listener keeps accepting while a dial holds its port
      const plain = yield* Tcp.transport.dial(lb.addrs[0]!)
      expect(portOf(plain.remoteAddr)).toBe(portOf(lb.addrs[0]!))
    }).pipe(Effect.scoped))

  it.live("issue 17: dialFromListenPort leaves dials to this machine's own addresses on ephemeral ports", () =>
    Effect.gen(function*() {
      // from the listening port such a dial could reach that very port: a socket connected to itself
      const a = Tcp.make({ reusePort: true })
      const b = Tcp.make({ reusePort: true, dialFromListenPort: true })
      const la = yield* a.listen(LOOPBACK, () => Effect.never)
      const lb = yield* b.listen(LOOPBACK, () => Effect.never)
      const toOther = yield* b.dial(la.addrs[0]!)
      expect(portOf(toOther.localAddr)).not.toBe(portOf(lb.addrs[0]!))
      const toSelf = yield* b.dial(lb.addrs[0]!)
      expect(portOf(toSelf.localAddr)).not.toBe(portOf(lb.addrs[0]!))
      expect(portOf(toSelf.remoteAddr)).toBe(portOf(lb.addrs[0]!))
      // asked explicitly, the listening port it is (twice to one address: the second cannot be made)
      const explicit = yield* b.dial(la.addrs[0]!, { fromListenPort: true })
      expect(portOf(explicit.localAddr)).toBe(portOf(lb.addrs[0]!))
      const e = yield* Effect.flip(b.dial(la.addrs[0]!, { fromListenPort: true }))
      expect(e.reason).not.toBe("Unsupported")
    }).pipe(Effect.scoped))

  it.live("issue 17: fromListenPort without a reusePort listener of the family fails Unsupported", () =>
    Effect.gen(function*() {
      const target = yield* Tcp.transport.listen(LOOPBACK, () => Effect.void)
      const noReuse = Tcp.make()
      yield* noReuse.listen(LOOPBACK, () => Effect.void)
      const e1 = yield* Effect.flip(noReuse.dial(target.addrs[0]!, { fromListenPort: true }))
      expect(e1.reason).toBe("Unsupported")
      const v6Only = Tcp.make({ reusePort: true })
      yield* v6Only.listen(ma("/ip6/::1/tcp/0"), () => Effect.void).pipe(Effect.ignore)
      const e2 = yield* Effect.flip(v6Only.dial(target.addrs[0]!, { fromListenPort: true }))
      expect(e2.reason).toBe("Unsupported")
      // once the listener is closed its port is no longer offered
      const closing = Tcp.make({ reusePort: true })
      yield* Effect.scoped(closing.listen(LOOPBACK, () => Effect.void))
      const e3 = yield* Effect.flip(closing.dial(target.addrs[0]!, { fromListenPort: true }))
      expect(e3.reason).toBe("Unsupported")
    }).pipe(Effect.scoped))

  it.live("issue 17: Host.dialDirect with fromListenPort makes a registered connection from the listening port", () =>
    Effect.gen(function*() {
      const a = yield* tcpNode({ tcp: { reusePort: true } })
      const b = yield* tcpNode({ tcp: { reusePort: true } })
      const conn = yield* b.host.dialDirect(Multiaddr.decapsulateCode(a.addr, Multiaddr.codes.p2p), {
        peer: a.identity.peerId,
        fromListenPort: true,
        timeout: "10 seconds"
      })
      expect(portOf(conn.localAddr)).toBe(portOf(b.addr))
      expect(b.host.connections(a.identity.peerId)).toContain(conn)
      // the connection carries streams (ping picks the direct connection: it is the only one)
      yield* b.ping.ping(a.identity.peerId)
      // a wrong peer is refused as in any dial
      const other = yield* tcpNode()
      const err = yield* Effect.flip(
        b.host.dialDirect(Multiaddr.decapsulateCode(other.addr, Multiaddr.codes.p2p), { peer: a.identity.peerId })
      )
      expect(err._tag).toBe("DialError")
    }).pipe(Effect.scoped))

  it.live("issue 17 / DCUtR §The Protocol step 5: both sides outbound, the explicit roles make one secured, muxed connection", () =>
    Effect.gen(function*() {
      const upgraderOf = Effect.gen(function*() {
        const noise = yield* Noise.make()
        const context = yield* Layer.build(Layer.mergeAll(Identity.layerEd25519, Registrar.layer))
        const registrar = Context.get(context, Registrar.Registrar)
        yield* registrar.handle("/echo/1.0.0", (stream) =>
          Effect.gen(function*() {
            const chunk = yield* stream.read
            if (chunk.length > 0) yield* stream.write(chunk)
            yield* stream.closeWrite
          }))
        const upgrader = yield* Upgrader.make({ security: [noise], muxers: [Yamux.yamux] }).pipe(
          Effect.provideContext(context)
        )
        return upgrader
      })
      const ua = yield* upgraderOf
      const ub = yield* upgraderOf
      const [da, db] = yield* Duplex.pair()
      const raw = (duplex: Duplex.Duplex): Transport.RawConnection => ({
        duplex,
        remoteAddr: ma("/ip4/203.0.113.2/tcp/4001"),
        localAddr: ma("/ip4/10.0.0.2/tcp/4001")
      })
      // what a simultaneous open gives: an outbound connection on each side
      const [ca, cb] = yield* Effect.all([
        ua.upgradeOutbound(raw(da), { role: "initiator" }),
        ub.upgradeOutbound(raw(db), { role: "responder" })
      ], { concurrency: 2 })
      expect(ca.direction).toBe("outbound")
      expect(cb.direction).toBe("outbound")
      expect(PeerId.equals(ca.remotePeer, cb.remotePeer)).toBe(false)
      // the muxer roles agree too: streams opened on both sides reach the other
      const echo = (conn: Connection.Connection, text: string) =>
        Effect.scoped(Effect.gen(function*() {
          const stream = yield* conn.newStream(["/echo/1.0.0"], { lazy: false })
          yield* stream.write([new TextEncoder().encode(text)])
          const back = yield* stream.read
          return new TextDecoder().decode(Duplex.concat(back))
        }))
      expect(yield* Effect.all([echo(ca, "from a"), echo(cb, "from b")], { concurrency: 2 })).toEqual([
        "from a",
        "from b"
      ])
    }).pipe(Effect.scoped))
})
