/**
 * ResourceManager: limits on what remote peers can make this node hold —
 * connections (inbound/outbound), streams (inbound/outbound) and memory
 * reserved for buffering — per scope: system, transient (connections still
 * handshaking, streams whose protocol is not negotiated yet), per peer, per
 * protocol, per connection and per stream.
 *
 * No libp2p spec defines a resource manager; this follows the model of
 * go-libp2p's `p2p/host/resource-manager` (scopes, a transient scope that
 * connections and streams leave once their peer / protocol is known, all
 * reservations checked against every scope they touch, all or nothing). The
 * connections spec (§Connection limits) only says an implementation SHOULD
 * bound what a peer can make it hold.
 *
 * Reservations are scoped: `openConnection`, `openStream` and `reserveMemory`
 * take the current `Scope`, and closing it releases exactly what was reserved
 * — there is no `release` to forget. A connection moves from the transient
 * scope to its peer's once the secure handshake names the peer
 * (`setPeer`); a stream moves from the transient scope to its protocol's once
 * multistream-select agreed on one (`setProtocol`). Each move is checked
 * against the new scope's limits and refused with {@link LimitExceeded}.
 *
 * Everything is synchronous bookkeeping (no fibers); `stats` is an
 * observable snapshot, and usage never goes negative: each reservation
 * remembers which scopes it was charged to and gives back exactly that.
 *
 * @since 0.1.0
 */
import { Context, Effect, Fiber, Layer, type Scope } from "effect"
import type * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Release from "../internal/release.ts"
import type { Direction, MemoryBudget } from "../muxer/StreamMuxer.ts"
import * as Fairness from "./Fairness.ts"
import { LimitExceeded, type Resource, type ScopeKind } from "./Limits.ts"

export { LimitExceeded, Resource, ScopeKind } from "./Limits.ts"

/** Limits of one scope; an absent field means "no limit" unless a default fills it in. */
export interface Limit {
  readonly connectionsInbound?: number
  readonly connectionsOutbound?: number
  readonly connections?: number
  readonly streamsInbound?: number
  readonly streamsOutbound?: number
  readonly streams?: number
  /** Bytes. */
  readonly memory?: number
}

export type ResolvedLimit = { readonly [K in Resource]: number }

export interface Limits {
  readonly system?: Limit
  readonly transient?: Limit
  /** Applies to each peer. */
  readonly peer?: Limit
  /** Per-peer overrides, keyed by the peer id's string form (merged over `peer`). */
  readonly peers?: Readonly<Record<string, Limit>>
  /** Applies to each protocol. */
  readonly protocol?: Limit
  /** Per-protocol overrides, keyed by protocol id (merged over `protocol`). */
  readonly protocols?: Readonly<Record<string, Limit>>
  readonly connection?: Limit
  readonly stream?: Limit
  /** Per-peer and per-source shares of the transient pools, and eviction of the heaviest user (see `Fairness.ts`). */
  readonly fairness?: Fairness.FairnessOptions
}

export interface OpenConnectionOptions {
  /** Where an inbound connection comes from: its source IP and subnet get a share of the transient pools. */
  readonly remoteAddr?: Multiaddr.Multiaddr
}

const MiB = 1024 * 1024
const unlimited: ResolvedLimit = {
  connectionsInbound: Infinity,
  connectionsOutbound: Infinity,
  connections: Infinity,
  streamsInbound: Infinity,
  streamsOutbound: Infinity,
  streams: Infinity,
  memory: Infinity
}

/**
 * Default limits: a node holds at most 1,024 inbound and 1,024 outbound
 * connections, 256 of each handshaking at once, 16 of each per peer; 512
 * inbound streams per connection; 2 GiB of muxer buffers. The Upgrader
 * reserves a stream's initial receive window (256 KiB for yamux) per stream,
 * so the memory limits bound streams too.
 */
