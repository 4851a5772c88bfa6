/**
 * Delegated Routing V1 HTTP client (ipfs/specs `routing/http-routing-v1.md`):
 * providers (`GET /routing/v1/providers/{cid}`), peers
 * (`GET /routing/v1/peers/{peer-id}`), closest peers
 * (`GET /routing/v1/dht/closest/peers/{key}`) and IPNS
 * (`GET`/`PUT /routing/v1/ipns/{name}`, the record verified with
 * `Kad.Ipns.verify`), over effect's `HttpClient`. JSON (`application/json`)
 * or, when asked, NDJSON streaming (`application/x-ndjson`, §Streaming); every
 * response is bounded in bytes and time. `layerPeerRouting` /
 * `layerContentRouting` give the `PeerRouting` / `ContentRouting` contracts, so
 * a node can route through a delegated server instead of (or beside) Kad.
 *
 * Spec choices: 404 on providers/peers is 200 with no results (§Response
 * Status Codes, MUST), on IPNS "no record found" (`NotFound`). A record whose
 * `ID` does not parse makes the response `Malformed`; an address that does not
 * parse is dropped (newer multiaddr protocols). Records of other schemas are
 * skipped (§Known Schemas: clients ignore what they do not know).
 *
 * @since 0.3.0
 */
import { Bytes, Cause, Clock, Context, Duration, Effect, Layer, Option, Result, Schema, Stream } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest, type HttpClientResponse } from "effect/http"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as Multibase from "../../core/Multibase.ts"
import * as PeerId from "../../core/PeerId.ts"
import { ContentRouting } from "../../routing/ContentRouting.ts"
import { type PeerInfo, PeerRouting, RoutingError } from "../../routing/PeerRouting.ts"
import { Ipns } from "../kad/Kad.ts"

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * Why a delegated request failed: `Http` (transport error or a status other
 * than 200/404), `NotFound` (IPNS: no record), `Malformed` (the body does not
 * follow the spec, or the IPNS record does not verify), `TooLarge` (the body
 * exceeds `maxResponseBytes`), `Timeout`, `Unsupported` (the API has no such
 * operation, e.g. `provide`).
 */
export const DelegatedRoutingErrorReason = Schema.Literals([
  "Http",
  "NotFound",
  "Malformed",
  "TooLarge",
  "Timeout",
  "Unsupported"
])
export type DelegatedRoutingErrorReason = typeof DelegatedRoutingErrorReason.Type

export class DelegatedRoutingError extends Schema.TaggedError<DelegatedRoutingError>()("DelegatedRoutingError", {
  reason: DelegatedRoutingErrorReason,
  message: Schema.String,
  status: Schema.optional(Schema.Number),
  cause: Schema.optional(Schema.Defect())
}) {}

const fail = (
  reason: DelegatedRoutingErrorReason,
  message: string,
  extra: { readonly status?: number; readonly cause?: unknown } = {}
) => Effect.fail(new DelegatedRoutingError({ reason, message, ...extra }))

// ---------------------------------------------------------------------------
// records
// ---------------------------------------------------------------------------

/** A `peer` schema record (§Peer Schema), parsed. */
export interface PeerRecord {
  readonly id: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  readonly protocols: ReadonlyArray<string>
}

/** The wire shape of a record: unknown fields are allowed (§Peer Schema note). */
const RecordJson = Schema.Struct({
  Schema: Schema.String,
  ID: Schema.optional(Schema.String),
  Addrs: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  Protocols: Schema.optional(Schema.NullOr(Schema.Array(Schema.String)))
})
type RecordJson = typeof RecordJson.Type

const ProvidersJson = Schema.Struct({ Providers: Schema.NullOr(Schema.Array(RecordJson)) })
const PeersJson = Schema.Struct({ Peers: Schema.NullOr(Schema.Array(RecordJson)) })

const decodeRecord = Schema.decodeUnknownResult(RecordJson)
const decodeProviders = Schema.decodeUnknownResult(ProvidersJson)
const decodePeers = Schema.decodeUnknownResult(PeersJson)

