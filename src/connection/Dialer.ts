/**
 * Dialer: turns "a connection to this peer (at these addresses)" into at most
 * one dial at a time per peer, without hammering peers that do not answer.
 *
 * No libp2p spec defines dialing policy; this follows go-libp2p's swarm
 * dialer (dial synchronisation, per-address backoff, the dial ranker) and
 * RFC 8305 (Happy Eyeballs v2) for address ordering:
 *
 * - **One in-flight dial per peer**: concurrent callers share it. When every
 *   caller waiting on a dial has been interrupted, the dial is cancelled.
 * - **Global concurrency limit**: each address attempt takes a slot
 *   (`maxParallelDials`); attempts beyond wait in a FIFO queue, so one peer
 *   with many addresses cannot starve the others.
 * - **Ranking** ({@link rank}): relay addresses last, faster transports first
 *   (QUIC/WebTransport/WebRTC, then TCP, then WebSocket), IPv6 and IPv4
 *   interleaved (RFC 8305 §4). Attempts start staggered (`stagger`, 250 ms, the
 *   RFC's Connection Attempt Delay; `privateStagger` between local addresses;
 *   `relayDelay` before the first relay) and the next one starts at once when
 *   every running attempt has failed. The first connection wins; the other
 *   attempts are interrupted and any connection they made is closed.
 * - **Per-address timeout** (`dialTimeout`): transport dial plus upgrade.
 * - **Backoff**: each failed address of a peer is skipped for a delay given by
 *   a `Schedule` (default: exponential from 1 s, doubling, jittered by
 *   ±20 %, capped at 5 minutes), stepped once per failure. A dial whose every
 *   address is backing off fails with `Backoff { until }`; `force` dials
 *   anyway. A successful connection to the peer forgets its failures; so does
 *   `backoffReset` of quiet after an address's backoff ended (a background
 *   fiber, running only while there are entries, prunes them).
 *
 * The dialer does not know transports or upgrades: it is given `connect`,
 * which dials one address inside a scope the dialer owns (closed by the
 * connection when it ends, by the dialer when the attempt fails or loses the
 * race, or with the dialer's own scope); no fiber waits on a live connection.
 *
 * @since 0.1.0
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, FiberSet, Schedule, Schema, Scope } from "effect"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Dns from "../transport/Dns.ts"
import * as Transport from "../transport/Transport.ts"
import type * as Connection from "./Connection.ts"
import { LimitExceeded } from "./Limits.ts"
import { UpgradeError } from "./Upgrader.ts"

/** Nothing to dial: no known addresses, or none left once `/dnsaddr` links were resolved. */
export class NoAddresses extends Schema.TaggedError<NoAddresses>()("NoAddresses", {
  message: Schema.String,
  /** The `/dnsaddr` resolutions that failed, leaving nothing to dial. */
  dns: Schema.optionalKey(Schema.Array(Dns.DnsError)),
  /** Peer routing's error, when it was asked for the peer's addresses and found none (`Host.useRouting`). */
  cause: Schema.optional(Schema.Defect())
}) {}

/** No transport handles the address(es). */
export class NoTransport extends Schema.TaggedError<NoTransport>()("NoTransport", {
  message: Schema.String
}) {}

/** The target is this node. */
export class SelfDial extends Schema.TaggedError<SelfDial>()("SelfDial", {}) {
  override readonly message = "cannot dial self"
}

/** The host is shutting down. */
export class HostClosed extends Schema.TaggedError<HostClosed>()("HostClosed", {}) {
  override readonly message = "host is shutting down"
}

/** Every caller waiting on the dial was interrupted, so the dial was cancelled. */
export class Aborted extends Schema.TaggedError<Aborted>()("Aborted", {}) {
  override readonly message = "the dial was cancelled"
}

/** The address did not give a connection (transport dial plus upgrade) within the dial timeout. */
export class DialTimeout extends Schema.TaggedError<DialTimeout>()("DialTimeout", {
  address: Schema.String,
  /** The timeout that ran out, in ms. */
  timeout: Schema.Number
}) {
  override readonly message = `${this.address}: no connection within ${Duration.format(Duration.millis(this.timeout))}`
}

