/**
 * Gossipsub, `/meshsub/1.2.0`, `/meshsub/1.1.0`, `/meshsub/1.0.0` (negotiated
 * in that order), with `/floodsub/1.0.0` peers served as the spec says
 * (libp2p specs `pubsub/gossipsub/gossipsub-v1.0.md`, `-v1.1.md`, `-v1.2.md`).
 *
 * - v1.0 §Router State / §Heartbeat: per topic a mesh kept within
 *   [D_lo, D_hi] by the heartbeat (GRAFT up to D when below D_lo, PRUNE down
 *   to D when above D_hi, keeping the D_score best-scored and at least D_out
 *   outbound peers), fanout for topics we publish to without subscribing
 *   (expired after `fanoutTtl`), IHAVE gossip of the last `mcacheGossip`
 *   windows of the message cache to max(D_lazy, gossipFactor × n) non-mesh
 *   peers, IWANT answered from the cache (at most `gossipRetransmission` times
 *   per peer and message).
 * - v1.1: PRUNE carries a backoff (`pruneBackoff`, 60 s; `unsubscribeBackoff`,
 *   10 s, when we leave); a GRAFT during backoff is refused with a PRUNE and
 *   a behavioural penalty; a GRAFT into a full mesh (≥ D_hi) from an inbound
 *   peer is refused; flood publishing (our own messages to every subscribed
 *   peer above the publish threshold); IHAVE floods are bounded
 *   (`maxIHaveMessages` IHAVEs and `maxIHaveLength` ids asked per peer per
 *   heartbeat); peers scored below 0 are pruned from the mesh, below the
 *   gossip threshold get no gossip, below the publish threshold get none of
 *   our own messages. The score is the {@link PeerScore.PeerScore} service:
 *   {@link layer} uses `PeerScore.layerZero` (0 for everyone: the spec has no
 *   defaults for the topic parameters); {@link layerWithScore} takes any score
 *   Layer, e.g. `PeerScore.layer(params)`, the v1.1 function (P1–P5, P7).
 * - v1.2 §IDONTWANT: on the first sight of a message of at least
 *   `idontwantThreshold` bytes, before validation, we send IDONTWANT to our
 *   `/meshsub/1.2.0` mesh peers of the topic, and we do not send a message to
 *   a peer that sent us IDONTWANT for it (kept 3 heartbeats, at most
 *   `maxIDontWantMessages` ids per peer per heartbeat).
 *
 * - v1.1 §Spam Protection: one id of each IWANT we send is a promise; a peer
 *   that has not delivered it within `iwantFollowupTime` (3 s) gets a
 *   behavioural penalty (P7) per broken promise, counted at the heartbeat.
 * - v1.1 §Opportunistic Grafting: every `opportunisticGraftTicks` (60)
 *   heartbeats, a mesh whose median score is below the opportunistic graft
 *   threshold grafts up to `opportunisticGraftPeers` (2) peers scored above it.
 *
 * - v1.1 §Explicit Peering Agreements: `directPeers` are dialed and redialed,
 *   get every message of their topics, and never join a mesh.
 *
 * - v1.1 §Peer Exchange: with `doPX` (off by default, as go and js), PRUNEs
 *   for an oversubscribed mesh and on leaving name other peers of the topic
 *   (ids only: we keep no signed records of others); PX from a peer above the
 *   accept-PX threshold is dialed (signed record addresses, else the Peerstore).
 *
 * RPCs of peers below the graylist threshold are ignored whole (v1.1 §Score
 * Thresholds). The score sees each peer's connection address (P6).
 *
 * Anchors: go-libp2p-pubsub `gossipsub.go`, `mcache.go`; js `@libp2p/gossipsub`
 * `gossipsub.ts`; rust `gossipsub/src/behaviour.rs`.
 *
 * @since 0.2.0
 */
import { Bytes, Context, Duration, Effect, Layer, Option, Schedule } from "effect"
import * as Multiaddr from "../../../core/Multiaddr.ts"
import * as PeerId from "../../../core/PeerId.ts"
import * as PeerRecord from "../../../core/PeerRecord.ts"
import * as Metrics from "../../../internal/metrics.ts"
import * as Options from "../../../internal/options.ts"
import * as Strings from "../../../internal/strings.ts"
import * as Status from "../../../observability/Status.ts"
import * as Floodsub from "../floodsub/Floodsub.ts"
import * as Messages from "../messages.ts"
import * as PubsubMetrics from "../metrics.ts"
import * as Pubsub from "../Pubsub.ts"
import * as MessageCache from "./mcache.ts"
import * as Score from "./PeerScore.ts"
import { PeerScore } from "./PeerScore.ts"

export const PROTOCOL_V10 = "/meshsub/1.0.0"
export const PROTOCOL_V11 = "/meshsub/1.1.0"
export const PROTOCOL_V12 = "/meshsub/1.2.0"
/** The protocol we prefer. */
export const PROTOCOL = PROTOCOL_V12
/** What we offer and handle, in preference order. */
export const PROTOCOLS: ReadonlyArray<string> = [PROTOCOL_V12, PROTOCOL_V11, PROTOCOL_V10, Floodsub.PROTOCOL]

