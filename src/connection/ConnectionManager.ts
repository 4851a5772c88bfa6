/**
 * ConnectionManager: keeps the number of connections bounded and, when it has
 * to close some, closes the ones that matter least.
 *
 * No libp2p spec defines connection management; this follows go-libp2p's
 * `connmgr` model (watermarks, grace period, tags, decaying tags, protection)
 * and adds js-libp2p's hard cap, counted the way docs/ARCHITECTURE.md §8 says
 * (connections still handshaking count against it):
 *
 * - **Hard cap** (`maxConnections`): {@link ConnectionManager.reserve} hands out
 *   a slot per connection, from the moment an inbound one is accepted (before
 *   the security handshake) or an outbound one is dialed, until it closes.
 *   Beyond the cap a connection is refused ({@link LimitExceeded}, scope
 *   `system`, resource `connections`) unless its address is on the allow list
 *   or (outbound) its peer is protected.
 * - **Watermarks**: when the number of open connections passes `highWater`, a
 *   trimming fiber closes the lowest-valued ones until `lowWater` remain.
 *   Connections younger than `gracePeriod` and connections of protected peers
 *   are never trimmed; if they keep the count above `highWater`, the fiber
 *   wakes again when the oldest of them leaves its grace period (and when a
 *   peer loses its last protection). Trims are at least `silencePeriod` apart.
 * - **Value**: a peer's value is the sum of its tags (`tagPeer`, `upsertTag`);
 *   decaying tags (`decayingTag`) lose value on a Schedule, in a fiber of
 *   their own, and disappear at zero. Tags outlive connections; they belong
 *   to whoever set them.
 * - **Protection**: `protect(peer, tag)` keeps every connection of the peer
 *   from being trimmed until the last protecting tag is removed.
 * - **Events**: each trimmed connection and each refused one is streamed on
 *   `events` (and `subscribe`), with the reason; a subscriber more than
 *   {@link EVENTS_BUFFER} events behind loses the oldest (sliding).
 *
 * All timing reads `Clock`, so the manager runs deterministically under
 * `TestClock`.
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Duration,
  Effect,
  FiberHandle,
  FiberSet,
  Layer,
  PubSub,
  Queue,
  Schedule,
  Schema,
  type Scope,
  Stream
} from "effect"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Metrics from "../internal/metrics.ts"
import { duration } from "../internal/options.ts"
import * as Release from "../internal/release.ts"
import type * as Connection from "./Connection.ts"
import { inNetwork, type Network, network } from "./Fairness.ts"
import * as ConnectionMetrics from "./metrics.ts"
import { LimitExceeded } from "./ResourceManager.ts"

export { LimitExceeded }

export class ConnectionManagerError extends Schema.TaggedError<ConnectionManagerError>()("ConnectionManagerError", {
  reason: Schema.Literals(["DuplicateDecayingTag"]),
  message: Schema.String
}) {}

export interface ConnectionManagerOptions {
  /** Hard cap on connections, handshaking ones included (default 300). */
  readonly maxConnections?: number
  /** Trimming closes connections down to this many (default 160, at most `highWater`). */
  readonly lowWater?: number
  /** Trimming starts when more than this many connections are open (default 192, at most `maxConnections`). */
  readonly highWater?: number
  /** New connections are not trimmed for this long (default 1 minute). */
  readonly gracePeriod?: Duration.Input
  /** Least time between two trims (default 1 second). */
  readonly silencePeriod?: Duration.Input
  /**
   * Remote addresses exempt from `maxConnections`: address prefixes such as
   * `/ip4/10.0.0.1`, or networks `/ip4/10.0.0.0/ipcidr/8`, `/ip6/fd00::/ipcidr/8`.
   */
  readonly allow?: ReadonlyArray<Multiaddr.Multiaddr>
}

export interface ResolvedOptions {
  readonly maxConnections: number
  readonly lowWater: number
  readonly highWater: number
  readonly gracePeriod: Duration.Duration
  readonly silencePeriod: Duration.Duration
  readonly allow: ReadonlyArray<Multiaddr.Multiaddr>
}