/** Every address failed recently and is backing off. */
export class Backoff extends Schema.TaggedError<Backoff>()("Backoff", {
  /** Clock time (ms) when the first address may be dialed again. */
  until: Schema.Number
}) {
  override readonly message =
    `every address failed recently; the first may be dialed again at Clock time ${this.until} ms`
}

/**
 * Why a dial failed, short of several addresses failing. The lower layers'
 * errors are kept as they are: match on `TransportError` (its `reason`:
 * `Refused`, `Timeout`, `Unreachable` …), `UpgradeError` (its `reason` —
 * `PeerIdMismatch`, `Security` … — and its `cause`, e.g. the Noise
 * `SecurityError`) or `LimitExceeded` (its `scope` and `resource`).
 */
export const AttemptFailure = Schema.Union([
  Transport.TransportError,
  UpgradeError,
  LimitExceeded,
  DialTimeout,
  NoTransport,
  NoAddresses,
  SelfDial,
  HostClosed,
  Aborted,
  Backoff
])
export type AttemptFailure = typeof AttemptFailure.Type

/** One address's failure, inside `AllAddressesFailed`. */
export const AddressFailure = Schema.Struct({
  addr: Schema.String,
  reason: AttemptFailure
})
export type AddressFailure = typeof AddressFailure.Type

/** A short word for a failure: the lower error's own `reason` when it has one, else its tag. */
const kindOf = (reason: { readonly _tag: string; readonly reason?: unknown }): string =>
  typeof reason.reason === "string" ? reason.reason : reason._tag

/** One address's failure in a message (a transport error's message names the address already). */
const describe = (f: AddressFailure): string =>
  f.reason._tag === "TransportError" || f.reason._tag === "DialTimeout"
    ? `${kindOf(f.reason)}: ${f.reason.message}`
    : `${f.addr}: ${kindOf(f.reason)}: ${f.reason.message}`

/** Several addresses were tried and all failed. */
export class AllAddressesFailed extends Schema.TaggedError<AllAddressesFailed>()("AllAddressesFailed", {
  /** Every address tried and why it failed, in the order they were tried. */
  errors: Schema.Array(AddressFailure)
}) {
  override readonly message = this.errors.map(describe).join("; ")
}

/**
 * Why a dial failed: one of {@link AttemptFailure}, or {@link AllAddressesFailed}
 * with each address's. Match with `Effect.catchReason("DialError", "LimitExceeded", …)`
 * or on `error.reason._tag`.
 */
export const DialErrorReason = Schema.Union([AttemptFailure, AllAddressesFailed])
export type DialErrorReason = typeof DialErrorReason.Type

export class DialError extends Schema.TaggedError<DialError>()("DialError", {
  reason: DialErrorReason
}) {
  /** The reason's kind (a lower error's own reason, e.g. `Refused`, `PeerIdMismatch`) and its message. */
  override readonly message = `${kindOf(this.reason)}: ${this.reason.message}`
}

// ---------------------------------------------------------------------------
// ranking (pure)

export interface RankingOptions {
  /** Between two attempts when either address is public (default 250 ms, RFC 8305 §5). */
  readonly stagger?: Duration.Input
  /** Between two attempts on local addresses (loopback, private networks, memory, unix; default 30 ms). */
  readonly privateStagger?: Duration.Input
  /** Before the first relay address (default 500 ms). */
  readonly relayDelay?: Duration.Input
}

export interface RankedAddr {
  readonly addr: Multiaddr.Multiaddr
  /** When to start this attempt, in ms from the start of the dial. */
  readonly delay: number
}

const millis = (d: Duration.Input | undefined, fallback: number): number => {
  if (d === undefined) return fallback
  const r = Duration.fromInput(d)
  return r._tag === "Some" ? Duration.toMillis(r.value) : fallback
}

const has = Multiaddr.hasCode

const isRelay = (addr: Multiaddr.Multiaddr) => has(addr, Multiaddr.codes["p2p-circuit"])

/** 0: UDP-based (QUIC, WebTransport, WebRTC) and in-process; 1: TCP, unix; 2: WebSocket; 3: anything else. */
export const transportRank = (addr: Multiaddr.Multiaddr): number => {
  const c = Multiaddr.codes
  if (has(addr, c.ws) || has(addr, c.wss)) return 2
  if (
    has(addr, c["quic-v1"]) || has(addr, c.quic) || has(addr, c.webtransport) || has(addr, c["webrtc-direct"]) ||
    has(addr, c.memory)
  ) return 0
  if (has(addr, c.tcp) || has(addr, c.unix)) return 1
  return 3
}