export const defaults: { readonly [K in Exclude<keyof Limits, "peers" | "protocols" | "fairness">]-?: ResolvedLimit } =
  {
    system: {
      connectionsInbound: 1024,
      connectionsOutbound: 1024,
      connections: 2048,
      streamsInbound: 16384,
      streamsOutbound: 16384,
      streams: 32768,
      memory: 2048 * MiB
    },
    transient: {
      connectionsInbound: 256,
      connectionsOutbound: 256,
      connections: 512,
      streamsInbound: 1024,
      streamsOutbound: 1024,
      streams: 2048,
      memory: 256 * MiB
    },
    peer: {
      connectionsInbound: 16,
      connectionsOutbound: 16,
      connections: 32,
      streamsInbound: 1024,
      streamsOutbound: 2048,
      streams: 3072,
      memory: 512 * MiB
    },
    protocol: { ...unlimited },
    connection: {
      ...unlimited,
      streamsInbound: 512,
      streamsOutbound: 1024,
      memory: 256 * MiB
    },
    stream: { ...unlimited, memory: 16 * MiB }
  }

/** Fill `limit` in from `base`. */
export const resolveLimit = (base: ResolvedLimit, limit: Limit | undefined): ResolvedLimit =>
  limit === undefined ? base : {
    connectionsInbound: limit.connectionsInbound ?? base.connectionsInbound,
    connectionsOutbound: limit.connectionsOutbound ?? base.connectionsOutbound,
    connections: limit.connections ?? base.connections,
    streamsInbound: limit.streamsInbound ?? base.streamsInbound,
    streamsOutbound: limit.streamsOutbound ?? base.streamsOutbound,
    streams: limit.streams ?? base.streams,
    memory: limit.memory ?? base.memory
  }

/** What a scope currently holds. */
export interface Usage {
  readonly connectionsInbound: number
  readonly connectionsOutbound: number
  readonly streamsInbound: number
  readonly streamsOutbound: number
  readonly memory: number
}

export interface Stats {
  readonly system: Usage
  readonly transient: Usage
  /** Peers holding anything, by peer id string. */
  readonly peers: ReadonlyMap<string, Usage>
  /** Protocols holding anything, by protocol id. */
  readonly protocols: ReadonlyMap<string, Usage>
  /** Connection scopes open. */
  readonly connections: number
  /** Stream scopes open. */
  readonly streams: number
  /**
   * Reservations refused since the manager was made, by `scope/resource` (e.g.
   * `peer/streamsInbound`); a fairness share refused as `transient/<resource>/<share>`.
   */
  readonly blocked: ReadonlyMap<string, number>
  /** Transient members evicted (the heaviest subnet's oldest) to admit a newcomer, by `transient/<resource>`. */
  readonly evicted: ReadonlyMap<string, number>
  /** Members of the transient pools by share key (`ip/…`, `net/…`, `peer/…`): handshakes and unnegotiated streams. */
  readonly pools: { readonly handshakes: ReadonlyMap<string, number>; readonly streams: ReadonlyMap<string, number> }
}

/** A connection's reservations; closing the scope it was opened in releases all of them. */
export interface ConnectionScope {
  readonly direction: Direction
  readonly peer: () => PeerId.PeerId | undefined
  /** Move the connection from the transient scope to `peer`'s (once; later calls with another peer are refused). */
  readonly setPeer: (peer: PeerId.PeerId) => Effect.Effect<void, LimitExceeded>
  /** Reserve `bytes` for this connection until the current scope closes. */
  readonly reserveMemory: (bytes: number) => Effect.Effect<void, LimitExceeded, Scope.Scope>
  /** Reserve a stream on this connection until the current scope closes. */
  readonly openStream: (direction: Direction) => Effect.Effect<StreamScope, LimitExceeded, Scope.Scope>
  /** This connection's own usage (its streams and memory). */
  readonly usage: () => Usage
  /**
   * Memory the muxer grows into (yamux receive windows beyond the initial
   * one), charged synchronously to this connection, its peer (or transient)
   * scope and the system; given back on `release` and when the connection's
   * scope closes.
   */
  readonly memory: MemoryBudget
}

/** A stream's reservations; closing the scope it was opened in releases all of them. */
export interface StreamScope {
  readonly direction: Direction
  readonly protocol: () => string | undefined
  /** Move the stream from the transient scope to `protocol`'s (once). */
  readonly setProtocol: (protocol: string) => Effect.Effect<void, LimitExceeded>
  /** Reserve `bytes` for this stream until the current scope closes. */
  readonly reserveMemory: (bytes: number) => Effect.Effect<void, LimitExceeded, Scope.Scope>
  readonly usage: () => Usage
}

