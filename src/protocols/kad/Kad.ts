/**
 * Kad-DHT, `/ipfs/kad/1.0.0` (https://github.com/libp2p/specs/blob/master/kad-dht/README.md):
 * peer routing (`findPeer`, `getClosestPeers`), value routing (`put`, `get`)
 * and content routing (`provide`, `findProviders`). The only module other
 * folders import; `layerPeerRouting`/`layerContentRouting` give the routing
 * contracts of `src/routing/` over it.
 *
 * - §Definitions: k = 20, α = 3, distance = XOR of SHA-256 (`RoutingTable.ts`).
 * - Client and server mode: a server registers the protocol handler (so identify
 *   advertises it and others add it to their tables); a client does not, and asks
 *   only. Only peers that advertise the protocol (identify, `Identify.subscribe`)
 *   or answered a request enter our table. Mode is an option; `"auto"` follows
 *   the AddressManager's reachability (AutoNAT): server while it is `public`,
 *   client otherwise (go-libp2p-kad-dht's `ModeAuto`), switching on its
 *   `ReachabilityChanged` events (the handler is registered and removed, and
 *   identify pushes the protocol change).
 * - The protocol id is an option: `PROTOCOL`, or `LAN_PROTOCOL` for a LAN DHT.
 * - §Peer routing: iterative lookups (`Query.ts`) with α in flight, ending when the
 *   k closest known peers have answered; a per-peer and a whole-query timeout.
 * - §Value routing: validators per namespace (`Validator.ts`; `/pk/` and `/ipns/`
 *   (`ipns.ts`, the IPNS record spec, EOL checked against the `Clock`) built in,
 *   unknown namespaces rejected); `get` stops at `quorum` valid answers, picks the
 *   best with the namespace's `select` and corrects peers that returned a worse value.
 * - §Content routing: provider records expire after 48 h (go and the current spec;
 *   the spec text we read says 24 h), capped per key (`store.ts`), pruned hourly; the keys
 *   we provide are announced again every `reprovideInterval` (22 h).
 * - §Value storage and retrieval, republishing: the records we `put` are put again, locally and at
 *   the k closest peers of the time, every `republishInterval` (22 h, under the 36 h record age), so
 *   a record outlives the peers that held it. The spec names a republishing period but gives a value
 *   only for provider records (22 h in IPFS), so we use the same. Records others stored here are not
 *   republished by us: that is the original publisher's job (go-libp2p-kad-dht has no record
 *   republisher either; kubo's IPNS republisher puts its records again), and it keeps a holder
 *   from extending a record its publisher gave up (the Kademlia paper's hourly republish by
 *   holders is left out).
 * - §Bootstrap process: bootstrap peers are dialed at start, then a self lookup and a
 *   lookup of a random key per non-empty bucket run at start and every `refreshInterval`.
 * - A full bucket asks its least recently seen peer (a `FIND_NODE`); one that fails is
 *   replaced by the newcomer.
 *
 * - The table survives restarts through the peer store: at start, every stored peer
 *   whose protocols include ours is admitted (and checked like any newcomer).
 *
 * - §Peer routing, disjoint paths (S/Kademlia): with `disjointPaths: d` a lookup runs d paths that
 *   never ask the same peer (`Query.runDisjoint`); off (1) by default.
 *
 * Not yet (issue 13): signed peer records for
 * providers, the Delegated Routing client. (`/ipns/` records:
 * `ipns.ts`; the CLI: `src/cli/commands/dht.ts` and `node --dht`.)
 *
 * Anchors: go-libp2p-kad-dht (dht.go, handlers.go, lookup.go, routing.go), rust protocols/kad.
 *
 * @since 0.2.0
 */