/** 0: IPv6, 1: IPv4, 2: neither (DNS names, memory, unix). */
const family = (addr: Multiaddr.Multiaddr): number => {
  const first = Multiaddr.components(addr)[0]
  if (first === undefined) return 2
  if (first.code === Multiaddr.codes.ip6 || first.code === Multiaddr.codes.dns6) return 0
  if (first.code === Multiaddr.codes.ip4 || first.code === Multiaddr.codes.dns4) return 1
  return 2
}

const isLocal = (addr: Multiaddr.Multiaddr) =>
  Multiaddr.isPrivate(addr) || has(addr, Multiaddr.codes.memory) || has(addr, Multiaddr.codes.unix)

/**
 * The order and start times of a dial's attempts: non-relay before relay,
 * then by transport (fastest first), IPv6 and IPv4 interleaved within a
 * transport (IPv6 first), the given order otherwise. Duplicates are dropped.
 */
export const rank = (
  addrs: ReadonlyArray<Multiaddr.Multiaddr>,
  options: RankingOptions = {}
): ReadonlyArray<RankedAddr> => {
  const stagger = millis(options.stagger, 250)
  const privateStagger = millis(options.privateStagger, 30)
  const relayDelay = millis(options.relayDelay, 500)
  const seen = new Set<string>()
  const unique = addrs.filter((a) => {
    const s = Multiaddr.key(a)
    if (seen.has(s)) return false
    seen.add(s)
    return true
  })
  // groups keyed by (relay, transport rank)
  const groups = new Map<number, Array<Array<Multiaddr.Multiaddr>>>()
  for (const a of unique) {
    const g = (isRelay(a) ? 10 : 0) + transportRank(a)
    let byFamily = groups.get(g)
    if (byFamily === undefined) groups.set(g, byFamily = [[], [], []])
    byFamily[family(a)]!.push(a)
  }
  const ordered: Array<Multiaddr.Multiaddr> = []
  for (const g of Array.from(groups.keys()).sort((a, b) => a - b)) {
    const [v6, v4, other] = groups.get(g)!
    const n = Math.max(v6!.length, v4!.length, other!.length)
    for (let i = 0; i < n; i++) {
      for (const list of [v6!, v4!, other!]) {
        const a = list[i]
        if (a !== undefined) ordered.push(a)
      }
    }
  }
  const out: Array<RankedAddr> = []
  let t = 0
  for (let i = 0; i < ordered.length; i++) {
    const a = ordered[i]!
    if (i > 0) {
      const prev = ordered[i - 1]!
      if (isRelay(a) && !isRelay(prev)) t += relayDelay
      else t += isLocal(a) && isLocal(prev) ? privateStagger : stagger
    }
    out.push({ addr: a, delay: t })
  }
  return out
}

// ---------------------------------------------------------------------------
// the dialer

export interface DialerOptions {
  /** Address attempts running at once, over all peers (default 100). */
  readonly maxParallelDials?: number
  /** Deadline for one address: transport dial plus upgrade (default 15 s). */
  readonly dialTimeout?: Duration.Input
  /** Backoff after an address fails, stepped once per failure with the error as input. */
  readonly backoff?: Schedule.Schedule<unknown, DialError>
  /** Forget an address's failures once its backoff ended this long ago (default 10 minutes). */
  readonly backoffReset?: Duration.Input
  readonly ranking?: RankingOptions
}

/** Exponential from 1 s, doubling, capped at 5 minutes, each delay jittered to 80–120 %. */
export const defaultBackoff: Schedule.Schedule<unknown, DialError> = Schedule.min([
  Schedule.exponential("1 second", 2),
  Schedule.spaced("5 minutes")
]).pipe(Schedule.jittered)

export interface DialRequest {
  /** The peer, when known (the dial is then shared with other dials to it, and the remote is checked). */
  readonly peer?: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  /** Dial even addresses that are backing off. */
  readonly force?: boolean
}