export class ResourceManager extends Context.Service<ResourceManager, {
  readonly limits: {
    readonly system: ResolvedLimit
    readonly transient: ResolvedLimit
    readonly peer: (peer: PeerId.PeerId) => ResolvedLimit
    readonly protocol: (protocol: string) => ResolvedLimit
    readonly connection: ResolvedLimit
    readonly stream: ResolvedLimit
  }
  /**
   * Reserve a connection (system + transient) until the current scope closes.
   * An inbound one with a `remoteAddr` takes a share of the handshake pool
   * (fairness); when the pool is full it may be evicted, which interrupts the
   * fiber that opened it.
   */
  readonly openConnection: (
    direction: Direction,
    options?: OpenConnectionOptions
  ) => Effect.Effect<ConnectionScope, LimitExceeded, Scope.Scope>
  readonly stats: () => Stats
}>()("effect-libp2p/ResourceManager") {}

/**
 * `limits` with `allow` added to the fairness allow list (the connection
 * manager's allow list, so that one list exempts a network from both the hard
 * cap and the per-source shares).
 */
export const withAllowList = (
  limits: Limits | undefined,
  allow: ReadonlyArray<Multiaddr.Multiaddr> | undefined
): Limits => {
  if (allow === undefined || allow.length === 0) return limits ?? {}
  const fairness = limits?.fairness ?? {}
  return { ...limits, fairness: { ...fairness, allow: [...(fairness.allow ?? []), ...allow] } }
}

/** A resource manager with `limits` merged over {@link defaults}. */
export const layer = (limits: Limits = {}): Layer.Layer<ResourceManager> =>
  Layer.sync(ResourceManager, () => make(limits))

/** No limits at all (tests, or a node that trusts every peer). */
export const layerUnlimited: Layer.Layer<ResourceManager> = Layer.sync(ResourceManager, () =>
  make({
    system: unlimited,
    transient: unlimited,
    peer: unlimited,
    protocol: unlimited,
    connection: unlimited,
    stream: unlimited,
    fairness: {
      handshakesPerIp: Infinity,
      handshakesPerSubnet: Infinity,
      streamsPerPeer: Infinity,
      streamsPerIp: Infinity,
      streamsPerSubnet: Infinity,
      evictHeaviest: false
    }
  }))

// ---------------------------------------------------------------------------
// bookkeeping

interface MutableUsage {
  connectionsInbound: number
  connectionsOutbound: number
  streamsInbound: number
  streamsOutbound: number
  memory: number
}

/**
 * A scope's counters: a class of its own, so that V8 keeps its fields small
 * integers in place (the frozen deltas and snapshots, plain objects, would
 * otherwise share its shape and turn every counter into a boxed number: five
 * heap numbers per scope, two scopes per connection).
 */
class Counters implements MutableUsage {
  connectionsInbound = 0
  connectionsOutbound = 0
  streamsInbound = 0
  streamsOutbound = 0
  memory = 0
}

const zero = (): MutableUsage => new Counters()

const isZero = (u: Usage): boolean =>
  u.connectionsInbound === 0 && u.connectionsOutbound === 0 && u.streamsInbound === 0 && u.streamsOutbound === 0 &&
  u.memory === 0

/** One scope's counters. `refs` counts live charges pointing at it (peer/protocol scopes are dropped at zero). */
interface Node {
  readonly kind: ScopeKind
  readonly name: string
  readonly limit: ResolvedLimit
  readonly usage: MutableUsage
  refs: number
  /** The table a lazily created (peer/protocol) scope is dropped from once idle, under `name`. */
  readonly index: Map<string, Node> | undefined
  /** The manager's refusals by `scope/resource` (shared by all its scopes; see {@link Stats}). */
  readonly blocked: Map<string, number>
}

const makeNode = (
  kind: ScopeKind,
  name: string,
  limit: ResolvedLimit,
  blocked: Map<string, number>,
  index?: Map<string, Node>
): Node => ({
  kind,
  name,
  limit,
  usage: zero(),
  refs: 0,
  index,
  blocked
})

/** `delta` charged to `node`; `node` changes when the owner moves scopes. */
interface Charge {
  node: Node
  readonly delta: Usage
}