/** A record to keep (`Some`), skip (`None`, another schema), or a malformed one. */
const toPeerRecord = (r: RecordJson): Result.Result<Option.Option<PeerRecord>, string> => {
  // Legacy schemas carry `ID` and `Addrs` like `peer` (§Legacy Schemas); the
  // only one left in the wild is `bitswap`.
  if (r.Schema !== "peer" && r.Schema !== "bitswap") return Result.succeed(Option.none())
  if (r.ID === undefined) return Result.fail(`record of schema ${r.Schema} without ID`)
  const id = PeerId.fromString(r.ID)
  if (Result.isFailure(id)) return Result.fail(`record ID: ${id.failure.message}`)
  const addrs: Array<Multiaddr.Multiaddr> = []
  for (const text of r.Addrs ?? []) {
    const ma = Multiaddr.fromString(text)
    if (Result.isSuccess(ma)) addrs.push(ma.success)
  }
  return Result.succeed(Option.some({ id: id.success, addrs, protocols: r.Protocols ?? [] }))
}

const collectRecords = (
  records: ReadonlyArray<RecordJson>,
  limit: number
): Effect.Effect<Array<PeerRecord>, DelegatedRoutingError> => {
  const out: Array<PeerRecord> = []
  for (const r of records) {
    if (out.length >= limit) break
    const p = toPeerRecord(r)
    if (Result.isFailure(p)) return fail("Malformed", p.failure)
    if (Option.isSome(p.success)) out.push(p.success.value)
  }
  return Effect.succeed(out)
}

// ---------------------------------------------------------------------------
// options and service
// ---------------------------------------------------------------------------

export interface DelegatedRoutingOptions {
  /** The server's base URL, e.g. `https://delegated-ipfs.dev` (no `/routing/v1`). */
  readonly url: string
  /** A bound on each request, body included. Default 30 seconds. */
  readonly timeout?: Duration.Input
  /** A bound on a JSON/NDJSON response body. Default 1 MiB. */
  readonly maxResponseBytes?: number
  /** Ask for NDJSON (`Accept: application/x-ndjson`, §Streaming). Default false. */
  readonly streaming?: boolean
  /** Records kept per answer (the stream is cut there). Default 100 (§Response Body). */
  readonly limit?: number
  /** `?filter-addrs=` (IPIP-484), e.g. `["tcp", "!ip6"]`. */
  readonly filterAddrs?: ReadonlyArray<string>
  /** `?filter-protocols=` (IPIP-484), e.g. `["transport-bitswap"]`. */
  readonly filterProtocols?: ReadonlyArray<string>
}

export const DEFAULT_TIMEOUT: Duration.Input = "30 seconds"
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
export const DEFAULT_LIMIT = 100

const JSON_TYPE = "application/json"
const NDJSON_TYPE = "application/x-ndjson"
const IPNS_TYPE = "application/vnd.ipfs.ipns-record"

/** The CIDv1 (raw codec 0x55), base32, naming a multihash (§Common Data Types). */
export const cidOfMultihash = (multihash: Uint8Array): string =>
  Multibase.encode("base32", Bytes.concat([Uint8Array.of(0x01, 0x55), multihash]))

export class DelegatedRouting extends Context.Service<DelegatedRouting, {
  /** Providers of a multihash (for a CID, its multihash); the CID sent is CIDv1 raw. */
  readonly findProviders: (
    multihash: Uint8Array,
    options?: { readonly limit?: number }
  ) => Effect.Effect<ReadonlyArray<PeerRecord>, DelegatedRoutingError>
  /** Providers of a CID given as a string (sent as is). */
  readonly findProvidersOfCid: (
    cid: string,
    options?: { readonly limit?: number }
  ) => Effect.Effect<ReadonlyArray<PeerRecord>, DelegatedRoutingError>
  /** Records for a peer id (§Peer Routing API). */
  readonly findPeers: (peer: PeerId.PeerId) => Effect.Effect<ReadonlyArray<PeerRecord>, DelegatedRoutingError>
  /** The peers closest to a multihash (§DHT Routing API, optional on servers). */
  readonly getClosestPeers: (multihash: Uint8Array) => Effect.Effect<ReadonlyArray<PeerRecord>, DelegatedRoutingError>
  /** The IPNS record of `name`, verified (signature, validity, name binding). */
  readonly getIpns: (
    name: PeerId.PeerId
  ) => Effect.Effect<{ readonly record: Uint8Array; readonly verified: Ipns.Verified }, DelegatedRoutingError>
  /** Publish an IPNS record (verified first, `PUT`). */
  readonly putIpns: (name: PeerId.PeerId, record: Uint8Array) => Effect.Effect<void, DelegatedRoutingError>
}>()("effect-libp2p/DelegatedRouting") {}

