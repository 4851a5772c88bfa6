/**
 * Rendezvous, `/rendezvous/1.0.0` (https://github.com/libp2p/specs/blob/master/rendezvous/README.md):
 * peers register their signed peer record in a namespace at a rendezvous
 * point, and others discover them there. The only module other folders import.
 *
 * Two services, each with its layer:
 * - `RendezvousServer` (`layerServer`, `layerServerDatastore`): the rendezvous
 *   point. Registrations live in the node's `Datastore` (`store.ts`), so they
 *   survive a restart on the SQLite store; a fiber on a `Schedule` deletes the
 *   expired ones (`gcInterval`, 1 min). §Registration Lifetime: TTL default
 *   2 h, bounds [`minTtl`, `maxTtl`] (spec §Recommendations: 2 h and 72 h),
 *   `E_INVALID_TTL` outside. §Recommendations: namespaces up to 255 bytes,
 *   1,000 registrations per peer, 1,000 registrations per discover answer.
 *   §Spam mitigation (TBD in the spec): every registration must carry a record
 *   signed by the connection's own peer, registrations are capped per peer, per
 *   namespace (10,000) and in total (100,000), and each inbound stream may idle
 *   10 s. Cookies are MACed (`store.ts`): stateless, unforgeable, bound to their
 *   namespace.
 * - `Rendezvous` (`layer`): the client. `register` signs our current peer
 *   record, registers it and keeps it registered: a fiber registers again when
 *   3/4 of the granted TTL has passed (retrying with backoff on failure) until
 *   `unregister` or the layer's scope ends. `discover` is one `DISCOVER`;
 *   `discoveries` polls one namespace with the cookie every `discoverInterval`
 *   (10 s) and yields each peer when it is new or its addresses changed, as
 *   `{ peerId, addrs, source: "rendezvous" }` — the shape the node's peer
 *   discovery takes (issue 18); records that do not verify, or whose peer is
 *   ourselves, are skipped. The point is addressed by peer id: it must be
 *   connected, or its addresses known to the Peerstore.
 * - Records: both envelope formats in use are taken (`records.ts`:
 *   `libp2p-peer-record`, and rust-libp2p's `libp2p-routing-state`); the
 *   client signs the first unless `recordFormat` says `routing-state`.
 *   Interop-tested against rust-libp2p 0.57 in both directions.
 *
 * Deviations: the spec lets `UNREGISTER` carry no answer, so `unregister`
 * succeeds once the message is written (and the point closed the stream). Discovery with an empty namespace
 * covers every namespace (spec §The Protocol) and its cookie is valid only for
 * that kind of query.
 *
 * Anchors: rust-libp2p protocols/rendezvous (`server.rs`, `client.rs`,
 * `codec.rs`), nim-libp2p `protocols/rendezvous.nim`, go-libp2p-rendezvous.
 *
 * @since 0.2.0
 */
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  FiberMap,
  Layer,
  Option,
  Result,
  Schedule,
  Stream
} from "effect"
import { Registrar } from "../../connection/Registrar.ts"
import { Identity } from "../../core/Identity.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as PeerRecord from "../../core/PeerRecord.ts"
import { Datastore } from "../../datastore/Datastore.ts"
import * as MemoryDatastore from "../../datastore/Memory.ts"
import { Host } from "../../host/Host.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as Options from "../../internal/options.ts"
import * as Status from "../../observability/Status.ts"
import * as Client from "./client.ts"
import { fail, RecordFailed, Refused, type RendezvousError, Timeout, Unreachable } from "./errors.ts"
import { MessageType, type RendezvousMessage, ResponseStatus, statusName } from "./messages.ts"
import * as RdvMetrics from "./metrics.ts"
import * as Records from "./records.ts"
import * as Server from "./server.ts"
import * as Store from "./store.ts"

export const PROTOCOL = "/rendezvous/1.0.0"

