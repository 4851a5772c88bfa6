/**
 * AutoNAT v2 (libp2p specs autonat/autonat-v2.md), client and server, and an
 * AutoNAT v1 server (autonat/autonat-v1.md) for older peers; protocols
 * `/libp2p/autonat/2/dial-request`, `/libp2p/autonat/2/dial-back`,
 * `/libp2p/autonat/1.0.0`.
 *
 * - **Server** (§AutoNAT V2 Protocol): a requester asks us to dial one of its
 *   addresses; we pick the first we are willing to dial (TCP-based, not
 *   relayed, naming no other peer, public — private, loopback and reserved
 *   addresses only with `allowPrivateAddrs`), dial it back on a **separate**
 *   connection (a new dial, never the requester's connection) and send the
 *   nonce on `/libp2p/autonat/2/dial-back`, then answer. §Amplification
 *   Attack Prevention: when the address's IP is not the requester's observed
 *   IP we first ask for `dialDataBytes` (30,000–100,000, random) and dial only
 *   once it all arrived; a requester that does not pay gets nothing dialed.
 *   Relayed requesters are refused (their IP is the relay's). Rate limits:
 *   `maxRequestsPerPeer` and `maxRequests` per `rateWindow`, and
 *   `maxConcurrentRequests` at once (`E_REQUEST_REJECTED`).
 * - **v1 server** (§AutoNAT Protocol): dials only addresses on the
 *   requester's observed IP (the spec's MUST NOT), same limits.
 * - **Client**: asks connected peers that speak the protocol to check each of
 *   our candidate addresses (listen addresses, confirmed ones, and observed
 *   addresses the AddressManager trusts; public ones unless
 *   `allowPrivateAddrs`), one address per request; pays dial data up to
 *   `maxDialDataBytes`; a success counts only when the dial back brought our
 *   nonce (a wrong nonce is discarded: §"The client MUST check that the nonce
 *   …"). Per address, the results of the last `window` servers decide
 *   (§Implementation Suggestions): `public` when successes exceed failures by
 *   `minConfidence` (3), `private` the other way round, else `unknown`.
 *   Public addresses are confirmed in the {@link AddressManager} (so they are
 *   advertised: while the client runs, an observed address is advertised only
 *   once confirmed — `requireConfirmation`), others unconfirmed; the node's reachability (public if any
 *   address is, private if all checked ones are) is set there, and read
 *   through {@link AutoNat} `reachability` or the AddressManager's
 *   `reachability`/`events` (`ReachabilityChanged`).
 * - **Jobs**: a full round every `checkInterval` (first after
 *   `startupDelay`), and after it a round of the unknown addresses when a new
 *   server is identified or our addresses change.
 *
 * Deviations: the server dials with our own peer id (the spec allows another);
 * only TCP-based addresses are dialed back (our transports).
 * Anchors: go-libp2p `p2p/protocol/autonatv2/{autonat.go,client.go,server.go}`,
 * js-libp2p `packages/protocol-autonat-v2`.
 *
 * @since 0.3.0
 */
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  Queue,
  Random,
  Schedule,
  Semaphore,
  Stream
} from "effect"
import * as Crypto from "node:crypto"
import type * as Connection from "../../connection/Connection.ts"
import { Registrar } from "../../connection/Registrar.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import type * as PeerId from "../../core/PeerId.ts"
import { type AddressEvent, AddressManager, type Reachability } from "../../host/AddressManager.ts"
import { Host } from "../../host/Host.ts"
import { Peerstore } from "../../host/Peerstore.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as Options from "../../internal/options.ts"
import * as Status from "../../observability/Status.ts"
import { Identify } from "../identify/Identify.ts"
import * as Client from "./client.ts"
import { type AutoNatError, fail, NoDialBack, Timeout, Unreachable } from "./errors.ts"
import { DialStatus } from "./messages.ts"
import * as AutoNatMetrics from "./metrics.ts"
import { type AddrVerdict, overall, Tracker } from "./reachability.ts"
import * as Server from "./server.ts"

