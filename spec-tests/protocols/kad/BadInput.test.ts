/**
 * Kad-DHT against bad input (kad-dht spec §RPC messages, §Entry validation,
 * §Content routing): the responder on a `Duplex.pair` fails with a typed
 * `KadError` (never a defect) on malformed, oversized or invalid requests and
 * stores nothing from them; the requester refuses a wrong answer; a lookup
 * survives a peer that never answers and one that floods it with thousands of
 * closer peers and garbage addresses.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as Keys from "../../../src/core/Keys.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Varint from "../../../src/core/Varint.ts"
import * as MemoryDatastore from "../../../src/datastore/Memory.ts"
import * as Client from "../../../src/protocols/kad/client.ts"
import * as Kad from "../../../src/protocols/kad/Kad.ts"
import { KadMessage, MAX_MESSAGE_SIZE, message, MessageType } from "../../../src/protocols/kad/messages.ts"
import * as Server from "../../../src/protocols/kad/server.ts"
import * as Store from "../../../src/protocols/kad/store.ts"
import * as Validator from "../../../src/protocols/kad/Validator.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { connect, kadNode } from "./support.ts"

const text = (s: string) => new TextEncoder().encode(s)

/** A responder's handlers over a fresh memory datastore; no peers known. */
const handlers = Effect.gen(function*() {
  const key = yield* Keys.generate("Ed25519")
  const ds = yield* MemoryDatastore.make
  const store = Store.make(ds, { maxRecordAgeMillis: 1e9, provideValidityMillis: 1e9, maxProvidersPerKey: 4 })
  const h: Server.Handlers = {
    self: PeerId.fromPrivateKey(key),
    publicKeyOf: () => undefined,
    selfAddrs: () => [],
    closer: () => [],
    connectionOf: () => 0,
    store,
    validators: Validator.defaults
  }
  return h
})

const remote = Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey)

/** Serve one stream whose other end writes `frames` raw and closes; the exit of `serve`. */
const serveRaw = (h: Server.Handlers, from: PeerId.PeerId, frames: ReadonlyArray<Uint8Array>) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    yield* a.write(frames)
    yield* a.closeWrite
    return yield* Effect.exit(Server.serve(b, from, h))
  })

