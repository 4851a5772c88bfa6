/**
 * The rendezvous point against bad input (rendezvous spec §Protobuf,
 * §Spam mitigation, §Recommendations): the responder on a `Duplex.pair`
 * fails with a typed `RendezvousError` (never a defect) on malformed,
 * oversized or wrongly typed requests and stores nothing from them; a
 * registration flood from one peer is cut at its limit; a flood of peers at
 * the namespace's and the point's limits; the client refuses a wrong answer.
 * Over a real node, a stream reset by bad input leaves the point serving.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result } from "effect"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as Envelope from "../../../src/core/Envelope.ts"
import * as Keys from "../../../src/core/Keys.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as PeerRecord from "../../../src/core/PeerRecord.ts"
import * as Varint from "../../../src/core/Varint.ts"
import * as MemoryDatastore from "../../../src/datastore/Memory.ts"
import * as Client from "../../../src/protocols/rendezvous/client.ts"
import {
  MAX_MESSAGE_SIZE,
  MAX_REQUEST_SIZE,
  MessageType,
  RendezvousMessage,
  ResponseStatus
} from "../../../src/protocols/rendezvous/messages.ts"
import * as Records from "../../../src/protocols/rendezvous/records.ts"
import type * as Rendezvous from "../../../src/protocols/rendezvous/Rendezvous.ts"
import * as Server from "../../../src/protocols/rendezvous/server.ts"
import * as Store from "../../../src/protocols/rendezvous/store.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { seededKey } from "../kad/support.ts"
import { rawFrames, rdvNode, registerMsg, signedRecord } from "./support.ts"

const limits = { maxPerPeer: 1000, maxPerNamespace: 10_000, maxTotal: 100_000 }

/** A responder over a fresh memory datastore, with the spec's recommended limits. */
const handlers = (storeLimits: Store.StoreLimits = limits) =>
  Effect.gen(function*() {
    const ds = yield* MemoryDatastore.make
    const store = yield* Store.make(ds, storeLimits)
    const h: Server.Handlers = {
      store,
      limits: { defaultTtl: 7200, minTtl: 7200, maxTtl: 72 * 3600, maxNamespaceLength: 255, maxDiscoverLimit: 1000 },
      now: Effect.succeed(0)
    }
    return h
  })

/** Serve one stream whose other end writes `bytes` raw and closes; the exit of `serve`. */
const serveRaw = (h: Server.Handlers, from: PeerId.PeerId, bytes: ReadonlyArray<Uint8Array>) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    yield* a.write(bytes)
    yield* a.closeWrite
    return yield* Effect.exit(Server.serve(b, from, h))
  })