/** `u` ± `d` (added or subtracted, not multiplied by the sign: `-1 * 0` is `-0`, a boxed number). */
const add = (u: MutableUsage, d: Usage, sign: 1 | -1): void => {
  if (sign === 1) {
    u.connectionsInbound += d.connectionsInbound
    u.connectionsOutbound += d.connectionsOutbound
    u.streamsInbound += d.streamsInbound
    u.streamsOutbound += d.streamsOutbound
    u.memory += d.memory
  } else {
    u.connectionsInbound -= d.connectionsInbound
    u.connectionsOutbound -= d.connectionsOutbound
    u.streamsInbound -= d.streamsInbound
    u.streamsOutbound -= d.streamsOutbound
    u.memory -= d.memory
  }
}

/** A node that nothing references any more is dropped (lazily created peer/protocol scopes). */
const dropIfIdle = (n: Node): void => {
  if (n.refs === 0 && n.index !== undefined && isZero(n.usage)) n.index.delete(n.name)
}

const unref = (n: Node): void => {
  n.refs--
  dropIfIdle(n)
}

/**
 * The live reservations of one connection or stream: few, so an exact-size
 * array replaced on each change (a push-grown array keeps room for 17).
 */
class Owner {
  items: ReadonlyArray<Reservation> = []
  add(r: Reservation): void {
    this.items = Release.append(this.items, r)
  }
  delete(r: Reservation): void {
    if (this.items.includes(r)) this.items = this.items.filter((x) => x !== r)
  }
}

/** Charges made at once; given back once (its scope closing, via {@link Release}). */
class Reservation implements Release.Releasable {
  readonly owner: Owner
  readonly charges: ReadonlyArray<Charge>
  released = false
  constructor(owner: Owner, charges: ReadonlyArray<Charge>) {
    this.owner = owner
    this.charges = charges
  }
  release(): void {
    if (this.released) return
    this.released = true
    this.owner.delete(this)
    for (const c of this.charges) {
      add(c.node.usage, c.delta, -1)
      unref(c.node)
    }
  }
}

/** The first resource of `node` that `delta` would take past its limit. */
const exceeded = (node: Node, delta: Usage): Resource | undefined => {
  const u = node.usage
  const l = node.limit
  if (delta.connectionsInbound > 0 && u.connectionsInbound + delta.connectionsInbound > l.connectionsInbound) {
    return "connectionsInbound"
  }
  if (delta.connectionsOutbound > 0 && u.connectionsOutbound + delta.connectionsOutbound > l.connectionsOutbound) {
    return "connectionsOutbound"
  }
  const dc = delta.connectionsInbound + delta.connectionsOutbound
  if (dc > 0 && u.connectionsInbound + u.connectionsOutbound + dc > l.connections) return "connections"
  if (delta.streamsInbound > 0 && u.streamsInbound + delta.streamsInbound > l.streamsInbound) return "streamsInbound"
  if (delta.streamsOutbound > 0 && u.streamsOutbound + delta.streamsOutbound > l.streamsOutbound) {
    return "streamsOutbound"
  }
  const ds = delta.streamsInbound + delta.streamsOutbound
  if (ds > 0 && u.streamsInbound + u.streamsOutbound + ds > l.streams) return "streams"
  if (delta.memory > 0 && u.memory + delta.memory > l.memory) return "memory"
  return undefined
}

const limitError = (node: Node, resource: Resource) => {
  const key = `${node.kind}/${resource}`
  node.blocked.set(key, (node.blocked.get(key) ?? 0) + 1)
  return new LimitExceeded({
    scope: node.kind,
    resource,
    limit: node.limit[resource],
    message: `${node.kind}${node.name !== "" ? ` ${node.name}` : ""}: ${resource} limit of ${
      node.limit[resource]
    } reached`
  })
}

const frozenDelta = (u: Partial<Usage>): Usage => Object.freeze({ ...zero(), ...u })
const inboundConnection = frozenDelta({ connectionsInbound: 1 })
const outboundConnection = frozenDelta({ connectionsOutbound: 1 })
const inboundStream = frozenDelta({ streamsInbound: 1 })
const outboundStream = frozenDelta({ streamsOutbound: 1 })
const connectionDelta = (direction: Direction): Usage =>
  direction === "inbound" ? inboundConnection : outboundConnection