export const defaults = {
  maxConnections: 300,
  lowWater: 160,
  highWater: 192,
  gracePeriod: Duration.minutes(1),
  silencePeriod: Duration.seconds(1)
} as const

const count = (n: number | undefined, fallback: number): number =>
  n === undefined || !Number.isFinite(n) ? fallback : Math.max(0, Math.floor(n))

/**
 * Defaults filled in and made consistent: `lowWater ≤ highWater ≤
 * maxConnections` (a watermark above the cap is lowered to it).
 */
export const resolve = (options: ConnectionManagerOptions = {}): ResolvedOptions => {
  const maxConnections = count(options.maxConnections, defaults.maxConnections)
  const highWater = Math.min(count(options.highWater, defaults.highWater), maxConnections)
  const lowWater = Math.min(count(options.lowWater, defaults.lowWater), highWater)
  return {
    maxConnections,
    highWater,
    lowWater,
    gracePeriod: duration(options.gracePeriod, defaults.gracePeriod),
    silencePeriod: duration(options.silencePeriod, defaults.silencePeriod),
    allow: options.allow ?? []
  }
}

// ---------------------------------------------------------------------------
// events

/**
 * Events buffered for a subscriber that lags (sliding: beyond it the oldest
 * are dropped, so a flood of refusals cannot grow memory).
 */
export const EVENTS_BUFFER = 4096

export type TrimReason =
  | "HighWatermark" // more than highWater connections were open
  | "Manual" // `trim` was called

export type ConnectionManagerEvent =
  | {
    readonly _tag: "PeerTrimmed"
    readonly peerId: PeerId.PeerId
    readonly connection: Connection.Connection
    /** The peer's value when it was chosen. */
    readonly value: number
    readonly reason: TrimReason
    /** Connections open when the trim started. */
    readonly before: number
    /** The trim's target (the low watermark). */
    readonly target: number
  }
  | {
    readonly _tag: "ConnectionRefused"
    readonly direction: Connection.Direction
    readonly remoteAddr: Multiaddr.Multiaddr
    readonly peerId: PeerId.PeerId | undefined
    readonly reason: "MaxConnections"
    readonly limit: number
  }

// ---------------------------------------------------------------------------
// decaying tags

/** How a decaying tag's value changes at each tick; a result ≤ 0 removes the tag. */
export type DecayFn = (value: number) => number
/** How a bump changes a decaying tag's value. */
export type BumpFn = (value: number, delta: number) => number

/** Ready-made decay functions (go-libp2p's `DecayFixed`, `DecayLinear`, `DecayNone`). */
export const Decay = {
  /** Subtract `amount` each tick. */
  fixed: (amount: number): DecayFn => (v) => v - amount,
  /** Multiply by `coefficient` (0..1) each tick, rounding down. */
  linear: (coefficient: number): DecayFn => (v) => Math.floor(v * coefficient),
  /** Never decay. */
  none: ((v) => v) as DecayFn
} as const

/** Ready-made bump functions (go-libp2p's `BumpSumUnbounded`, `BumpSumBounded`, `BumpOverwrite`). */
export const Bump = {
  sum: ((v, d) => v + d) as BumpFn,
  sumBounded: (min: number, max: number): BumpFn => (v, d) => Math.min(max, Math.max(min, v + d)),
  overwrite: ((_v, d) => d) as BumpFn
} as const

export interface DecayingTagOptions {
  /** Time between decay ticks (used when `schedule` is absent). */
  readonly interval: Duration.Input
  /** When to tick instead of every `interval`. */
  readonly schedule?: Schedule.Schedule<unknown, unknown>
  readonly decay: DecayFn
  /** Default `Bump.sum`. */
  readonly bump?: BumpFn
}

export interface DecayingTag {
  readonly name: string
  /** Apply the tag's bump function to the peer's value (starting from 0). */
  readonly bump: (peer: PeerId.PeerId, delta: number) => Effect.Effect<void>
  readonly remove: (peer: PeerId.PeerId) => Effect.Effect<void>
  readonly value: (peer: PeerId.PeerId) => number | undefined
}

// ---------------------------------------------------------------------------
// trimming policy (pure)

