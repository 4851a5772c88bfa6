/**
 * The Delegated Routing V1 HTTP client (ipfs/specs routing/http-routing-v1.md) against an
 * in-process node:http server serving spec-shaped answers: JSON and NDJSON records, 404, 500,
 * malformed and oversized bodies, a server that never answers, IPNS records.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Result } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as DelegatedRouting from "../../src/protocols/delegated-routing/DelegatedRouting.ts"
import * as Kad from "../../src/protocols/kad/Kad.ts"
import { ContentRouting } from "../../src/routing/ContentRouting.ts"
import { PeerRouting, RoutingError } from "../../src/routing/PeerRouting.ts"

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void

/** A node:http server on 127.0.0.1 answering with `handler`; closed (all sockets) with the scope. */
const server = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly url: string; readonly server: http.Server }>((resume) => {
      const s = http.createServer((req, res) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => handler(req, res, Buffer.concat(chunks)))
      })
      s.listen(
        0,
        "127.0.0.1",
        () => resume(Effect.succeed({ url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, server: s }))
      )
    }),
    ({ server: s }) =>
      Effect.callback<void>((resume) => {
        s.closeAllConnections()
        s.close(() => resume(Effect.void))
      })
  )

const client = (options: DelegatedRouting.DelegatedRoutingOptions) =>
  Effect.provide(DelegatedRouting.DelegatedRouting, DelegatedRouting.layerFetch(options))

const json = (res: http.ServerResponse, status: number, body: unknown, type = "application/json") => {
  res.writeHead(status, { "content-type": type })
  res.end(typeof body === "string" ? body : JSON.stringify(body))
}

const newPeer = Effect.map(Keys.generate("Ed25519"), (k) => ({ key: k, id: PeerId.fromPrivateKey(k) }))

const reasonOf = <A>(exit: Exit.Exit<A, DelegatedRouting.DelegatedRoutingError>) => {
  if (Exit.isSuccess(exit)) return "success"
  const e = exit.cause.reasons.find((r) => r._tag === "Fail")
  return e?._tag === "Fail" ? e.error.reason : "defect"
}

const MH = Uint8Array.of(0x12, 0x20, ...new Uint8Array(32).fill(7))

