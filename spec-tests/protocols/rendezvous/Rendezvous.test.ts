/**
 * Rendezvous between our own nodes on the memory transport (libp2p specs
 * rendezvous/README.md): registration and discovery (§Interaction), cookie
 * pagination (§The Protocol), unregistering and TTLs (§Registration
 * Lifetime, under TestClock), the limits of §Recommendations and §Spam
 * mitigation, and registrations kept in a SQLite datastore across a restart.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, type Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Sqlite from "../../../src/datastore/Sqlite.ts"
import * as Metrics from "../../../src/observability/Metrics.ts"
import * as Rendezvous from "../../../src/protocols/rendezvous/Rendezvous.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import * as Prometheus from "../../support/prometheus.ts"
import { seededKey } from "../kad/support.ts"
import { raw, type RdvNode, rdvNode, registerMsg, signedRecord } from "./support.ts"

const { ResponseStatus } = Rendezvous

const ids = (regs: ReadonlyArray<{ readonly peerId: PeerId.PeerId }>) => regs.map((r) => r.peerId.toString()).sort()

/** The RendezvousError's status name, or the reason's tag. */
const refusal = <A>(effect: Effect.Effect<A, Rendezvous.RendezvousError>) =>
  Effect.map(Effect.flip(effect), (e) => e.reason._tag === "Refused" ? e.reason.statusName : e.reason._tag)

const connectAll = (point: RdvNode, peers: ReadonlyArray<RdvNode>) =>
  Effect.forEach(peers, (p) => p.host.dial(point.addr), { discard: true })

describe("rendezvous §Interaction", () => {
  it.effect(
    "A and B register in my-app, C in another-app; D discovers by namespace, all, then E with the cookie",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 1, server: {} })
        const [a, b, c, d, e] = yield* Effect.forEach([2, 3, 4, 5, 6], (seed) => rdvNode({ seed }))
        yield* connectAll(r, [a!, b!, c!, d!, e!])
        const point = r.host.peerId
        expect(Duration.toSeconds(yield* a!.rdv.register(point, "my-app"))).toBe(7200) // §Registration Lifetime default
        yield* b!.rdv.register(point, "my-app")
        yield* c!.rdv.register(point, "another-app")

        const first = yield* d!.rdv.discover(point, { namespace: "my-app" })
        expect(ids(first.registrations)).toEqual(ids([a!.host, b!.host]))
        expect(first.registrations.every((x) => x.namespace === "my-app")).toBe(true)
        expect(first.registrations.find((x) => x.peerId.toString() === a!.host.peerId.toString())!.addrs.map(String))
          .toEqual(a!.host.addrs().map((x) => String(x).replace(/\/p2p\/.*$/, "")))

        const all = yield* d!.rdv.discover(point)
        expect(ids(all.registrations)).toEqual(ids([a!.host, b!.host, c!.host]))

        yield* e!.rdv.register(point, "my-app")
        const next = yield* d!.rdv.discover(point, { namespace: "my-app", cookie: first.cookie })
        expect(ids(next.registrations)).toEqual(ids([e!.host]))
        expect(server(r).namespaces()).toEqual(new Map([["my-app", 3], ["another-app", 1]]))
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "the discovery stream yields each registered peer once, with its addresses and source rendezvous",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 10, server: {} })
        const [a, b, d] = yield* Effect.forEach([11, 12, 13], (seed) => rdvNode({ seed }))
        yield* connectAll(r, [a!, b!, d!])
        yield* a!.rdv.register(r.host.peerId, "chat")
        yield* d!.rdv.register(r.host.peerId, "chat") // ourselves: not yielded
        const fiber = yield* Effect.forkChild(
          Stream.runCollect(Stream.take(d!.rdv.discoveries(r.host.peerId, "chat", { interval: "10 seconds" }), 2))
        )
        yield* Effect.sleep(0)
        yield* b!.rdv.register(r.host.peerId, "chat")
        yield* TestClock.adjust("10 seconds")
        const got = yield* Fiber.join(fiber)
        expect(got.map((p) => p.peerId.toString())).toEqual([a!.host.peerId.toString(), b!.host.peerId.toString()])
        expect(got.every((p) => p.source === "rendezvous" && p.addrs.length > 0)).toBe(true)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

