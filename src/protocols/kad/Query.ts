/**
 * Kad-DHT's iterative lookup (kad-dht spec §Peer routing): a pure state
 * machine (`make`, `next`, `succeed`, `fail`, `isDone`) and the small Effect
 * loop that drives it (`run`).
 *
 * Candidates are kept sorted by XOR distance to the target. At most `alpha`
 * requests are in flight; the next ones go to the closest candidates not yet
 * asked, among the `k` closest candidates that have not failed. The lookup is
 * done when those `k` closest have all answered (or there is nobody left to
 * ask), or when a request's answer says to stop (a value lookup that has its
 * quorum). A failed peer is dropped from the count, so its place goes to the
 * next closest. We are never a candidate, and the candidate list is bounded
 * (`maxCandidates`: the farthest not yet asked are dropped).
 *
 * Disjoint paths (S/Kademlia, which the spec's §Overview names as a source; rust-libp2p's
 * `disjoint_query_paths`, go-libp2p-kad-dht's former `DisjointPaths`):
 * `runDisjoint` splits the seeds round robin over d lookups that share one set of asked peers.
 * A path that reaches a peer another path has asked skips it (it counts as failed there), so no
 * peer is asked twice and a few bad peers cannot steer every path; the result is the k closest
 * that answered on any path.
 *
 * Anchors: rust protocols/kad/src/query/peers/closest.rs, go-libp2p-kad-dht query.go.
 *
 * @since 0.2.0
 */
import { Deferred, Duration, Effect, FiberSet, Option } from "effect"
import * as PeerId from "../../core/PeerId.ts"
import { fail, type KadError, PeerTimeout, QueryTimeout } from "./errors.ts"
import type { PeerInfo } from "./messages.ts"
import * as RoutingTable from "./RoutingTable.ts"

export type CandidateState = "waiting" | "inflight" | "succeeded" | "failed"

export interface Candidate {
  readonly peer: PeerInfo
  readonly key: RoutingTable.KadKey
  state: CandidateState
  /** Hops from us: 1 for a seed, one more than the peer that named it (the fewest, when several did). */
  hop: number
}

export interface QueryState {
  readonly target: RoutingTable.KadKey
  /** `PeerId.mapKey` of us (never a candidate) */
  readonly self: string
  readonly k: number
  readonly alpha: number
  readonly maxCandidates: number
  /** Closest first. */
  readonly candidates: Array<Candidate>
  /** by `PeerId.mapKey` */
  readonly byId: Map<string, Candidate>
  /** Peers asked by any path of a disjoint lookup (by `PeerId.mapKey`); shared by its paths. */
  readonly taken: Set<string> | undefined
  inflight: number
  stopped: boolean
  /** Requests sent (candidates marked in flight). */
  requests: number
}

export interface QueryOptions {
  readonly k: number
  readonly alpha: number
  readonly maxCandidates?: number
  /** The asked-peers set shared by the paths of a disjoint lookup. */
  readonly taken?: Set<string>
}

const insert = (state: QueryState, peer: PeerInfo, hop: number): void => {
  const id = PeerId.mapKey(peer.peerId)
  if (id === state.self) return
  const known = state.byId.get(id)
  if (known !== undefined) {
    if (hop < known.hop) known.hop = hop
    return
  }
  const c: Candidate = { peer, key: RoutingTable.peerKey(peer.peerId), state: "waiting", hop }
  // binary search for the insertion point
  let lo = 0
  let hi = state.candidates.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (RoutingTable.compareDistance(state.target, state.candidates[mid]!.key, c.key) < 0) lo = mid + 1
    else hi = mid
  }
  state.candidates.splice(lo, 0, c)
  state.byId.set(id, c)
  if (state.candidates.length > state.maxCandidates) {
    for (let i = state.candidates.length - 1; i >= 0; i--) {
      const last = state.candidates[i]!
      if (last.state === "waiting") {
        state.candidates.splice(i, 1)
        state.byId.delete(PeerId.mapKey(last.peer.peerId))
        break
      }
    }
  }
}