const streamDelta = (direction: Direction): Usage => direction === "inbound" ? inboundStream : outboundStream
/** The deltas of the last few memory sizes (callers use a handful of fixed sizes). */
const memoryDeltas = new Map<number, Usage>()
const memoryDelta = (bytes: number): Usage => {
  let d = memoryDeltas.get(bytes)
  if (d === undefined) {
    if (memoryDeltas.size >= 16) memoryDeltas.clear()
    memoryDeltas.set(bytes, d = frozenDelta({ memory: bytes }))
  }
  return d
}

const snapshot = (u: Usage): Usage => ({ ...u })

/** Charge `delta` to every node, all or nothing: the reservation (added to `owner`) or the refusal. */
const reserve = (owner: Owner, nodes: ReadonlyArray<Node>, delta: Usage): Reservation | Release.Fail<LimitExceeded> => {
  for (const n of nodes) {
    const r = exceeded(n, delta)
    if (r !== undefined) {
      for (const m of nodes) dropIfIdle(m)
      return new Release.Fail(limitError(n, r))
    }
  }
  // `map`: an array of exactly this length (a push-grown one keeps room for 17)
  const charges = nodes.map((n): Charge => {
    add(n.usage, delta, 1)
    n.refs++
    return { node: n, delta }
  })
  const reservation = new Reservation(owner, charges)
  owner.add(reservation)
  return reservation
}

/** A reservation released when the current scope closes. */
const scoped = (owner: Owner, nodes: ReadonlyArray<Node>, delta: Usage) =>
  Release.acquire(() => reserve(owner, nodes, delta))

/** Move every charge of `owner` on `from` to `to`, checked against `to`'s limits. */
const move = (owner: Owner, from: Node, to: Node): LimitExceeded | undefined => {
  const total = zero()
  const moving: Array<Charge> = []
  for (const r of owner.items) {
    for (const c of r.charges) {
      if (c.node === from) {
        add(total, c.delta, 1)
        moving.push(c)
      }
    }
  }
  const r = exceeded(to, total)
  if (r !== undefined) {
    dropIfIdle(to)
    return limitError(to, r)
  }
  add(from.usage, total, -1)
  add(to.usage, total, 1)
  for (const c of moving) {
    c.node = to
    to.refs++
    unref(from)
  }
  return undefined
}

/** What every connection and stream of one manager shares. */
class Core {
  readonly system: Node
  readonly transient: Node
  readonly peers = new Map<string, Node>()
  readonly protocols = new Map<string, Node>()
  readonly connectionLimit: ResolvedLimit
  readonly streamLimit: ResolvedLimit
  readonly limitForPeer: (key: string) => ResolvedLimit
  readonly limitForProtocol: (protocol: string) => ResolvedLimit
  openConnections = 0
  openStreams = 0
  readonly blocked = new Map<string, number>()
  readonly evicted = new Map<string, number>()
  readonly fairness: Fairness.ResolvedFairness
  /** Inbound connections still handshaking, by source IP and subnet. */
  readonly handshakes: Fairness.Pool
  /** Inbound streams not negotiated yet, by peer, source IP and subnet. */
  readonly streams: Fairness.Pool
  constructor(
    system: ResolvedLimit,
    transient: ResolvedLimit,
    connection: ResolvedLimit,
    stream: ResolvedLimit,
    limitForPeer: (key: string) => ResolvedLimit,
    limitForProtocol: (protocol: string) => ResolvedLimit,
    fairness: Fairness.ResolvedFairness
  ) {
    this.fairness = fairness
    this.handshakes = new Fairness.Pool(["ip", "subnet"], [fairness.handshakesPerIp, fairness.handshakesPerSubnet])
    this.streams = new Fairness.Pool(
      ["peer", "ip", "subnet"],
      [fairness.streamsPerPeer, fairness.streamsPerIp, fairness.streamsPerSubnet]
    )
    this.system = makeNode("system", "", system, this.blocked)
    this.transient = makeNode("transient", "", transient, this.blocked)
    this.connectionLimit = connection
    this.streamLimit = stream
    this.limitForPeer = limitForPeer
    this.limitForProtocol = limitForProtocol
  }
  peerNode(key: string): Node {
    let n = this.peers.get(key)
    if (n === undefined) {
      n = makeNode("peer", key, this.limitForPeer(key), this.blocked, this.peers)
      this.peers.set(key, n)
    }
    return n
  }
  /**
   * Admission of an inbound newcomer with `member`'s keys to `pool`: refused
   * when one of its shares is full; when the transient `resource` is at its
   * limit, the heaviest subnet's oldest member is evicted first (unless the
   * newcomer's subnet is the heaviest: then the reservation is refused as usual).
   */
  admit(pool: Fairness.Pool, member: Fairness.Member, resource: "connectionsInbound" | "streamsInbound") {
    const over = pool.overShare(member.keys)
    if (over !== undefined) {
      const key = `transient/${resource}/${over.kind}`
      this.blocked.set(key, (this.blocked.get(key) ?? 0) + 1)
      return new Release.Fail(
        new LimitExceeded({
          scope: "transient",
          resource,
          limit: over.cap,
          share: over.kind,
          message: `transient: ${resource} share of ${over.cap} per ${over.kind} reached`
        })
      )
    }
    if (this.fairness.evictHeaviest && this.transient.usage[resource] >= this.transient.limit[resource]) {
      const victim = pool.victim(member.subnet)
      if (victim !== undefined) {
        victim.evict()
        const key = `transient/${resource}`
        this.evicted.set(key, (this.evicted.get(key) ?? 0) + 1)
      }
    }
    return undefined
  }
  protocolNode(protocol: string): Node {
    let n = this.protocols.get(protocol)
    if (n === undefined) {
      n = makeNode("protocol", protocol, this.limitForProtocol(protocol), this.blocked, this.protocols)
      this.protocols.set(protocol, n)
    }
    return n
  }
}

