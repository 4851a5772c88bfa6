/**
 * The peer score of gossipsub v1.1 (`pubsub/gossipsub/gossipsub-v1.1.md`
 * §Peer Scoring, §Score Thresholds) as a pluggable service: the router asks
 * {@link PeerScore} for a peer's score and reports what the score function
 * counts (mesh membership, first and duplicate deliveries, invalid messages,
 * behavioural penalties). A user swaps the function by providing another
 * Layer for {@link PeerScore} (the "pluggable scoring" of the nim roadmap).
 *
 * Two Layers:
 * - {@link layer}: the v1.1 function (§The Score Function) for the topics in
 *   its params: P1 time in mesh, P2 first message deliveries, P3 mesh message
 *   delivery deficit (deliveries counted first or within
 *   `meshMessageDeliveriesWindow` of the first, from mesh peers, after
 *   `meshMessageDeliveriesActivation`), P3b mesh failure penalty (the P3
 *   deficit squared, when a peer leaves the mesh), P4 invalid messages, P5
 *   application-specific, P7 behavioural penalty; topic weights and the topic
 *   score cap; counters decayed every `decayInterval` on the node's `Clock`
 *   (a fiber in the layer's scope), zeroed below `decayToZero`; a
 *   disconnected peer's counters kept for `retainScore`; P6 IP colocation:
 *   a peer whose IP (of the connection its stream runs on) is shared by more
 *   than `ipColocationFactorThreshold` connected peers gets the surplus
 *   squared times `ipColocationFactorWeight`, unless the IP is in
 *   `ipColocationFactorWhitelist` (CIDRs).
 * - {@link layerZero}: 0 for every peer, reports ignored (`implementsV11:
 *   false`); with thresholds ≤ 0 no peer is ever pruned, refused gossip or
 *   graylisted for its score. The default of `Gossipsub.layer`, as there are
 *   no spec defaults for the topic parameters.
 *
 * Anchors: go-libp2p-pubsub `score.go`, `score_params.go`; rust
 * `gossipsub/src/peer_score.rs`.
 *
 * @since 0.2.0
 */
import { Clock, Context, Duration, Effect, Layer, Schedule } from "effect"
import * as Multiaddr from "../../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../../core/MultiaddrNet.ts"
import type * as PeerId from "../../../core/PeerId.ts"

/** gossipsub-v1.1.md §Score Thresholds (all ≤ 0 except the two positive ones). */
export interface ScoreThresholds {
  /** Below it, no gossip to or from the peer (≤ 0). */
  readonly gossipThreshold: number
  /** Below it, our own messages are not flood-published to the peer (≤ gossipThreshold). */
  readonly publishThreshold: number
  /** Below it, the peer's RPCs are ignored (≤ publishThreshold). */
  readonly graylistThreshold: number
  /** Above it, PX from the peer is accepted (≥ 0). */
  readonly acceptPXThreshold: number
  /** The mesh median below which opportunistic grafting kicks in (≥ 0). */
  readonly opportunisticGraftThreshold: number
}

/** Thresholds of go-libp2p-pubsub's and js's tests (there are no spec defaults; the spec gives only the signs). */
export const defaultThresholds: ScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
}

export class PeerScore extends Context.Service<PeerScore, {
  /** Whether this is the v1.1 function of the spec (P1–P7). */
  readonly implementsV11: boolean
  readonly thresholds: ScoreThresholds
  /** The peer's current score. */
  readonly score: (peer: PeerId.PeerId) => number
  /** A peer connected; `remoteAddr` is its connection's remote address (P6 counts peers per IP). */
  readonly addPeer: (peer: PeerId.PeerId, remoteAddr?: Multiaddr.Multiaddr) => void
  readonly removePeer: (peer: PeerId.PeerId) => void
  /** P1/P3: the peer joined our mesh of `topic`. */
  readonly graft: (peer: PeerId.PeerId, topic: string) => void
  /** P1/P3b: the peer left our mesh of `topic`. */
  readonly prune: (peer: PeerId.PeerId, topic: string) => void
  /** P2/P3: the peer delivered a valid message first. */
  readonly deliverMessage: (peer: PeerId.PeerId, topic: string, idKey: string) => void
  /** P3: the peer delivered a message we had already seen. */
  readonly duplicateMessage: (peer: PeerId.PeerId, topic: string, idKey: string) => void
  /** P4: the peer sent a message that failed validation or the signing policy. */
  readonly rejectMessage: (peer: PeerId.PeerId, topic: string) => void
  /** P7: a behavioural penalty (GRAFT during backoff, broken IWANT promises). */
  readonly addPenalty: (peer: PeerId.PeerId, count: number) => void
}>()("effect-libp2p/PeerScore") {}