const reasonOf = (exit: Exit.Exit<unknown, Kad.KadError>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.map((r) => (r._tag === "Fail" ? r.error.reason._tag : r._tag)) : []

describe("Kad bad input §RPC messages", () => {
  it.effect("a request that is not a protobuf Message fails Malformed", () =>
    Effect.gen(function*() {
      const exit = yield* serveRaw(
        yield* handlers,
        yield* remote,
        LengthPrefixed.frame(Uint8Array.of(0x0a, 0x05, 0xff))
      )
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }))

  it.effect("a length prefix over the 4 MiB limit fails Malformed before the body is read", () =>
    Effect.gen(function*() {
      const exit = yield* serveRaw(yield* handlers, yield* remote, [Varint.encode(MAX_MESSAGE_SIZE + 1)])
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }))

  it.effect("a message that ends inside its length fails (Unreachable: the stream ended early)", () =>
    Effect.gen(function*() {
      const exit = yield* serveRaw(yield* handlers, yield* remote, [Varint.encode(100), new Uint8Array(10)])
      expect(reasonOf(exit)).toEqual(["Unreachable"])
    }))

  it.effect("an unknown message type fails Malformed", () =>
    Effect.gen(function*() {
      const bytes = KadMessage.encode({ ...message(MessageType.PING), type: 42 })
      const exit = yield* serveRaw(yield* handlers, yield* remote, LengthPrefixed.frame(bytes))
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }))

  it.effect("several requests on one stream are all answered (the spec's MUST) [kad-dht:rpc-messages:1]", () =>
    Effect.gen(function*() {
      const h = yield* handlers
      const [a, b] = yield* Duplex.pair()
      yield* a.write(
        LengthPrefixed.frameAll([
          KadMessage.encode(message(MessageType.PING)),
          KadMessage.encode(message(MessageType.FIND_NODE, { key: text("x") }))
        ])
      )
      yield* a.closeWrite
      yield* Server.serve(b, yield* remote, h)
      const msgs = LengthPrefixed.messages(a, { maxLength: MAX_MESSAGE_SIZE })
      const first = Result.getOrThrow(KadMessage.decode(yield* msgs.readOne))
      const second = Result.getOrThrow(KadMessage.decode(yield* msgs.readOne))
      expect([first.type, second.type]).toEqual([MessageType.PING, MessageType.FIND_NODE])
      expect(yield* msgs.read).toBeUndefined()
    }))
})

describe("Kad bad input §Entry validation", () => {
  it.effect("PUT_VALUE of a /pk/ record whose key is another peer's fails InvalidRecord and stores nothing [kad-dht:entry-validation:1]", () =>
    Effect.gen(function*() {
      const h = yield* handlers
      const a = yield* Keys.generate("Ed25519")
      const b = yield* Keys.generate("Ed25519")
      const key = Kad.pkKey(PeerId.fromPrivateKey(a))
      const req = message(MessageType.PUT_VALUE, {
        key,
        record: { key, value: Keys.marshalPublicKey(b.publicKey), timeReceived: "" }
      })
      const exit = yield* serveRaw(h, yield* remote, LengthPrefixed.frame(KadMessage.encode(req)))
      expect(reasonOf(exit)).toEqual(["InvalidRecord"])
      expect(yield* h.store.getRecord(key)).toBeUndefined()
    }))

  it.effect("PUT_VALUE in an unknown namespace, or without a record, or with another key, is refused", () =>
    Effect.gen(function*() {
      const h = yield* handlers
      const from = yield* remote
      const v = text("/v/hello")
      const cases = [
        message(MessageType.PUT_VALUE, { key: v, record: { key: v, value: text("world"), timeReceived: "" } }),
        message(MessageType.PUT_VALUE, { key: v }),
        message(MessageType.PUT_VALUE, {
          key: v,
          record: { key: text("/v/other"), value: text("x"), timeReceived: "" }
        })
      ]
      const reasons = []
      for (const req of cases) {
        reasons.push(...reasonOf(yield* serveRaw(h, from, LengthPrefixed.frame(KadMessage.encode(req)))))
      }
      expect(reasons).toEqual(["InvalidRecord", "Malformed", "Malformed"])
      expect(yield* h.store.getRecord(v)).toBeUndefined()
    }))

  it.effect("a /pk/ value that is not a key, and a /pk/ key that is not a peer id, are invalid", () =>
    Effect.sync(() => {
      const key = Kad.pkKey(PeerId.fromPrivateKey(Result.getOrThrow(Keys.ed25519FromSeed(new Uint8Array(32)))))
      expect(Result.isFailure(Validator.pk.validate(key, text("garbage")))).toBe(true)
      expect(Result.isFailure(Validator.pk.validate(text("/pk/xyz"), text("garbage")))).toBe(true)
      expect(Result.isFailure(Validator.validate(Validator.defaults, text("/__proto__/x"), text("v")))).toBe(true)
      expect(Result.isFailure(Validator.validate(Validator.defaults, text("no-namespace"), text("v")))).toBe(true)
    }))
})

describe("Kad bad input §Content routing", () => {
  it.effect("ADD_PROVIDER records only the sender; a provider list naming others stores nothing [kad-dht:content-provider-advertisement:1]", () =>
    Effect.gen(function*() {
      const h = yield* handlers
      const from = yield* remote
      const other = yield* remote
      const key = text("cid-multihash")
      const peers = [other, from].map((p) => ({
        id: PeerId.toBytes(p),
        addrs: [Uint8Array.of(0xff, 0xff)],
        connection: 0
      }))
      yield* serveRaw(
        h,
        from,
        LengthPrefixed.frame(KadMessage.encode(message(MessageType.ADD_PROVIDER, { key, providerPeers: peers })))
      )
      const stored = yield* h.store.getProviders(key)
      expect(stored.map((p) => p.peerId.toString())).toEqual([from.toString()])
      // the garbage address was dropped, not stored
      expect(stored[0]!.addrs).toEqual([])
    }))

  it.effect("GET_PROVIDERS answers a provider's signed-peer-record addresses over the ones its ADD_PROVIDER claimed [kad-dht:content-provider-discovery:1]", () =>
    Effect.gen(function*() {
      const signed = yield* remote
      const unsigned = yield* remote
      const claimed = ma("/ip4/6.6.6.6/tcp/666")
      const certified = ma("/ip4/1.2.3.4/tcp/4001")
      const h: Server.Handlers = {
        ...(yield* handlers),
        certifiedAddrs: (peer) => PeerId.equals(peer, signed) ? [certified] : []
      }
      const key = text("cid-multihash")
      for (const p of [signed, unsigned]) {
        const add = message(MessageType.ADD_PROVIDER, {
          key,
          providerPeers: [{ id: PeerId.toBytes(p), addrs: [Multiaddr.toBytes(claimed)], connection: 0 }]
        })
        yield* serveRaw(h, p, LengthPrefixed.frame(KadMessage.encode(add)))
      }
      const [a, b] = yield* Duplex.pair()
      yield* a.write(LengthPrefixed.frame(KadMessage.encode(message(MessageType.GET_PROVIDERS, { key }))))
      yield* a.closeWrite
      yield* Server.serve(b, yield* remote, h)
      const res = Result.getOrThrow(
        KadMessage.decode(yield* LengthPrefixed.messages(a, { maxLength: MAX_MESSAGE_SIZE }).readOne)
      )
      const byId = new Map(
        res.providerPeers.map((p) => [PeerId.toString(Result.getOrThrow(PeerId.fromBytes(p.id))), p.addrs])
      )
      expect(
        byId.get(PeerId.toString(signed))?.map((x) => Multiaddr.toString(Result.getOrThrow(Multiaddr.fromBytes(x))))
      ).toEqual([
        "/ip4/1.2.3.4/tcp/4001"
      ])
      expect(
        byId.get(PeerId.toString(unsigned))?.map((x) => Multiaddr.toString(Result.getOrThrow(Multiaddr.fromBytes(x))))
      ).toEqual(
        ["/ip4/6.6.6.6/tcp/666"]
      )
    }))

  it.effect("providers per key are capped: the one expiring first is evicted", () =>
    Effect.gen(function*() {
      const h = yield* handlers
      const key = text("popular")
      const ids = []
      for (let i = 0; i < 6; i++) {
        const p = yield* remote
        ids.push(p.toString())
        yield* h.store.addProvider(key, { peerId: p, addrs: [] })
        yield* TestClock.adjust("1 second")
      }
      const stored = (yield* h.store.getProviders(key)).map((p) => p.peerId.toString()).sort()
      expect(stored).toEqual(ids.slice(2).sort())
    }))

  it.effect("§Content routing: a provider record expires after 48 h", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryDatastore.make
      const store = Store.make(ds, {
        maxRecordAgeMillis: 1e9,
        provideValidityMillis: Duration.toMillis(Kad.defaults.provideValidity),
        maxProvidersPerKey: 10
      })
      const key = text("k")
      yield* store.addProvider(key, { peerId: yield* remote, addrs: [] })
      yield* TestClock.adjust("47 hours")
      expect(yield* store.getProviders(key)).toHaveLength(1)
      yield* TestClock.adjust("2 hours")
      expect(yield* store.getProviders(key)).toHaveLength(0)
      expect(yield* store.prune).toBe(0)
    }))
})