export type { Reachability } from "../../host/AddressManager.ts"
export {
  AutoNatError,
  AutoNatErrorReason,
  DialDataMissing,
  DialDataRefused,
  Malformed,
  NoDialBack,
  Refused,
  Rejected,
  ServerError,
  Timeout,
  Unreachable
} from "./errors.ts"
export {
  DialBack,
  DialBackResponse,
  DialStatus,
  MAX_MESSAGE_SIZE,
  Message,
  ResponseStatus,
  V1Message,
  V1Status,
  V1Type
} from "./messages.ts"

export const PROTOCOL = "/libp2p/autonat/2/dial-request"
export const DIAL_BACK_PROTOCOL = "/libp2p/autonat/2/dial-back"
export const V1_PROTOCOL = "/libp2p/autonat/1.0.0"

export interface AutoNatOptions {
  /** Answer dial requests (v2, and v1 when `v1Server`); default true. */
  readonly server?: boolean | undefined
  /** Check our addresses with other peers; default true. */
  readonly client?: boolean | undefined
  /** Also serve AutoNAT v1 (`/libp2p/autonat/1.0.0`); default true. */
  readonly v1Server?: boolean | undefined
  /**
   * Dial back (server) and ask about (client) private, loopback and reserved
   * addresses too; default false (the spec's "SHOULD NOT"). For tests on one
   * machine and private networks.
   */
  readonly allowPrivateAddrs?: boolean | undefined
  /** Dial data asked for before dialing another IP than the requester's (default 30,000–100,000 bytes). */
  readonly dialDataBytes?: { readonly min: number; readonly max: number } | undefined
  /** Dial data the client sends at most when asked (default 100,000 bytes). */
  readonly maxDialDataBytes?: number | undefined
  /** Requests served per peer per `rateWindow` (default 12). */
  readonly maxRequestsPerPeer?: number | undefined
  /** Requests served per `rateWindow` over all peers (default 60). */
  readonly maxRequests?: number | undefined
  /** Requests served at once (default 8). */
  readonly maxConcurrentRequests?: number | undefined
  /** The rate limits' window (default 1 minute). */
  readonly rateWindow?: Duration.Input | undefined
  /** One whole exchange, either side (default 30 s). */
  readonly timeout?: Duration.Input | undefined
  /** Server: one dial back (default 15 s). */
  readonly dialTimeout?: Duration.Input | undefined
  /** Client: servers asked about one address per round (default 3). */
  readonly serversPerAddr?: number | undefined
  /** Client: results kept per address, one per server (default 5). */
  readonly window?: number | undefined
  /** Client: successes over failures (or the reverse) that decide an address (default 3). */
  readonly minConfidence?: number | undefined
  /** Client: a full round this often (default 15 minutes). */
  readonly checkInterval?: Duration.Input | undefined
  /** Client: the first round after this long (default 5 s). */
  readonly startupDelay?: Duration.Input | undefined
  /** Client: checks in flight at once (default 4). */
  readonly maxConcurrentChecks?: number | undefined
}

export const defaults = {
  dialDataBytes: { min: 30_000, max: 100_000 },
  maxDialDataBytes: 100_000,
  maxRequestsPerPeer: 12,
  maxRequests: 60,
  maxConcurrentRequests: 8,
  rateWindow: Duration.minutes(1),
  timeout: Duration.seconds(30),
  dialTimeout: Duration.seconds(15),
  serversPerAddr: 3,
  window: 5,
  minConfidence: 3,
  checkInterval: Duration.minutes(15),
  startupDelay: Duration.seconds(5),
  maxConcurrentChecks: 4
} as const

/** The outcome of one check of one address at one server. */
export interface CheckResult {
  readonly addr: Multiaddr.Multiaddr
  readonly server: PeerId.PeerId
  /** `public`: dialed back with our nonce; `private`: the dial failed; `dial_back_error`: reached, nonce not delivered. */
  readonly outcome: "public" | "private" | "dial_back_error"
}

export interface AddressReachability extends AddrVerdict {
  readonly addr: Multiaddr.Multiaddr
}