import {
  Bytes,
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  FiberSet,
  Layer,
  Option,
  Random,
  Result,
  Schedule,
  Scope,
  Stream
} from "effect"
import { Registrar } from "../../connection/Registrar.ts"
import { Identity } from "../../core/Identity.ts"
import * as Keys from "../../core/Keys.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { Datastore } from "../../datastore/Datastore.ts"
import * as MemoryDatastore from "../../datastore/Memory.ts"
import { AddressManager } from "../../host/AddressManager.ts"
import * as HostModule from "../../host/Host.ts"
import { Host } from "../../host/Host.ts"
import { Peerstore } from "../../host/Peerstore.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as Options from "../../internal/options.ts"
import * as Spans from "../../internal/spans.ts"
import * as Status from "../../observability/Status.ts"
import { ContentRouting } from "../../routing/ContentRouting.ts"
import { PeerRouting, RoutingError } from "../../routing/PeerRouting.ts"
import { Identify } from "../identify/Identify.ts"
import * as Client from "./client.ts"
import { fail, type KadError, NoPeers, NotFound, Unreachable } from "./errors.ts"
import * as Ipns from "./ipns.ts"
import {
  ConnectionType,
  fromKadPeer,
  type KadMessage,
  message,
  MessageType,
  type PeerInfo,
  toKadPeer
} from "./messages.ts"
import * as KadMetrics from "./metrics.ts"
import * as Query from "./Query.ts"
import * as RoutingTable from "./RoutingTable.ts"
import * as Server from "./server.ts"
import * as Store from "./store.ts"
import * as Validator from "./Validator.ts"

export const PROTOCOL = "/ipfs/kad/1.0.0"
/** The LAN DHT's protocol id (go-libp2p-kad-dht's dual DHT, js-libp2p's `lan` DHT). */
export const LAN_PROTOCOL = "/ipfs/lan/kad/1.0.0"

export {
  InvalidRecord,
  KadError,
  KadErrorReason,
  Malformed,
  NoPeers,
  NotFound,
  PeerTimeout,
  QueryTimeout,
  StoreFailed,
  Unreachable
} from "./errors.ts"
export { MAX_MESSAGE_SIZE, type PeerInfo } from "./messages.ts"
export { pk as pkValidator, pkKey, type Validator, type Validators } from "./Validator.ts"
/** IPNS records: `Ipns.create`, `Ipns.verify`, `Ipns.ipnsKey`, `Ipns.validator`, `Ipns.IpnsError`. */
export * as Ipns from "./ipns.ts"

export type Mode = "client" | "server"

export interface KadOptions {
  /**
   * Server (default): answer requests and be in others' tables. Client: only ask.
   * Auto: server while the AddressManager's reachability is `public`, client otherwise.
   */
  readonly mode?: Mode | "auto"
  /** Protocol id (default {@link PROTOCOL}; {@link LAN_PROTOCOL} for a LAN DHT). */
  readonly protocol?: string
  /** Peers to dial at start (each address ending in `/p2p/<id>`). */
  readonly bootstrap?: ReadonlyArray<Multiaddr.Multiaddr>
  /** Replication parameter and bucket size (default 20). */
  readonly k?: number
  /** Requests in flight per lookup (default 3). */
  readonly alpha?: number
  /**
   * Disjoint lookup paths (S/Kademlia; default 1 = one lookup): d lookups over disjoint sets of
   * peers, each with `alpha` in flight, the result the k closest that answered on any path.
   */
  readonly disjointPaths?: number
  /**
   * Told how each lookup went when it ends (rust-libp2p's `QueryStats`): requests sent, depth in
   * hops, whether it finished before the query deadline. For simulations and tracing; the same
   * figures are the `libp2p_kad_lookup_*` histograms and attributes of the `libp2p.kad.query` span.
   */
  readonly onLookup?: ((stats: LookupStats) => void) | undefined
  /** Deadline for one peer's answer (default 10 s). */
  readonly peerTimeout?: Duration.Input
  /** Deadline for a whole lookup (default 60 s). */
  readonly queryTimeout?: Duration.Input
  /** Table refresh period (default 5 min, spec §Bootstrap process); the first refresh runs at start. */
  readonly refreshInterval?: Duration.Input
  /** How often the keys we provide are announced again (default 22 h, go-libp2p-kad-dht's; under the 48 h validity). */
  readonly reprovideInterval?: Duration.Input
  /** Keys we keep announcing (default 10,000; `provide` of one more drops the oldest from the list). */
  readonly maxProvidedKeys?: number
  /**
   * How often the records we `put` are put again at the k closest peers of the time (default 22 h,
   * under the 36 h `maxRecordAge`); records others stored here are not republished by us.
   */
  readonly republishInterval?: Duration.Input
  /** Records we keep republishing (default 10,000; a `put` of one more drops the oldest from the list). */
  readonly maxPublishedRecords?: number
  /** Validators by namespace, over the built-in ones (`pk`, `ipns`). */
  readonly validators?: Validator.Validators
  /** Valid answers after which `get` stops (default 3). */
  readonly quorum?: number
  /** Provider records kept per key (default 128). */
  readonly maxProvidersPerKey?: number
  /** Lifetime of a provider record (default 48 h). */
  readonly provideValidity?: Duration.Input
  /** Lifetime of a stored record (default 36 h). */
  readonly maxRecordAge?: Duration.Input
}