/**
 * The slot of a connection or stream (its first reservation, counted among
 * the manager's open connections or streams) and its later reservations,
 * all given back when the scope it was opened in closes.
 */
abstract class Holder implements Release.Releasable {
  readonly owner = new Owner()
  reservation: Reservation | undefined = undefined
  /** Count this holder in (1) or out (-1). */
  abstract count(sign: 1 | -1): void
  hold(nodes: ReadonlyArray<Node>, delta: Usage): this | Release.Fail<LimitExceeded> {
    const r = reserve(this.owner, nodes, delta)
    if (r instanceof Release.Fail) return r
    this.reservation = r
    this.count(1)
    return this
  }
  release(): void {
    const r = this.reservation
    if (r === undefined) return
    this.reservation = undefined
    r.release()
    this.count(-1)
  }
}

const otherPeer = () =>
  new LimitExceeded({
    scope: "connection",
    resource: "connections",
    limit: 1,
    message: "the connection already belongs to another peer"
  })

/**
 * A connection's reservations: its slot (transient, then its peer's scope),
 * its own counters (streams, memory), released with the scope it was opened
 * in. One object per connection, behaviour on the prototype.
 */
class ConnectionReservation extends Holder implements ConnectionScope {
  readonly core: Core
  readonly direction: Direction
  readonly node: Node
  /** The slot the connection is charged to: transient, then its peer's scope. */
  slot: Node
  peerId: PeerId.PeerId | undefined = undefined
  /** The source's share keys (inbound, with an IP address not on the allow list). */
  readonly source: Fairness.Source | undefined
  /** Its membership of the handshake pool until the peer is known. */
  member: Fairness.Member | undefined = undefined
  constructor(core: Core, direction: Direction, remoteAddr: Multiaddr.Multiaddr | undefined) {
    super()
    this.core = core
    this.direction = direction
    this.node = makeNode("connection", "", core.connectionLimit, core.blocked)
    this.slot = core.transient
    this.source = direction === "inbound" ? Fairness.sourceOf(core.fairness, remoteAddr) : undefined
  }
  /** The connection slot (system + transient) and the open-connection count; an inbound one joins the handshake pool. */
  open(): this | Release.Fail<LimitExceeded> {
    const source = this.source
    if (source === undefined) return this.hold([this.core.system, this.core.transient], connectionDelta(this.direction))
    const fiber = Fiber.getCurrent()
    const member: Fairness.Member = {
      keys: [source.ip, source.subnet],
      subnet: source.subnet,
      evict: () => {
        this.release()
        fiber?.interruptUnsafe()
      }
    }
    const refused = this.core.admit(this.core.handshakes, member, "connectionsInbound")
    if (refused !== undefined) return refused
    const held = this.hold([this.core.system, this.core.transient], connectionDelta(this.direction))
    if (held === this) {
      this.member = member
      this.core.handshakes.add(member)
    }
    return held
  }
  leavePool(): void {
    const m = this.member
    if (m === undefined) return
    this.member = undefined
    this.core.handshakes.delete(m)
  }
  override release(): void {
    this.leavePool()
    this.releaseElastic()
    super.release()
  }
  /** The scopes elastic memory is charged to (fixed at the first charge), and how much. */
  elasticNodes: ReadonlyArray<Node> | undefined = undefined
  elasticBytes = 0
  readonly memory: MemoryBudget = {
    reserve: (bytes) => this.growMemory(bytes),
    release: (bytes) => this.shrinkMemory(bytes)
  }
  growMemory(bytes: number): boolean {
    if (bytes <= 0) return true
    if (this.reservation === undefined) return false
    const nodes = this.elasticNodes ?? [this.node, this.slot, this.core.system]
    const delta = memoryDelta(bytes)
    for (const n of nodes) {
      const r = exceeded(n, delta)
      if (r !== undefined) {
        limitError(n, r)
        return false
      }
    }
    if (this.elasticNodes === undefined) {
      this.elasticNodes = nodes
      for (const n of nodes) n.refs++
    }
    for (const n of nodes) n.usage.memory += bytes
    this.elasticBytes += bytes
    return true
  }
  shrinkMemory(bytes: number): void {
    const nodes = this.elasticNodes
    const b = Math.min(bytes, this.elasticBytes)
    if (nodes === undefined || b <= 0) return
    for (const n of nodes) n.usage.memory -= b
    this.elasticBytes -= b
  }
  releaseElastic(): void {
    const nodes = this.elasticNodes
    if (nodes === undefined) return
    this.shrinkMemory(this.elasticBytes)
    this.elasticNodes = undefined
    for (const n of nodes) unref(n)
  }
  count(sign: 1 | -1): void {
    this.core.openConnections += sign
  }
  peer(): PeerId.PeerId | undefined {
    return this.peerId
  }
  setPeer(p: PeerId.PeerId): Effect.Effect<void, LimitExceeded> {
    return Effect.suspend(() => {
      if (this.peerId !== undefined) return PeerId.equals(this.peerId, p) ? Effect.void : Effect.fail(otherPeer())
      const target = this.core.peerNode(PeerId.toString(p))
      const refused = move(this.owner, this.core.transient, target)
      if (refused !== undefined) return Effect.fail(refused)
      this.slot = target
      this.peerId = p
      this.leavePool()
      return Effect.void
    })
  }
  reserveMemory(bytes: number): Effect.Effect<void, LimitExceeded, Scope.Scope> {
    return bytes <= 0
      ? Effect.void
      : Effect.asVoid(scoped(this.owner, [this.node, this.slot, this.core.system], memoryDelta(bytes)))
  }
  openStream(direction: Direction): Effect.Effect<StreamScope, LimitExceeded, Scope.Scope> {
    return Release.acquire(() => new StreamReservation(this, direction).open())
  }
  /** The peer's share key (once known). */
  peerKey: string | undefined = undefined
  sharePeerKey(): string | undefined {
    const p = this.peerId
    return p === undefined ? undefined : this.peerKey ??= `peer/${PeerId.toString(p)}`
  }
  usage(): Usage {
    return snapshot(this.node.usage)
  }
}

