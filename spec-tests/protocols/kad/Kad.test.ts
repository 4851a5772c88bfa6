/**
 * Kad-DHT between our own nodes on the memory transport (kad-dht spec):
 * table admission by mode (§Client and server mode, via identify), peer
 * routing (§Peer routing), values with the `/pk/` validator (§Value routing,
 * §Entry validation), providers (§Content routing), and the routing contracts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Result, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import { Datastore } from "../../../src/datastore/Datastore.ts"
import * as MemoryStore from "../../../src/datastore/Memory.ts"
import * as Host from "../../../src/host/Host.ts"
import * as Peerstore from "../../../src/host/Peerstore.ts"
import * as Metrics from "../../../src/observability/Metrics.ts"
import * as Client from "../../../src/protocols/kad/client.ts"
import * as Kad from "../../../src/protocols/kad/Kad.ts"
import { type KadMessage, message, MessageType } from "../../../src/protocols/kad/messages.ts"
import * as RoutingTable from "../../../src/protocols/kad/RoutingTable.ts"
import { ContentRouting } from "../../../src/routing/ContentRouting.ts"
import { PeerRouting } from "../../../src/routing/PeerRouting.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import * as Prometheus from "../../support/prometheus.ts"
import { connect, type KadNode, kadNode, seededKey, trueClosest } from "./support.ts"

/** A line of server nodes, each connected to the next: a lookup has to walk it. */
const line = (n: number, options: Kad.KadOptions = {}) =>
  Effect.gen(function*() {
    const nodes: Array<KadNode> = []
    for (let i = 0; i < n; i++) nodes.push(yield* kadNode(options, i))
    for (let i = 0; i + 1 < n; i++) yield* connect(nodes[i]!, nodes[i + 1]!)
    // identify runs on both ends; let the listener's side settle
    yield* Effect.yieldNow
    return nodes
  })

const text = (s: string) => new TextEncoder().encode(s)