export const make = (
  target: RoutingTable.KadKey,
  self: PeerId.PeerId,
  seeds: ReadonlyArray<PeerInfo>,
  options: QueryOptions
): QueryState => {
  const state: QueryState = {
    target,
    self: PeerId.mapKey(self),
    k: options.k,
    alpha: options.alpha,
    maxCandidates: options.maxCandidates ?? Math.max(options.k * 16, 256),
    candidates: [],
    byId: new Map(),
    taken: options.taken,
    inflight: 0,
    stopped: false,
    requests: 0
  }
  for (const s of seeds) insert(state, s, 1)
  return state
}

/** The k closest candidates that have not failed. */
const closestLive = (state: QueryState): Array<Candidate> => {
  const out: Array<Candidate> = []
  for (const c of state.candidates) {
    if (c.state === "failed") continue
    out.push(c)
    if (out.length === state.k) break
  }
  return out
}

/** Whether the lookup has finished (spec §Peer routing, step 1). */
export const isDone = (state: QueryState): boolean =>
  state.stopped || closestLive(state).every((c) => c.state === "succeeded")

/** Candidates to ask now (marked in flight), keeping at most alpha in flight. */
export const next = (state: QueryState): ReadonlyArray<Candidate> => {
  if (isDone(state)) return []
  const out: Array<Candidate> = []
  let again = true
  while (again) {
    again = false
    for (const c of closestLive(state)) {
      if (state.inflight >= state.alpha) break
      if (c.state !== "waiting") continue
      if (state.taken !== undefined) {
        const id = PeerId.mapKey(c.peer.peerId)
        if (state.taken.has(id)) {
          // another path asked it: not ours to ask or to count; the window moves past it
          c.state = "failed"
          again = true
          break
        }
        state.taken.add(id)
      }
      c.state = "inflight"
      state.inflight++
      state.requests++
      out.push(c)
    }
  }
  return out
}

/** A candidate answered with closer peers. */
export const succeed = (state: QueryState, peer: PeerId.PeerId, closer: ReadonlyArray<PeerInfo>): void => {
  const c = state.byId.get(PeerId.mapKey(peer))
  if (c === undefined || c.state !== "inflight") return
  c.state = "succeeded"
  state.inflight--
  for (const p of closer) insert(state, p, c.hop + 1)
}

/** A candidate failed or timed out. */
export const failed = (state: QueryState, peer: PeerId.PeerId): void => {
  const c = state.byId.get(PeerId.mapKey(peer))
  if (c === undefined || c.state !== "inflight") return
  c.state = "failed"
  state.inflight--
}

const answered = (state: QueryState): ReadonlyArray<Candidate> =>
  state.candidates.filter((c) => c.state === "succeeded").slice(0, state.k)

/** The k closest peers that answered, closest first. */
export const result = (state: QueryState): ReadonlyArray<PeerInfo> => answered(state).map((c) => c.peer)

/**
 * The lookup's depth: the most hops to any of the k closest peers that
 * answered (a seed is 1 hop; each answer naming a peer adds one). 0 when none answered.
 */
export const hops = (state: QueryState): number => answered(state).reduce((m, c) => Math.max(m, c.hop), 0)

// ---------------------------------------------------------------------------
// the loop

/** What asking one peer gave: the closer peers it named, and whether the lookup can stop. */
export interface Answer {
  readonly closer: ReadonlyArray<PeerInfo>
  readonly stop?: boolean
}

export interface RunOptions extends QueryOptions {
  readonly peerTimeout: Duration.Duration
  readonly queryTimeout: Duration.Duration
}

export interface Outcome {
  /** The k closest peers that answered, closest first. */
  readonly closest: ReadonlyArray<PeerInfo>
  /** False when the whole-query timeout cut the lookup short. */
  readonly complete: boolean
  /** Peers that failed, with why. */
  readonly failures: ReadonlyArray<KadError>
  /** Requests sent (over all paths). */
  readonly requests: number
  /** The lookup's depth ({@link hops}; the deepest path of a disjoint lookup). */
  readonly hops: number
}

/**
 * Run a lookup: ask peers with `ask` (bounded by `peerTimeout` each) until the
 * state machine is done or `queryTimeout` passes. With nobody answering before
 * the deadline it fails with `QueryTimeout`; otherwise it returns what it has.
 * Requests still in flight at the end are interrupted.
 */