/** The router's parameters; defaults from the specs (v1.0 §Parameters, v1.1 §Parameters, v1.2). */
export interface GossipsubParams {
  readonly D: number
  readonly Dlo: number
  readonly Dhi: number
  readonly Dlazy: number
  readonly Dscore: number
  readonly Dout: number
  readonly heartbeatInitialDelay: Duration.Duration
  readonly heartbeatInterval: Duration.Duration
  readonly fanoutTtl: Duration.Duration
  readonly mcacheLen: number
  readonly mcacheGossip: number
  readonly gossipFactor: number
  readonly pruneBackoff: Duration.Duration
  readonly unsubscribeBackoff: Duration.Duration
  readonly floodPublish: boolean
  readonly gossipRetransmission: number
  readonly maxIHaveLength: number
  readonly maxIHaveMessages: number
  readonly idontwantThreshold: number
  readonly maxIDontWantMessages: number
  /** v1.1 §Spam Protection: how long a peer has to deliver a message we asked for by IWANT. */
  readonly iwantFollowupTime: Duration.Duration
  /** v1.1 §Opportunistic Grafting: every how many heartbeats, and how many peers at most. */
  readonly opportunisticGraftTicks: number
  readonly opportunisticGraftPeers: number
  /**
   * v1.1 §Explicit Peering Agreements: addresses (with `/p2p/…`) of direct peers, dialed at the
   * first heartbeat and every `directConnectTicks` heartbeats while not connected; they get every
   * message of a topic they subscribe to, and are never in a mesh (a GRAFT from one is refused).
   */
  readonly directPeers: ReadonlyArray<Multiaddr.Multiaddr>
  readonly directConnectTicks: number
  /**
   * v1.1 §Peer Exchange: PRUNEs for an oversubscribed mesh and on leaving carry up to
   * `prunePeers` other peers of the topic (peer ids; we hold no signed records of others).
   * Off by default, as in go and js. PX received from a peer scored at least the accept-PX
   * threshold is always acted on: up to `prunePeers` of the peers are dialed (through their
   * signed peer record's addresses when one verifies, else the Peerstore's).
   */
  readonly doPX: boolean
  readonly prunePeers: number
}

/** Every parameter is optional (defaults: {@link defaults}); durations as a `Duration.Input`. */
export type GossipsubParamsInput = {
  readonly [K in keyof GossipsubParams]?:
    | (GossipsubParams[K] extends Duration.Duration ? Duration.Input : GossipsubParams[K])
    | undefined
}

export type GossipsubOptions = GossipsubParamsInput & Pubsub.PubsubOptions

export const defaults: GossipsubParams = {
  D: 6,
  Dlo: 5,
  Dhi: 12,
  Dlazy: 6,
  Dscore: 4,
  Dout: 2,
  heartbeatInitialDelay: Duration.millis(100),
  heartbeatInterval: Duration.seconds(1),
  fanoutTtl: Duration.seconds(60),
  mcacheLen: 5,
  mcacheGossip: 3,
  gossipFactor: 0.25,
  pruneBackoff: Duration.minutes(1),
  unsubscribeBackoff: Duration.seconds(10),
  floodPublish: true,
  gossipRetransmission: 3,
  maxIHaveLength: 5000,
  maxIHaveMessages: 10,
  idontwantThreshold: 1024,
  maxIDontWantMessages: 1000,
  iwantFollowupTime: Duration.seconds(3),
  opportunisticGraftTicks: 60,
  opportunisticGraftPeers: 2,
  directPeers: [],
  directConnectTicks: 300,
  doPX: false,
  prunePeers: 16
}

/** Mesh introspection and control, beside the {@link Pubsub.Pubsub} service. */
export class Gossipsub extends Context.Service<Gossipsub, {
  readonly params: GossipsubParams
  /** Our mesh peers of `topic`. */
  readonly mesh: (topic: string) => ReadonlyArray<PeerId.PeerId>
  /** Our fanout peers of `topic`. */
  readonly fanout: (topic: string) => ReadonlyArray<PeerId.PeerId>
  /** Whether `peer` is in backoff for `topic` (v1.1 §Prune Backoff: no GRAFT to it before it ends). */
  readonly inBackoff: (topic: string, peer: PeerId.PeerId) => boolean
  /** The protocol a pubsub peer speaks with us. */
  readonly peerProtocol: (peer: PeerId.PeerId) => string | undefined
  /** IDONTWANT counters since start (v1.2): ids received, sent, and messages not sent because of one. */
  readonly idontwantStats: () => {
    readonly received: number
    readonly sent: number
    readonly honoured: number
  }
  /**
   * Counters since start: duplicate messages received (id already in the seen-cache), and
   * control RPCs sent with their encoded control bytes (IHAVE/IWANT/GRAFT/PRUNE/IDONTWANT).
   */
  readonly stats: () => {
    readonly duplicates: number
    readonly controlSent: number
    readonly controlBytes: number
  }
  /** Run one heartbeat now (besides the scheduled ones). */
  readonly heartbeat: Effect.Effect<void>
}>()("effect-libp2p/Gossipsub") {}