/** What the trimming policy sees of a connection. */
export interface Candidate {
  readonly id: string
  readonly peer: string
  readonly openedAt: number
  readonly streams: number
}

export interface TrimParams {
  /** Connections to keep at most. */
  readonly target: number
  readonly now: number
  readonly gracePeriodMillis: number
  readonly value: (peer: string) => number
  readonly isProtected: (peer: string) => boolean
}

/**
 * The connections to close so that at most `target` remain: never a protected
 * peer's, never one younger than the grace period; the lowest-valued first,
 * then those with fewer streams, then the newest.
 */
export const selectTrim = <C extends Candidate>(conns: ReadonlyArray<C>, params: TrimParams): ReadonlyArray<C> => {
  const excess = conns.length - params.target
  if (excess <= 0) return []
  const candidates = conns
    .filter((c) => !params.isProtected(c.peer) && params.now - c.openedAt >= params.gracePeriodMillis)
    .map((c) => ({ c, value: params.value(c.peer) }))
  candidates.sort((a, b) =>
    a.value - b.value ||
    a.c.streams - b.c.streams ||
    b.c.openedAt - a.c.openedAt ||
    (a.c.id < b.c.id ? -1 : a.c.id > b.c.id ? 1 : 0)
  )
  return candidates.slice(0, excess).map((x) => x.c)
}

// ---------------------------------------------------------------------------
// service

/** Stops counting a connection for trimming when its scope closes. */
class Untrack implements Release.Releasable {
  readonly tracked: Set<Connection.Connection>
  readonly conn: Connection.Connection
  constructor(tracked: Set<Connection.Connection>, conn: Connection.Connection) {
    this.tracked = tracked
    this.conn = conn
  }
  release(): void {
    this.tracked.delete(this.conn)
  }
}

/**
 * A change to a peer's tags or protection made through `tagPeer`, `untagPeer`,
 * `upsertTag`, `protect` or `unprotect` (decaying tags are not reported: they
 * change on every tick and mean nothing after a restart).
 */
export type ConnectionManagerChange =
  | {
    readonly _tag: "Tag"
    readonly peerId: PeerId.PeerId
    readonly tag: string
    /** `undefined`: the tag was removed. */
    readonly value: number | undefined
  }
  | {
    readonly _tag: "Protect" | "Unprotect"
    readonly peerId: PeerId.PeerId
    readonly tag: string
  }

/** Called, in order, after each {@link ConnectionManagerChange}; the change waits for it. */
export type ChangeListener = (change: ConnectionManagerChange) => Effect.Effect<void>

export interface ConnectionManagerStats {
  /** Connections tracked (open and not closing). */
  readonly open: number
  /** Slots held: handshaking connections plus open ones. */
  readonly slots: number
  /** Peers with at least one tag. */
  readonly taggedPeers: number
  readonly protectedPeers: number
}