describe("rendezvous §The Protocol: cookie pagination", () => {
  it.effect(
    "a cookie continues where the last answer stopped: 25 registrations in pages of 10, nothing repeated",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 20, server: {} })
        const peers = yield* Effect.forEach(Array.from({ length: 25 }, (_, i) => 21 + i), (seed) => rdvNode({ seed }))
        yield* connectAll(r, peers)
        yield* Effect.forEach(peers, (p) => p.rdv.register(r.host.peerId, "page"), { discard: true })
        const d = peers[0]!
        const seen: Array<string> = []
        const sizes: Array<number> = []
        let cookie: Uint8Array | undefined
        for (let i = 0; i < 4; i++) {
          const page = yield* d.rdv.discover(r.host.peerId, { namespace: "page", limit: 10, cookie })
          sizes.push(page.registrations.length)
          seen.push(...page.registrations.map((x) => x.peerId.toString()))
          cookie = page.cookie
        }
        expect(sizes).toEqual([10, 10, 5, 0])
        expect(new Set(seen).size).toBe(25)
        expect(seen.sort()).toEqual(ids(peers.map((p) => p.host)))
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "§Recommendations: at most maxDiscoverLimit (default 1000) peers per namespace query, whatever limit is asked [rendezvous:recommendations-for-rendezvous-points-configurations:4]",
    () =>
      Effect.gen(function*() {
        expect(Rendezvous.serverDefaults.maxDiscoverLimit).toBe(1000)
        const r = yield* rdvNode({ seed: 70, server: { maxDiscoverLimit: 4 } })
        const peers = yield* Effect.forEach(Array.from({ length: 6 }, (_, i) => 71 + i), (seed) => rdvNode({ seed }))
        yield* connectAll(r, peers)
        yield* Effect.forEach(peers, (p) => p.rdv.register(r.host.peerId, "capped"), { discard: true })
        const d = peers[0]!
        const asked = yield* d.rdv.discover(r.host.peerId, { namespace: "capped", limit: 100 })
        expect(asked.registrations.length).toBe(4)
        const unasked = yield* d.rdv.discover(r.host.peerId, { namespace: "capped" })
        expect(unasked.registrations.length).toBe(4)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "a forged cookie, a flipped bit, or another namespace's cookie: E_INVALID_COOKIE",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 50, server: {} })
        const a = yield* rdvNode({ seed: 51 })
        yield* connectAll(r, [a])
        yield* a.rdv.register(r.host.peerId, "x")
        const good = (yield* a.rdv.discover(r.host.peerId, { namespace: "x" })).cookie!
        // the shape rust-libp2p's client parses (Cookie::from_wire_encoding: a u64, then UTF-8 of at most 255 bytes)
        expect(good.byteLength).toBe(40)
        expect(new TextDecoder("utf-8", { fatal: true }).decode(good.subarray(8))).toMatch(/^[0-9a-f]{32}$/)
        const flipped = Uint8Array.from(good)
        flipped[5]! ^= 1
        const forged = Uint8Array.from(good)
        forged.set(new TextEncoder().encode("0".repeat(32)), 8)
        const discover = (namespace: string | undefined, cookie: Uint8Array) =>
          refusal(a.rdv.discover(r.host.peerId, { namespace, cookie }))
        expect(yield* discover("x", flipped)).toBe("E_INVALID_COOKIE")
        expect(yield* discover("x", forged)).toBe("E_INVALID_COOKIE")
        expect(yield* discover("x", new Uint8Array(4000))).toBe("E_INVALID_COOKIE")
        expect(yield* discover("y", good)).toBe("E_INVALID_COOKIE")
        expect(yield* discover(undefined, good)).toBe("E_INVALID_COOKIE")
        expect((yield* a.rdv.discover(r.host.peerId, { namespace: "x", cookie: good })).registrations).toEqual([])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

describe("rendezvous §The Protocol: signed peer records", () => {
  it.effect(
    "the point takes records in both envelope formats (libp2p-peer-record and rust's libp2p-routing-state)",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 150, server: {} })
        const a = yield* rdvNode({ seed: 151, client: { recordFormat: "routing-state" } })
        const b = yield* rdvNode({ seed: 152 })
        yield* connectAll(r, [a, b])
        yield* a.rdv.register(r.host.peerId, "formats")
        yield* b.rdv.register(r.host.peerId, "formats")
        const found = yield* b.rdv.discover(r.host.peerId, { namespace: "formats" })
        expect(ids(found.registrations)).toEqual(ids([a.host, b.host]))
        const ofA = found.registrations.find((x) => x.peerId.toString() === a.host.peerId.toString())!
        expect(ofA.addrs.length).toBe(1)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

describe("rendezvous §Registration Lifetime", () => {
  it.effect(
    "UNREGISTER removes the registration; one for a namespace not registered is a no-op [rendezvous:registration-lifetime:1]",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 60, server: {} })
        const [a, b] = yield* Effect.forEach([61, 62], (seed) => rdvNode({ seed }))
        yield* connectAll(r, [a!, b!])
        yield* a!.rdv.register(r.host.peerId, "ns")
        yield* b!.rdv.register(r.host.peerId, "ns")
        yield* a!.rdv.unregister(r.host.peerId, "ns")
        yield* a!.rdv.unregister(r.host.peerId, "never-registered")
        expect(ids((yield* b!.rdv.discover(r.host.peerId, { namespace: "ns" })).registrations)).toEqual(ids([b!.host]))
        expect(a!.rdv.registrations()).toEqual([])
        expect(server(r).size()).toBe(1)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "a registration expires after its TTL and the sweep deletes it; the client's is refreshed before",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 70, server: { minTtl: "1 minute", gcInterval: "30 seconds" } })
        const [a, b, d] = yield* Effect.forEach([71, 72, 73], (seed) => rdvNode({ seed }))
        yield* connectAll(r, [a!, b!, d!])
        // a registers through the service (refreshed at 3/4 of the TTL), b with one raw REGISTER
        expect(Duration.toSeconds(yield* a!.rdv.register(r.host.peerId, "t", { ttl: "2 minutes" }))).toBe(120)
        const res = yield* raw(b!, r, registerMsg("t", yield* signedRecord(seededKey(72)), 120))
        expect(res?.registerResponse?.status).toBe(ResponseStatus.OK)
        expect(res?.registerResponse?.ttl).toBe(120n)
        for (let i = 0; i < 13; i++) yield* TestClock.adjust("10 seconds") // 130 s
        const left = yield* d!.rdv.discover(r.host.peerId, { namespace: "t" })
        expect(ids(left.registrations)).toEqual(ids([a!.host]))
        expect(left.registrations[0]!.ttl).toBeGreaterThan(60)
        expect(server(r).size()).toBe(1)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "a TTL below the minimum or above 72 h: E_INVALID_TTL; none given: the default [rendezvous:recommendations-for-rendezvous-points-configurations:1] [rendezvous:recommendations-for-rendezvous-points-configurations:3]",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 80, server: {} })
        const a = yield* rdvNode({ seed: 81 })
        yield* connectAll(r, [a])
        expect(yield* refusal(a.rdv.register(r.host.peerId, "t", { ttl: "1 hour" }))).toBe("E_INVALID_TTL")
        expect(yield* refusal(a.rdv.register(r.host.peerId, "t", { ttl: "73 hours" }))).toBe("E_INVALID_TTL")
        expect(Duration.toHours(yield* a.rdv.register(r.host.peerId, "t", { ttl: "72 hours" }))).toBe(72)
        expect(Duration.toHours(yield* a.rdv.register(r.host.peerId, "u"))).toBe(2)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