export {
  Malformed,
  RecordFailed,
  Refused,
  RendezvousError,
  RendezvousErrorReason,
  StoreFailed,
  Timeout,
  Unreachable
} from "./errors.ts"
export {
  MAX_MESSAGE_SIZE,
  MAX_REQUEST_SIZE,
  MAX_SIGNED_RECORD_SIZE,
  MessageType,
  RendezvousMessage,
  ResponseStatus,
  statusName
} from "./messages.ts"
export { type RecordFormat, ROUTING_STATE_DOMAIN, ROUTING_STATE_PAYLOAD_TYPE } from "./records.ts"

// --- the rendezvous point ---------------------------------------------------

export interface ServerOptions {
  /** TTL of a registration that names none (default 2 h, spec §Registration Lifetime). */
  readonly defaultTtl?: Duration.Input | undefined
  /** Shortest TTL accepted (default 2 h, spec §Recommendations). */
  readonly minTtl?: Duration.Input | undefined
  /** Longest TTL accepted (default and at most 72 h, spec §Registration Lifetime). */
  readonly maxTtl?: Duration.Input | undefined
  /** Longest namespace, in UTF-8 bytes (default 255, spec §Recommendations). */
  readonly maxNamespaceLength?: number | undefined
  /** Most registrations in one discover answer, and the default limit (default 1,000). */
  readonly maxDiscoverLimit?: number | undefined
  /** Registrations one peer may hold over all namespaces (default 1,000, spec §Recommendations). */
  readonly maxRegistrationsPerPeer?: number | undefined
  /** Registrations one namespace may hold (default 10,000). */
  readonly maxRegistrationsPerNamespace?: number | undefined
  /** Registrations in total (default 100,000). */
  readonly maxRegistrations?: number | undefined
  /** How often expired registrations are deleted (default 1 min). */
  readonly gcInterval?: Duration.Input | undefined
  /** How long an inbound stream may wait between requests (default 10 s). */
  readonly idleTimeout?: Duration.Input | undefined
}

export const serverDefaults = {
  defaultTtl: Duration.hours(2),
  minTtl: Duration.hours(2),
  maxTtl: Duration.hours(72),
  maxNamespaceLength: 255,
  maxDiscoverLimit: 1000,
  maxRegistrationsPerPeer: 1000,
  maxRegistrationsPerNamespace: 10_000,
  maxRegistrations: 100_000,
  gcInterval: Duration.minutes(1),
  idleTimeout: Server.IDLE_TIMEOUT
}

export class RendezvousServer extends Context.Service<RendezvousServer, {
  /** Live registrations per namespace. */
  readonly namespaces: () => ReadonlyMap<string, number>
  /** Live registrations in all namespaces. */
  readonly size: () => number
  /** Delete expired registrations now; the number deleted (the gc fiber runs this). */
  readonly gc: Effect.Effect<number, RendezvousError>
}>()("effect-libp2p/RendezvousServer") {}

const seconds = (d: Duration.Duration) => Math.floor(Duration.toSeconds(d))