/** A stream's reservations: its slot (transient, then its protocol's scope), on its connection and peer. */
class StreamReservation extends Holder implements StreamScope {
  readonly conn: ConnectionReservation
  readonly direction: Direction
  readonly node: Node
  /** The connection's slot when the stream opened (fixed). */
  readonly peerScope: Node
  /** The stream's own slot: transient, then its protocol's scope. */
  slot: Node
  protocolId: string | undefined = undefined
  /** Its membership of the unnegotiated-stream pool (inbound) until the protocol is agreed. */
  member: Fairness.Member | undefined = undefined
  constructor(conn: ConnectionReservation, direction: Direction) {
    super()
    this.conn = conn
    this.direction = direction
    this.node = makeNode("stream", "", conn.core.streamLimit, conn.core.blocked)
    this.peerScope = conn.slot
    this.slot = conn.core.transient
  }
  chain(): ReadonlyArray<Node> {
    const c = this.conn
    return this.peerScope === c.core.transient
      ? [c.node, this.slot, c.core.system]
      : [c.node, this.slot, this.peerScope, c.core.system]
  }
  open(): this | Release.Fail<LimitExceeded> {
    const conn = this.conn
    if (this.direction !== "inbound") return this.hold(this.chain(), streamDelta(this.direction))
    const core = conn.core
    const source = conn.source
    const fiber = Fiber.getCurrent()
    const member: Fairness.Member = {
      keys: [conn.sharePeerKey(), source?.ip, source?.subnet],
      subnet: source?.subnet,
      evict: () => {
        this.release()
        fiber?.interruptUnsafe()
      }
    }
    const refused = core.admit(core.streams, member, "streamsInbound")
    if (refused !== undefined) return refused
    const held = this.hold(this.chain(), streamDelta(this.direction))
    if (held === this) {
      this.member = member
      core.streams.add(member)
    }
    return held
  }
  leavePool(): void {
    const m = this.member
    if (m === undefined) return
    this.member = undefined
    this.conn.core.streams.delete(m)
  }
  override release(): void {
    this.leavePool()
    super.release()
  }
  count(sign: 1 | -1): void {
    this.conn.core.openStreams += sign
  }
  protocol(): string | undefined {
    return this.protocolId
  }
  setProtocol(p: string): Effect.Effect<void, LimitExceeded> {
    return Effect.suspend(() => {
      if (this.protocolId !== undefined) return Effect.void
      const core = this.conn.core
      const target = core.protocolNode(p)
      const refused = move(this.owner, core.transient, target)
      if (refused !== undefined) return Effect.fail(refused)
      this.slot = target
      this.protocolId = p
      this.leavePool()
      return Effect.void
    })
  }
  reserveMemory(bytes: number): Effect.Effect<void, LimitExceeded, Scope.Scope> {
    return bytes <= 0
      ? Effect.void
      : Effect.asVoid(scoped(this.owner, [this.node, ...this.chain()], memoryDelta(bytes)))
  }
  usage(): Usage {
    return snapshot(this.node.usage)
  }
}