/**
 * The parameters the router runs with: defaults filled in and each value
 * clamped to its valid range (v1.1 §Outbound Mesh Quotas: `Dout` below `Dlo`
 * and at most `D/2`, whatever is configured).
 */
export const resolveParams = (o: GossipsubParamsInput): GossipsubParams => {
  const D = Options.clampInt(o.D, defaults.D, 1, 1000)
  const Dlo = Options.clampInt(o.Dlo, Math.min(defaults.Dlo, D), 0, D)
  const Dhi = Options.clampInt(o.Dhi, Math.max(defaults.Dhi, D), D, 10_000)
  return {
    D,
    Dlo,
    Dhi,
    Dlazy: Options.clampInt(o.Dlazy, defaults.Dlazy, 0, 10_000),
    Dscore: Options.clampInt(o.Dscore, Math.min(defaults.Dscore, D), 0, D),
    Dout: Options.clampInt(
      o.Dout,
      Math.min(defaults.Dout, Math.floor(D / 2)),
      0,
      Math.max(0, Math.min(Math.floor(D / 2), Dlo - 1))
    ),
    heartbeatInitialDelay: Options.duration(o.heartbeatInitialDelay, defaults.heartbeatInitialDelay),
    heartbeatInterval: Options.duration(o.heartbeatInterval, defaults.heartbeatInterval),
    fanoutTtl: Options.duration(o.fanoutTtl, defaults.fanoutTtl),
    mcacheLen: Options.clampInt(o.mcacheLen, defaults.mcacheLen, 1, 1000),
    mcacheGossip: Options.clampInt(o.mcacheGossip, defaults.mcacheGossip, 0, 1000),
    gossipFactor: o.gossipFactor ?? defaults.gossipFactor,
    pruneBackoff: Options.duration(o.pruneBackoff, defaults.pruneBackoff),
    unsubscribeBackoff: Options.duration(o.unsubscribeBackoff, defaults.unsubscribeBackoff),
    floodPublish: o.floodPublish ?? defaults.floodPublish,
    gossipRetransmission: Options.clampInt(o.gossipRetransmission, defaults.gossipRetransmission, 1, 1000),
    maxIHaveLength: Options.clampInt(o.maxIHaveLength, defaults.maxIHaveLength, 1, 1_000_000),
    maxIHaveMessages: Options.clampInt(o.maxIHaveMessages, defaults.maxIHaveMessages, 1, 1_000_000),
    idontwantThreshold: Options.clampInt(o.idontwantThreshold, defaults.idontwantThreshold, 0, 1 << 30),
    maxIDontWantMessages: Options.clampInt(o.maxIDontWantMessages, defaults.maxIDontWantMessages, 0, 1_000_000),
    iwantFollowupTime: Options.duration(o.iwantFollowupTime, defaults.iwantFollowupTime),
    opportunisticGraftTicks: Options.clampInt(
      o.opportunisticGraftTicks,
      defaults.opportunisticGraftTicks,
      1,
      1_000_000
    ),
    opportunisticGraftPeers: Options.clampInt(o.opportunisticGraftPeers, defaults.opportunisticGraftPeers, 0, 1000),
    directPeers: o.directPeers ?? defaults.directPeers,
    directConnectTicks: Options.clampInt(o.directConnectTicks, defaults.directConnectTicks, 1, 1_000_000),
    doPX: o.doPX ?? defaults.doPX,
    prunePeers: Options.clampInt(o.prunePeers, defaults.prunePeers, 0, 1000)
  }
}

const isGossip = (p: Pubsub.PeerHandle) => p.protocol.startsWith("/meshsub/")
const isFlood = (p: Pubsub.PeerHandle) => p.protocol === Floodsub.PROTOCOL

const shuffle = <A>(items: Array<A>, random: () => number): Array<A> => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = items[i]!
    items[i] = items[j]!
    items[j] = t
  }
  return items
}

type Control = ReturnType<typeof Messages.emptyControl>

interface RouterState {
  readonly router: Pubsub.PubsubRouter
  readonly service: Gossipsub["Service"]
}