/** The rendezvous point on the `Datastore` in context: registers the protocol handler for the scope. */
export const makeServer = (options: ServerOptions = {}) =>
  Effect.gen(function*() {
    const registrar = yield* Registrar
    const datastore = yield* Datastore
    const maxTtl = Math.min(seconds(Options.duration(options.maxTtl, serverDefaults.maxTtl)), 72 * 3600)
    const minTtl = Math.min(Math.max(1, seconds(Options.duration(options.minTtl, serverDefaults.minTtl))), maxTtl)
    const limits: Server.ServerLimits = {
      defaultTtl: Math.min(
        Math.max(minTtl, seconds(Options.duration(options.defaultTtl, serverDefaults.defaultTtl))),
        maxTtl
      ),
      minTtl,
      maxTtl,
      maxNamespaceLength: Options.clampInt(options.maxNamespaceLength, serverDefaults.maxNamespaceLength, 1, 4096),
      maxDiscoverLimit: Options.clampInt(options.maxDiscoverLimit, serverDefaults.maxDiscoverLimit, 1, 10_000)
    }
    const store = yield* Store.make(datastore, {
      maxPerPeer: Options.clampInt(options.maxRegistrationsPerPeer, serverDefaults.maxRegistrationsPerPeer, 1, 1e6),
      maxPerNamespace: Options.clampInt(
        options.maxRegistrationsPerNamespace,
        serverDefaults.maxRegistrationsPerNamespace,
        1,
        1e7
      ),
      maxTotal: Options.clampInt(options.maxRegistrations, serverDefaults.maxRegistrations, 1, 1e7)
    })
    const rec = yield* Metrics.recorder
    const updateGauges = () => {
      RdvMetrics.registrations.set(RdvMetrics.namespaceLabels(store.counts()), rec)
      rec.update(RdvMetrics.registrationsTotal, store.size())
    }
    updateGauges()
    const handlers: Server.Handlers = {
      store,
      limits,
      now: Clock.currentTimeMillis,
      onRequest: (type, status) => {
        rec.update(RdvMetrics.inboundRequests.with(typeLabel(type)), 1)
        if (status !== undefined && status !== ResponseStatus.OK) {
          rec.update(RdvMetrics.refusals.with(statusName(status)), 1)
        } else if (type === MessageType.DISCOVER) rec.update(RdvMetrics.discoversServed, 1)
        if (type === MessageType.REGISTER || type === MessageType.UNREGISTER) updateGauges()
      }
    }
    const idleTimeout = Options.duration(options.idleTimeout, serverDefaults.idleTimeout)
    yield* registrar.handle(
      PROTOCOL,
      (stream, conn) =>
        Server.serve(stream, conn.remotePeer, handlers, { idleTimeout }).pipe(
          Effect.tapError((e) =>
            Effect.sync(() => {
              if (e.reason._tag === "Malformed") rec.update(RdvMetrics.refusals.with("MALFORMED"), 1)
            })
          )
        )
    )
    const gc = Effect.tap(store.gc, (n) => Effect.sync(() => n > 0 && updateGauges()))
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.catch(gc, (e) => Effect.as(Effect.logWarning(`rendezvous: expiry sweep failed: ${e.message}`), 0)),
        Schedule.spaced(Options.duration(options.gcInterval, serverDefaults.gcInterval))
      )
    )
    const sections = yield* Effect.serviceOption(Status.StatusSections)
    if (Option.isSome(sections)) {
      yield* sections.value.register(
        "rendezvous",
        Effect.sync(() => ({ registrations: store.size(), namespaces: Object.fromEntries(store.counts()) }))
      )
    }
    return RendezvousServer.of({ namespaces: store.counts, size: store.size, gc })
  })

const typeNames = new Map<number, string>(Object.entries(MessageType).map(([name, n]) => [n, name.toLowerCase()]))
const typeLabel = (type: number) => typeNames.get(type) ?? "other"

/** The rendezvous point, its registrations in the `Datastore` in context. */
export const layerServerDatastore = (options: ServerOptions = {}) => Layer.effect(RendezvousServer, makeServer(options))

/** The rendezvous point, its registrations in memory. */
export const layerServer = (options: ServerOptions = {}) =>
  layerServerDatastore(options).pipe(Layer.provide(MemoryDatastore.layer))

// --- the client ----------------------------------------------------------------

export interface RendezvousOptions {
  /** Deadline for one request, the dial included (default 10 s). */
  readonly timeout?: Duration.Input | undefined
  /** Polling period of `discoveries` (default 10 s). */
  readonly discoverInterval?: Duration.Input | undefined
  /**
   * The envelope format of our record (`records.ts`): `peer-record` (default; go, js, nim) or
   * `routing-state` (the only one rust-libp2p's rendezvous point takes). Points of ours take both.
   */
  readonly recordFormat?: Records.RecordFormat | undefined
}