export class AutoNat extends Context.Service<AutoNat, {
  /** The node's reachability as AutoNAT last found it. */
  readonly reachability: () => Reachability
  /** Every candidate address we checked, with its verdict. */
  readonly addresses: () => ReadonlyArray<AddressReachability>
  /** Ask `server` (connected or dialable) to check `addr` once; the result is not recorded. */
  readonly check: (server: PeerId.PeerId, addr: Multiaddr.Multiaddr) => Effect.Effect<CheckResult, AutoNatError>
  /** A full round now: every candidate address at up to `serversPerAddr` servers; the new verdicts. */
  readonly checkNow: Effect.Effect<ReadonlyArray<AddressReachability>>
  /** The AddressManager's `ReachabilityChanged` events, from the moment the stream is run. */
  readonly events: Stream.Stream<Extract<AddressEvent, { readonly _tag: "ReachabilityChanged" }>>
}>()("effect-libp2p/AutoNat") {}

/** A random 64-bit nonce (§AutoNAT V2 Protocol: `fixed64 nonce`), unpredictable to the server. */
const randomNonce = (): bigint => Crypto.randomBytes(8).readBigUInt64BE(0)

const transportCode = (addr: Multiaddr.Multiaddr): number | undefined => Multiaddr.components(addr)[1]?.code