/** Build the client over the `HttpClient` in context. */
export const make = (options: DelegatedRoutingOptions) =>
  Effect.gen(function*() {
    // each request is aborted when its scope closes: a body left unread (an
    // error status, a cut stream) frees its connection at once, not at GC
    const http = HttpClient.withScope(yield* HttpClient.HttpClient)
    const base = options.url.replace(/\/+$/, "")
    const timeout = Duration.fromInputUnsafe(options.timeout ?? DEFAULT_TIMEOUT)
    const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES
    const defaultLimit = options.limit ?? DEFAULT_LIMIT

    const bounded = <A>(what: string, effect: Effect.Effect<A, DelegatedRoutingError>) =>
      Effect.timeoutOrElse(effect, {
        duration: timeout,
        orElse: () => fail("Timeout", `${what}: no answer within ${Duration.format(timeout)}`)
      })

    const httpError = (what: string) => (cause: unknown) =>
      new DelegatedRoutingError({ reason: "Http", message: `${what}: ${String(cause)}`, cause })

    /** The body as bytes, at most `limit` of them. */
    const readBody = (what: string, res: HttpClientResponse.HttpClientResponse, limit: number) =>
      res.stream.pipe(
        Stream.mapError(httpError(what)),
        Stream.runFoldEffect(
          () => ({ chunks: [] as Array<Uint8Array>, size: 0 }),
          (acc, chunk) => {
            acc.size += chunk.length
            if (acc.size > limit) return fail("TooLarge", `${what}: body over ${limit} bytes`)
            acc.chunks.push(chunk)
            return Effect.succeed(acc)
          }
        ),
        Effect.map((acc) => Bytes.concat(acc.chunks))
      )

    const parseText = (what: string, text: string) =>
      Effect.try({
        try: (): unknown => JSON.parse(text),
        catch: (cause) => new DelegatedRoutingError({ reason: "Malformed", message: `${what}: not JSON`, cause })
      })

    const parseJson = (what: string, bytes: Uint8Array) =>
      Effect.try({
        try: () => new TextDecoder("utf-8", { fatal: true }).decode(bytes),
        catch: (cause) => new DelegatedRoutingError({ reason: "Malformed", message: `${what}: not UTF-8`, cause })
      }).pipe(Effect.flatMap((text) => parseText(what, text)))

    /** NDJSON: one record a line, cut at `limit` records, the body bounded in bytes. */
    const readNdjson = (what: string, res: HttpClientResponse.HttpClientResponse, limit: number) =>
      res.stream.pipe(
        Stream.mapError(httpError(what)),
        Stream.mapAccumEffect(() => 0, (size, chunk) =>
          size + chunk.length > maxBytes
            ? fail("TooLarge", `${what}: stream over ${maxBytes} bytes`)
            : Effect.succeed([size + chunk.length, [chunk]] as const)),
        Stream.decodeText,
        Stream.splitLines,
        Stream.filter((line) => line.trim().length > 0),
        Stream.mapEffect((line) =>
          Effect.flatMap(parseText(what, line), (u) => {
            const r = decodeRecord(u)
            if (Result.isFailure(r)) return fail("Malformed", `${what}: ${r.failure.message}`)
            const p = toPeerRecord(r.success)
            return Result.isFailure(p) ? fail("Malformed", `${what}: ${p.failure}`) : Effect.succeed(p.success)
          })
        ),
        Stream.filterMap((o) => Option.isSome(o) ? Result.succeed(o.value) : Result.failVoid),
        Stream.take(limit),
        Stream.runCollect
      )

    const url = (path: string) => {
      const params: Array<string> = []
      if (options.filterAddrs !== undefined && options.filterAddrs.length > 0) {
        params.push(`filter-addrs=${encodeURIComponent(options.filterAddrs.join(","))}`)
      }
      if (options.filterProtocols !== undefined && options.filterProtocols.length > 0) {
        params.push(`filter-protocols=${encodeURIComponent(options.filterProtocols.join(","))}`)
      }
      return `${base}${path}${params.length > 0 ? `?${params.join("&")}` : ""}`
    }

    const mediaType = (res: HttpClientResponse.HttpClientResponse) =>
      (res.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()

    /** A records endpoint: 404 is no records (spec MUST); JSON or NDJSON by Content-Type. */
    const records = (
      what: string,
      path: string,
      key: "Providers" | "Peers",
      limit: number
    ): Effect.Effect<ReadonlyArray<PeerRecord>, DelegatedRoutingError> =>
      bounded(
        what,
        Effect.scoped(Effect.gen(function*() {
          const req = HttpClientRequest.get(url(path)).pipe(
            HttpClientRequest.setHeader("accept", options.streaming === true ? NDJSON_TYPE : JSON_TYPE)
          )
          const res = yield* Effect.mapError(http.execute(req), httpError(what))
          if (res.status === 404) return []
          if (res.status !== 200) {
            return yield* fail("Http", `${what}: HTTP ${res.status}`, { status: res.status })
          }
          const type = mediaType(res)
          if (type === NDJSON_TYPE) return yield* readNdjson(what, res, limit)
          if (type !== JSON_TYPE) return yield* fail("Malformed", `${what}: Content-Type ${type || "(none)"}`)
          const u = yield* Effect.flatMap(readBody(what, res, maxBytes), (b) => parseJson(what, b))
          const list = key === "Providers"
            ? Result.map(decodeProviders(u), (d) => d.Providers)
            : Result.map(decodePeers(u), (d) => d.Peers)
          if (Result.isFailure(list)) return yield* fail("Malformed", `${what}: ${list.failure.message}`)
          return yield* collectRecords(list.success ?? [], limit)
        }))
      )

    const ipnsName = (name: PeerId.PeerId) => PeerId.toCidString(name, "base36")

    const verify = (what: string, name: PeerId.PeerId, record: Uint8Array) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const v = Ipns.verify(Ipns.ipnsKey(name), record, now)
        return Result.isFailure(v)
          ? fail("Malformed", `${what}: ${v.failure.message}`, { cause: v.failure })
          : Effect.succeed(v.success)
      })

    return DelegatedRouting.of({
      findProviders: (multihash, o) => {
        const cid = cidOfMultihash(multihash)
        return records(`providers ${cid}`, `/routing/v1/providers/${cid}`, "Providers", o?.limit ?? defaultLimit)
      },
      findProvidersOfCid: (cid, o) =>
        records(
          `providers ${cid}`,
          `/routing/v1/providers/${encodeURIComponent(cid)}`,
          "Providers",
          o?.limit ?? defaultLimit
        ),
      findPeers: (peer) => {
        const id = PeerId.toCidString(peer)
        return records(`peers ${id}`, `/routing/v1/peers/${id}`, "Peers", defaultLimit)
      },
      getClosestPeers: (multihash) => {
        const cid = cidOfMultihash(multihash)
        return records(`closest ${cid}`, `/routing/v1/dht/closest/peers/${cid}`, "Peers", defaultLimit)
      },
      getIpns: (name) => {
        const what = `ipns ${ipnsName(name)}`
        return bounded(
          what,
          Effect.scoped(Effect.gen(function*() {
            const req = HttpClientRequest.get(url(`/routing/v1/ipns/${ipnsName(name)}`)).pipe(
              HttpClientRequest.setHeader("accept", IPNS_TYPE)
            )
            const res = yield* Effect.mapError(http.execute(req), httpError(what))
            // §IPNS API: 404, and any other content type, is "no record found".
            if (res.status === 404) return yield* fail("NotFound", `${what}: no record`, { status: 404 })
            if (res.status !== 200) return yield* fail("Http", `${what}: HTTP ${res.status}`, { status: res.status })
            if (mediaType(res) !== IPNS_TYPE) return yield* fail("NotFound", `${what}: no record (${mediaType(res)})`)
            const record = yield* readBody(what, res, Ipns.MAX_RECORD_SIZE)
            const verified = yield* verify(what, name, record)
            return { record, verified }
          }))
        )
      },
      putIpns: (name, record) => {
        const what = `ipns put ${ipnsName(name)}`
        return bounded(
          what,
          Effect.scoped(Effect.gen(function*() {
            yield* verify(what, name, record)
            const req = HttpClientRequest.put(url(`/routing/v1/ipns/${ipnsName(name)}`)).pipe(
              HttpClientRequest.bodyUint8Array(record, IPNS_TYPE)
            )
            const res = yield* Effect.mapError(http.execute(req), httpError(what))
            if (res.status !== 200) return yield* fail("Http", `${what}: HTTP ${res.status}`, { status: res.status })
          }))
        )
      }
    })
  })