export const defaults = {
  timeout: Duration.seconds(10),
  discoverInterval: Duration.seconds(10),
  recordFormat: "peer-record" as Records.RecordFormat
}

/** One registration found by `discover`. */
export interface Registration {
  readonly peerId: PeerId.PeerId
  /** From the signed peer record. */
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  readonly namespace: string
  /** Seconds left, as the point reports it. */
  readonly ttl: number
}

export interface DiscoverOptions {
  /** The namespace; absent: every namespace (spec §The Protocol). */
  readonly namespace?: string | undefined
  /** At most this many (the point caps it too). */
  readonly limit?: number | undefined
  /** From a previous answer for the same namespace: only what was not in it. */
  readonly cookie?: Uint8Array | undefined
}

export interface DiscoverResult {
  readonly registrations: ReadonlyArray<Registration>
  /** Pass it to the next `discover` of the same namespace. */
  readonly cookie: Uint8Array | undefined
}

/** A peer found at a rendezvous point, the shape peer discovery takes (issue 18). */
export interface DiscoveredPeer {
  readonly peerId: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  readonly source: "rendezvous"
}

export interface ActiveRegistration {
  readonly server: PeerId.PeerId
  readonly namespace: string
  /** Seconds granted by the last registration. */
  readonly ttl: number
}

/** Peers remembered by one `discoveries` stream (the oldest are forgotten beyond it). */
export const MAX_REMEMBERED_PEERS = 10_000

export class Rendezvous extends Context.Service<Rendezvous, {
  /**
   * Register our signed peer record at `server` in `namespace` (TTL default: the point's),
   * and keep it registered until `unregister` or the end of the layer's scope; the granted TTL.
   */
  readonly register: (
    server: PeerId.PeerId,
    namespace: string,
    options?: { readonly ttl?: Duration.Input | undefined }
  ) => Effect.Effect<Duration.Duration, RendezvousError>
  /** Stop refreshing, and tell the point (spec: no answer). */
  readonly unregister: (server: PeerId.PeerId, namespace: string) => Effect.Effect<void, RendezvousError>
  /** One `DISCOVER`. */
  readonly discover: (
    server: PeerId.PeerId,
    options?: DiscoverOptions
  ) => Effect.Effect<DiscoverResult, RendezvousError>
  /**
   * Poll `server` for `namespace` (cookie pagination) now and every `discoverInterval`; each peer
   * when new or when its addresses changed. A failed poll is logged and retried at the next one.
   */
  readonly discoveries: (
    server: PeerId.PeerId,
    namespace: string,
    options?: { readonly interval?: Duration.Input | undefined }
  ) => Stream.Stream<DiscoveredPeer>
  /** The registrations being kept. */
  readonly registrations: () => ReadonlyArray<ActiveRegistration>
}>()("effect-libp2p/Rendezvous") {}

const refused = (status: number | undefined, text: string | undefined): RendezvousError => {
  const s = status ?? -1
  return fail(new Refused({ status: s, statusName: statusName(s), message: text ?? statusName(s) }))
}

/** The registrations of a `DISCOVER_RESPONSE` whose record verifies; the others are dropped. */
export const registrationsOf = (res: RendezvousMessage): ReadonlyArray<Registration> => {
  const out: Array<Registration> = []
  for (const r of res.discoverResponse?.registrations ?? []) {
    if (r.signedPeerRecord === undefined) continue
    const record = Records.open(r.signedPeerRecord)
    if (Result.isFailure(record)) continue
    const addrs = PeerRecord.multiaddrs(record.success)
    if (Result.isFailure(addrs)) continue
    out.push({
      peerId: record.success.peerId,
      addrs: addrs.success,
      namespace: r.ns ?? "",
      ttl: r.ttl === undefined ? 0 : Number(r.ttl)
    })
  }
  return out
}