describe("Kad bad input: the requester", () => {
  it.effect("an answer of another type fails Malformed", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const peer = yield* remote
      yield* b.write(LengthPrefixed.frame(KadMessage.encode(message(MessageType.PING))))
      const exit = yield* Effect.exit(Client.request(a, peer, message(MessageType.FIND_NODE, { key: text("x") })))
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }))

  it.effect("an oversized answer fails Malformed", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* b.write([Varint.encode(MAX_MESSAGE_SIZE + 1)])
      const exit = yield* Effect.exit(
        Client.request(a, yield* remote, message(MessageType.FIND_NODE, { key: text("x") }))
      )
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }))
})

/** A node that speaks Kad by hand: `answer` decides what every request gets (undefined: never answer). */
const fakeKad = (answer: (req: KadMessage) => Uint8Array | undefined) =>
  Effect.gen(function*() {
    const node = yield* kadNode({ mode: "client" })
    yield* node.registrar.handle(Kad.PROTOCOL, (stream) =>
      Effect.gen(function*() {
        const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
        const req = Result.getOrThrow(KadMessage.decode(yield* msgs.readOne))
        const res = answer(req)
        if (res === undefined) return yield* Effect.never
        yield* msgs.write(res)
        yield* msgs.closeWrite
        yield* msgs.read
      }))
    return node
  })