/** The client over the `HttpClient` in context. */
export const layer = (options: DelegatedRoutingOptions): Layer.Layer<DelegatedRouting, never, HttpClient.HttpClient> =>
  Layer.effect(DelegatedRouting, make(options))

/** The client over the global `fetch` (Node's undici). */
export const layerFetch = (options: DelegatedRoutingOptions): Layer.Layer<DelegatedRouting> =>
  layer(options).pipe(Layer.provide(FetchHttpClient.layer))

// ---------------------------------------------------------------------------
// routing contracts
// ---------------------------------------------------------------------------

const toRoutingError = (e: DelegatedRoutingError): RoutingError =>
  new RoutingError({ reason: e.reason === "NotFound" ? "NotFound" : "Failed", message: e.message, cause: e })

const toInfo = (r: PeerRecord): PeerInfo => ({ peerId: r.id, addrs: r.addrs })

/** `PeerRouting` through the `DelegatedRouting` in context. */
export const layerPeerRouting: Layer.Layer<PeerRouting, never, DelegatedRouting> = Layer.effect(
  PeerRouting,
  Effect.map(DelegatedRouting, (d) =>
    PeerRouting.of({
      findPeer: (peer) =>
        d.findPeers(peer).pipe(
          Effect.mapError(toRoutingError),
          Effect.flatMap((rs) => {
            const mine = rs.filter((r) => PeerId.equals(r.id, peer))
            return mine.length === 0
              ? Effect.fail(new RoutingError({ reason: "NotFound", message: `peers ${PeerId.toString(peer)}: none` }))
              : Effect.succeed({ peerId: peer, addrs: mine.flatMap((r) => r.addrs) })
          })
        ),
      getClosestPeers: (key) =>
        Effect.mapError(Effect.map(d.getClosestPeers(key), (rs) => rs.map(toInfo)), toRoutingError)
    }))
)