export class ConnectionManager extends Context.Service<ConnectionManager, {
  readonly options: ResolvedOptions
  /**
   * A connection slot until the current scope closes; refused beyond
   * `maxConnections` unless `remoteAddr` is allow-listed or `peer` is protected.
   */
  readonly reserve: (
    direction: Connection.Direction,
    remoteAddr: Multiaddr.Multiaddr,
    peer?: PeerId.PeerId
  ) => Effect.Effect<void, LimitExceeded, Scope.Scope>
  /** Count `connection` for trimming until the current scope closes. */
  readonly track: (connection: Connection.Connection) => Effect.Effect<void, never, Scope.Scope>
  readonly tagPeer: (peer: PeerId.PeerId, tag: string, value: number) => Effect.Effect<void>
  readonly untagPeer: (peer: PeerId.PeerId, tag: string) => Effect.Effect<void>
  /** Set a tag to `f(current value, or 0)`. */
  readonly upsertTag: (peer: PeerId.PeerId, tag: string, f: (value: number) => number) => Effect.Effect<void>
  readonly tags: (peer: PeerId.PeerId) => ReadonlyMap<string, number>
  /** The sum of the peer's tags. */
  readonly value: (peer: PeerId.PeerId) => number
  readonly protect: (peer: PeerId.PeerId, tag: string) => Effect.Effect<void>
  /** Remove one protection; true while the peer is still protected by another tag. */
  readonly unprotect: (peer: PeerId.PeerId, tag: string) => Effect.Effect<boolean>
  readonly isProtected: (peer: PeerId.PeerId, tag?: string) => boolean
  /** A tag whose value decays on a schedule, for the lifetime of the current scope. */
  readonly decayingTag: (
    name: string,
    options: DecayingTagOptions
  ) => Effect.Effect<DecayingTag, ConnectionManagerError, Scope.Scope>
  readonly isAllowed: (remoteAddr: Multiaddr.Multiaddr) => boolean
  /**
   * Call `listener` after each tag or protection change while the current
   * scope lasts (e.g. the Host keeps them in the Peerstore this way).
   */
  readonly onChange: (listener: ChangeListener) => Effect.Effect<void, never, Scope.Scope>
  /** Trim now, down to the low watermark, as the trimming fiber does; returns the connections closed. */
  readonly trim: Effect.Effect<ReadonlyArray<Connection.Connection>>
  readonly stats: () => ConnectionManagerStats
  /** Trims and refusals from the moment the stream is run; buffered per subscriber up to {@link EVENTS_BUFFER} (sliding). */
  readonly events: Stream.Stream<ConnectionManagerEvent>
  /** Subscribe now: the stream it returns misses nothing from then on, while the current scope lasts. */
  readonly subscribe: Effect.Effect<Stream.Stream<ConnectionManagerEvent>, never, Scope.Scope>
}>()("effect-libp2p/ConnectionManager") {}

/** A connection manager with `options` over the defaults; its trimming fiber lives in the layer's scope. */
export const layer = (options: ConnectionManagerOptions = {}): Layer.Layer<ConnectionManager> =>
  Layer.effect(ConnectionManager, make(options))