const reasonOf = (exit: Exit.Exit<unknown, Rendezvous.RendezvousError>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.map((r) => (r._tag === "Fail" ? r.error.reason._tag : r._tag)) : []

const frame = (msg: RendezvousMessage) => LengthPrefixed.frame(RendezvousMessage.encode(msg))

describe("rendezvous bad input §Protobuf", () => {
  it.effect("bytes that are not a protobuf Message: Malformed", () =>
    Effect.gen(function*() {
      const exit = yield* serveRaw(yield* handlers(), PeerId.fromPrivateKey(seededKey(1)), [
        ...LengthPrefixed.frame(Uint8Array.of(0x12, 0x05, 0xff))
      ])
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }), 60_000)

  it.effect("a length prefix over the request limit: Malformed before the body is read", () =>
    Effect.gen(function*() {
      const exit = yield* serveRaw(yield* handlers(), PeerId.fromPrivateKey(seededKey(1)), [
        Varint.encode(MAX_REQUEST_SIZE + 1)
      ])
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }), 60_000)

  it.effect(
    "response types, an unknown type, no type, a REGISTER without its body: Malformed, nothing stored",
    () =>
      Effect.gen(function*() {
        const h = yield* handlers()
        const from = PeerId.fromPrivateKey(seededKey(1))
        const bad: ReadonlyArray<RendezvousMessage> = [
          { type: MessageType.REGISTER_RESPONSE, registerResponse: { status: 0 } },
          { type: MessageType.DISCOVER_RESPONSE, discoverResponse: { registrations: [] } },
          { type: 42 },
          {},
          { type: MessageType.REGISTER },
          { type: MessageType.UNREGISTER }
        ]
        for (const msg of bad) {
          expect(reasonOf(yield* serveRaw(h, from, frame(msg)))).toEqual(["Malformed"])
        }
        expect(h.store.size()).toBe(0)
      }),
    60_000
  )

  it.effect(
    "a routing-state envelope signed for another domain, or a peer-record one with a foreign payload: E_INVALID_SIGNED_PEER_RECORD",
    () =>
      Effect.gen(function*() {
        const h = yield* handlers()
        const key = seededKey(5)
        const from = PeerId.fromPrivateKey(key)
        const payload = PeerRecord.encode(PeerRecord.make(from, 1n, []))
        const wrongDomain = Envelope.encode(
          Result.getOrThrow(Envelope.seal(key, PeerRecord.DOMAIN, Records.ROUTING_STATE_PAYLOAD_TYPE, payload))
        )
        const wrongPayload = Envelope.encode(
          Result.getOrThrow(
            Envelope.seal(key, Records.ROUTING_STATE_DOMAIN, Records.ROUTING_STATE_PAYLOAD_TYPE, Uint8Array.of(1, 2, 3))
          )
        )
        for (const signedPeerRecord of [wrongDomain, wrongPayload]) {
          const res = yield* Server.register(h, { ns: "x", signedPeerRecord }, from)
          expect(res.registerResponse?.status).toBe(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD)
        }
        // the right domain and payload type: taken
        const good = Result.getOrThrow(Records.seal(key, PeerRecord.make(from, 1n, []), "routing-state"))
        expect((yield* Server.register(h, { ns: "x", signedPeerRecord: good }, from)).registerResponse?.status)
          .toBe(ResponseStatus.OK)
        expect(h.store.size()).toBe(1)
      }),
    60_000
  )

  it.effect(
    "a record over the size limit: E_INVALID_SIGNED_PEER_RECORD, the stream kept",
    () =>
      Effect.gen(function*() {
        const h = yield* handlers()
        const res = yield* Server.register(
          h,
          { ns: "x", signedPeerRecord: new Uint8Array(9000) },
          PeerId.fromPrivateKey(seededKey(1))
        )
        expect(res.registerResponse?.status).toBe(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD)
      }),
    60_000
  )

  it.effect(
    "the client refuses an answer of the wrong type, or without its body: Malformed",
    () =>
      Effect.gen(function*() {
        for (
          const answer of [
            { type: MessageType.DISCOVER_RESPONSE, discoverResponse: { registrations: [] } },
            { type: MessageType.REGISTER_RESPONSE }
          ] satisfies ReadonlyArray<RendezvousMessage>
        ) {
          const [a, b] = yield* Duplex.pair()
          yield* b.write(frame(answer))
          const exit = yield* Effect.exit(
            Client.request(a, PeerId.fromPrivateKey(seededKey(2)), registerMsg("x", new Uint8Array(1)))
          )
          expect(reasonOf(exit)).toEqual(["Malformed"])
        }
      }),
    60_000
  )

  it.effect("the client refuses an answer over 1 MiB before reading it", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* b.write([Varint.encode(MAX_MESSAGE_SIZE + 1)])
      const exit = yield* Effect.exit(
        Client.request(a, PeerId.fromPrivateKey(seededKey(2)), { type: MessageType.DISCOVER, discover: {} })
      )
      expect(reasonOf(exit)).toEqual(["Malformed"])
    }), 60_000)
})