/**
 * Dial one address. Runs inside `scope`, a child of the dialer's scope (and
 * the current one): the connection (and whatever the attempt acquired) lives
 * until that scope closes. The dialer closes it when the attempt fails or
 * loses the race; a winning connection should close it when it ends (the
 * Upgrader does, given it as `UpgradeOptions.scope`) — nothing waits for the
 * connection to end — else it is closed with the dialer's scope.
 */
export type Connect = (
  addr: Multiaddr.Multiaddr,
  peer: PeerId.PeerId | undefined,
  scope: Scope.Closeable
) => Effect.Effect<Connection.Connection, DialError, Scope.Scope>

export interface BackoffEntry {
  /** The peer id string, or "" for dials without a peer. */
  readonly peer: string
  readonly addr: string
  readonly failures: number
  /** Clock time (ms) until which the address is skipped. */
  readonly until: number
}

export interface Dialer {
  /** A new connection (the caller checks for existing ones); concurrent dials to one peer share it. */
  readonly dial: (request: DialRequest) => Effect.Effect<Connection.Connection, DialError>
  /** Dials in flight (one per peer). */
  readonly pending: () => number
  /** Address attempts holding a slot. */
  readonly active: () => number
  /** Address attempts waiting for a slot. */
  readonly queued: () => number
  readonly backoffs: () => ReadonlyArray<BackoffEntry>
  /** Forget the peer's failures. */
  readonly clearBackoff: (peer: PeerId.PeerId) => Effect.Effect<void>
}

interface BackoffState {
  readonly addr: Multiaddr.Multiaddr
  readonly step: (now: number, input: DialError) => Effect.Effect<readonly [unknown, Duration.Duration], unknown>
  failures: number
  until: number
  lastDelay: number
}

interface Inflight {
  readonly deferred: Deferred.Deferred<Connection.Connection, DialError>
  waiters: number
  fiber: Fiber.Fiber<void> | undefined
}

/** Failures that say something about the remote (and so start or extend its backoff). */
const backsOff = (reason: DialErrorReason): boolean =>
  reason._tag === "TransportError" || reason._tag === "DialTimeout" || reason._tag === "UpgradeError"

const aborted = () => new DialError({ reason: new Aborted() })