describe("Delegated Routing V1 HTTP client", () => {
  it.live("§Peer Routing API: GET /routing/v1/peers/{peer-id} as JSON, peer schema records (unknown fields and schemas ignored)", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* newPeer
      const seen: Array<{ url: string; accept: string }> = []
      const s = yield* server((req, res) => {
        seen.push({ url: req.url!, accept: req.headers.accept ?? "" })
        json(res, 200, {
          Peers: [
            {
              Schema: "peer",
              ID: PeerId.toString(a.id),
              Addrs: ["/ip4/192.0.2.1/tcp/4001", "/not-a-protocol/1"],
              Protocols: ["transport-bitswap", "protocol-a"],
              "protocol-a": "AAEC",
              "protocol-b": { foo: "bar" }
            },
            { Schema: "future-schema", Whatever: 1 }
          ]
        })
      })
      const d = yield* client({ url: `${s.url}/` })
      const recs = yield* d.findPeers(a.id)
      expect(seen).toEqual([{ url: `/routing/v1/peers/${PeerId.toCidString(a.id)}`, accept: "application/json" }])
      expect(recs).toHaveLength(1)
      expect(PeerId.equals(recs[0]!.id, a.id)).toBe(true)
      expect(recs[0]!.addrs.map(Multiaddr.toString)).toEqual(["/ip4/192.0.2.1/tcp/4001"])
      expect(recs[0]!.protocols).toEqual(["transport-bitswap", "protocol-a"])

      const routing = yield* Effect.provide(
        PeerRouting,
        DelegatedRouting.layerPeerRouting.pipe(Layer.provide(DelegatedRouting.layerFetch({ url: s.url })))
      )
      const info = yield* routing.findPeer(a.id)
      expect(info.addrs.map(Multiaddr.toString)).toEqual(["/ip4/192.0.2.1/tcp/4001"])
    })))

  it.live("§Content Routing API: GET /routing/v1/providers/{cid} with a CIDv1 base32 and IPIP-484 filters", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* newPeer
      const b = yield* newPeer
      const urls: Array<string> = []
      const s = yield* server((req, res) => {
        urls.push(req.url!)
        json(res, 200, {
          Providers: [
            { Schema: "peer", ID: PeerId.toCidString(a.id), Addrs: ["/ip4/192.0.2.1/udp/4001/quic-v1"] },
            { Schema: "peer", ID: PeerId.toString(b.id) }
          ]
        })
      })
      const d = yield* client({ url: s.url, filterAddrs: ["quic-v1", "!ip6"], filterProtocols: ["unknown"] })
      const recs = yield* d.findProviders(MH)
      const cid = DelegatedRouting.cidOfMultihash(MH)
      expect(cid.startsWith("bafkrei")).toBe(true)
      expect(urls).toEqual([`/routing/v1/providers/${cid}?filter-addrs=quic-v1%2C!ip6&filter-protocols=unknown`])
      expect(recs.map((r) => PeerId.toString(r.id))).toEqual([PeerId.toString(a.id), PeerId.toString(b.id)])
      expect(recs[1]!.addrs).toEqual([])

      const routing = yield* Effect.provide(
        ContentRouting,
        DelegatedRouting.layerContentRouting.pipe(Layer.provide(DelegatedRouting.layerFetch({ url: s.url })))
      )
      expect((yield* routing.findProviders(MH, { limit: 1 })).length).toBe(1)
      const provide = yield* Effect.exit(routing.provide(MH))
      expect(Exit.isFailure(provide) && JSON.stringify(provide.cause)).toContain("Unsupported")
    })))

  it.live("§Streaming: Accept application/x-ndjson, one record a line, cut at the limit; a legacy JSON answer is read too", () =>
    Effect.scoped(Effect.gen(function*() {
      const peers = yield* Effect.all([newPeer, newPeer, newPeer])
      let legacy = false
      const accepts: Array<string> = []
      const s = yield* server((req, res) => {
        accepts.push(req.headers.accept ?? "")
        if (legacy) {
          return json(res, 200, { Providers: peers.map((p) => ({ Schema: "peer", ID: PeerId.toString(p.id) })) })
        }
        res.writeHead(200, { "content-type": "application/x-ndjson" })
        // split a record across writes, blank lines between
        const lines = peers.map((p) => JSON.stringify({ Schema: "peer", ID: PeerId.toString(p.id), Addrs: [] }))
        res.write(lines[0]!.slice(0, 10))
        res.write(`${lines[0]!.slice(10)}\n\n`)
        res.end(`${lines[1]}\n${lines[2]}`)
      })
      const d = yield* client({ url: s.url, streaming: true })
      const all = yield* d.findProviders(MH)
      expect(all.map((r) => PeerId.toString(r.id))).toEqual(peers.map((p) => PeerId.toString(p.id)))
      expect((yield* d.findProviders(MH, { limit: 2 })).length).toBe(2)
      legacy = true
      expect((yield* d.findProviders(MH)).length).toBe(3)
      expect(new Set(accepts)).toEqual(new Set(["application/x-ndjson"]))
    })))

  it.live("§Response Status Codes: 404 is 200 with no results; PeerRouting.findPeer then fails NotFound", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* newPeer
      const s = yield* server((_req, res) => json(res, 404, "not found", "text/plain"))
      const d = yield* client({ url: s.url })
      expect(yield* d.findProviders(MH)).toEqual([])
      expect(yield* d.findPeers(a.id)).toEqual([])
      const routing = yield* Effect.provide(
        PeerRouting,
        DelegatedRouting.layerPeerRouting.pipe(Layer.provide(DelegatedRouting.layerFetch({ url: s.url })))
      )
      const exit = yield* Effect.exit(routing.findPeer(a.id))
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" && exit.cause.reasons[0].error.reason)
        .toBe("NotFound")
      expect(reasonOf(yield* Effect.exit(d.getIpns(a.id)))).toBe("NotFound")
    })))

  it.live("§Error Codes: 500, 429 and 501 are Http errors with their status", () =>
    Effect.scoped(Effect.gen(function*() {
      const statuses = [500, 429, 501]
      let i = 0
      const s = yield* server((_req, res) => json(res, statuses[i++]!, { error: "x" }))
      const d = yield* client({ url: s.url })
      for (const status of statuses) {
        const exit = yield* Effect.exit(d.findProviders(MH))
        expect(reasonOf(exit)).toBe("Http")
        expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" && exit.cause.reasons[0].error.status)
          .toBe(status)
      }
    })))

  it.live("§Error Codes: an error status whose body never ends is not read, and its request is aborted at once", () =>
    Effect.scoped(Effect.gen(function*() {
      const closed = yield* Deferred.make<void>()
      const s = yield* server((_req, res) => {
        res.on("close", () => Deferred.doneUnsafe(closed, Exit.void))
        res.writeHead(500, { "content-type": "text/plain" })
        res.write("trouble ")
      })
      const d = yield* client({ url: s.url })
      expect(reasonOf(yield* Effect.exit(d.findProviders(MH)))).toBe("Http")
      // the scope's abort closes it in milliseconds; left to GC it took 7 s here
      yield* Effect.timeout(Deferred.await(closed), "5 seconds")
    })))

  it.live("§Peer Schema: malformed JSON, a wrong shape, a bad ID, a bad NDJSON line and a wrong Content-Type are Malformed", () =>
    Effect.scoped(Effect.gen(function*() {
      const bodies: Array<[string, string]> = [
        ["application/json", "{\"Providers\": [ {\"Schema\": "],
        ["application/json", JSON.stringify({ Providers: "nope" })],
        ["application/json", JSON.stringify({ Providers: [{ Schema: "peer", ID: 7 }] })],
        ["application/json", JSON.stringify({ Providers: [{ Schema: "peer", ID: "not-a-peer-id" }] })],
        ["application/x-ndjson", "{\"Schema\":\"peer\",\"ID\":\"12D3\"}\n"],
        ["application/x-ndjson", "[1,2\n"],
        ["text/html", "<html></html>"]
      ]
      let i = 0
      const s = yield* server((_req, res) => {
        const [type, body] = bodies[i++]!
        json(res, 200, body, type)
      })
      const d = yield* client({ url: s.url })
      for (const _ of bodies) expect(reasonOf(yield* Effect.exit(d.findProviders(MH)))).toBe("Malformed")
    })))

  it.live("§Response Body: an oversized JSON body or an endless NDJSON stream fails TooLarge, the connection closed", () =>
    Effect.scoped(Effect.gen(function*() {
      const closed = yield* Deferred.make<void>()
      let endless = false
      const s = yield* server((_req, res) => {
        if (!endless) return json(res, 200, { Providers: [], pad: "x".repeat(64 * 1024) })
        res.writeHead(200, { "content-type": "application/x-ndjson" })
        res.on("close", () => Deferred.doneUnsafe(closed, Exit.void))
        const line = `${JSON.stringify({ Schema: "other", pad: "y".repeat(1000) })}\n`
        const pump = () => {
          while (!res.destroyed && res.write(line)) { /* until the socket buffer is full */ }
          if (!res.destroyed) res.once("drain", pump)
        }
        pump()
      })
      const d = yield* client({ url: s.url, maxResponseBytes: 16 * 1024, streaming: true })
      expect(reasonOf(yield* Effect.exit(d.findProviders(MH)))).toBe("TooLarge")
      endless = true
      expect(reasonOf(yield* Effect.exit(d.findProviders(MH)))).toBe("TooLarge")
      yield* Effect.timeout(Deferred.await(closed), "20 seconds")
    })))

  it.live("timeout: a server that never answers fails Timeout, and the request is abandoned", () =>
    Effect.scoped(Effect.gen(function*() {
      const closed = yield* Deferred.make<void>()
      const s = yield* server((_req, res) => {
        res.on("close", () => Deferred.doneUnsafe(closed, Exit.void))
      })
      const d = yield* client({ url: s.url, timeout: "300 millis" })
      expect(reasonOf(yield* Effect.exit(d.findProviders(MH)))).toBe("Timeout")
      yield* Effect.timeout(Deferred.await(closed), "20 seconds")
    })))

  it.live("§IPNS API: GET returns the record, verified; a forged record is Malformed, another type is NotFound; PUT sends it", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* newPeer
      const nowNs = BigInt(Date.now()) * 1_000_000n
      const record = Result.getOrThrow(
        Kad.Ipns.create(a.key, new TextEncoder().encode("/ipfs/bafkqaaa"), {
          sequence: 3n,
          eolNanos: nowNs + 3_600_000_000_000n
        })
      )
      const forged = record.slice()
      forged[forged.length - 5]! ^= 1
      let mode: "good" | "forged" | "html" = "good"
      const puts: Array<{ url: string; type: string; body: Buffer }> = []
      const s = yield* server((req, res, body) => {
        if (req.method === "PUT") {
          puts.push({ url: req.url!, type: req.headers["content-type"] ?? "", body })
          return json(res, 200, "")
        }
        if (mode === "html") return json(res, 200, "<html/>", "text/html")
        res.writeHead(200, { "content-type": "application/vnd.ipfs.ipns-record" })
        res.end(mode === "good" ? record : forged)
      })
      const d = yield* client({ url: s.url })
      const got = yield* d.getIpns(a.id)
      expect(got.verified.sequence).toBe(3n)
      expect(new TextDecoder().decode(got.verified.value)).toBe("/ipfs/bafkqaaa")
      mode = "forged"
      expect(reasonOf(yield* Effect.exit(d.getIpns(a.id)))).toBe("Malformed")
      mode = "html"
      expect(reasonOf(yield* Effect.exit(d.getIpns(a.id)))).toBe("NotFound")

      const routing = yield* Effect.provide(
        ContentRouting,
        DelegatedRouting.layerContentRouting.pipe(Layer.provide(DelegatedRouting.layerFetch({ url: s.url })))
      )
      yield* routing.put(Kad.Ipns.ipnsKey(a.id), record)
      expect(puts).toHaveLength(1)
      expect(puts[0]!.url).toBe(`/routing/v1/ipns/${PeerId.toCidString(a.id, "base36")}`)
      expect(puts[0]!.type).toBe("application/vnd.ipfs.ipns-record")
      expect(new Uint8Array(puts[0]!.body)).toEqual(record)
      // a forged record is refused before it is sent
      expect(Exit.isFailure(yield* Effect.exit(routing.put(Kad.Ipns.ipnsKey(a.id), forged)))).toBe(true)
      expect(puts).toHaveLength(1)
    })))

  it.live("beside Kad: findProviders merges both answers, findPeer takes the one that answers, provide goes to the other", () =>
    Effect.scoped(Effect.gen(function*() {
      const a = yield* newPeer
      const b = yield* newPeer
      const s = yield* server((req, res) =>
        req.url!.startsWith("/routing/v1/providers/")
          ? json(res, 200, {
            Providers: [{ Schema: "peer", ID: PeerId.toString(a.id), Addrs: ["/ip4/192.0.2.1/tcp/1"] }]
          })
          : json(res, 200, { Peers: [{ Schema: "peer", ID: PeerId.toString(b.id), Addrs: ["/ip4/192.0.2.3/tcp/3"] }] })
      )
      const provided: Array<Uint8Array> = []
      const notFound = Effect.fail(new RoutingError({ reason: "NotFound", message: "other: none" }))
      const other = Layer.mergeAll(
        Layer.succeed(PeerRouting, PeerRouting.of({ findPeer: () => notFound, getClosestPeers: () => notFound })),
        Layer.succeed(
          ContentRouting,
          ContentRouting.of({
            provide: (key) => Effect.sync(() => void provided.push(key)),
            findProviders: () =>
              Effect.succeed([
                { peerId: a.id, addrs: [Result.getOrThrow(Multiaddr.fromString("/ip4/192.0.2.2/tcp/2"))] },
                { peerId: b.id, addrs: [] }
              ]),
            put: () => notFound,
            get: () => notFound
          })
        )
      )
      const layer = Layer.mergeAll(DelegatedRouting.layerPeerRoutingBeside, DelegatedRouting.layerContentRoutingBeside)
        .pipe(Layer.provide(Layer.merge(other, DelegatedRouting.layerFetch({ url: s.url }))))
      const [peers, content] = yield* Effect.provide(Effect.all([PeerRouting, ContentRouting]), layer)
      const found = yield* content.findProviders(MH)
      expect(found.map((p) => PeerId.toString(p.peerId)).sort()).toEqual(
        [PeerId.toString(a.id), PeerId.toString(b.id)].sort()
      )
      const pa = found.find((p) => PeerId.equals(p.peerId, a.id))!
      expect(pa.addrs.map(Multiaddr.toString).sort()).toEqual(["/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.2/tcp/2"])
      yield* content.provide(MH)
      expect(provided).toHaveLength(1)
      const pb = yield* peers.findPeer(b.id)
      expect(pb.addrs.map(Multiaddr.toString)).toEqual(["/ip4/192.0.2.3/tcp/3"])
      // both say NotFound (the server answers only about b): NotFound
      const exit = yield* Effect.exit(peers.findPeer(a.id))
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" && exit.cause.reasons[0].error.reason)
        .toBe("NotFound")
    })))
})