const IPNS_PREFIX = new TextEncoder().encode("/ipns/")

/** The peer named by an `/ipns/<peer id bytes>` key, if it is one. */
const ipnsPeer = (key: Uint8Array): Option.Option<PeerId.PeerId> => {
  if (key.length <= IPNS_PREFIX.length || !Bytes.Equivalence(key.subarray(0, IPNS_PREFIX.length), IPNS_PREFIX)) {
    return Option.none()
  }
  return Result.getSuccess(PeerId.fromBytes(key.subarray(IPNS_PREFIX.length)))
}

const unsupported = (message: string) =>
  Effect.fail(
    new RoutingError({
      reason: "Failed",
      message,
      cause: new DelegatedRoutingError({ reason: "Unsupported", message })
    })
  )

/**
 * `ContentRouting` through the `DelegatedRouting` in context: `findProviders`
 * (the key is a multihash), `get`/`put` for `/ipns/` keys. The V1 API has no
 * provider announcement and no other records: `provide` and other keys fail
 * `Failed` with an `Unsupported` cause.
 */
export const layerContentRouting: Layer.Layer<ContentRouting, never, DelegatedRouting> = Layer.effect(
  ContentRouting,
  Effect.map(DelegatedRouting, (d) =>
    ContentRouting.of({
      provide: () => unsupported("delegated routing v1: no provide operation"),
      findProviders: (key, options) =>
        Effect.mapError(Effect.map(d.findProviders(key, options), (rs) => rs.map(toInfo)), toRoutingError),
      put: (key, value) =>
        Option.match(ipnsPeer(key), {
          onNone: () => unsupported("delegated routing v1: put of a non-IPNS key"),
          onSome: (peer) => Effect.mapError(d.putIpns(peer, value), toRoutingError)
        }),
      get: (key) =>
        Option.match(ipnsPeer(key), {
          onNone: () => unsupported("delegated routing v1: get of a non-IPNS key"),
          onSome: (peer) => Effect.mapError(Effect.map(d.getIpns(peer), (r) => r.record), toRoutingError)
        })
    }))
)

// ---------------------------------------------------------------------------
// beside another implementation
// ---------------------------------------------------------------------------