/** A dialer running `connect`, whose background fibers and connections live in the current scope. */
export const make = (connect: Connect, options: DialerOptions = {}): Effect.Effect<Dialer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const dialerScope = yield* Effect.scope
    const maxParallel = Math.max(1, Math.floor(options.maxParallelDials ?? 100))
    const dialTimeout = Duration.millis(millis(options.dialTimeout, 15_000))
    const backoffSchedule = options.backoff ?? defaultBackoff
    const resetMillis = millis(options.backoffReset, 10 * 60_000)
    const inflight = new Map<string, Inflight>()
    const backoff = new Map<string, Map<string, BackoffState>>()

    // -- global concurrency: a FIFO of waiting attempts ------------------------
    let active = 0
    const waiting: Array<Deferred.Deferred<void>> = []
    const releaseSlot = () => {
      const next = waiting.shift()
      if (next !== undefined) Deferred.doneUnsafe(next, Exit.void) // the slot passes on
      else active--
    }
    /** Hold a slot until the current scope closes. */
    const slot = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        if (active < maxParallel) active++
        else {
          const d = Deferred.makeUnsafe<void>()
          waiting.push(d)
          yield* restore(Deferred.await(d)).pipe(
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                const i = waiting.indexOf(d)
                if (i >= 0) waiting.splice(i, 1)
                else releaseSlot() // handed to us as we were interrupted: pass it on
              })
            )
          )
        }
        yield* Effect.addFinalizer(() => Effect.sync(releaseSlot))
      })
    )

    // -- backoff ----------------------------------------------------------------
    const peerKey = (peer: PeerId.PeerId | undefined) => (peer === undefined ? "" : PeerId.toString(peer))
    // an address's entry is under its Multiaddr.key (O(1); its string form would format it)
    const backoffUntil = (pk: string, addr: Multiaddr.Multiaddr, now: number): number | undefined => {
      const st = backoff.get(pk)?.get(Multiaddr.key(addr))
      return st !== undefined && st.until > now ? st.until : undefined
    }
    const recordFailure = (pk: string, addr: Multiaddr.Multiaddr, error: DialError) =>
      Effect.gen(function*() {
        if (!backsOff(error.reason)) return
        const now = yield* Clock.currentTimeMillis
        let byAddr = backoff.get(pk)
        if (byAddr === undefined) backoff.set(pk, byAddr = new Map())
        const key = Multiaddr.key(addr)
        let st = byAddr.get(key)
        if (st === undefined || now > st.until + resetMillis) {
          st = { addr, step: yield* Schedule.toStep(backoffSchedule), failures: 0, until: 0, lastDelay: 0 }
          byAddr.set(key, st)
        }
        const state = st
        // a schedule that is done keeps its last delay
        const delay = yield* state.step(now, error).pipe(
          Effect.map(([, d]) => Duration.toMillis(d)),
          Effect.catchCause(() => Effect.succeed(state.lastDelay))
        )
        state.failures++
        state.lastDelay = delay
        state.until = now + delay
        yield* startPruning
      })
    const clearPeer = (pk: string) => void backoff.delete(pk)
    /**
     * The pruning fiber: runs only while there are backoff entries (an idle
     * dialer holds no timer), waking when the oldest entry can be forgotten.
     */
    let pruning = false
    const pruneLoop = Effect.gen(function*() {
      while (backoff.size > 0) {
        let next = Number.POSITIVE_INFINITY
        for (const byAddr of backoff.values()) {
          for (const st of byAddr.values()) next = Math.min(next, st.until + resetMillis)
        }
        const now = yield* Clock.currentTimeMillis
        yield* Effect.sleep(Duration.millis(Math.max(0, next - now) + 1))
        const later = yield* Clock.currentTimeMillis
        for (const [pk, byAddr] of backoff) {
          for (const [addr, st] of byAddr) if (later > st.until + resetMillis) byAddr.delete(addr)
          if (byAddr.size === 0) backoff.delete(pk)
        }
      }
    }).pipe(Effect.ensuring(Effect.sync(() => void (pruning = false))))
    const startPruning = Effect.suspend(() => {
      if (pruning || backoff.size === 0) return Effect.void
      pruning = true
      return Effect.asVoid(Effect.forkIn(pruneLoop, dialerScope))
    })

    // -- one address ------------------------------------------------------------
    /** Dial `addr` holding a slot; on success the connection and the scope it lives in. */
    const attempt = (addr: Multiaddr.Multiaddr, peer: PeerId.PeerId | undefined) =>
      Effect.gen(function*() {
        yield* slot
        const scope = yield* Scope.fork(dialerScope)
        const conn = yield* connect(addr, peer, scope).pipe(
          Scope.provide(scope),
          Effect.timeoutOrElse({
            duration: dialTimeout,
            orElse: () =>
              Effect.fail(
                new DialError({
                  reason: new DialTimeout({
                    address: Multiaddr.toString(addr),
                    timeout: Duration.toMillis(dialTimeout)
                  })
                })
              )
          }),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
        )
        return { conn, scope }
      }).pipe(Effect.scoped)

    // -- one dial: staggered attempts, first connection wins --------------------
    const race = (peer: PeerId.PeerId | undefined, ranked: ReadonlyArray<RankedAddr>) =>
      Effect.gen(function*() {
        const pk = peerKey(peer)
        const outcome = yield* Deferred.make<Connection.Connection, DialError>()
        const fibers = yield* FiberSet.make<void, never>()
        const failures: Array<AddressFailure> = []
        let lastError: DialError | undefined
        let started = 0
        let finished = 0

        const fail = Effect.suspend(() => {
          if (ranked.length === 1 && lastError !== undefined) return Deferred.fail(outcome, lastError)
          return Deferred.fail(outcome, new DialError({ reason: new AllAddressesFailed({ errors: failures }) }))
        })
        const run = (addr: Multiaddr.Multiaddr): Effect.Effect<void> =>
          Effect.uninterruptibleMask((restore) =>
            restore(attempt(addr, peer)).pipe(
              Effect.matchEffect({
                // the winner's scope stays open: the connection closes it when it ends
                onSuccess: ({ conn, scope }) =>
                  Effect.flatMap(
                    Deferred.succeed(outcome, conn),
                    (won) => won ? Effect.sync(() => clearPeer(pk)) : Scope.close(scope, Exit.void)
                  ),
                onFailure: (error) =>
                  Effect.gen(function*() {
                    const r = error.reason
                    if (r._tag === "AllAddressesFailed") failures.push(...r.errors)
                    else failures.push({ addr: Multiaddr.toString(addr), reason: r })
                    lastError = error
                    finished++
                    yield* recordFailure(pk, addr, error)
                    if (finished === ranked.length) return yield* fail
                    // every running attempt failed: start the next one now
                    if (finished === started) yield* startNext
                  })
              })
            )
          )
        const startNext: Effect.Effect<void> = Effect.suspend(() => {
          const next = ranked[started]
          if (next === undefined) return Effect.void
          started++
          return Effect.asVoid(FiberSet.run(fibers, run(next.addr)))
        })

        yield* startNext
        if (ranked.length > 1) {
          yield* FiberSet.run(
            fibers,
            Effect.gen(function*() {
              for (let i = 1; i < ranked.length; i++) {
                yield* Effect.sleep(Duration.millis(ranked[i]!.delay - ranked[i - 1]!.delay))
                if (started <= i) yield* startNext
              }
            })
          )
        }
        return yield* Deferred.await(outcome)
      }).pipe(Effect.scoped) // the losers are interrupted here

    const run = (request: DialRequest) =>
      Effect.gen(function*() {
        if (request.addrs.length === 0) {
          return yield* new DialError({ reason: new NoAddresses({ message: "no addresses to dial" }) })
        }
        const pk = peerKey(request.peer)
        let addrs = request.addrs
        if (request.force !== true) {
          const now = yield* Clock.currentTimeMillis
          let until = Number.POSITIVE_INFINITY
          addrs = addrs.filter((a) => {
            const u = backoffUntil(pk, a, now)
            if (u !== undefined) until = Math.min(until, u)
            return u === undefined
          })
          if (addrs.length === 0) {
            return yield* new DialError({ reason: new Backoff({ until }) })
          }
        }
        return yield* race(request.peer, rank(addrs, options.ranking))
      })

    const dial = (request: DialRequest): Effect.Effect<Connection.Connection, DialError> =>
      Effect.gen(function*() {
        const key = request.peer !== undefined
          ? PeerId.toString(request.peer)
          : "addrs:" + request.addrs.map(Multiaddr.toString).join(",")
        let entry = inflight.get(key)
        if (entry === undefined) {
          const e: Inflight = {
            deferred: yield* Deferred.make<Connection.Connection, DialError>(),
            waiters: 0,
            fiber: undefined
          }
          inflight.set(key, e)
          // the entry goes before the outcome is published: a caller that
          // dials again as soon as it has the outcome starts a new dial
          const forget = Effect.sync(() => {
            if (inflight.get(key) === e) inflight.delete(key)
          })
          e.fiber = yield* Effect.forkIn(
            run(request).pipe(
              Effect.exit,
              Effect.flatMap((exit) => Effect.andThen(forget, Deferred.done(e.deferred, exit))),
              Effect.onInterrupt(() => Effect.andThen(forget, Deferred.fail(e.deferred, aborted()))),
              Effect.asVoid
            ),
            dialerScope
          )
          entry = e
        }
        const e = entry
        e.waiters++
        return yield* Deferred.await(e.deferred).pipe(
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              e.waiters--
              if (e.waiters > 0 || e.fiber === undefined) return Effect.void
              // nobody wants it any more: cancel the dial
              if (inflight.get(key) === e) inflight.delete(key)
              return Fiber.interrupt(e.fiber)
            })
          )
        )
      })

    return {
      dial,
      pending: () => inflight.size,
      active: () => active,
      queued: () => waiting.length,
      backoffs: () => {
        const out: Array<BackoffEntry> = []
        for (const [peer, byAddr] of backoff) {
          for (const st of byAddr.values()) {
            out.push({ peer, addr: Multiaddr.toString(st.addr), failures: st.failures, until: st.until })
          }
        }
        return out
      },
      clearBackoff: (peer) => Effect.sync(() => clearPeer(PeerId.toString(peer)))
    }
  })