describe("Kad bad input: lookups", () => {
  it.live("a peer that never answers costs one per-peer timeout; the lookup completes from the others (live clock: the others must answer first)", () =>
    Effect.gen(function*() {
      const silent = yield* fakeKad(() => undefined)
      const a = yield* kadNode({ peerTimeout: "300 millis" }, 300)
      const b = yield* kadNode({}, 301)
      const c = yield* kadNode({}, 302)
      for (const n of [b, c, silent]) yield* connect(a, n)
      yield* connect(b, c)
      expect(a.kad.peers().map(String)).toContain(silent.host.peerId.toString())
      const closest = yield* a.kad.getClosestPeers(text("anything")).pipe(Effect.timeout("10 seconds"))
      const ids = closest.map((p) => p.peerId.toString())
      expect(ids).toContain(b.host.peerId.toString())
      expect(ids).toContain(c.host.peerId.toString())
      expect(ids).not.toContain(silent.host.peerId.toString())
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("a peer answering with 5,000 closer peers (garbage ids and addresses, itself and us) does not derail it", () =>
    Effect.gen(function*() {
      const a = yield* kadNode({}, 310)
      const flood = yield* fakeKad((req) => {
        const garbage = Array.from({ length: 5000 }, (_, i) => ({
          id: i % 2 === 0 ? Uint8Array.of(0x12, 0x20, i & 0xff) : PeerId.toBytes(a.host.peerId),
          addrs: [Uint8Array.of(0x04, 1, 2), Uint8Array.of(0xff, 0xff, 0xff)],
          connection: 0
        }))
        return KadMessage.encode(message(MessageType.FIND_NODE, { key: req.key, closerPeers: garbage }))
      })
      const b = yield* kadNode({}, 311)
      for (const n of [flood, b]) yield* connect(a, n)
      const closest = yield* a.kad.getClosestPeers(text("target"))
      const ids = closest.map((p) => p.peerId.toString())
      expect(ids).toContain(b.host.peerId.toString())
      expect(ids).not.toContain(a.host.peerId.toString())
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Kad bad input: idle inbound streams", () => {
  it.effect("a stream that sends no request within the idle timeout fails PeerTimeout", () =>
    Effect.gen(function*() {
      const [, b] = yield* Duplex.pair()
      const fiber = yield* Effect.forkChild(Effect.exit(Server.serve(b, yield* remote, yield* handlers)))
      yield* Effect.yieldNow
      yield* TestClock.adjust(Server.IDLE_TIMEOUT)
      expect(reasonOf(yield* Fiber.join(fiber))).toEqual(["PeerTimeout"])
    }))
})