describe("rendezvous §Recommendations and §Spam mitigation: limits", () => {
  it.effect(
    "per peer: a registration beyond the limit is E_NOT_AUTHORIZED; a refresh still succeeds",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 90, server: { maxRegistrationsPerPeer: 3 } })
        const a = yield* rdvNode({ seed: 91 })
        yield* connectAll(r, [a])
        for (const ns of ["a", "b", "c"]) yield* a.rdv.register(r.host.peerId, ns)
        expect(yield* refusal(a.rdv.register(r.host.peerId, "d"))).toBe("E_NOT_AUTHORIZED")
        yield* a.rdv.register(r.host.peerId, "b")
        expect(server(r).size()).toBe(3)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "per namespace: a peer beyond the limit is E_UNAVAILABLE; other namespaces still take it",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 100, server: { maxRegistrationsPerNamespace: 2 } })
        const peers = yield* Effect.forEach([101, 102, 103], (seed) => rdvNode({ seed }))
        yield* connectAll(r, peers)
        yield* peers[0]!.rdv.register(r.host.peerId, "full")
        yield* peers[1]!.rdv.register(r.host.peerId, "full")
        expect(yield* refusal(peers[2]!.rdv.register(r.host.peerId, "full"))).toBe("E_UNAVAILABLE")
        yield* peers[2]!.rdv.register(r.host.peerId, "other")
        expect(server(r).namespaces()).toEqual(new Map([["full", 2], ["other", 1]]))
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "§The Protocol: a record signed by another peer is E_NOT_AUTHORIZED; a broken one E_INVALID_SIGNED_PEER_RECORD",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 110, server: {} })
        const a = yield* rdvNode({ seed: 111 })
        yield* connectAll(r, [a])
        const other = yield* signedRecord(seededKey(999))
        const res = yield* raw(a, r, registerMsg("ns", other))
        expect(res?.registerResponse?.status).toBe(ResponseStatus.E_NOT_AUTHORIZED)
        const mine = yield* signedRecord(seededKey(111))
        const broken = Uint8Array.from(mine)
        broken[broken.length - 1]! ^= 0xff
        expect((yield* raw(a, r, registerMsg("ns", broken)))?.registerResponse?.status)
          .toBe(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD)
        expect((yield* raw(a, r, registerMsg("ns", new Uint8Array(0))))?.registerResponse?.status)
          .toBe(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD)
        expect(server(r).size()).toBe(0)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "namespaces: empty or over 255 bytes is E_INVALID_NAMESPACE (register and discover) [rendezvous:recommendations-for-rendezvous-points-configurations:3]",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 120, server: {} })
        const a = yield* rdvNode({ seed: 121 })
        yield* connectAll(r, [a])
        expect(yield* refusal(a.rdv.register(r.host.peerId, ""))).toBe("E_INVALID_NAMESPACE")
        expect(yield* refusal(a.rdv.register(r.host.peerId, "é".repeat(128)))).toBe("E_INVALID_NAMESPACE")
        expect(yield* refusal(a.rdv.discover(r.host.peerId, { namespace: "x".repeat(256) }))).toBe(
          "E_INVALID_NAMESPACE"
        )
        yield* a.rdv.register(r.host.peerId, "x".repeat(255))
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