export const make = (options: ConnectionManagerOptions = {}) =>
  Effect.gen(function*() {
    const config = resolve(options)
    const graceMillis = Duration.toMillis(config.gracePeriod)
    const silenceMillis = Duration.toMillis(config.silencePeriod)
    const allow = config.allow.map(network).filter((n): n is Network => n !== undefined)
    const events = yield* PubSub.sliding<ConnectionManagerEvent>(EVENTS_BUFFER)
    const metrics = yield* Metrics.recorder
    const tracked = new Set<Connection.Connection>()
    const tagsByPeer = new Map<string, Map<string, number>>()
    const protections = new Map<string, Set<string>>()
    const decaying = new Set<string>()
    let slots = 0
    let listeners: ReadonlyArray<ChangeListener> = []
    const notify = (change: ConnectionManagerChange) => Effect.forEach(listeners, (l) => l(change), { discard: true })
    const onChange = (listener: ChangeListener) =>
      Effect.asVoid(Release.acquire(() => {
        listeners = Release.append(listeners, listener)
        return { release: () => void (listeners = listeners.filter((l) => l !== listener)) }
      }))

    const key = (p: PeerId.PeerId) => PeerId.toString(p)
    const valueOf = (k: string): number => {
      const t = tagsByPeer.get(k)
      if (t === undefined) return 0
      let sum = 0
      for (const v of t.values()) sum += v
      return sum
    }
    const protectedKey = (k: string): boolean => (protections.get(k)?.size ?? 0) > 0
    const setTag = (k: string, tag: string, value: number | undefined) => {
      let t = tagsByPeer.get(k)
      if (value === undefined) {
        if (t === undefined) return
        t.delete(tag)
        if (t.size === 0) tagsByPeer.delete(k)
        return
      }
      if (t === undefined) tagsByPeer.set(k, t = new Map())
      t.set(tag, value)
    }

    const isAllowed = (addr: Multiaddr.Multiaddr): boolean => {
      if (allow.length === 0) return false
      const ip = Multiaddr.components(addr)[0]
      if (ip?.bytes === undefined || (ip.code !== Multiaddr.codes.ip4 && ip.code !== Multiaddr.codes.ip6)) return false
      return allow.some((n) => inNetwork(ip.bytes!, n))
    }

    // -- trimming ------------------------------------------------------------

    const open = () => Array.from(tracked).filter((c) => !c.isClosed())
    const closers = yield* FiberSet.make<void, never>()
    const wake = yield* Queue.sliding<void>(1)
    const timer = yield* FiberHandle.make<void, never>()
    let lastTrim = Number.NEGATIVE_INFINITY

    const trimTo = (reason: TrimReason) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const conns = open()
        const candidates = conns.map((c) => ({
          id: c.id,
          peer: key(c.remotePeer),
          openedAt: c.openedAt,
          streams: c.streamCount(),
          conn: c
        }))
        const chosen = selectTrim(candidates, {
          target: config.lowWater,
          now,
          gracePeriodMillis: graceMillis,
          value: valueOf,
          isProtected: protectedKey
        })
        lastTrim = now
        for (const c of chosen) {
          metrics.update(ConnectionMetrics.trims.with(reason), 1)
          yield* PubSub.publish(events, {
            _tag: "PeerTrimmed",
            peerId: c.conn.remotePeer,
            connection: c.conn,
            value: valueOf(c.peer),
            reason,
            before: conns.length,
            target: config.lowWater
          })
          // closing waits for the muxer's GoAway; it must not hold up the trimmer
          yield* FiberSet.run(closers, c.conn.closeWith?.("trimmed") ?? c.conn.close)
        }
        if (chosen.length > 0) {
          yield* Effect.logDebug(
            `connection manager: trimmed ${chosen.length} of ${conns.length} connections (${reason})`
          )
        }
        return chosen.map((c) => c.conn)
      })

    /** When trimming was held up by young connections, wake up as the oldest of them comes of age. */
    const rearm = Effect.gen(function*() {
      const conns = open()
      if (conns.length <= config.highWater) return yield* FiberHandle.clear(timer)
      const now = yield* Clock.currentTimeMillis
      let next = Number.POSITIVE_INFINITY
      for (const c of conns) {
        const ends = c.openedAt + graceMillis
        if (ends > now && !protectedKey(key(c.remotePeer))) next = Math.min(next, ends)
      }
      if (next === Number.POSITIVE_INFINITY) return yield* FiberHandle.clear(timer)
      yield* FiberHandle.run(
        timer,
        Effect.andThen(Effect.sleep(Duration.millis(next - now)), Queue.offer(wake, undefined))
      )
    })

    const trimmer = Effect.gen(function*() {
      while (true) {
        yield* Queue.take(wake)
        const now = yield* Clock.currentTimeMillis
        const quiet = lastTrim + silenceMillis - now
        if (quiet > 0) yield* Effect.sleep(Duration.millis(quiet))
        if (open().length > config.highWater) yield* trimTo("HighWatermark")
        yield* rearm
      }
    })
    yield* Effect.forkScoped(trimmer)

    const track = (conn: Connection.Connection) =>
      Effect.flatMap(
        Release.acquire(() => {
          tracked.add(conn)
          return new Untrack(tracked, conn)
        }),
        () =>
          tracked.size > config.highWater && open().length > config.highWater
            ? Queue.offer(wake, undefined)
            : Effect.void
      )

    /** Gives a slot back: one object per manager (added once per slot taken). */
    const slotRelease: Release.Releasable = { release: () => void slots-- }

    const reserve = (direction: Connection.Direction, remoteAddr: Multiaddr.Multiaddr, peer?: PeerId.PeerId) =>
      Effect.suspend(() => {
        if (
          slots >= config.maxConnections && !isAllowed(remoteAddr) && !(peer !== undefined && protectedKey(key(peer)))
        ) {
          metrics.update(ConnectionMetrics.refused.with(direction), 1)
          return PubSub.publish(events, {
            _tag: "ConnectionRefused",
            direction,
            remoteAddr,
            peerId: peer,
            reason: "MaxConnections",
            limit: config.maxConnections
          }).pipe(Effect.andThen(Effect.fail(
            new LimitExceeded({
              scope: "system",
              resource: "connections",
              limit: config.maxConnections,
              message: `maxConnections (${config.maxConnections}) reached`
            })
          )))
        }
        return Effect.asVoid(Release.acquire(() => {
          slots++
          return slotRelease
        }))
      })

    // -- decaying tags --------------------------------------------------------

    const decayingTag = (name: string, opts: DecayingTagOptions) =>
      Effect.gen(function*() {
        if (decaying.has(name)) {
          return yield* new ConnectionManagerError({
            reason: "DuplicateDecayingTag",
            message: `a decaying tag named ${name} exists`
          })
        }
        decaying.add(name)
        const bumpFn = opts.bump ?? Bump.sum
        const holders = new Set<string>()
        const tick = Effect.sync(() => {
          for (const k of holders) {
            const current = tagsByPeer.get(k)?.get(name)
            if (current === undefined) {
              holders.delete(k)
              continue
            }
            const next = opts.decay(current)
            if (next <= 0) {
              setTag(k, name, undefined)
              holders.delete(k)
            } else setTag(k, name, next)
          }
        })
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const k of holders) setTag(k, name, undefined)
            holders.clear()
            decaying.delete(name)
          })
        )
        yield* Effect.forkScoped(Effect.schedule(tick, opts.schedule ?? Schedule.spaced(opts.interval)))
        const tag: DecayingTag = {
          name,
          bump: (peer, delta) =>
            Effect.sync(() => {
              const k = key(peer)
              const next = bumpFn(tagsByPeer.get(k)?.get(name) ?? 0, delta)
              if (next <= 0) {
                setTag(k, name, undefined)
                holders.delete(k)
              } else {
                setTag(k, name, next)
                holders.add(k)
              }
            }),
          remove: (peer) =>
            Effect.sync(() => {
              const k = key(peer)
              setTag(k, name, undefined)
              holders.delete(k)
            }),
          value: (peer) => tagsByPeer.get(key(peer))?.get(name)
        }
        return tag
      })

    return ConnectionManager.of({
      options: config,
      reserve,
      track,
      tagPeer: (peer, tag, value) =>
        Effect.andThen(
          Effect.sync(() => setTag(key(peer), tag, value)),
          notify({ _tag: "Tag", peerId: peer, tag, value })
        ),
      untagPeer: (peer, tag) =>
        Effect.andThen(
          Effect.sync(() => setTag(key(peer), tag, undefined)),
          notify({ _tag: "Tag", peerId: peer, tag, value: undefined })
        ),
      upsertTag: (peer, tag, f) =>
        Effect.flatMap(
          Effect.sync(() => {
            const k = key(peer)
            const value = f(tagsByPeer.get(k)?.get(tag) ?? 0)
            setTag(k, tag, value)
            return value
          }),
          (value) => notify({ _tag: "Tag", peerId: peer, tag, value })
        ),
      tags: (peer) => new Map(tagsByPeer.get(key(peer)) ?? []),
      value: (peer) => valueOf(key(peer)),
      protect: (peer, tag) =>
        Effect.andThen(
          Effect.sync(() => {
            const k = key(peer)
            let s = protections.get(k)
            if (s === undefined) protections.set(k, s = new Set())
            s.add(tag)
          }),
          notify({ _tag: "Protect", peerId: peer, tag })
        ),
      unprotect: (peer, tag) =>
        Effect.gen(function*() {
          const k = key(peer)
          const s = protections.get(k)
          if (s === undefined) return false
          s.delete(tag)
          yield* notify({ _tag: "Unprotect", peerId: peer, tag })
          if (s.size > 0) return true
          protections.delete(k)
          // the peer's connections may be what kept the count above the high watermark
          if (tracked.size > config.highWater) yield* Queue.offer(wake, undefined)
          return false
        }),
      isProtected: (peer, tag) => {
        const s = protections.get(key(peer))
        return s !== undefined && (tag === undefined ? s.size > 0 : s.has(tag))
      },
      decayingTag,
      isAllowed,
      onChange,
      trim: Effect.tap(trimTo("Manual"), () => rearm),
      stats: () => ({
        open: open().length,
        slots,
        taggedPeers: tagsByPeer.size,
        protectedPeers: protections.size
      }),
      events: Stream.fromPubSub(events),
      subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription)
    })
  })