export const make = (options: AutoNatOptions = {}) =>
  Effect.gen(function*() {
    const host = yield* Host
    const registrar = yield* Registrar
    const peerstore = yield* Peerstore
    const am = yield* AddressManager
    const identify = yield* Effect.serviceOption(Identify)
    const rec = yield* Metrics.recorder
    const allowPrivate = options.allowPrivateAddrs === true
    const timeout = Options.duration(options.timeout, defaults.timeout)
    const dialTimeout = Options.duration(options.dialTimeout, defaults.dialTimeout)
    const maxDialDataBytes = Options.clampInt(options.maxDialDataBytes, defaults.maxDialDataBytes, 0, 10_000_000)
    const dataMin = Options.clampInt(options.dialDataBytes?.min, defaults.dialDataBytes.min, 0, 10_000_000)
    const dataMax = Options.clampInt(options.dialDataBytes?.max, defaults.dialDataBytes.max, dataMin, 10_000_000)
    const window = Options.clampInt(options.window, defaults.window, 1, 64)
    const minConfidence = Options.clampInt(options.minConfidence, defaults.minConfidence, 1, window)
    const serversPerAddr = Options.clampInt(options.serversPerAddr, defaults.serversPerAddr, 1, window)
    const tracker = new Tracker(window, minConfidence, 64)
    const limiter = new Server.RateLimiter(
      Duration.toMillis(Options.duration(options.rateWindow, defaults.rateWindow)),
      Options.clampInt(options.maxRequestsPerPeer, defaults.maxRequestsPerPeer, 1, 1_000_000),
      Options.clampInt(options.maxRequests, defaults.maxRequests, 1, 1_000_000),
      Options.clampInt(options.maxConcurrentRequests, defaults.maxConcurrentRequests, 1, 10_000)
    )

    // --- server

    /** An address we would dial back for `requester` (policy in the module doc). */
    const willDial = (addr: Multiaddr.Multiaddr, requester: PeerId.PeerId): boolean => {
      if (MultiaddrNet.isRelayed(addr)) return false
      const split = MultiaddrNet.splitThinWaist(addr)
      if (split === undefined || transportCode(split.thinWaist) !== Multiaddr.codes.tcp) return false
      if (Multiaddr.isUnspecified(addr)) return false
      const id = Multiaddr.getPeerId(addr)
      if (id !== undefined && id !== requester.toString()) return false
      return allowPrivate || am.classify(addr) === "public"
    }

    /** A new connection to `requester` at `addr` (never an existing one), or undefined. */
    const dialSeparately = (addr: Multiaddr.Multiaddr, requester: PeerId.PeerId) =>
      host.dialer.dial({
        peer: requester,
        addrs: [Multiaddr.decapsulateCode(addr, Multiaddr.codes.p2p)],
        force: true
      }).pipe(Effect.timeoutOption(dialTimeout), Effect.option, Effect.map(Option.flatten))

    const deps: Server.ServerDeps = {
      admit: (peer) => Effect.map(Clock.currentTimeMillis, (now) => limiter.admit(peer, now)),
      done: Effect.sync(() => limiter.done()),
      willDial,
      dialBack: (addr, requester, nonce) =>
        Effect.gen(function*() {
          const conn = yield* dialSeparately(addr, requester)
          if (Option.isNone(conn)) return DialStatus.E_DIAL_ERROR
          const delivered = yield* Effect.scoped(
            Effect.flatMap(
              conn.value.newStream([DIAL_BACK_PROTOCOL], { lazy: false }),
              (stream) => Client.sendDialBack(stream, nonce)
            )
          ).pipe(
            Effect.timeoutOption(dialTimeout),
            Effect.map((o) => o._tag === "Some" && o.value),
            Effect.orElseSucceed(() => false)
          )
          yield* conn.value.close
          return delivered ? DialStatus.OK : DialStatus.E_DIAL_BACK_ERROR
        }),
      dialAny: (addrs, requester) =>
        Effect.gen(function*() {
          for (const addr of addrs) {
            const conn = yield* dialSeparately(addr, requester)
            if (Option.isSome(conn)) {
              yield* conn.value.close
              return addr
            }
          }
          return undefined
        }),
      dialDataBytes: Effect.map(Random.nextIntBetween(dataMin, dataMax + 1), (n) => n),
      timeout,
      onOutcome: (version, outcome) => rec.update(AutoNatMetrics.serverRequests.with(version, outcome), 1)
    }

    if (options.server !== false) {
      yield* registrar.handle(PROTOCOL, (stream, conn) => Server.serve(stream, conn, deps))
      if (options.v1Server !== false) {
        yield* registrar.handle(V1_PROTOCOL, (stream, conn) => Server.serveV1(stream, conn, deps))
      }
    }

    // --- client: checks

    /** Nonce → the dial back's local address, for the checks in flight. */
    const pending = new Map<bigint, Deferred.Deferred<Multiaddr.Multiaddr>>()
    const checks = yield* Semaphore.make(
      Options.clampInt(options.maxConcurrentChecks, defaults.maxConcurrentChecks, 1, 64)
    )

    const accept = (conn: Connection.Connection) => (nonce: bigint) =>
      Effect.suspend(() => {
        const waiting = pending.get(nonce)
        if (waiting === undefined) return Effect.succeed(false)
        return Effect.as(Deferred.succeed(waiting, conn.localAddr), true)
      })

    const check = (server: PeerId.PeerId, addr: Multiaddr.Multiaddr): Effect.Effect<CheckResult, AutoNatError> =>
      Effect.scoped(Effect.gen(function*() {
        const nonce = randomNonce()
        const dialedBack = yield* Deferred.make<Multiaddr.Multiaddr>()
        pending.set(nonce, dialedBack)
        yield* Effect.addFinalizer(() => Effect.sync(() => pending.delete(nonce)))
        // on our oldest connection to the server: a newer one may be a dial back it is closing
        const oldest = host.connections(server).filter((c) => !c.isClosed()).sort((a, b) => a.openedAt - b.openedAt)[0]
        const stream = yield* (oldest !== undefined
          ? oldest.newStream([PROTOCOL], { lazy: false })
          : host.newStream(server, [PROTOCOL], { lazy: false })).pipe(
            Effect.mapError((e) => fail(new Unreachable({ peer: server.toString(), message: e.message, cause: e })))
          )
        const result = yield* Client.request(stream, [Multiaddr.toBytes(addr)], nonce, maxDialDataBytes).pipe(
          Effect.tapError(() => stream.reset)
        )
        if (result.dialStatus === DialStatus.E_DIAL_ERROR) return { addr, server, outcome: "private" as const }
        if (result.dialStatus === DialStatus.E_DIAL_BACK_ERROR) {
          return { addr, server, outcome: "dial_back_error" as const }
        }
        // OK: our nonce must have come back (the server answers after the dial back's response)
        const local = yield* Deferred.await(dialedBack).pipe(Effect.timeoutOption(Duration.seconds(2)))
        if (Option.isNone(local)) {
          return yield* fail(new NoDialBack({ message: "the server reported OK but no dial back brought our nonce" }))
        }
        if (transportCode(local.value) !== transportCode(addr)) {
          return yield* fail(new NoDialBack({ message: "the dial back came on another transport" }))
        }
        return { addr, server, outcome: "public" as const }
      })).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(fail(new Timeout({ millis: Duration.toMillis(timeout) })))
        }),
        checks.withPermits(1),
        Effect.onExit((exit) =>
          Effect.sync(() => {
            const e = Exit.isSuccess(exit) ? undefined : Cause.findErrorOption(exit.cause)
            const outcome = exit._tag === "Success"
              ? exit.value.outcome
              : e !== undefined && Option.isSome(e)
              ? e.value.reason._tag
              : "interrupted"
            rec.update(AutoNatMetrics.clientChecks.with(outcome), 1)
          })
        )
      )

    if (options.client !== false) {
      // observed addresses are advertised once we confirmed them, no longer once merely trusted
      yield* am.requireConfirmation
      yield* registrar.handle(
        DIAL_BACK_PROTOCOL,
        (stream, conn) => Client.answerDialBack(stream, accept(conn)).pipe(Effect.tapError(() => stream.reset))
      )
    }

    // --- client: rounds, verdicts

    const keyOf = Multiaddr.toString

    /** Our addresses worth checking (module doc). */
    const candidates = Effect.gen(function*() {
      const observed = (yield* am.observed).filter((o) => o.trusted).map((o) => o.observed)
      const all = [...am.listenAddrs(), ...am.confirmed(), ...observed]
      const out = new Map<string, Multiaddr.Multiaddr>()
      for (const a of all) {
        const bare = Multiaddr.decapsulateCode(a, Multiaddr.codes.p2p)
        if (Multiaddr.isUnspecified(bare) || MultiaddrNet.isRelayed(bare)) continue
        const split = MultiaddrNet.splitThinWaist(bare)
        if (split === undefined || transportCode(split.thinWaist) !== Multiaddr.codes.tcp) continue
        if (!allowPrivate && am.classify(bare) !== "public") continue
        out.set(keyOf(bare), bare)
      }
      return Array.from(out.values())
    })

    /** Connected peers that speak the protocol (not over relayed connections). */
    const servers = (): ReadonlyArray<PeerId.PeerId> => {
      const out = new Map<string, PeerId.PeerId>()
      for (const conn of host.connections()) {
        if (MultiaddrNet.isRelayed(conn.remoteAddr)) continue
        if (peerstore.get(conn.remotePeer)?.protocols.includes(PROTOCOL) === true) {
          out.set(conn.remotePeer.toString(), conn.remotePeer)
        }
      }
      return Array.from(out.values())
    }

    let known: ReadonlyArray<Multiaddr.Multiaddr> = []
    let reachability: Reachability = "unknown"

    const addresses = (): ReadonlyArray<AddressReachability> =>
      known.map((addr) => ({ addr, ...tracker.verdict(keyOf(addr)) }))

    /** Push the verdicts into the AddressManager and the metrics. */
    const publish = Effect.gen(function*() {
      const verdicts = addresses()
      for (const v of verdicts) {
        const confirmed = am.confirmed().some((c) => Multiaddr.equals(c, v.addr))
        if (v.reachability === "public" && !confirmed) yield* am.confirm(v.addr)
        if (v.reachability !== "public" && confirmed) yield* am.unconfirm(v.addr)
      }
      const next = overall(verdicts.filter((v) => v.successes + v.failures > 0).map((v) => v.reachability))
      reachability = next
      yield* am.setReachability(next, verdicts.filter((v) => v.reachability === next).map((v) => v.addr))
      for (const r of ["unknown", "public", "private"] as const) {
        rec.update(AutoNatMetrics.reachability.with(r), r === next ? 1 : 0)
        rec.update(AutoNatMetrics.addresses.with(r), verdicts.filter((v) => v.reachability === r).length)
      }
    })

    /** One round: each candidate (all, or those still unknown) at up to `serversPerAddr` servers. */
    const round = (all: boolean) =>
      Effect.gen(function*() {
        known = yield* candidates
        tracker.retain(new Set(known.map(keyOf)))
        const available = servers()
        const jobs: Array<readonly [PeerId.PeerId, Multiaddr.Multiaddr]> = []
        for (const addr of known) {
          const key = keyOf(addr)
          if (!all && tracker.verdict(key).reachability !== "unknown") continue
          const asked = tracker.servers(key)
          const fresh = available.filter((s) => !asked.has(s.toString()))
          const pick = all ? [...fresh, ...available.filter((s) => asked.has(s.toString()))] : fresh
          for (const s of pick.slice(0, serversPerAddr)) jobs.push([s, addr])
        }
        yield* Effect.forEach(jobs, ([server, addr]) =>
          check(server, addr).pipe(
            Effect.flatMap((r) =>
              Effect.map(Clock.currentTimeMillis, (now) => {
                if (r.outcome !== "dial_back_error") {
                  tracker.record(keyOf(addr), server.toString(), r.outcome === "public", now)
                }
              })
            ),
            Effect.ignore
          ), { concurrency: 4, discard: true })
        yield* publish
      })

    const rounds = yield* Semaphore.make(1)
    const checkNow = rounds.withPermits(1)(Effect.andThen(round(true), Effect.sync(addresses)))

    if (options.client !== false) {
      const startupDelay = Options.duration(options.startupDelay, defaults.startupDelay)
      const checkInterval = Options.duration(options.checkInterval, defaults.checkInterval)
      // triggers, heard from the start but acted on after startupDelay: a new server identified,
      // our addresses changed (sliding: a burst is one round)
      const triggers = yield* Queue.sliding<void>(1)
      yield* Effect.forkScoped(
        Effect.sleep(startupDelay).pipe(
          Effect.andThen(Effect.forever(Effect.andThen(Queue.take(triggers), rounds.withPermits(1)(round(false)))))
        )
      )
      if (Option.isSome(identify)) {
        const identified = yield* identify.value.subscribe
        yield* Effect.forkScoped(Stream.runForEach(
          Stream.filter(identified, (r) => r.protocols.includes(PROTOCOL)),
          () => Queue.offer(triggers, undefined)
        ))
      }
      yield* Effect.forkScoped(Stream.runForEach(
        Stream.filter(am.events, (e) => e._tag === "AddressesChanged"),
        () => Queue.offer(triggers, undefined)
      ))
      yield* Effect.forkScoped(
        Effect.sleep(startupDelay).pipe(
          Effect.andThen(Effect.repeat(Effect.ignore(checkNow), Schedule.spaced(checkInterval)))
        )
      )
    }

    const sections = yield* Effect.serviceOption(Status.StatusSections)
    if (Option.isSome(sections)) {
      yield* sections.value.register(
        "autonat",
        Effect.sync(() => ({
          reachability,
          addresses: addresses().map((a) => ({
            addr: keyOf(a.addr),
            reachability: a.reachability,
            successes: a.successes,
            failures: a.failures
          }))
        }))
      )
    }

    return AutoNat.of({
      reachability: () => reachability,
      addresses,
      check,
      checkNow,
      events: Stream.filter(
        am.events,
        (e): e is Extract<AddressEvent, { readonly _tag: "ReachabilityChanged" }> => e._tag === "ReachabilityChanged"
      )
    })
  })

/** AutoNAT on the node in context (Host, Registrar, Peerstore, AddressManager; Identify when present). */
export const layer = (options: AutoNatOptions = {}) => Layer.effect(AutoNat, make(options))