export const defaults = {
  mode: "server" as Mode,
  protocol: PROTOCOL,
  k: RoutingTable.K,
  alpha: 3,
  disjointPaths: 1,
  peerTimeout: Duration.seconds(10),
  queryTimeout: Duration.seconds(60),
  refreshInterval: Duration.minutes(5),
  reprovideInterval: Duration.hours(22),
  maxProvidedKeys: 10_000,
  republishInterval: Duration.hours(22),
  maxPublishedRecords: 10_000,
  quorum: 3,
  maxProvidersPerKey: 128,
  provideValidity: Duration.hours(48),
  maxRecordAge: Duration.hours(36)
}

/** Closer peers taken from one answer (the rest are ignored: an answer should carry k). */
export const MAX_CLOSER_PEERS = 64

/** How one lookup went (see `KadOptions.onLookup`). */
export interface LookupStats {
  /** Requests sent to peers (all paths). */
  readonly requests: number
  /** The most hops to any of the k closest peers that answered (a seed is 1). */
  readonly hops: number
  /** False when the query deadline cut it short. */
  readonly complete: boolean
  /** Virtual or real milliseconds from start to end, on the Clock. */
  readonly millis: number
}

export interface FindProvidersOptions {
  /** Stop once this many providers are known (default k). */
  readonly limit?: number
}

export class Kad extends Context.Service<Kad, {
  /** The mode at start (with `mode: "auto"`: the mode the reachability gave then; see `currentMode`). */
  readonly mode: Mode
  /** The mode now (differs from `mode` only with `mode: "auto"`). */
  readonly currentMode: () => Mode
  readonly protocol: string
  /** A peer's addresses: from an open connection, or found by a lookup of its id. */
  readonly findPeer: (peer: PeerId.PeerId) => Effect.Effect<PeerInfo, KadError>
  /** The k closest peers to a key that answered a lookup, closest first. */
  readonly getClosestPeers: (key: Uint8Array) => Effect.Effect<ReadonlyArray<PeerInfo>, KadError>
  /** Store a record here and at the k closest peers; the number of peers that took it. */
  readonly put: (key: Uint8Array, value: Uint8Array) => Effect.Effect<number, KadError>
  /** The best valid value for a key, from here and the closest peers. */
  readonly get: (key: Uint8Array) => Effect.Effect<Uint8Array, KadError>
  /** Announce us as a provider of a key (for a CID, its multihash: {@link cidKey}); the number of peers told. */
  readonly provide: (key: Uint8Array) => Effect.Effect<number, KadError>
  /** Providers of a key, from here and the closest peers. */
  readonly findProviders: (
    key: Uint8Array,
    options?: FindProvidersOptions
  ) => Effect.Effect<ReadonlyArray<PeerInfo>, KadError>
  /** Refresh the table now: bootstrap peers, a self lookup, a random lookup per bucket. */
  readonly refresh: Effect.Effect<void>
  /** The peers in the routing table. */
  readonly peers: () => ReadonlyArray<PeerId.PeerId>
}>()("effect-libp2p/Kad") {}

/**
 * The DHT key of a CID (what go and js use): its multihash. A CIDv0 is a
 * multihash already (`0x12 0x20 …`); a CIDv1 is `varint(1) varint(codec) multihash`.
 */
export const cidKey = (cid: Uint8Array): Uint8Array => {
  if (cid[0] !== 0x01) return cid
  let i = 1
  while (i < cid.length && (cid[i]! & 0x80) !== 0) i++
  return cid.subarray(i + 1)
}