export const run = (
  state: QueryState,
  ask: (peer: PeerInfo) => Effect.Effect<Answer, KadError>,
  options: RunOptions
): Effect.Effect<Outcome, KadError> =>
  Effect.scoped(Effect.gen(function*() {
    const done = yield* Deferred.make<void>()
    const fibers = yield* FiberSet.make<void>()
    const failures: Array<KadError> = []
    const peerMillis = Duration.toMillis(options.peerTimeout)

    const askOne = (c: Candidate): Effect.Effect<void> =>
      ask(c.peer).pipe(
        Effect.timeoutOrElse({
          duration: options.peerTimeout,
          orElse: () => Effect.fail(fail(new PeerTimeout({ peer: c.peer.peerId.toString(), millis: peerMillis })))
        }),
        Effect.matchEffect({
          onFailure: (e) =>
            Effect.suspend(() => {
              if (failures.length < 64) failures.push(e)
              failed(state, c.peer.peerId)
              return pump
            }),
          onSuccess: (a) =>
            Effect.suspend(() => {
              succeed(state, c.peer.peerId, a.closer)
              if (a.stop === true) state.stopped = true
              return pump
            })
        })
      )

    const pump: Effect.Effect<void> = Effect.suspend(() => {
      if (isDone(state)) return Deferred.succeed(done, undefined)
      const batch = next(state)
      if (batch.length === 0 && state.inflight === 0) return Deferred.succeed(done, undefined)
      return Effect.forEach(batch, (c) => FiberSet.run(fibers, askOne(c)), { discard: true })
    })

    yield* pump
    const finished = yield* Deferred.await(done).pipe(Effect.timeoutOption(options.queryTimeout))
    const closest = result(state)
    if (Option.isNone(finished) && closest.length === 0) {
      return yield* Effect.fail(fail(new QueryTimeout({ millis: Duration.toMillis(options.queryTimeout) })))
    }
    return { closest, complete: Option.isSome(finished), failures, requests: state.requests, hops: hops(state) }
  }))

/**
 * A lookup over `paths` disjoint paths (see the module doc): the seeds split round robin, each path
 * run as `run` with its own alpha, none asking a peer another asked; `ask` is told the path. It
 * fails only when every path failed (with the first path's error).
 */
export const runDisjoint = (
  target: RoutingTable.KadKey,
  self: PeerId.PeerId,
  seeds: ReadonlyArray<PeerInfo>,
  paths: number,
  ask: (peer: PeerInfo, path: number) => Effect.Effect<Answer, KadError>,
  options: RunOptions
): Effect.Effect<Outcome, KadError> =>
  Effect.gen(function*() {
    const d = Math.max(1, Math.min(paths, seeds.length))
    const taken = new Set<string>()
    const states = Array.from(
      { length: d },
      (_, i) => make(target, self, seeds.filter((_, j) => j % d === i), { ...options, taken })
    )
    const outcomes = yield* Effect.forEach(
      states,
      (state, i) => Effect.result(run(state, (peer) => ask(peer, i), options)),
      { concurrency: "unbounded" }
    )
    const ok = outcomes.flatMap((o) => o._tag === "Success" ? [o.success] : [])
    if (ok.length === 0) {
      const first = outcomes[0]!
      if (first._tag === "Failure") return yield* Effect.fail(first.failure)
    }
    const union = new Map<string, PeerInfo>()
    for (const o of ok) for (const p of o.closest) union.set(PeerId.mapKey(p.peerId), p)
    const closest = Array.from(union.values())
      .map((p) => ({ p, key: RoutingTable.peerKey(p.peerId) }))
      .sort((a, b) => RoutingTable.compareDistance(target, a.key, b.key))
      .slice(0, options.k)
      .map((x) => x.p)
    return {
      closest,
      complete: ok.length === d && ok.every((o) => o.complete),
      failures: ok.flatMap((o) => o.failures).slice(0, 64),
      requests: states.reduce((n, s) => n + s.requests, 0),
      hops: ok.reduce((m, o) => Math.max(m, o.hops), 0)
    }
  })