/** Both failed: `NotFound` when every side said so, else `Failed`; the sides' errors are the cause. */
const bothFailed = (what: string) => (cause: Cause.Cause<RoutingError>) => {
  const errors = cause.reasons.filter(Cause.isFailReason).map((r) => r.error)
  if (errors.length === 0) return Effect.failCause(cause)
  return Effect.fail(
    new RoutingError({
      reason: errors.every((e) => e.reason === "NotFound") ? "NotFound" : "Failed",
      message: `${what}: ${errors.map((e) => e.message).join("; ")}`,
      cause: errors
    })
  )
}

/** Run both, keep what succeeded; fail only when both failed. */
const both = <A>(what: string, a: Effect.Effect<A, RoutingError>, b: Effect.Effect<A, RoutingError>) =>
  Effect.flatMap(Effect.all([Effect.result(a), Effect.result(b)], { concurrency: 2 }), ([ra, rb]) => {
    const ok = [ra, rb].filter(Result.isSuccess).map((r) => r.success)
    if (ok.length > 0) return Effect.succeed(ok)
    const errors = [ra, rb].filter(Result.isFailure).map((r) => r.failure)
    return bothFailed(what)(Cause.fromReasons(errors.map((e) => Cause.makeFailReason(e))))
  })

/** Peers merged by id (addresses unioned, first seen first), at most `limit`. */
const mergePeers = (lists: ReadonlyArray<ReadonlyArray<PeerInfo>>, limit: number): Array<PeerInfo> => {
  const byId = new Map<string, { peerId: PeerId.PeerId; addrs: Array<Multiaddr.Multiaddr> }>()
  for (const list of lists) {
    for (const p of list) {
      const seen = byId.get(PeerId.mapKey(p.peerId))
      if (seen === undefined) {
        if (byId.size < limit) byId.set(PeerId.mapKey(p.peerId), { peerId: p.peerId, addrs: [...p.addrs] })
      } else {
        for (const a of p.addrs) if (!seen.addrs.some((b) => Multiaddr.equals(a, b))) seen.addrs.push(a)
      }
    }
  }
  return [...byId.values()]
}

/**
 * `PeerRouting` asking the delegated server beside the `PeerRouting` it is
 * given (e.g. `Kad.layerPeerRouting`): `findPeer` takes the first answer,
 * `getClosestPeers` merges both. One side failing is not a failure.
 * `layerPeerRoutingBeside.pipe(Layer.provide(Kad.layerPeerRouting))`.
 */
export const layerPeerRoutingBeside: Layer.Layer<PeerRouting, never, DelegatedRouting | PeerRouting> = Layer.effect(
  PeerRouting,
  Effect.gen(function*() {
    const other = yield* PeerRouting
    const delegated = yield* Effect.provide(PeerRouting, layerPeerRouting)
    return PeerRouting.of({
      findPeer: (peer) =>
        Effect.race(other.findPeer(peer), delegated.findPeer(peer)).pipe(
          Effect.catchCause(bothFailed(`findPeer ${PeerId.toString(peer)}`))
        ),
      getClosestPeers: (key) =>
        Effect.map(
          both("getClosestPeers", other.getClosestPeers(key), delegated.getClosestPeers(key)),
          (lists) => mergePeers(lists, Number.MAX_SAFE_INTEGER)
        )
    })
  })
)

/**
 * `ContentRouting` asking the delegated server beside the `ContentRouting` it
 * is given (e.g. `Kad.layerContentRouting`): `findProviders` merges both,
 * `get` takes the first answer, `put` goes to both (one success suffices),
 * `provide` goes to the other only (the V1 API has no announcement).
 */
export const layerContentRoutingBeside: Layer.Layer<ContentRouting, never, DelegatedRouting | ContentRouting> = Layer
  .effect(
    ContentRouting,
    Effect.gen(function*() {
      const other = yield* ContentRouting
      const delegated = yield* Effect.provide(ContentRouting, layerContentRouting)
      return ContentRouting.of({
        provide: other.provide,
        findProviders: (key, options) =>
          Effect.map(
            both("findProviders", other.findProviders(key, options), delegated.findProviders(key, options)),
            (lists) => mergePeers(lists, options?.limit ?? Number.MAX_SAFE_INTEGER)
          ),
        put: (key, value) => Effect.asVoid(both("put", other.put(key, value), delegated.put(key, value))),
        get: (key) => Effect.race(other.get(key), delegated.get(key)).pipe(Effect.catchCause(bothFailed("get")))
      })
    })
  )