export const make = (options: KadOptions = {}) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const host = yield* Host
    const registrar = yield* Registrar
    const peerstore = yield* Peerstore
    const identify = yield* Identify
    const datastore = yield* Datastore
    const configured = options.mode ?? defaults.mode
    const addressManager = yield* Effect.serviceOption(AddressManager)
    const reachableMode = (): Mode =>
      Option.isSome(addressManager) && addressManager.value.reachability() === "public" ? "server" : "client"
    const mode: Mode = configured === "auto" ? reachableMode() : configured
    let currentMode: Mode = mode
    const protocol = options.protocol ?? defaults.protocol
    const k = Options.clampInt(options.k, defaults.k, 1, 1024)
    const alpha = Options.clampInt(options.alpha, defaults.alpha, 1, 64)
    const disjointPaths = Options.clampInt(options.disjointPaths, defaults.disjointPaths, 1, 16)
    const quorum = Options.clampInt(options.quorum, defaults.quorum, 1, 1024)
    const peerTimeout = Options.duration(options.peerTimeout, defaults.peerTimeout)
    const queryTimeout = Options.duration(options.queryTimeout, defaults.queryTimeout)
    const refreshInterval = Options.duration(options.refreshInterval, defaults.refreshInterval)
    const clock = yield* Clock.Clock
    const validators: Validator.Validators = {
      ...Validator.defaults,
      ipns: Ipns.validator(() => clock.currentTimeMillisUnsafe()),
      ...options.validators
    }
    const self = identity.peerId
    const table = RoutingTable.make(self, k)
    const store = Store.make(datastore, {
      maxRecordAgeMillis: Duration.toMillis(Options.duration(options.maxRecordAge, defaults.maxRecordAge)),
      provideValidityMillis: Duration.toMillis(Options.duration(options.provideValidity, defaults.provideValidity)),
      maxProvidersPerKey: Options.clampInt(options.maxProvidersPerKey, defaults.maxProvidersPerKey, 1, 100_000)
    })
    const jobs = yield* FiberSet.make<void>()
    const rec = yield* Metrics.recorder
    const tableChanged = () => rec.update(KadMetrics.routingTableSize, RoutingTable.size(table))
    /** Count and time a query: one update when it ends (`ok` or the KadError's reason). */
    // the node's tracer (what its layer was built with), also when a query runs in a caller's fiber
    const tracer = yield* Effect.tracer
    /** A query: its duration and outcome in the metrics, and a `libp2p.kad.query` span (issue 16 item 4). */
    const measured = <A>(type: KadMetrics.QueryType, effect: Effect.Effect<A, KadError>): Effect.Effect<A, KadError> =>
      Effect.flatMap(
        Clock.currentTimeMillis,
        (start) =>
          Effect.onExit(effect, (exit) =>
            Effect.map(Clock.currentTimeMillis, (end) => {
              rec.update(KadMetrics.queryDuration.with(type), (end - start) / 1000)
              const e = Exit.isSuccess(exit) ? undefined : Cause.findErrorOption(exit.cause)
              const outcome = e === undefined ? "ok" : Option.isSome(e) ? e.value.reason._tag : "interrupted"
              rec.update(KadMetrics.queries.with(type, outcome), 1)
            }))
      ).pipe(
        Spans.withSpan("libp2p.kad.query", { attributes: { "libp2p.kad.type": type } }),
        Effect.withTracer(tracer)
      )
    /** Peers whose liveness is being checked because a newcomer wants their bucket slot. */
    const checking = new Set<string>()

    const infoOf = (peer: PeerId.PeerId): PeerInfo => ({ peerId: peer, addrs: peerstore.get(peer)?.addrs ?? [] })
    const selfAddrs = () => host.addrs()

    // --- talking to one peer

    const ask = (peer: PeerInfo, req: KadMessage): Effect.Effect<KadMessage | undefined, KadError> =>
      Effect.scoped(Effect.gen(function*() {
        if (peer.addrs.length > 0 && host.connections(peer.peerId).length === 0) {
          yield* peerstore.merge(peer.peerId, { addrs: peer.addrs, addrSource: "routing" })
        }
        // a peer of a lookup is dialed at the addresses the lookup gave, never looked up itself
        const stream = yield* HostModule.withoutRouting(host.newStream(peer.peerId, [protocol], { lazy: false })).pipe(
          Effect.mapError((e) => fail(new Unreachable({ peer: peer.peerId.toString(), message: e.message, cause: e })))
        )
        return yield* Client.request(stream, peer.peerId, req)
      }))

    // --- the table

    const remove = (peer: PeerId.PeerId) =>
      Effect.sync(() => {
        if (RoutingTable.remove(table, peer)) tableChanged()
      })

    /** Add a peer that speaks the protocol in server mode; a full bucket checks its oldest peer first. */
    const admit = (peer: PeerId.PeerId): Effect.Effect<void> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const r = RoutingTable.add(table, peer, now)
        tableChanged()
        if (r._tag !== "Full") return
        const oldest = r.oldest.peerId
        if (checking.has(oldest.toString())) return
        checking.add(oldest.toString())
        yield* FiberSet.run(
          jobs,
          ask(infoOf(oldest), message(MessageType.FIND_NODE, { key: PeerId.toBytes(self) })).pipe(
            Effect.timeout(peerTimeout),
            Effect.matchEffect({
              onSuccess: () => Effect.sync(() => RoutingTable.add(table, oldest, now)),
              onFailure: () =>
                Effect.sync(() => {
                  RoutingTable.replace(table, oldest, peer, now)
                  tableChanged()
                })
            }),
            Effect.ensuring(Effect.sync(() => checking.delete(oldest.toString()))),
            Effect.asVoid
          )
        )
      })

    // --- lookups

    const closerOf = (res: KadMessage | undefined): ReadonlyArray<PeerInfo> => {
      if (res === undefined) return []
      const out: Array<PeerInfo> = []
      for (const p of res.closerPeers.slice(0, MAX_CLOSER_PEERS)) {
        const info = fromKadPeer(p)
        if (info !== undefined) out.push(info)
      }
      return out
    }

    /** A lookup of `key` sending `req` to each peer; `onAnswer` sees each answer and may stop it. */
    const lookup = (
      key: Uint8Array,
      req: KadMessage,
      onAnswer: (peer: PeerInfo, res: KadMessage | undefined) => Effect.Effect<boolean> = () => Effect.succeed(false)
    ) =>
      Effect.gen(function*() {
        const target = RoutingTable.keyOf(key)
        const seeds = RoutingTable.closest(table, target, k).map((e) => infoOf(e.peerId))
        if (seeds.length === 0) return yield* Effect.fail(fail(new NoPeers()))
        const start = yield* Clock.currentTimeMillis
        const outcome = yield* Query.runDisjoint(
          target,
          self,
          seeds,
          disjointPaths,
          (peer) =>
            ask(peer, req).pipe(
              Effect.tapError((e) => e.reason._tag === "Unreachable" ? remove(peer.peerId) : Effect.void),
              Effect.tap(() => admit(peer.peerId)),
              Effect.flatMap((res) => Effect.map(onAnswer(peer, res), (stop) => ({ closer: closerOf(res), stop })))
            ),
          { k, alpha, peerTimeout, queryTimeout }
        )
        const millis = (yield* Clock.currentTimeMillis) - start
        rec.update(KadMetrics.lookupRequests, outcome.requests)
        rec.update(KadMetrics.lookupHops, outcome.hops)
        yield* Effect.annotateCurrentSpan({ "libp2p.kad.requests": outcome.requests, "libp2p.kad.hops": outcome.hops })
        options.onLookup?.({ requests: outcome.requests, hops: outcome.hops, complete: outcome.complete, millis })
        return outcome
      })

    const getClosestPeers = (key: Uint8Array) =>
      Effect.map(lookup(key, message(MessageType.FIND_NODE, { key })), (o) => o.closest)

    const findPeer = (peer: PeerId.PeerId): Effect.Effect<PeerInfo, KadError> =>
      Effect.gen(function*() {
        if (host.connections(peer).length > 0) return infoOf(peer)
        const key = PeerId.toBytes(peer)
        let found: PeerInfo | undefined
        yield* lookup(key, message(MessageType.FIND_NODE, { key }), (_, res) =>
          Effect.sync(() => {
            for (const p of closerOf(res)) {
              if (PeerId.equals(p.peerId, peer) && p.addrs.length > 0) found = p
            }
            return found !== undefined
          }))
        if (found === undefined) {
          return yield* Effect.fail(fail(new NotFound({ message: `no peer found with id ${peer.toString()}` })))
        }
        yield* peerstore.merge(peer, { addrs: found.addrs, addrSource: "routing" })
        return found
      })

    const handlers: Server.Handlers = {
      self,
      publicKeyOf: (peer) =>
        PeerId.equals(peer, self)
          ? identity.publicKey
          : peerstore.get(peer)?.publicKey ?? Option.getOrUndefined(PeerId.publicKey(peer)),
      selfAddrs,
      certifiedAddrs: (peer) => {
        const info = peerstore.get(peer)
        if (info === undefined) return []
        const live = new Set(info.addrs.map(Multiaddr.key)) // not expired
        return info.addrEntries.filter((e) => e.source === "certified" && live.has(Multiaddr.key(e.addr))).map((e) =>
          e.addr
        )
      },
      closer: (key, exclude) =>
        RoutingTable.closest(table, RoutingTable.keyOf(key), k + 1)
          .filter((e) => !PeerId.equals(e.peerId, exclude))
          .slice(0, k)
          .map((e) => infoOf(e.peerId))
          .filter((i) => i.addrs.length > 0),
      connectionOf: (peer) =>
        host.connections(peer).length > 0 ? ConnectionType.CONNECTED : ConnectionType.NOT_CONNECTED,
      store,
      validators,
      onRequest: (type) => rec.update(KadMetrics.inboundRequests.with(KadMetrics.typeLabel(type)), 1)
    }

    /** Send `req` to each peer (at most k at once); the number that took it. */
    const tellAll = (peers: ReadonlyArray<PeerInfo>, req: KadMessage) =>
      Effect.map(
        Effect.forEach(
          peers,
          (p) => ask(p, req).pipe(Effect.timeout(peerTimeout), Effect.result),
          { concurrency: k }
        ),
        (rs) => rs.filter(Result.isSuccess).length
      )

    /** Bounded insertion-ordered lists by key hex: a new entry moves to the end, past `max` the oldest goes. */
    const bounded = <A>(max: number) => {
      const entries = new Map<string, { readonly key: Uint8Array; readonly value: A }>()
      return {
        remember: (key: Uint8Array, value: A) =>
          Effect.sync(() => {
            const id = Buffer.from(key).toString("hex")
            entries.delete(id)
            entries.set(id, { key: Uint8Array.from(key), value })
            if (entries.size > max) entries.delete(entries.keys().next().value!)
          }),
        all: () => Array.from(entries.values())
      }
    }

    const publish = (key: Uint8Array, value: Uint8Array) =>
      Effect.gen(function*() {
        yield* Server.putValue(handlers, key, value)
        const peers = yield* getClosestPeers(key)
        return yield* tellAll(
          peers,
          message(MessageType.PUT_VALUE, { key, record: { key, value, timeReceived: "" } })
        )
      })

    /** Records we put, announced again by `republish` (not the ones others stored here). */
    const published = bounded<Uint8Array>(
      Options.clampInt(options.maxPublishedRecords, defaults.maxPublishedRecords, 0, 10_000_000)
    )
    const put = (key: Uint8Array, value: Uint8Array) =>
      Effect.andThen(published.remember(key, value), publish(key, value))

    /** Put every published record again, one after the other (a failure is the next run's business). */
    const republish = Effect.suspend(() =>
      Effect.forEach(published.all(), (r) => Effect.ignore(publish(r.key, r.value)), { discard: true })
    )

    const get = (key: Uint8Array) =>
      Effect.gen(function*() {
        const local = yield* store.getRecord(key)
        const values: Array<{ readonly peer: PeerInfo | undefined; readonly value: Uint8Array }> = []
        if (local !== undefined) values.push({ peer: undefined, value: local.value })
        if (local === undefined && Bytes.Equivalence(key, Validator.pkKey(self))) {
          return Keys.marshalPublicKey(identity.publicKey)
        }
        const outcome = yield* Effect.result(
          lookup(key, message(MessageType.GET_VALUE, { key }), (peer, res) =>
            Effect.sync(() => {
              const record = res?.record
              if (record !== undefined && Result.isSuccess(Validator.validate(validators, key, record.value))) {
                values.push({ peer, value: record.value })
              }
              return values.length >= quorum
            }))
        )
        if (values.length === 0) {
          if (Result.isFailure(outcome)) return yield* Effect.fail(outcome.failure)
          return yield* Effect.fail(fail(new NotFound({ message: "no valid record found for the key" })))
        }
        const validator = yield* Effect.mapError(
          Effect.fromResult(Validator.validate(validators, key, values[0]!.value)),
          (e) => fail(e)
        )
        const best = values[validator.select(key, values.map((v) => v.value))]!.value
        // §Getting values, entry correction: peers that returned a worse value get the best one
        const outdated = values.flatMap((v) =>
          v.peer !== undefined && !Bytes.Equivalence(v.value, best) ? [v.peer] : []
        )
        if (outdated.length > 0) {
          yield* tellAll(
            outdated,
            message(MessageType.PUT_VALUE, { key, record: { key, value: best, timeReceived: "" } })
          )
        }
        if (local === undefined || !Bytes.Equivalence(local.value, best)) {
          yield* Effect.ignore(Server.putValue(handlers, key, best))
        }
        return best
      })

    /** Keys we provide, oldest first, announced again by `reprovide`. */
    const provided = bounded<undefined>(
      Options.clampInt(options.maxProvidedKeys, defaults.maxProvidedKeys, 0, 10_000_000)
    )

    const announce = (key: Uint8Array) =>
      Effect.gen(function*() {
        const us: PeerInfo = { peerId: self, addrs: selfAddrs() }
        yield* store.addProvider(key, us)
        const peers = yield* getClosestPeers(key)
        return yield* tellAll(peers, message(MessageType.ADD_PROVIDER, { key, providerPeers: [toKadPeer(us)] }))
      })

    const provide = (key: Uint8Array) => Effect.andThen(provided.remember(key, undefined), announce(key))

    /** Announce every provided key again, one after the other (a failure is the next run's business). */
    const reprovide = Effect.suspend(() =>
      Effect.forEach(provided.all(), (p) => Effect.ignore(announce(p.key)), { discard: true })
    )

    const findProviders = (key: Uint8Array, opts: FindProvidersOptions = {}) =>
      Effect.gen(function*() {
        const limit = Options.clampInt(opts.limit, k, 1, 100_000)
        const found = new Map<string, PeerInfo>()
        for (const p of yield* store.getProviders(key)) found.set(p.peerId.toString(), p)
        if (found.size < limit) {
          const outcome = yield* Effect.result(
            lookup(key, message(MessageType.GET_PROVIDERS, { key }), (_, res) =>
              Effect.sync(() => {
                for (const p of (res?.providerPeers ?? []).slice(0, MAX_CLOSER_PEERS)) {
                  const info = fromKadPeer(p)
                  if (info !== undefined && !found.has(info.peerId.toString())) found.set(info.peerId.toString(), info)
                }
                return found.size >= limit
              }))
          )
          if (found.size === 0 && Result.isFailure(outcome)) return yield* Effect.fail(outcome.failure)
        }
        const out = Array.from(found.values()).slice(0, limit)
        for (const p of out) {
          if (p.addrs.length > 0 && !PeerId.equals(p.peerId, self)) yield* peerstore.merge(p.peerId, { addrs: p.addrs })
        }
        return out
      })

    // --- admission from identify: server-mode peers that speak our protocol

    const learn = (peer: PeerId.PeerId, protocols: ReadonlyArray<string>) =>
      protocols.includes(protocol) ? admit(peer) : Effect.asVoid(remove(peer))

    const identified = yield* identify.subscribe
    yield* Effect.forkScoped(Stream.runForEach(identified, (r) => learn(r.peerId, r.protocols)))
    for (const info of peerstore.all()) {
      if (info.protocols.includes(protocol)) yield* admit(info.peerId)
    }

    /** The handler's own scope, so `auto` can remove it; open while we are a server. */
    let serving: Scope.Closeable | undefined
    const layerScope = yield* Effect.scope
    const setMode = (next: Mode): Effect.Effect<void> =>
      Effect.gen(function*() {
        currentMode = next
        if (next === "server" && serving === undefined) {
          const scope = yield* Scope.fork(layerScope)
          serving = scope
          yield* Scope.provide(
            Effect.ignore(
              registrar.handle(protocol, (stream, conn) => Server.serve(stream, conn.remotePeer, handlers))
            ),
            scope
          )
        } else if (next === "client" && serving !== undefined) {
          const scope = serving
          serving = undefined
          yield* Scope.close(scope, Exit.void)
        }
      })
    yield* setMode(mode)
    if (configured === "auto" && Option.isSome(addressManager)) {
      yield* Effect.forkScoped(Stream.runForEach(
        Stream.filter(addressManager.value.events, (e) => e._tag === "ReachabilityChanged"),
        () => setMode(reachableMode())
      ))
    }

    // --- status: mode, protocol, the table's size and peers per bucket (by common prefix length)

    const sections = yield* Effect.serviceOption(Status.StatusSections)
    if (Option.isSome(sections)) {
      yield* sections.value.register(
        "dht",
        Effect.sync(() => {
          const buckets: Record<string, number> = {}
          for (const cpl of RoutingTable.usedBuckets(table)) buckets[cpl] = table.buckets[cpl]!.length
          return { mode: currentMode, protocol, routingTableSize: RoutingTable.size(table), buckets }
        })
      )
    }

    // --- refresh (spec §Bootstrap process)

    const bootstrapPeers = Effect.forEach(options.bootstrap ?? [], (addr) =>
      host.dial(addr).pipe(
        Effect.flatMap((conn) => identify.identify(conn)),
        Effect.flatMap((r) => learn(r.peerId, r.protocols)),
        Effect.timeout(peerTimeout),
        Effect.ignore
      ), { concurrency: 8, discard: true })

    const refresh: Effect.Effect<void> = Effect.gen(function*() {
      yield* bootstrapPeers
      yield* Effect.ignore(getClosestPeers(PeerId.toBytes(self)))
      // buckets deeper than 12 are reached by the self lookup; a random key for them costs 2^13+ hashes
      for (const cpl of RoutingTable.usedBuckets(table).filter((c) => c <= 12)) {
        const key = RoutingTable.randomKeyInBucket(table, cpl, yield* Random.nextInt)
        if (key !== undefined) yield* Effect.ignore(getClosestPeers(key))
      }
    })

    yield* Effect.forkScoped(Effect.repeat(refresh, Schedule.spaced(refreshInterval)))
    const reprovideInterval = Options.duration(options.reprovideInterval, defaults.reprovideInterval)
    yield* Effect.forkScoped(Effect.sleep(reprovideInterval).pipe(Effect.andThen(reprovide), Effect.forever))
    const republishInterval = Options.duration(options.republishInterval, defaults.republishInterval)
    yield* Effect.forkScoped(Effect.sleep(republishInterval).pipe(Effect.andThen(republish), Effect.forever))
    yield* Effect.forkScoped(
      Effect.repeat(Effect.ignore(store.prune), Schedule.spaced(Duration.hours(1)))
    )

    return Kad.of({
      mode,
      currentMode: () => currentMode,
      protocol,
      findPeer: (peer) => measured("find_node", findPeer(peer)),
      getClosestPeers: (key) => measured("find_node", getClosestPeers(key)),
      put: (key, value) => measured("put_value", put(key, value)),
      get: (key) => measured("get_value", get(key)),
      provide: (key) => measured("add_provider", provide(key)),
      findProviders: (key, opts) => measured("get_providers", findProviders(key, opts)),
      refresh,
      peers: () => RoutingTable.peers(table).map((e) => e.peerId)
    })
  })