/** A resource manager with `limits` merged over {@link defaults}. */
export const make = (limits: Limits = {}): ResourceManager["Service"] => {
  const systemLimit = resolveLimit(defaults.system, limits.system)
  const transientLimit = resolveLimit(defaults.transient, limits.transient)
  const peerLimit = resolveLimit(defaults.peer, limits.peer)
  const protocolLimit = resolveLimit(defaults.protocol, limits.protocol)
  const connectionLimit = resolveLimit(defaults.connection, limits.connection)
  const streamLimit = resolveLimit(defaults.stream, limits.stream)
  const limitForPeer = (key: string) => resolveLimit(peerLimit, limits.peers?.[key])
  const limitForProtocol = (protocol: string) => resolveLimit(protocolLimit, limits.protocols?.[protocol])
  const core = new Core(
    systemLimit,
    transientLimit,
    connectionLimit,
    streamLimit,
    limitForPeer,
    limitForProtocol,
    Fairness.resolve(limits.fairness)
  )
  const poolStats = (pool: Fairness.Pool) => new Map(Array.from(pool.groups, ([k, g]) => [k, g.size]))

  return {
    limits: {
      system: systemLimit,
      transient: transientLimit,
      peer: (p) => limitForPeer(PeerId.toString(p)),
      protocol: limitForProtocol,
      connection: connectionLimit,
      stream: streamLimit
    },
    openConnection: (direction, options) =>
      Release.acquire(() => new ConnectionReservation(core, direction, options?.remoteAddr).open()),
    stats: () => ({
      system: snapshot(core.system.usage),
      transient: snapshot(core.transient.usage),
      peers: new Map(Array.from(core.peers, ([k, n]) => [k, snapshot(n.usage)])),
      protocols: new Map(Array.from(core.protocols, ([k, n]) => [k, snapshot(n.usage)])),
      connections: core.openConnections,
      streams: core.openStreams,
      blocked: new Map(core.blocked),
      evicted: new Map(core.evicted),
      pools: { handshakes: poolStats(core.handshakes), streams: poolStats(core.streams) }
    })
  }
}