const noop = () => {}

/**
 * A score of 0 for every peer, reports ignored. The v1.1 score function is not
 * implemented yet (see the module doc).
 */
export const layerZero: Layer.Layer<PeerScore> = Layer.succeed(
  PeerScore,
  PeerScore.of({
    implementsV11: false,
    thresholds: defaultThresholds,
    score: () => 0,
    addPeer: noop,
    removePeer: noop,
    graft: noop,
    prune: noop,
    deliverMessage: noop,
    duplicateMessage: noop,
    rejectMessage: noop,
    addPenalty: noop
  })
)

/** Per-topic parameters (gossipsub-v1.1.md §Topic Parameter Calculation; go `TopicScoreParams`). */
export interface TopicScoreParams {
  readonly topicWeight: number
  readonly timeInMeshWeight: number
  readonly timeInMeshQuantum: Duration.Input
  readonly timeInMeshCap: number
  readonly firstMessageDeliveriesWeight: number
  readonly firstMessageDeliveriesDecay: number
  readonly firstMessageDeliveriesCap: number
  /** ≤ 0 */
  readonly meshMessageDeliveriesWeight: number
  readonly meshMessageDeliveriesDecay: number
  readonly meshMessageDeliveriesThreshold: number
  readonly meshMessageDeliveriesCap: number
  readonly meshMessageDeliveriesActivation: Duration.Input
  readonly meshMessageDeliveriesWindow: Duration.Input
  /** ≤ 0 */
  readonly meshFailurePenaltyWeight: number
  readonly meshFailurePenaltyDecay: number
  /** ≤ 0 */
  readonly invalidMessageDeliveriesWeight: number
  readonly invalidMessageDeliveriesDecay: number
}

/**
 * Topic parameters that count nothing (every weight 0, decays 1, topic weight 1),
 * with `overrides` on top: name only the components a topic uses.
 */
export const topicParams = (overrides: Partial<TopicScoreParams> = {}): TopicScoreParams => ({
  topicWeight: 1,
  timeInMeshWeight: 0,
  timeInMeshQuantum: Duration.seconds(1),
  timeInMeshCap: 0,
  firstMessageDeliveriesWeight: 0,
  firstMessageDeliveriesDecay: 1,
  firstMessageDeliveriesCap: 0,
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 1,
  meshMessageDeliveriesThreshold: 0,
  meshMessageDeliveriesCap: 0,
  meshMessageDeliveriesActivation: Duration.seconds(5),
  meshMessageDeliveriesWindow: Duration.millis(10),
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 1,
  invalidMessageDeliveriesWeight: 0,
  invalidMessageDeliveriesDecay: 1,
  ...overrides
})

/** The score function's parameters (go `PeerScoreParams`). */
export interface PeerScoreParams {
  readonly topics: Readonly<Record<string, TopicScoreParams>>
  /** Cap of the sum of topic scores (0: no cap). */
  readonly topicScoreCap?: number | undefined
  readonly appSpecificScore?: ((peer: PeerId.PeerId) => number) | undefined
  readonly appSpecificWeight?: number | undefined
  /** P6 weight, ≤ 0 (default 0: off). */
  readonly ipColocationFactorWeight?: number | undefined
  /** P6: peers per IP tolerated before the penalty (default 1). */
  readonly ipColocationFactorThreshold?: number | undefined
  /** P6: IPs inside these CIDRs (`10.0.0.0/8`, `2001:db8::/32`) are never penalised. */
  readonly ipColocationFactorWhitelist?: ReadonlyArray<string> | undefined
  /** ≤ 0 */
  readonly behaviourPenaltyWeight?: number | undefined
  readonly behaviourPenaltyThreshold?: number | undefined
  readonly behaviourPenaltyDecay?: number | undefined
  /** Default 1 s. */
  readonly decayInterval?: Duration.Input | undefined
  /** Default 0.01. */
  readonly decayToZero?: number | undefined
  /** How long a disconnected peer's counters are kept (default 1 hour). */
  readonly retainScore?: Duration.Input | undefined
  readonly thresholds?: ScoreThresholds | undefined
}

interface TopicStats {
  inMesh: boolean
  graftTime: number
  meshTime: number
  firstDeliveries: number
  meshDeliveries: number
  meshDeliveriesActive: boolean
  meshFailurePenalty: number
  invalidDeliveries: number
}

interface PeerStats {
  connected: boolean
  /** The IP P6 counts it under while connected. */
  ip: string | undefined
  expire: number
  readonly topics: Map<string, TopicStats>
  behaviourPenalty: number
}

const ms = (d: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(d))

