/**
 * The whole stack in-process (memory transport): multistream-select → Noise →
 * Yamux → identify and ping, two nodes, both directions.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as Nodes from "../../layers/Node.ts"
import { Registrar } from "../../src/connection/Registrar.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { Host } from "../../src/host/Host.ts"
import { Peerstore } from "../../src/host/Peerstore.ts"
import { Identify } from "../../src/protocols/identify/Identify.ts"
import * as Ping from "../../src/protocols/ping/Ping.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { MemoryNetwork } from "../../src/transport/Memory.ts"
import { chain } from "../support/errors.ts"
import { ma } from "../support/multiaddr.ts"

/** Build a node on the shared memory network in the current scope and return its services. */
const node = (options: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const network = yield* MemoryNetwork
    const ctx = yield* Layer.buildWithScope(
      Nodes.Memory({ listen: [ma("/memory/0")], ...options }).pipe(
        Layer.provide(Layer.succeed(MemoryNetwork, network))
      ),
      scope
    )
    return {
      host: Context.get(ctx, Host),
      ping: Context.get(ctx, Ping.Ping),
      identify: Context.get(ctx, Identify),
      registrar: Context.get(ctx, Registrar),
      peerstore: Context.get(ctx, Peerstore)
    }
  })

describe("node over the memory transport", () => {
  it.live("connections spec §Upgrading: dial, secure with Noise, mux with Yamux; ping both ways [connections:definitions:2] [connections:interoperability:1]", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const b = yield* node()
      expect(a.host.addrs()).toHaveLength(1)
      const rtts = yield* a.ping.ping(b.host.addrs()[0]!, { count: 3 })
      expect(rtts).toHaveLength(3)
      for (const r of rtts) expect(r).toBeGreaterThanOrEqual(0)
      // b reuses the connection a opened (one connection per peer pair)
      const back = yield* b.ping.ping(a.host.peerId, { count: 1 })
      expect(back).toHaveLength(1)
      expect(a.host.connections()).toHaveLength(1)
      expect(b.host.connections()).toHaveLength(1)
      expect(PeerId.equals(a.host.connections()[0]!.remotePeer, b.host.peerId)).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("ping spec §Protocol: concurrent pings to one peer share one outbound stream at a time, so the listener's 2-stream limit never bites [ping:protocol:3] [ping:protocol:4]", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const b = yield* node()
      yield* a.host.dial(b.host.addrs()[0]!)
      // a's view, sampled while the pings run: its open outbound ping streams
      let most = 0
      const sampler = yield* Effect.forkChild(Effect.forever(Effect.andThen(
        Effect.sync(() => {
          const open = a.host.connections().flatMap((c) => c.streams())
            .filter((st) => st.protocol === Ping.PROTOCOL && st.direction === "outbound").length
          most = Math.max(most, open)
        }),
        Effect.sleep("1 millis")
      )))
      const results = yield* Effect.forEach(
        Array.from({ length: 6 }, () => 0),
        () => a.ping.ping(b.host.addrs()[0]!, { count: 3 }),
        { concurrency: "unbounded" }
      )
      yield* Fiber.interrupt(sampler)
      // without the per-peer lane the third concurrent stream would be refused by b's limit of 2
      expect(results.map((r) => r.length)).toEqual([3, 3, 3, 3, 3, 3])
      expect(most).toBeLessThanOrEqual(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("identify spec §identify: the dialer learns the listener's key, addrs, protocols and a signed peer record", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const b = yield* node({ agentVersion: "test-b/1.0" })
      const conn = yield* a.host.dial(b.host.addrs()[0]!)
      const result = yield* a.identify.identify(conn)
      expect(result.agentVersion).toBe("test-b/1.0")
      expect(result.protocolVersion).toBe("ipfs/0.1.0")
      expect(result.protocols).toContain("/ipfs/ping/1.0.0")
      expect(result.protocols).toContain("/ipfs/id/1.0.0")
      expect(result.listenAddrs.map(Multiaddr.toString)).toEqual([
        "/memory/" + Multiaddr.components(b.host.addrs()[0]!)[0]!.value
      ])
      expect(result.signedPeerRecord?.addrs.map(Multiaddr.toString)).toEqual(result.listenAddrs.map(Multiaddr.toString))
      expect(result.publicKey !== undefined && PeerId.equals(PeerId.fromPublicKey(result.publicKey), b.host.peerId))
        .toBe(true)
      expect(a.peerstore.get(b.host.peerId)?.protocols).toContain("/ipfs/ping/1.0.0")
      // observed address: b saw a's dialing address
      expect(result.observedAddr).toBeDefined()
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("identify spec §identify (signedPeerRecord): a node signs its record once per address set, every connection gets that envelope; a new listen address gives a new record with a higher seq", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const c = yield* node()
      const b = yield* node()
      const fromA = yield* a.identify.identify(yield* a.host.dial(b.host.addrs()[0]!))
      const fromC = yield* c.identify.identify(yield* c.host.dial(b.host.addrs()[0]!))
      expect(fromC.signedPeerRecord?.envelope).toEqual(fromA.signedPeerRecord?.envelope)
      expect(fromC.signedPeerRecord?.seq).toBe(fromA.signedPeerRecord?.seq)
      yield* b.host.listen([ma("/memory/0")])
      yield* a.host.hangUp(b.host.peerId)
      const again = yield* a.identify.identify(yield* a.host.dial(b.host.addrs()[0]!))
      expect(again.signedPeerRecord!.seq).toBeGreaterThan(fromA.signedPeerRecord!.seq)
      expect(again.signedPeerRecord!.addrs.map(Multiaddr.toString).sort()).toEqual(
        b.host.addrs().map((x) => Multiaddr.toString(Multiaddr.decapsulateCode(x, Multiaddr.codes.p2p))).sort()
      )
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("identify spec §identify/push: registering a protocol pushes the new list to connected peers [identify:identifypush:1] [connections:supported-protocols:5]", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const b = yield* node()
      const conn = yield* a.host.dial(b.host.addrs()[0]!)
      yield* a.identify.identify(conn)
      yield* b.registrar.handle("/test/new/1.0.0", () => Effect.void)
      // wait until a's peerstore sees the new protocol
      for (let i = 0; i < 100; i++) {
        if (a.peerstore.get(b.host.peerId)?.protocols.includes("/test/new/1.0.0")) break
        yield* Effect.sleep("20 millis")
      }
      expect(a.peerstore.get(b.host.peerId)?.protocols).toContain("/test/new/1.0.0")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("a custom protocol streams 4 MiB both ways over one stream; a failing handler resets only its stream", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const b = yield* node()
      yield* b.registrar.handle("/echo/1.0.0", (stream) =>
        Effect.gen(function*() {
          while (true) {
            const chunks = yield* stream.read
            if (Duplex.isEOF(chunks)) break
            yield* stream.write(chunks)
          }
          yield* stream.closeWrite
        }))
      yield* b.registrar.handle("/fail/1.0.0", () => Effect.fail("boom"))
      const payload = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 31) & 0xff)
      const echoed = yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* a.host.newStream(b.host.addrs()[0]!, ["/echo/1.0.0"])
        yield* Effect.forkScoped(Effect.gen(function*() {
          for (let i = 0; i < payload.length; i += 65536) yield* stream.write([payload.subarray(i, i + 65536)])
          yield* stream.closeWrite
        }))
        return yield* Duplex.readAll(stream, 8 * 1024 * 1024)
      }))
      expect(echoed.length).toBe(payload.length)
      expect(Buffer.compare(echoed, payload)).toBe(0)
      // the failing handler: our read ends with an error or EOF, the connection survives
      const failed = yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* a.host.newStream(b.host.peerId, ["/fail/1.0.0"])
        yield* stream.write([Uint8Array.of(1)])
        return yield* Effect.result(Duplex.readAll(stream, 1024))
      }))
      expect(failed._tag === "Failure" || failed.success.length === 0).toBe(true)
      expect(yield* a.ping.ping(b.host.peerId)).toHaveLength(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("Noise §Authentication: dialing a /p2p address with the wrong peer id fails with PeerIdMismatch", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const b = yield* node()
      const other = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const wrong = Multiaddr.encapsulate(
        Multiaddr.decapsulateCode(b.host.addrs()[0]!, Multiaddr.codes.p2p),
        ma(`/p2p/${PeerId.toString(other)}`)
      )
      const err = yield* Effect.flip(a.host.dial(wrong))
      expect(chain(err)).toEqual(["DialError", "UpgradeError", "PeerIdMismatch", "SecurityError", "PeerIdMismatch"])
      // and the node still works
      expect(yield* a.ping.ping(b.host.addrs()[0]!)).toHaveLength(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("closing a node's scope disconnects its peers (peer:disconnect on the other side)", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const bScope = yield* Scope.make()
      const b = yield* Scope.provide(node(), bScope)
      yield* a.host.dial(b.host.addrs()[0]!)
      expect(a.host.connections()).toHaveLength(1)
      yield* Scope.close(bScope, Exit.void)
      for (let i = 0; i < 100 && a.host.connections().length > 0; i++) yield* Effect.sleep("20 millis")
      expect(a.host.connections()).toHaveLength(0)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