const makeRouter = (ctx: Pubsub.RouterContext, params: GossipsubParams, score: PeerScore["Service"]) =>
  Effect.gen(function*() {
    const mesh = new Map<string, Set<string>>()
    const fanout = new Map<string, Set<string>>()
    const lastPub = new Map<string, number>()
    const backoff = new Map<string, Map<string, number>>()
    const mcache = MessageCache.make(params.mcacheLen, params.mcacheGossip)
    const ihaveCount = new Map<string, number>()
    const iasked = new Map<string, number>()
    const dontWant = new Map<string, Map<string, number>>()
    const dontWantCount = new Map<string, number>()
    const pruneBackoffMs = Duration.toMillis(params.pruneBackoff)
    const unsubscribeBackoffMs = Duration.toMillis(params.unsubscribeBackoff)
    const heartbeatMs = Duration.toMillis(params.heartbeatInterval)
    const { thresholds } = score
    const idontwant = { received: 0, sent: 0, honoured: 0 }
    const stats = { duplicates: 0, controlSent: 0, controlBytes: 0 }
    /** IWANT promises: message id → peer → deadline (v1.1 §Spam Protection, go `gossip_tracer.go`). */
    const promises = new Map<string, Map<string, number>>()
    const followupMs = Duration.toMillis(params.iwantFollowupTime)
    let ticks = 0
    /** Direct peers by peer id (v1.1 §Explicit Peering Agreements). */
    const direct = new Map<string, Multiaddr.Multiaddr>()
    for (const addr of params.directPeers) {
      const text = Multiaddr.getPeerId(addr)
      const id = text === undefined ? undefined : PeerId.fromString(text)
      if (id !== undefined && id._tag === "Success") direct.set(id.success.toString(), addr)
    }

    const peer = (key: string) => ctx.peers.get(key)

    /** Send an RPC carrying control parts, counted in {@link stats}. */
    const sendWithControl = (p: Pubsub.PeerHandle, rpc: Messages.RPC) => {
      const ok = ctx.send(p, rpc)
      if (ok && rpc.control !== undefined && !Messages.isEmptyControl(rpc.control)) {
        stats.controlSent++
        stats.controlBytes += Messages.ControlMessage.encode(rpc.control).byteLength
      }
      return ok
    }
    const sendControl = (p: Pubsub.PeerHandle, control: Partial<Control>) =>
      sendWithControl(p, { subscriptions: [], publish: [], control: { ...Messages.emptyControl(), ...control } })

    const inBackoff = (topic: string, key: string) => (backoff.get(topic)?.get(key) ?? 0) > ctx.now()
    const addBackoff = (topic: string, key: string, ms: number) => {
      let m = backoff.get(topic)
      if (m === undefined) backoff.set(topic, m = new Map())
      const until = ctx.now() + ms
      if ((m.get(key) ?? 0) < until) m.set(key, until)
    }

    const pruneFor = (p: Pubsub.PeerHandle, topic: string, ms: number, px = false): Messages.ControlPrune => {
      addBackoff(topic, p.key, ms)
      if (p.protocol === PROTOCOL_V10) return { topicID: topic, peers: [] }
      const peers = px && params.doPX && score.score(p.id) >= 0
        ? shuffle(candidates(topic, (q) => q.key !== p.key), ctx.random)
          .slice(0, params.prunePeers)
          .map((q) => ({ peerID: PeerId.toBytes(q.id) }))
        : []
      return { topicID: topic, peers, backoff: BigInt(Math.ceil(ms / 1000)) }
    }

    /** v1.1 §Peer Exchange: dial the peers a PRUNE names. */
    const acceptPX = (from: Pubsub.PeerHandle, infos: ReadonlyArray<Messages.PeerInfo>) => {
      if (infos.length === 0 || score.score(from.id) < thresholds.acceptPXThreshold) return
      for (const info of infos.slice(0, params.prunePeers)) {
        if (info.peerID === undefined) continue
        const id = PeerId.fromBytes(info.peerID)
        if (id._tag === "Failure" || PeerId.equals(id.success, ctx.localPeer)) continue
        if (ctx.peers.has(id.success.toString())) continue
        let target: Multiaddr.Multiaddr | PeerId.PeerId = id.success
        if (info.signedPeerRecord !== undefined) {
          const record = PeerRecord.openSigned(info.signedPeerRecord)
          if (record._tag === "Failure" || !PeerId.equals(record.success.peerId, id.success)) continue
          const first = record.success.addrs[0]
          const addr = first === undefined ? undefined : Multiaddr.fromBytes(first)
          if (addr !== undefined && addr._tag === "Success") {
            const withId = Multiaddr.encapsulate(addr.success, `/p2p/${id.success.toString()}`)
            if (withId._tag === "Success") target = withId.success
          }
        }
        ctx.connect(target)
      }
    }

    /** Gossip peers subscribed to `topic` that pass `ok`. */
    const candidates = (topic: string, ok: (p: Pubsub.PeerHandle) => boolean) => {
      const out: Array<Pubsub.PeerHandle> = []
      for (const p of ctx.peers.values()) {
        if (isGossip(p) && p.topics.has(topic) && !direct.has(p.key) && ok(p)) out.push(p)
      }
      return out
    }

    const join = (topic: string) => {
      if (mesh.has(topic)) return
      const peers = new Set<string>()
      for (const key of fanout.get(topic) ?? []) {
        const p = peer(key)
        if (p !== undefined && !inBackoff(topic, key) && score.score(p.id) >= 0) peers.add(key)
      }
      fanout.delete(topic)
      lastPub.delete(topic)
      if (peers.size < params.D) {
        const more = shuffle(
          candidates(topic, (p) => !peers.has(p.key) && !inBackoff(topic, p.key) && score.score(p.id) >= 0),
          ctx.random
        )
        for (const p of more.slice(0, params.D - peers.size)) peers.add(p.key)
      }
      mesh.set(topic, peers)
      for (const key of peers) {
        const p = peer(key)
        if (p === undefined) continue
        score.graft(p.id, topic)
        sendControl(p, { graft: [{ topicID: topic }] })
      }
    }

    const leave = (topic: string) => {
      const peers = mesh.get(topic)
      if (peers === undefined) return
      mesh.delete(topic)
      for (const key of peers) {
        const p = peer(key)
        if (p === undefined) continue
        score.prune(p.id, topic)
        sendControl(p, { prune: [pruneFor(p, topic, unsubscribeBackoffMs, true)] })
      }
    }

    const forgetPeer = (key: string) => {
      for (const peers of mesh.values()) peers.delete(key)
      for (const peers of fanout.values()) peers.delete(key)
      ihaveCount.delete(key)
      iasked.delete(key)
      for (const [id, m] of promises) if (m.delete(key) && m.size === 0) promises.delete(id)
      dontWant.delete(key)
      dontWantCount.delete(key)
    }

    const handleIHave = (p: Pubsub.PeerHandle, ihaves: ReadonlyArray<Messages.ControlIHave>) => {
      if (ihaves.length === 0 || score.score(p.id) < thresholds.gossipThreshold) return []
      const count = (ihaveCount.get(p.key) ?? 0) + 1
      ihaveCount.set(p.key, count)
      if (count > params.maxIHaveMessages) return []
      const asked = iasked.get(p.key) ?? 0
      if (asked >= params.maxIHaveLength) return []
      const want = new Map<string, Uint8Array>()
      for (const ih of ihaves) {
        if (ih.topicID === undefined || !mesh.has(ih.topicID)) continue
        for (const id of ih.messageIDs) {
          const key = Strings.binary(id)
          if (!ctx.seen(key) && !want.has(key)) want.set(key, id)
        }
      }
      if (want.size === 0) return []
      let ids = Array.from(want.values())
      const room = params.maxIHaveLength - asked
      if (ids.length > room) ids = shuffle(ids, ctx.random).slice(0, room)
      iasked.set(p.key, asked + ids.length)
      // one random id of the request is a promise: not delivered in time, a P7 penalty
      const promised = Strings.binary(ids[Math.floor(ctx.random() * ids.length)]!)
      let m = promises.get(promised)
      if (m === undefined) promises.set(promised, m = new Map())
      if (!m.has(p.key)) m.set(p.key, ctx.now() + followupMs)
      return [{ messageIDs: ids }]
    }

    const handleIWant = (p: Pubsub.PeerHandle, iwants: ReadonlyArray<Messages.ControlIWant>) => {
      const out: Array<Messages.Message> = []
      if (score.score(p.id) < thresholds.gossipThreshold) return out
      const given = new Set<string>()
      for (const iw of iwants) {
        for (const id of iw.messageIDs) {
          const key = Strings.binary(id)
          if (given.has(key)) continue
          given.add(key)
          const m = mcache.getForPeer(key, p.key, params.gossipRetransmission)
          if (m !== undefined) out.push(m)
        }
      }
      return out
    }

    const handleGraft = (p: Pubsub.PeerHandle, grafts: ReadonlyArray<Messages.ControlGraft>) => {
      const prunes: Array<Messages.ControlPrune> = []
      for (const g of grafts) {
        const topic = g.topicID
        if (topic === undefined) continue
        const peers = mesh.get(topic)
        // spam hardening (go): a GRAFT for a topic we are not in is ignored
        if (peers === undefined || peers.has(p.key)) continue
        if (direct.has(p.key)) {
          // a direct peer never joins the mesh (go: it is a misbehaviour, penalised)
          score.addPenalty(p.id, 1)
          prunes.push(pruneFor(p, topic, pruneBackoffMs))
          continue
        }
        if (inBackoff(topic, p.key)) {
          score.addPenalty(p.id, 1)
          prunes.push(pruneFor(p, topic, pruneBackoffMs))
          continue
        }
        if (score.score(p.id) < 0) {
          prunes.push(pruneFor(p, topic, pruneBackoffMs))
          continue
        }
        if (peers.size >= params.Dhi && !p.outbound) {
          prunes.push(pruneFor(p, topic, pruneBackoffMs, true))
          continue
        }
        peers.add(p.key)
        score.graft(p.id, topic)
      }
      return prunes
    }

    const handlePrune = (p: Pubsub.PeerHandle, prunes: ReadonlyArray<Messages.ControlPrune>) => {
      for (const pr of prunes) {
        const topic = pr.topicID
        if (topic === undefined) continue
        const peers = mesh.get(topic)
        if (peers?.delete(p.key) === true) score.prune(p.id, topic)
        const seconds = pr.backoff !== undefined ? Number(pr.backoff) : undefined
        addBackoff(topic, p.key, seconds !== undefined && seconds > 0 ? seconds * 1000 : pruneBackoffMs)
        acceptPX(p, pr.peers)
      }
    }

    const handleIDontWant = (p: Pubsub.PeerHandle, list: ReadonlyArray<Messages.ControlIDontWant>) => {
      let count = dontWantCount.get(p.key) ?? 0
      let m = dontWant.get(p.key)
      const until = ctx.now() + 3 * heartbeatMs
      for (const d of list) {
        for (const id of d.messageIDs) {
          if (count >= params.maxIDontWantMessages) break
          count++
          idontwant.received++
          if (m === undefined) dontWant.set(p.key, m = new Map())
          m.set(Strings.binary(id), until)
        }
      }
      dontWantCount.set(p.key, count)
    }

    const handleControl = (p: Pubsub.PeerHandle, control: Messages.ControlMessage) => {
      if (!isGossip(p)) return
      const iwant = handleIHave(p, control.ihave)
      const publish = handleIWant(p, control.iwant)
      const prune = handleGraft(p, control.graft)
      handlePrune(p, control.prune)
      handleIDontWant(p, control.idontwant)
      if (iwant.length === 0 && publish.length === 0 && prune.length === 0) return
      sendWithControl(p, { subscriptions: [], publish, control: { ...Messages.emptyControl(), iwant, prune } })
    }

    const onFirstSeen = (from: Pubsub.PeerHandle, msg: Pubsub.RoutedMessage) => {
      promises.delete(msg.idKey)
      if (msg.size < params.idontwantThreshold) return
      const peers = mesh.get(msg.topic)
      if (peers === undefined) return
      for (const key of peers) {
        const p = peer(key)
        if (p === undefined || p === from || p.protocol !== PROTOCOL_V12) continue
        if (sendControl(p, { idontwant: [{ messageIDs: [msg.id] }] })) idontwant.sent++
      }
    }

    const forward = (msg: Pubsub.RoutedMessage, from: Pubsub.PeerHandle | undefined) => {
      mcache.put(msg.idKey, msg.id, msg.topic, msg.message)
      const topic = msg.topic
      const targets = new Set<string>()
      const floodPeers = (min: number) => {
        for (const p of ctx.peers.values()) {
          if ((isFlood(p) || direct.has(p.key)) && p.topics.has(topic) && score.score(p.id) >= min) {
            targets.add(p.key)
          }
        }
      }
      if (from === undefined) {
        if (params.floodPublish) {
          for (const p of ctx.peers.values()) {
            if (
              (isGossip(p) || isFlood(p)) && p.topics.has(topic) && score.score(p.id) >= thresholds.publishThreshold
            ) {
              targets.add(p.key)
            }
          }
        } else {
          floodPeers(thresholds.publishThreshold)
          const meshPeers = mesh.get(topic)
          if (meshPeers !== undefined) {
            for (const k of meshPeers) targets.add(k)
          } else {
            let fan = fanout.get(topic)
            if (fan === undefined || fan.size === 0) {
              fan = new Set(
                shuffle(candidates(topic, (p) => score.score(p.id) >= thresholds.publishThreshold), ctx.random)
                  .slice(0, params.D)
                  .map((p) => p.key)
              )
              fanout.set(topic, fan)
            }
            lastPub.set(topic, ctx.now())
            for (const k of fan) targets.add(k)
          }
        }
      } else {
        score.deliverMessage(from.id, topic, msg.idKey)
        floodPeers(Number.NEGATIVE_INFINITY)
        for (const k of mesh.get(topic) ?? []) targets.add(k)
        targets.delete(from.key)
      }
      const author = msg.message.from
      const rpc: Messages.RPC = { subscriptions: [], publish: [msg.message] }
      let sent = 0
      for (const key of targets) {
        const p = peer(key)
        if (p === undefined) continue
        if (author !== undefined && Bytes.Equivalence(PeerId.toBytes(p.id), author)) continue
        if (dontWant.get(key)?.has(msg.idKey) === true) {
          idontwant.honoured++
          continue
        }
        if (ctx.send(p, rpc)) sent++
      }
      return sent
    }

    // --- metrics, set at each heartbeat: mesh sizes (topic labels bounded, see metrics.ts), peer scores

    const rec = yield* Metrics.recorder
    /** Topics given their own label value, first come (never more than MAX_TOPIC_LABELS). */
    const topicLabels = new Set<string>()
    const meshGauges = new Metrics.GaugeSet(PubsubMetrics.meshPeers)
    const topicLabel = (topic: string) => {
      if (topicLabels.has(topic)) return topic
      if (topicLabels.size >= PubsubMetrics.MAX_TOPIC_LABELS) return "other"
      topicLabels.add(topic)
      return topic
    }
    const observe = () => {
      const counts = new Map<string, number>()
      for (const [topic, peers] of mesh) {
        const label = topicLabel(topic)
        counts.set(label, (counts.get(label) ?? 0) + peers.size)
      }
      meshGauges.set(counts, rec)
      for (const p of ctx.peers.values()) if (p.protocol !== "") rec.update(PubsubMetrics.peerScores, score.score(p.id))
    }

    /** Grafts, prunes and IHAVEs of one heartbeat, one RPC per peer. */
    const heartbeat = () => {
      const now = ctx.now()
      const out = new Map<string, Control>()
      const control = (key: string) => {
        let c = out.get(key)
        if (c === undefined) out.set(key, c = Messages.emptyControl())
        return c
      }
      ihaveCount.clear()
      iasked.clear()
      dontWantCount.clear()
      for (const [topic, m] of backoff) {
        for (const [k, until] of m) if (until <= now) m.delete(k)
        if (m.size === 0) backoff.delete(topic)
      }
      for (const [key, m] of dontWant) {
        for (const [id, until] of m) if (until <= now) m.delete(id)
        if (m.size === 0) dontWant.delete(key)
      }
      const broken = new Map<string, number>()
      for (const [id, m] of promises) {
        for (const [key, until] of m) {
          if (until > now) continue
          m.delete(key)
          broken.set(key, (broken.get(key) ?? 0) + 1)
        }
        if (m.size === 0) promises.delete(id)
      }
      for (const [key, count] of broken) {
        const p = peer(key)
        if (p !== undefined) score.addPenalty(p.id, count)
      }
      const opportunistic = ++ticks % params.opportunisticGraftTicks === 0
      if (ticks === 1 || ticks % params.directConnectTicks === 0) {
        for (const [key, addr] of direct) if (!ctx.peers.has(key)) ctx.connect(addr)
      }

      const gossip = (topic: string, exclude: ReadonlySet<string>) => {
        const ids = mcache.gossipIds(topic)
        if (ids.length === 0) return
        const peers = shuffle(
          candidates(topic, (p) => !exclude.has(p.key) && score.score(p.id) >= thresholds.gossipThreshold),
          ctx.random
        )
        const n = Math.max(params.Dlazy, Math.floor(params.gossipFactor * peers.length))
        const advertised = ids.length > params.maxIHaveLength
          ? shuffle(ids, ctx.random).slice(0, params.maxIHaveLength)
          : ids
        for (const p of peers.slice(0, n)) control(p.key).ihave.push({ topicID: topic, messageIDs: advertised })
      }

      for (const [topic, peers] of mesh) {
        for (const key of peers) {
          const p = peer(key)
          if (p === undefined || !p.topics.has(topic)) {
            peers.delete(key)
          } else if (score.score(p.id) < 0) {
            peers.delete(key)
            score.prune(p.id, topic)
            control(key).prune.push(pruneFor(p, topic, pruneBackoffMs))
          }
        }
        if (peers.size < params.Dlo) {
          const more = shuffle(
            candidates(topic, (p) => !peers.has(p.key) && !inBackoff(topic, p.key) && score.score(p.id) >= 0),
            ctx.random
          )
          for (const p of more.slice(0, params.D - peers.size)) {
            peers.add(p.key)
            score.graft(p.id, topic)
            control(p.key).graft.push({ topicID: topic })
          }
        }
        if (peers.size > params.Dhi) {
          const all = shuffle(Array.from(peers).flatMap((k) => peer(k) ?? []), ctx.random)
          all.sort((a, b) => score.score(b.id) - score.score(a.id))
          const keep = all.slice(0, params.Dscore)
          const rest = shuffle(all.slice(params.Dscore), ctx.random)
          keep.push(...rest.splice(0, params.D - keep.length))
          // v1.1: keep at least D_out outbound peers
          let outbound = keep.filter((p) => p.outbound).length
          for (let i = 0; outbound < params.Dout && i < rest.length;) {
            const p = rest[i]!
            if (!p.outbound) {
              i++
              continue
            }
            rest.splice(i, 1)
            const victim = keep.findLastIndex((q) => !q.outbound)
            if (victim < 0) break
            rest.push(keep[victim]!)
            keep[victim] = p
            outbound++
          }
          for (const p of rest) {
            peers.delete(p.key)
            score.prune(p.id, topic)
            control(p.key).prune.push(pruneFor(p, topic, pruneBackoffMs, true))
          }
        }
        // v1.1 §Opportunistic Grafting: a mesh whose median score is low takes better-scored peers
        if (opportunistic && peers.size > 1) {
          const scores = Array.from(peers, (k) => {
            const p = peer(k)
            return p === undefined ? 0 : score.score(p.id)
          }).sort((x, y) => x - y)
          const median = scores[Math.floor(scores.length / 2)]!
          if (median < thresholds.opportunisticGraftThreshold) {
            const better = shuffle(
              candidates(
                topic,
                (p) => !peers.has(p.key) && !inBackoff(topic, p.key) && score.score(p.id) > median
              ),
              ctx.random
            )
            for (const p of better.slice(0, params.opportunisticGraftPeers)) {
              peers.add(p.key)
              score.graft(p.id, topic)
              control(p.key).graft.push({ topicID: topic })
            }
          }
        }
        gossip(topic, peers)
      }

      const fanoutTtlMs = Duration.toMillis(params.fanoutTtl)
      for (const [topic, peers] of fanout) {
        if ((lastPub.get(topic) ?? 0) + fanoutTtlMs <= now) {
          fanout.delete(topic)
          lastPub.delete(topic)
          continue
        }
        for (const key of peers) {
          const p = peer(key)
          if (p === undefined || !p.topics.has(topic) || score.score(p.id) < thresholds.publishThreshold) {
            peers.delete(key)
          }
        }
        if (peers.size < params.D) {
          const more = shuffle(
            candidates(topic, (p) => !peers.has(p.key) && score.score(p.id) >= thresholds.publishThreshold),
            ctx.random
          )
          for (const p of more.slice(0, params.D - peers.size)) peers.add(p.key)
        }
        gossip(topic, peers)
      }

      for (const [key, c] of out) {
        const p = peer(key)
        if (p !== undefined) sendWithControl(p, { subscriptions: [], publish: [], control: c })
      }
      mcache.shift()
      observe()
    }

    yield* Effect.forkScoped(
      Effect.sleep(params.heartbeatInitialDelay).pipe(
        Effect.andThen(Effect.repeat(Effect.sync(heartbeat), Schedule.spaced(params.heartbeatInterval)))
      )
    )

    const ids = (keys: Iterable<string> | undefined) => Array.from(keys ?? [], (k) => peer(k)?.id ?? []).flat()

    // --- status: our topics and each one's mesh (count and peer ids)

    const sections = yield* Effect.serviceOption(Status.StatusSections)
    if (Option.isSome(sections)) {
      yield* sections.value.register(
        "pubsub",
        Effect.sync(() => ({
          router: "gossipsub",
          topics: Array.from(mesh.keys()),
          mesh: Object.fromEntries(
            Array.from(mesh, ([topic, keys]) => {
              const peers = ids(keys).map((id) => id.toString())
              return [topic, { count: peers.length, peers }]
            })
          )
        }))
      )
    }

    const router: Pubsub.PubsubRouter = {
      protocols: PROTOCOLS,
      addPeer: (p) => score.addPeer(p.id, p.remoteAddr),
      removePeer: (p) => {
        forgetPeer(p.key)
        score.removePeer(p.id)
      },
      onSubscription: (p, topic, subscribe) => {
        if (subscribe) return
        if (mesh.get(topic)?.delete(p.key) === true) score.prune(p.id, topic)
        fanout.get(topic)?.delete(p.key)
      },
      join,
      leave,
      onFirstSeen,
      onDuplicate: (p, idKey, topic) => {
        stats.duplicates++
        score.duplicateMessage(p.id, topic, idKey)
      },
      onReject: (p, topic) => score.rejectMessage(p.id, topic),
      forward,
      handleControl,
      // v1.1 §Score Thresholds: RPCs of graylisted peers are ignored
      acceptFrom: (p) => score.score(p.id) >= thresholds.graylistThreshold
    }
    const service = Gossipsub.of({
      params,
      mesh: (topic) => ids(mesh.get(topic)),
      fanout: (topic) => ids(fanout.get(topic)),
      inBackoff: (topic, id) => inBackoff(topic, id.toString()),
      peerProtocol: (id) => {
        const p = peer(id.toString())
        return p === undefined || p.protocol === "" ? undefined : p.protocol
      },
      idontwantStats: () => ({ ...idontwant }),
      stats: () => ({ ...stats }),
      heartbeat: Effect.sync(heartbeat)
    })
    return { router, service } satisfies RouterState
  })

/** Build the {@link Pubsub.Pubsub} core routed by gossipsub, and the {@link Gossipsub} service beside it. */
export const make = (options: GossipsubOptions = {}) =>
  Effect.gen(function*() {
    const score = yield* PeerScore
    const params = resolveParams(options)
    let state: RouterState | undefined
    const pubsub = yield* Pubsub.make(
      (ctx) =>
        Effect.map(makeRouter(ctx, params, score), (s) => {
          state = s
          return s.router
        }),
      options
    )
    return Context.make(Pubsub.Pubsub, pubsub).pipe(Context.add(Gossipsub, state!.service))
  })

/** Gossipsub with the score service in context (a custom {@link PeerScore.PeerScore} Layer). */
export const layerWithScore = (options: GossipsubOptions = {}) => Layer.effectContext(make(options))

/** Gossipsub with {@link Score.layerZero}: every peer scores 0 (use {@link layerWithScore} for the v1.1 function). */
export const layer = (options: GossipsubOptions = {}) => layerWithScore(options).pipe(Layer.provide(Score.layerZero))