/** The v1.1 score function as a {@link PeerScore} service, decaying on the node's Clock in the current scope. */
export const make = (params: PeerScoreParams) =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const peers = new Map<string, PeerStats>()
    /** First delivery time and topic of recent messages (for the P3 window). */
    const deliveries = new Map<string, { readonly time: number; readonly peers: Set<string> }>()
    const decayToZero = params.decayToZero ?? 0.01
    const retain = ms(params.retainScore ?? Duration.hours(1))
    const decayInterval = params.decayInterval ?? Duration.seconds(1)
    const maxWindow = Math.max(0, ...Object.values(params.topics).map((t) => ms(t.meshMessageDeliveriesWindow)))
    const colocationWeight = params.ipColocationFactorWeight ?? 0
    const colocationThreshold = params.ipColocationFactorThreshold ?? 1
    const whitelist = (params.ipColocationFactorWhitelist ?? []).flatMap((c) => {
      const r = MultiaddrNet.parseCidr(c)
      return r._tag === "Success" ? [r.success] : []
    })
    /** P6: connected peers per IP (whitelisted IPs are not counted). */
    const byIp = new Map<string, Set<string>>()
    const ipOf = (addr: Multiaddr.Multiaddr | undefined): string | undefined => {
      const first = addr === undefined ? undefined : Multiaddr.components(addr)[0]
      if (first === undefined || (first.code !== Multiaddr.codes.ip4 && first.code !== Multiaddr.codes.ip6)) {
        return undefined
      }
      const bytes = first.bytes
      if (bytes !== undefined && whitelist.some((cidr) => MultiaddrNet.contains(cidr, bytes))) return undefined
      return first.value
    }
    const leaveIp = (key: string, ps: PeerStats) => {
      if (ps.ip === undefined) return
      const set = byIp.get(ps.ip)
      set?.delete(key)
      if (set?.size === 0) byIp.delete(ps.ip)
      ps.ip = undefined
    }

    const topicStats = (ps: PeerStats, topic: string): TopicStats | undefined => {
      if (params.topics[topic] === undefined) return undefined
      let t = ps.topics.get(topic)
      if (t === undefined) {
        t = {
          inMesh: false,
          graftTime: 0,
          meshTime: 0,
          firstDeliveries: 0,
          meshDeliveries: 0,
          meshDeliveriesActive: false,
          meshFailurePenalty: 0,
          invalidDeliveries: 0
        }
        ps.topics.set(topic, t)
      }
      return t
    }
    const stats = (peer: PeerId.PeerId): PeerStats => {
      const key = peer.toString()
      let ps = peers.get(key)
      if (ps === undefined) {
        peers.set(key, ps = { connected: true, ip: undefined, expire: 0, topics: new Map(), behaviourPenalty: 0 })
      }
      return ps
    }

    const score = (peer: PeerId.PeerId): number => {
      const ps = peers.get(peer.toString())
      let total = 0
      if (ps !== undefined) {
        for (const [topic, t] of ps.topics) {
          const tp = params.topics[topic]
          if (tp === undefined) continue
          let s = 0
          if (t.inMesh) {
            const p1 = Math.min((now() - t.graftTime) / Math.max(1, ms(tp.timeInMeshQuantum)), tp.timeInMeshCap)
            s += p1 * tp.timeInMeshWeight
          }
          s += t.firstDeliveries * tp.firstMessageDeliveriesWeight
          if (t.inMesh && t.meshDeliveriesActive && t.meshDeliveries < tp.meshMessageDeliveriesThreshold) {
            const deficit = tp.meshMessageDeliveriesThreshold - t.meshDeliveries
            s += deficit * deficit * tp.meshMessageDeliveriesWeight
          }
          s += t.meshFailurePenalty * tp.meshFailurePenaltyWeight
          s += t.invalidDeliveries * t.invalidDeliveries * tp.invalidMessageDeliveriesWeight
          total += s * tp.topicWeight
        }
        const cap = params.topicScoreCap ?? 0
        if (cap > 0 && total > cap) total = cap
        if (ps.ip !== undefined && colocationWeight !== 0) {
          const surplus = (byIp.get(ps.ip)?.size ?? 0) - colocationThreshold
          if (surplus > 0) total += surplus * surplus * colocationWeight
        }
        const excess = ps.behaviourPenalty - (params.behaviourPenaltyThreshold ?? 0)
        if (excess > 0) total += excess * excess * (params.behaviourPenaltyWeight ?? 0)
      }
      if (params.appSpecificScore !== undefined) {
        total += params.appSpecificScore(peer) * (params.appSpecificWeight ?? 1)
      }
      return total
    }

    const meshDelivered = (peer: PeerId.PeerId, topic: string) => {
      const tp = params.topics[topic]
      const t = topicStats(stats(peer), topic)
      if (tp === undefined || t === undefined || !t.inMesh) return
      t.meshDeliveries = Math.min(t.meshDeliveries + 1, tp.meshMessageDeliveriesCap)
    }

    const decay = () => {
      const t0 = now()
      const z = (v: number) => (v < decayToZero ? 0 : v)
      for (const [key, ps] of peers) {
        if (!ps.connected && ps.expire <= t0) {
          peers.delete(key)
          continue
        }
        for (const [topic, t] of ps.topics) {
          const tp = params.topics[topic]
          if (tp === undefined) continue
          t.firstDeliveries = z(t.firstDeliveries * tp.firstMessageDeliveriesDecay)
          t.meshDeliveries = z(t.meshDeliveries * tp.meshMessageDeliveriesDecay)
          t.meshFailurePenalty = z(t.meshFailurePenalty * tp.meshFailurePenaltyDecay)
          t.invalidDeliveries = z(t.invalidDeliveries * tp.invalidMessageDeliveriesDecay)
          if (t.inMesh) {
            t.meshTime = t0 - t.graftTime
            if (t.meshTime > ms(tp.meshMessageDeliveriesActivation)) t.meshDeliveriesActive = true
          }
        }
        ps.behaviourPenalty = z(ps.behaviourPenalty * (params.behaviourPenaltyDecay ?? 0.9))
      }
      for (const [id, d] of deliveries) {
        if (d.time + Math.max(maxWindow, 1000) <= t0) deliveries.delete(id)
      }
    }
    yield* Effect.forkScoped(
      Effect.sleep(decayInterval).pipe(
        Effect.andThen(Effect.repeat(Effect.sync(decay), Schedule.spaced(decayInterval)))
      )
    )

    return PeerScore.of({
      implementsV11: true,
      thresholds: params.thresholds ?? defaultThresholds,
      score,
      addPeer: (peer, remoteAddr) => {
        const key = peer.toString()
        const ps = stats(peer)
        ps.connected = true
        leaveIp(key, ps)
        const ip = ipOf(remoteAddr)
        if (ip === undefined) return
        ps.ip = ip
        const set = byIp.get(ip) ?? new Set<string>()
        set.add(key)
        byIp.set(ip, set)
      },
      removePeer: (peer) => {
        const ps = peers.get(peer.toString())
        if (ps === undefined) return
        leaveIp(peer.toString(), ps)
        ps.connected = false
        ps.expire = now() + retain
        for (const t of ps.topics.values()) t.inMesh = false
      },
      graft: (peer, topic) => {
        const t = topicStats(stats(peer), topic)
        if (t === undefined) return
        t.inMesh = true
        t.graftTime = now()
        t.meshTime = 0
        t.meshDeliveriesActive = false
      },
      prune: (peer, topic) => {
        const tp = params.topics[topic]
        const t = topicStats(stats(peer), topic)
        if (tp === undefined || t === undefined) return
        if (t.meshDeliveriesActive && t.meshDeliveries < tp.meshMessageDeliveriesThreshold) {
          const deficit = tp.meshMessageDeliveriesThreshold - t.meshDeliveries
          t.meshFailurePenalty += deficit * deficit
        }
        t.inMesh = false
        t.meshDeliveriesActive = false
      },
      deliverMessage: (peer, topic, idKey) => {
        const tp = params.topics[topic]
        const t = topicStats(stats(peer), topic)
        deliveries.set(idKey, { time: now(), peers: new Set([peer.toString()]) })
        if (tp === undefined || t === undefined) return
        t.firstDeliveries = Math.min(t.firstDeliveries + 1, tp.firstMessageDeliveriesCap)
        meshDelivered(peer, topic)
      },
      duplicateMessage: (peer, topic, idKey) => {
        const tp = params.topics[topic]
        const d = deliveries.get(idKey)
        if (tp === undefined || d === undefined) return
        const key = peer.toString()
        if (d.peers.has(key) || now() - d.time > ms(tp.meshMessageDeliveriesWindow)) return
        d.peers.add(key)
        meshDelivered(peer, topic)
      },
      rejectMessage: (peer, topic) => {
        const t = topicStats(stats(peer), topic)
        if (t !== undefined) t.invalidDeliveries += 1
      },
      addPenalty: (peer, count) => {
        stats(peer).behaviourPenalty += count
      }
    })
  })

/** The v1.1 score function ({@link make}) as a Layer. */
export const layer = (params: PeerScoreParams): Layer.Layer<PeerScore> => Layer.effect(PeerScore, make(params))