/** Kad on the `Datastore` in context. */
export const layerDatastore = (options: KadOptions = {}) => Layer.effect(Kad, make(options))

/** Kad with its records and providers in memory. */
export const layer = (options: KadOptions = {}) => layerDatastore(options).pipe(Layer.provide(MemoryDatastore.layer))

const toRoutingError = (e: KadError): RoutingError =>
  new RoutingError({
    reason: e.reason._tag === "NotFound" ? "NotFound" : "Failed",
    message: e.message,
    cause: e
  })

/** `PeerRouting` through the `Kad` in context. */
export const layerPeerRouting: Layer.Layer<PeerRouting, never, Kad> = Layer.effect(
  PeerRouting,
  Effect.map(Kad, (kad) =>
    PeerRouting.of({
      findPeer: (peer) => Effect.mapError(kad.findPeer(peer), toRoutingError),
      getClosestPeers: (key) => Effect.mapError(kad.getClosestPeers(key), toRoutingError)
    }))
)

/** `ContentRouting` through the `Kad` in context. */
export const layerContentRouting: Layer.Layer<ContentRouting, never, Kad> = Layer.effect(
  ContentRouting,
  Effect.map(Kad, (kad) =>
    ContentRouting.of({
      provide: (key) => Effect.asVoid(Effect.mapError(kad.provide(key), toRoutingError)),
      findProviders: (key, options) => Effect.mapError(kad.findProviders(key, options), toRoutingError),
      put: (key, value) => Effect.asVoid(Effect.mapError(kad.put(key, value), toRoutingError)),
      get: (key) => Effect.mapError(kad.get(key), toRoutingError)
    }))
)