describe("Kad §Client and server mode", () => {
  it.effect("a server enters the other's table after identify; a client does not [identify:protocols:2]", () =>
    Effect.gen(function*() {
      const server = yield* kadNode({}, 100)
      const other = yield* kadNode({}, 101)
      const client = yield* kadNode({ mode: "client" }, 102)
      yield* connect(client, server)
      yield* connect(other, server)
      yield* Effect.sleep(0)
      expect(server.kad.peers().map(String)).toEqual([other.host.peerId.toString()])
      expect(other.kad.peers().map(String)).toEqual([server.host.peerId.toString()])
      expect(client.kad.peers().map(String)).toEqual([server.host.peerId.toString()])
      expect(client.registrar.protocols()).not.toContain(Kad.PROTOCOL)
      expect(server.registrar.protocols()).toContain(Kad.PROTOCOL)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("the LAN prefix is its own DHT: a /ipfs/kad/1.0.0 peer is not in a LAN table [kad-dht:client-and-server-mode:1]", () =>
    Effect.gen(function*() {
      const lan1 = yield* kadNode({ protocol: Kad.LAN_PROTOCOL }, 110)
      const lan2 = yield* kadNode({ protocol: Kad.LAN_PROTOCOL }, 111)
      const wan = yield* kadNode({}, 112)
      yield* connect(lan1, lan2)
      yield* connect(lan1, wan)
      yield* Effect.sleep(0)
      expect(lan1.kad.peers().map(String)).toEqual([lan2.host.peerId.toString()])
      expect(lan1.registrar.protocols()).toContain(Kad.LAN_PROTOCOL)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Peer routing", () => {
  it.effect("findPeer walks a line of 6 nodes to a peer it is not connected to [kad-dht:rpc-messages:2]", () =>
    Effect.gen(function*() {
      const nodes = yield* line(6)
      const first = nodes[0]!
      const last = nodes[5]!
      expect(first.host.connections(last.host.peerId)).toHaveLength(0)
      const found = yield* first.kad.findPeer(last.host.peerId)
      expect(PeerId.equals(found.peerId, last.host.peerId)).toBe(true)
      expect(found.addrs.map(String)).toContain(String(last.host.addrs()[0]).split("/p2p/")[0])
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("getClosestPeers on an empty table fails with KadError NoPeers", () =>
    Effect.gen(function*() {
      const alone = yield* kadNode({}, 120)
      const r = yield* Effect.result(alone.kad.getClosestPeers(text("x")))
      expect(Result.isFailure(r) && r.failure.reason._tag).toBe("NoPeers")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("the Host uses Kad's PeerRouting: dialing a peer id with no address finds it by a lookup (issue 13 §6)", () =>
    Effect.gen(function*() {
      const nodes = yield* line(5)
      const first = nodes[0]!
      const last = nodes[4]!
      expect(first.peerstore.get(last.host.peerId)?.addrs ?? []).toEqual([])
      // no router: a peer id with no address cannot be dialed
      const before = yield* Effect.flip(first.host.dial(last.host.peerId))
      expect(before.reason._tag).toBe("NoAddresses")
      const scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Host.layerRouting.pipe(Layer.provide(Kad.layerPeerRouting), Layer.provide(Layer.succeed(Kad.Kad, first.kad))),
        scope
      ).pipe(Effect.provideService(Host.Host, first.host))
      const conn = yield* first.host.dial(last.host.peerId)
      expect(PeerId.equals(conn.remotePeer, last.host.peerId)).toBe(true)
      // what the lookup found is kept in the peer store
      expect((first.peerstore.get(last.host.peerId)?.addrs ?? []).map(String)).toContain(
        String(last.host.addrs()[0]).split("/p2p/")[0]
      )
      // an id nobody has: NoAddresses, the routing error as its cause
      const stranger = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const missing = yield* Effect.flip(first.host.dial(stranger))
      expect(missing.reason._tag).toBe("NoAddresses")
      expect((missing.reason as { cause?: { _tag?: string } }).cause?._tag).toBe("RoutingError")
      // the registration ends with its scope
      yield* Scope.close(scope, Exit.void)
      const after = yield* Effect.flip(first.host.dial(PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))))
      expect((after.reason as { cause?: unknown }).cause).toBeUndefined()
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("findPeer of an unknown id fails with KadError NotFound", () =>
    Effect.gen(function*() {
      const nodes = yield* line(3)
      const stranger = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const r = yield* Effect.result(nodes[0]!.kad.findPeer(stranger))
      expect(Result.isFailure(r) && r.failure.reason._tag).toBe("NotFound")
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Value routing", () => {
  it.effect("a /pk/ record put by one node is read by another", () =>
    Effect.gen(function*() {
      const nodes = yield* line(5)
      const key = yield* Keys.generate("Ed25519")
      const pkKey = Kad.pkKey(PeerId.fromPrivateKey(key))
      const value = Keys.marshalPublicKey(key.publicKey)
      expect(yield* nodes[0]!.kad.put(pkKey, value)).toBeGreaterThan(0)
      expect(yield* nodes[4]!.kad.get(pkKey)).toEqual(value)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§Entry validation: a /pk/ record with another key, and an unknown namespace, are refused [kad-dht:entry-validation:1]", () =>
    Effect.gen(function*() {
      const nodes = yield* line(2)
      const a = yield* Keys.generate("Ed25519")
      const b = yield* Keys.generate("Ed25519")
      const wrong = yield* Effect.result(
        nodes[0]!.kad.put(Kad.pkKey(PeerId.fromPrivateKey(a)), Keys.marshalPublicKey(b.publicKey))
      )
      expect(Result.isFailure(wrong) && wrong.failure.reason._tag).toBe("InvalidRecord")
      const unknown = yield* Effect.result(nodes[0]!.kad.put(text("/v/hello"), text("world")))
      expect(Result.isFailure(unknown) && unknown.failure.reason._tag).toBe("InvalidRecord")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("a user validator makes a namespace usable [kad-dht:entry-validation:1] [kad-dht:entry-validation:2]", () =>
    Effect.gen(function*() {
      const v: Kad.Validator = { validate: () => Result.void, select: () => 0 }
      const nodes = yield* line(4, { validators: { v } })
      expect(yield* nodes[0]!.kad.put(text("/v/hello"), text("world"))).toBeGreaterThan(0)
      expect(new TextDecoder().decode(yield* nodes[3]!.kad.get(text("/v/hello")))).toBe("world")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("spec §RPC messages GET_VALUE: a /pk/ key nobody put is answered by a node that knows the key", () =>
    Effect.gen(function*() {
      const nodes = yield* line(2)
      // a client: it answers no request, so only a server that knows its key can
      const target = yield* kadNode({ mode: "client" }, 140)
      yield* connect(target, nodes[0]!)
      expect(yield* nodes[1]!.kad.get(Kad.pkKey(target.host.peerId))).toEqual(
        Keys.marshalPublicKey(target.identity.publicKey)
      )
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§Getting values, entry correction: peers that returned a worse value get the best one [kad-dht:value-retrieval:1]", () =>
    Effect.gen(function*() {
      // "v": any value is valid, the greatest byte string is best
      const v: Kad.Validator = {
        validate: () => Result.void,
        select: (_, values) => values.reduce((best, x, i) => (Buffer.compare(x, values[best]!) > 0 ? i : best), 0)
      }
      const nodes = yield* line(4, { validators: { v }, quorum: 10 })
      const key = text("/v/x")
      yield* nodes[0]!.kad.put(key, text("a"))
      /** A raw request from nodes[0] to `to`. */
      const raw = (to: KadNode, req: KadMessage) =>
        Effect.scoped(
          Effect.flatMap(
            nodes[0]!.host.newStream(to.host.peerId, [Kad.PROTOCOL]),
            (stream) => Client.request(stream, to.host.peerId, req)
          )
        )
      const valueAt = (n: KadNode) =>
        Effect.map(
          raw(n, message(MessageType.GET_VALUE, { key })),
          (res) => new TextDecoder().decode(res?.record?.value)
        )
      // only nodes[1] learns the better value "b"
      yield* raw(
        nodes[1]!,
        message(MessageType.PUT_VALUE, { key, record: { key, value: text("b"), timeReceived: "" } })
      )
      expect(yield* valueAt(nodes[2]!)).toBe("a")
      expect(new TextDecoder().decode(yield* nodes[3]!.kad.get(key))).toBe("b")
      for (const n of nodes.slice(1, 3)) expect(yield* valueAt(n)).toBe("b")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("get of our own /pk/ key answers without the network", () =>
    Effect.gen(function*() {
      const node = yield* kadNode({}, 130)
      expect(yield* node.kad.get(Kad.pkKey(node.host.peerId))).toEqual(
        Keys.marshalPublicKey(node.identity.publicKey)
      )
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Content routing", () => {
  it.effect("a key provided by one node is found by another, with its addresses [kad-dht:content-provider-discovery:1] [kad-dht:content-provider-advertisement:3]", () =>
    Effect.gen(function*() {
      const nodes = yield* line(5)
      const key = text("some-content-multihash")
      expect(yield* nodes[0]!.kad.provide(key)).toBeGreaterThan(0)
      const found = yield* nodes[4]!.kad.findProviders(key)
      expect(found.map((p) => p.peerId.toString())).toContain(nodes[0]!.host.peerId.toString())
      expect(found[0]!.addrs.length).toBeGreaterThan(0)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("cidKey: a CIDv1's key is its multihash, a CIDv0 is its own [kad-dht:content-provider-advertisement-and-discovery:6]", () =>
    Effect.sync(() => {
      const mh = Uint8Array.of(0x12, 0x20, ...new Uint8Array(32).fill(7))
      expect(Kad.cidKey(Uint8Array.of(0x01, 0x55, ...mh))).toEqual(mh)
      expect(Kad.cidKey(Uint8Array.of(0x01, 0x80, 0x01, ...mh))).toEqual(mh)
      expect(Kad.cidKey(mh)).toEqual(mh)
    }))
})

describe("routing contracts", () => {
  it.effect("PeerRouting and ContentRouting over Kad", () =>
    Effect.gen(function*() {
      const nodes = yield* line(4)
      const routing = Layer.mergeAll(Kad.layerPeerRouting, Kad.layerContentRouting).pipe(
        Layer.provide(Layer.succeed(Kad.Kad, nodes[0]!.kad))
      )
      yield* Effect.gen(function*() {
        const peers = yield* PeerRouting
        const content = yield* ContentRouting
        const found = yield* peers.findPeer(nodes[3]!.host.peerId)
        expect(found.peerId.toString()).toBe(nodes[3]!.host.peerId.toString())
        yield* content.provide(text("k"))
        const missing = yield* Effect.result(content.get(text("/pk/nothing")))
        expect(Result.isFailure(missing) && missing.failure._tag).toBe("RoutingError")
      }).pipe(Effect.provide(routing))
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Kademlia routing table: a full bucket", () => {
  /** Two seeds whose peers fall in the same bucket of `self`'s table. */
  const sameBucket = (self: PeerId.PeerId, from: number) => {
    const table = RoutingTable.make(self)
    const seen = new Map<number, number>()
    for (let s = from;; s++) {
      const cpl = RoutingTable.commonPrefixLength(table.self, RoutingTable.peerKey(PeerId.fromPrivateKey(seededKey(s))))
      const other = seen.get(cpl)
      if (other !== undefined) return [other, s] as const
      seen.set(cpl, s)
    }
  }

  it.effect("keeps its oldest peer while it answers, and replaces it by the newcomer once it does not [kad-dht:kademlia-routing-table:1]", () =>
    Effect.gen(function*() {
      const a = yield* kadNode({ k: 1, peerTimeout: "1 second" }, 400)
      const [s1, s2] = sameBucket(a.host.peerId, 401)
      const oldScope = yield* Scope.make()
      const old = yield* Scope.provide(kadNode({}, s1), oldScope)
      const newcomer = yield* kadNode({}, s2)
      yield* connect(a, old)
      expect(a.kad.peers().map(String)).toEqual([old.host.peerId.toString()])
      // the bucket is full and its peer answers: the newcomer stays out
      yield* connect(a, newcomer)
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
      expect(a.kad.peers().map(String)).toEqual([old.host.peerId.toString()])
      // the old peer goes away: the next time the newcomer is seen, it takes the slot
      yield* Scope.close(oldScope, Exit.void)
      yield* a.host.hangUp(newcomer.host.peerId)
      yield* connect(a, newcomer)
      for (let i = 0; i < 200 && !a.kad.peers().some((p) => PeerId.equals(p, newcomer.host.peerId)); i++) {
        yield* Effect.yieldNow
      }
      expect(a.kad.peers().map(String)).toEqual([newcomer.host.peerId.toString()])
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Kademlia routing table: across restarts", () => {
  it.effect("the table is seeded from the peer store: a node restarted on the same datastore knows its DHT peers before dialing anyone", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryStore.make
      const peerstore = Peerstore.layerDatastore().pipe(Layer.provide(Layer.succeed(Datastore, ds)))
      const b = yield* kadNode({}, 501)
      const c = yield* kadNode({}, 502)
      const firstScope = yield* Scope.make()
      const first = yield* Scope.provide(kadNode({}, 500, { peerstore }), firstScope)
      yield* connect(first, b)
      yield* connect(first, c)
      const known = [b, c].map((n) => n.host.peerId.toString()).sort()
      expect(first.kad.peers().map(String).sort()).toEqual(known)
      yield* Scope.close(firstScope, Exit.void)
      const again = yield* kadNode({}, 500, { peerstore })
      expect(again.host.connections()).toHaveLength(0)
      expect(again.kad.peers().map(String).sort()).toEqual(known)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Content routing: republishing", () => {
  it.effect("a provider record outlives its 48 h validity because the provider announces it again every 22 h [kad-dht:content-provider-advertisement-and-discovery:3]", () =>
    Effect.gen(function*() {
      const nodes = yield* line(3, { refreshInterval: "100 hours" })
      const key = text("long-lived")
      yield* nodes[0]!.kad.provide(key)
      const stillThere = Effect.map(
        nodes[2]!.kad.findProviders(key),
        (ps) => ps.some((p) => PeerId.equals(p.peerId, nodes[0]!.host.peerId))
      )
      expect(yield* stillThere).toBe(true)
      for (let h = 0; h < 50; h++) {
        yield* TestClock.adjust("1 hour")
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      }
      expect(yield* stillThere).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("without republishing (a 100 h interval) the record is gone after 48 h [kad-dht:content-provider-advertisement-and-discovery:1] [kad-dht:content-provider-advertisement-and-discovery:2] [kad-dht:content-provider-advertisement-and-discovery:3]", () =>
    Effect.gen(function*() {
      const nodes = yield* line(3, { refreshInterval: "100 hours", reprovideInterval: "100 hours" })
      const key = text("short-lived")
      yield* nodes[0]!.kad.provide(key)
      yield* TestClock.adjust("49 hours")
      // every copy expired, the provider's own included
      const found = yield* Effect.result(nodes[2]!.kad.findProviders(key))
      const ids = Result.isSuccess(found) ? found.success.map((p) => p.peerId.toString()) : []
      expect(ids).not.toContain(nodes[0]!.host.peerId.toString())
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Value storage and retrieval: republishing", () => {
  /**
   * A line of 3 (node 0 puts a /pk/ record), then a newcomer joins at the end, 23 h pass, and the
   * 3 first nodes leave: the newcomer's own `get` finds the record only if it was put again to it.
   */
  const afterHoldersLeave = (options: Kad.KadOptions) =>
    Effect.gen(function*() {
      const early = yield* Scope.make()
      const nodes = yield* Scope.provide(line(3, { refreshInterval: "100 hours", ...options }), early)
      const owner = seededKey(99)
      const key = Kad.pkKey(PeerId.fromPrivateKey(owner))
      const value = Keys.marshalPublicKey(owner.publicKey)
      expect(yield* nodes[0]!.kad.put(key, value)).toBeGreaterThan(0)
      const late = yield* kadNode({ refreshInterval: "100 hours", ...options }, 3)
      yield* connect(late, nodes[2]!)
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      for (let h = 0; h < 23; h++) {
        yield* TestClock.adjust("1 hour")
        for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      }
      yield* Scope.close(early, Exit.void)
      return { found: yield* Effect.result(late.kad.get(key)), value }
    })

  it.effect("a record put every 22 h reaches the newly closest peer and outlives the nodes that held it", () =>
    Effect.gen(function*() {
      const { found, value } = yield* afterHoldersLeave({})
      expect(Result.isSuccess(found) ? found.success : undefined).toEqual(value)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("without republishing (a 100 h interval) the record is gone with the nodes that held it", () =>
    Effect.gen(function*() {
      const { found } = yield* afterHoldersLeave({ republishInterval: "100 hours" })
      expect(Result.isFailure(found)).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad §Peer routing: disjoint paths (S/Kademlia)", () => {
  it.effect(
    "with disjointPaths 2 on 24 nodes a lookup returns the true k closest and asks no peer twice (inbound FIND_NODE per node)",
    () =>
      Effect.gen(function*() {
        const count = 24
        const nodes: Array<KadNode> = []
        for (let i = 0; i < count; i++) {
          nodes.push(yield* kadNode({ refreshInterval: "100 hours", disjointPaths: 2 }, 500 + i))
        }
        for (let i = 1; i < count; i++) {
          yield* connect(nodes[i]!, nodes[i - 1]!)
          yield* connect(nodes[i]!, nodes[(i * 7) % i]!)
        }
        for (const n of nodes) yield* n.kad.refresh
        const ids = nodes.map((n) => n.host.peerId)
        const findNodes = () =>
          nodes.map((n) =>
            Prometheus.value(Prometheus.parse(Metrics.formatOf(n.context)), "libp2p_kad_inbound_requests_total", {
              type: "find_node"
            })
          )
        for (let q = 0; q < 4; q++) {
          const from = nodes[(q * 5) % count]!
          const key = Uint8Array.of(q, 0xd1, 0x5a)
          const before = findNodes()
          const got = (yield* from.kad.getClosestPeers(key)).map((p) => p.peerId.toString())
          const asked = findNodes().map((n, i) => n - before[i]!)
          expect(asked.filter((n) => n > 1)).toEqual([])
          expect(asked.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(Kad.defaults.k)
          const others = ids.filter((id) => !PeerId.equals(id, from.host.peerId))
          expect(got).toEqual(trueClosest(key, others, Kad.defaults.k))
        }
      }).pipe(Effect.provide(Memory.layerNetwork)),
    120_000
  )
})