const server = (node: RdvNode) => node.server!

describe("rendezvous metrics", () => {
  it.effect(
    "libp2p_rendezvous_*: registrations by namespace, discovers served, refusals by status",
    () =>
      Effect.gen(function*() {
        const r = yield* rdvNode({ seed: 140, server: {} })
        const [a, b] = yield* Effect.forEach([141, 142], (seed) => rdvNode({ seed }))
        yield* connectAll(r, [a!, b!])
        yield* a!.rdv.register(r.host.peerId, "m1")
        yield* b!.rdv.register(r.host.peerId, "m1")
        yield* b!.rdv.register(r.host.peerId, "m2")
        yield* a!.rdv.discover(r.host.peerId, { namespace: "m1" })
        yield* Effect.flip(a!.rdv.register(r.host.peerId, "m1", { ttl: "1 minute" }))
        const m = Prometheus.parse(Metrics.formatOf(r.context))
        expect(Prometheus.value(m, "libp2p_rendezvous_registrations", { namespace: "m1" })).toBe(2)
        expect(Prometheus.value(m, "libp2p_rendezvous_registrations", { namespace: "m2" })).toBe(1)
        expect(Prometheus.value(m, "libp2p_rendezvous_registrations_all")).toBe(3)
        expect(Prometheus.value(m, "libp2p_rendezvous_discovers_served_total")).toBe(1)
        expect(Prometheus.value(m, "libp2p_rendezvous_refusals_total", { status: "E_INVALID_TTL" })).toBe(1)
        const c = Prometheus.parse(Metrics.formatOf(a!.context))
        expect(Prometheus.value(c, "libp2p_rendezvous_client_requests_total", { type: "register", outcome: "ok" }))
          .toBe(1)
        expect(Prometheus.value(c, "libp2p_rendezvous_client_requests_total", { type: "discover", outcome: "ok" }))
          .toBe(1)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

describe("rendezvous: registrations in the Datastore", () => {
  it.live(
    "survive a restart of the point on a SQLite file; a cookie issued before still continues",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "rendezvous-"))),
          (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
        )
        const filename = path.join(dir, "datastore.sqlite")
        {
          const datastore = Sqlite.layer({ filename, synchronous: "normal" })
          // each run is one life of the point: its scope closes the node and the SQLite file
          const run = <A, E>(effect: Effect.Effect<A, E, Memory.MemoryNetwork | Scope.Scope>) => Effect.scoped(effect)
          const cookie = yield* run(Effect.gen(function*() {
            const r = yield* rdvNode({ seed: 130, server: {}, datastore })
            const [a, b] = yield* Effect.forEach([131, 132], (seed) => rdvNode({ seed }))
            yield* connectAll(r, [a!, b!])
            yield* a!.rdv.register(r.host.peerId, "kept")
            return (yield* b!.rdv.discover(r.host.peerId, { namespace: "kept" })).cookie
          }))
          yield* run(Effect.gen(function*() {
            const r = yield* rdvNode({ seed: 130, server: {}, datastore })
            expect(server(r).size()).toBe(1)
            const [b, c] = yield* Effect.forEach([132, 133], (seed) => rdvNode({ seed }))
            yield* connectAll(r, [b!, c!])
            const found = yield* b!.rdv.discover(r.host.peerId, { namespace: "kept" })
            expect(ids(found.registrations)).toEqual([PeerId.fromPrivateKey(seededKey(131)).toString()])
            yield* c!.rdv.register(r.host.peerId, "kept")
            const next = yield* b!.rdv.discover(r.host.peerId, { namespace: "kept", cookie })
            expect(ids(next.registrations)).toEqual(ids([c!.host]))
          }))
        }
      }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork)),
    60_000
  )
})