describe("rendezvous bad input §Spam mitigation", () => {
  it.effect(
    "a registration flood from one peer: 1,000 taken (spec §Recommendations), the rest E_NOT_AUTHORIZED",
    () =>
      Effect.gen(function*() {
        const h = yield* handlers()
        const key = seededKey(3)
        const record = yield* signedRecord(key)
        const [a, b] = yield* Duplex.pair({ capacity: 4096 })
        const serving = yield* Effect.forkChild(Server.serve(b, PeerId.fromPrivateKey(key), h))
        const n = 1500
        yield* a.write(LengthPrefixed.frameAll(
          Array.from({ length: n }, (_, i) => RendezvousMessage.encode(registerMsg(`ns-${i}`, record)))
        ))
        yield* a.closeWrite
        const msgs = LengthPrefixed.messages(a, { maxLength: MAX_MESSAGE_SIZE })
        const statuses = new Map<number, number>()
        for (let i = 0; i < n; i++) {
          const res = Result.getOrThrow(RendezvousMessage.decode(yield* msgs.readOne))
          const s = res.registerResponse!.status!
          statuses.set(s, (statuses.get(s) ?? 0) + 1)
        }
        yield* Fiber.join(serving)
        expect(statuses).toEqual(new Map([[ResponseStatus.OK, 1000], [ResponseStatus.E_NOT_AUTHORIZED, 500]]))
        expect(h.store.size()).toBe(1000)
      }),
    60_000
  )

  it.effect(
    "a flood of identities is cut at the point's total limit: E_UNAVAILABLE, state bounded",
    () =>
      Effect.gen(function*() {
        const h = yield* handlers({ maxPerPeer: 1000, maxPerNamespace: 10_000, maxTotal: 50 })
        const statuses: Array<number> = []
        for (let i = 0; i < 80; i++) {
          const key = yield* Keys.generate("Ed25519")
          const res = yield* Server.register(
            h,
            { ns: "relay", signedPeerRecord: yield* signedRecord(key) },
            PeerId.fromPrivateKey(key)
          )
          statuses.push(res.registerResponse!.status!)
        }
        expect(statuses.filter((s) => s === ResponseStatus.OK).length).toBe(50)
        expect(statuses.filter((s) => s === ResponseStatus.E_UNAVAILABLE).length).toBe(30)
        expect(h.store.size()).toBe(50)
      }),
    60_000
  )
})

describe("rendezvous bad input over a node", () => {
  it.effect("a stream reset for bad input leaves the point serving the next one", () =>
    Effect.gen(function*() {
      const r = yield* rdvNode({ seed: 40, server: {} })
      const a = yield* rdvNode({ seed: 41 })
      yield* a.host.dial(r.addr)
      const bad = yield* rawFrames(a, r, [Varint.encode(MAX_REQUEST_SIZE + 10), new Uint8Array(64)])
      expect(bad.answers).toEqual([])
      expect(bad.error).toBeDefined()
      const wrong = yield* rawFrames(
        a,
        r,
        frame({ type: MessageType.DISCOVER_RESPONSE, discoverResponse: { registrations: [] } })
      )
      expect(wrong.answers).toEqual([])
      yield* a.rdv.register(r.host.peerId, "still")
      expect((yield* a.rdv.discover(r.host.peerId, { namespace: "still" })).registrations.length).toBe(1)
      expect(r.host.connections().length).toBe(1)
      // no stream left open on either side once the requests are done (resets and all)
      const open = () => [...r.host.connections(), ...a.host.connections()].flatMap((c) => c.streams())
      for (let i = 0; i < 1000 && open().length > 0; i++) yield* Effect.yieldNow
      expect(r.host.connections()[0]!.streams().map((s) => [s.protocol, s.direction])).toEqual([])
      expect(a.host.connections()[0]!.streams().map((s) => [s.protocol, s.direction])).toEqual([])
    }).pipe(Effect.provide(Memory.layerNetwork)), 60_000)
})