export const make = (options: RendezvousOptions = {}) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const host = yield* Host
    const timeout = Options.duration(options.timeout, defaults.timeout)
    const discoverInterval = Options.duration(options.discoverInterval, defaults.discoverInterval)
    const recordFormat = options.recordFormat ?? defaults.recordFormat
    const rec = yield* Metrics.recorder
    const refreshers = yield* FiberMap.make<string>()
    const active = new Map<string, ActiveRegistration>()
    const keyOf = (server: PeerId.PeerId, ns: string) => `${server.toString()}\u0000${ns}`

    const ask = (
      server: PeerId.PeerId,
      req: RendezvousMessage
    ): Effect.Effect<RendezvousMessage | undefined, RendezvousError> =>
      Effect.scoped(Effect.gen(function*() {
        const stream = yield* host.newStream(server, [PROTOCOL], { lazy: false }).pipe(
          Effect.mapError((e) => fail(new Unreachable({ peer: server.toString(), message: e.message, cause: e })))
        )
        return yield* Client.request(stream, server, req)
      })).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(fail(new Timeout({ peer: server.toString(), millis: Duration.toMillis(timeout) })))
        })
      )

    /** Count a request by type and outcome: `ok`, the refusal's status name, or the error reason. */
    const measured = <A>(type: string, effect: Effect.Effect<A, RendezvousError>) =>
      Effect.onExit(effect, (exit) =>
        Effect.sync(() => {
          const e = Exit.isSuccess(exit) ? undefined : Cause.findErrorOption(exit.cause)
          const outcome = e === undefined
            ? "ok"
            : Option.isNone(e)
            ? "interrupted"
            : e.value.reason._tag === "Refused"
            ? e.value.reason.statusName
            : e.value.reason._tag
          rec.update(RdvMetrics.clientRequests.with(type, outcome), 1)
        }))

    const signedRecord = Effect.gen(function*() {
      const seq = BigInt(yield* Clock.currentTimeMillis)
      const addrs = host.addrs().map((a) => Multiaddr.decapsulateCode(a, Multiaddr.codes.p2p))
      return yield* Effect.mapError(
        Effect.fromResult(
          Records.seal(identity.privateKey, PeerRecord.make(identity.peerId, seq, addrs), recordFormat)
        ),
        (e) => fail(new RecordFailed({ message: e.message, cause: e }))
      )
    })

    /** One `REGISTER`; the granted TTL in seconds. */
    const registerOnce = (server: PeerId.PeerId, ns: string, ttl: number | undefined) =>
      measured(
        "register",
        Effect.gen(function*() {
          const signedPeerRecord = yield* signedRecord
          const res = yield* ask(server, {
            type: MessageType.REGISTER,
            register: { ns, signedPeerRecord, ...(ttl !== undefined ? { ttl: BigInt(ttl) } : {}) }
          })
          const r = res?.registerResponse
          if (r === undefined || (r.status ?? ResponseStatus.OK) !== ResponseStatus.OK) {
            return yield* Effect.fail(refused(r?.status, r?.statusText))
          }
          const granted = r.ttl === undefined || r.ttl === 0n ? (ttl ?? 7200) : Number(r.ttl)
          active.set(keyOf(server, ns), { server, namespace: ns, ttl: granted })
          return granted
        })
      )

    const retry = Schedule.min([Schedule.exponential("1 second"), Schedule.spaced("1 minute")])

    /** Register again when 3/4 of the TTL has passed, forever (until interrupted). */
    const refresh = (
      server: PeerId.PeerId,
      ns: string,
      ttl: number | undefined,
      granted: number
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        let current = granted
        while (true) {
          yield* Effect.sleep(Duration.millis(Math.max(1000, current * 750)))
          current = yield* registerOnce(server, ns, ttl).pipe(
            Effect.tapError((e) =>
              Effect.logWarning(`rendezvous: refreshing ${ns} at ${server.toString()} failed: ${e.message}`)
            ),
            Effect.retry({ schedule: retry, while: (e) => e.reason._tag !== "Refused" }),
            Effect.catch(() => Effect.succeed(current))
          )
        }
      })

    const register: Rendezvous["Service"]["register"] = (server, namespace, opts) =>
      Effect.gen(function*() {
        const ttl = opts?.ttl === undefined ? undefined : seconds(Options.duration(opts.ttl, Duration.hours(2)))
        const granted = yield* registerOnce(server, namespace, ttl)
        yield* FiberMap.run(refreshers, keyOf(server, namespace), refresh(server, namespace, ttl, granted))
        return Duration.seconds(granted)
      })

    const unregister: Rendezvous["Service"]["unregister"] = (server, namespace) =>
      Effect.gen(function*() {
        yield* FiberMap.remove(refreshers, keyOf(server, namespace))
        active.delete(keyOf(server, namespace))
        yield* measured("unregister", ask(server, { type: MessageType.UNREGISTER, unregister: { ns: namespace } }))
      })

    const discover: Rendezvous["Service"]["discover"] = (server, opts = {}) =>
      measured(
        "discover",
        Effect.gen(function*() {
          const res = yield* ask(server, {
            type: MessageType.DISCOVER,
            discover: {
              ...(opts.namespace !== undefined ? { ns: opts.namespace } : {}),
              ...(opts.limit !== undefined ? { limit: BigInt(Math.max(0, Math.floor(opts.limit))) } : {}),
              ...(opts.cookie !== undefined ? { cookie: opts.cookie } : {})
            }
          })
          const d = res?.discoverResponse
          if (d === undefined || (d.status ?? ResponseStatus.OK) !== ResponseStatus.OK) {
            return yield* Effect.fail(refused(d?.status, d?.statusText))
          }
          return { registrations: registrationsOf(res!), cookie: d.cookie }
        })
      )

    const discoveries: Rendezvous["Service"]["discoveries"] = (server, namespace, opts) => {
      const interval = Options.duration(opts?.interval, discoverInterval)
      return Stream.unwrap(Effect.sync(() => {
        let cookie: Uint8Array | undefined
        const seen = new Map<string, string>() // peer → its addresses, oldest first
        const poll = Effect.suspend(() => discover(server, { namespace, cookie })).pipe(
          Effect.map((r) => {
            cookie = r.cookie ?? cookie
            const fresh: Array<DiscoveredPeer> = []
            for (const reg of r.registrations) {
              if (PeerId.equals(reg.peerId, identity.peerId)) continue
              const id = reg.peerId.toString()
              const addrs = reg.addrs.map(Multiaddr.toString).join(" ")
              if (seen.get(id) === addrs) continue
              seen.delete(id)
              seen.set(id, addrs)
              if (seen.size > MAX_REMEMBERED_PEERS) seen.delete(seen.keys().next().value!)
              fresh.push({ peerId: reg.peerId, addrs: reg.addrs, source: "rendezvous" })
            }
            return fresh
          }),
          Effect.catch((e) => {
            // a cookie the point no longer takes (its datastore was reset): start over
            if (e.reason._tag === "Refused" && e.reason.status === ResponseStatus.E_INVALID_COOKIE) cookie = undefined
            return Effect.as(
              Effect.logInfo(`rendezvous: discover ${namespace} at ${server.toString()} failed: ${e.message}`),
              [] as ReadonlyArray<DiscoveredPeer>
            )
          })
        )
        return Stream.fromEffectSchedule(poll, Schedule.spaced(interval)).pipe(Stream.flatMap(Stream.fromIterable))
      }))
    }

    return Rendezvous.of({
      register,
      unregister,
      discover,
      discoveries,
      registrations: () => [...active.values()]
    })
  })

/** The rendezvous client (needs the Host and Identity of the node). */
export const layer = (options: RendezvousOptions = {}) => Layer.effect(Rendezvous, make(options))
