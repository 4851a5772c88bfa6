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
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import * as PeerId from "../core/PeerId.ts"
import type { Direction } from "../muxer/StreamMuxer.ts"

/** The scopes limits apply to. */
export const ScopeKind = Schema.Literals(["system", "transient", "peer", "protocol", "connection", "stream"])
export type ScopeKind = typeof ScopeKind.Type

/** The resources a scope can limit. `connections` and `streams` bound inbound + outbound together. */
export const Resource = Schema.Literals([
  "connectionsInbound",
  "connectionsOutbound",
  "connections",
  "streamsInbound",
  "streamsOutbound",
  "streams",
  "memory"
])
export type Resource = typeof Resource.Type

/** A reservation would take `scope` past its limit on `resource`. */
export class LimitExceeded extends Schema.TaggedError<LimitExceeded>()("LimitExceeded", {
  scope: ScopeKind,
  resource: Resource,
  limit: Schema.Number,
  message: Schema.String
}) {}

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
export const defaults: { readonly [K in Exclude<keyof Limits, "peers" | "protocols">]-?: ResolvedLimit } = {
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
  /** Reserve a connection (system + transient) until the current scope closes. */
  readonly openConnection: (direction: Direction) => Effect.Effect<ConnectionScope, LimitExceeded, Scope.Scope>
  readonly stats: () => Stats
}>()("effect-libp2p/ResourceManager") {
  /** A resource manager with `limits` merged over {@link defaults}. */
  static readonly layer = (limits: Limits = {}) => Layer.sync(ResourceManager, () => make(limits))
  /** No limits at all (tests, or a node that trusts every peer). */
  static readonly layerUnlimited = Layer.sync(ResourceManager, () =>
    make({
      system: unlimited,
      transient: unlimited,
      peer: unlimited,
      protocol: unlimited,
      connection: unlimited,
      stream: unlimited
    })
  )
}

// ---------------------------------------------------------------------------
// bookkeeping

interface MutableUsage {
  connectionsInbound: number
  connectionsOutbound: number
  streamsInbound: number
  streamsOutbound: number
  memory: number
}

const zero = (): MutableUsage => ({
  connectionsInbound: 0,
  connectionsOutbound: 0,
  streamsInbound: 0,
  streamsOutbound: 0,
  memory: 0
})

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
  readonly onIdle: (() => void) | undefined
}

/** `delta` charged to `node`; `node` changes when the owner moves scopes. */
interface Charge {
  node: Node
  readonly delta: Usage
}

interface Reservation {
  readonly charges: ReadonlyArray<Charge>
  released: boolean
}

const add = (u: MutableUsage, d: Usage, sign: 1 | -1): void => {
  u.connectionsInbound += sign * d.connectionsInbound
  u.connectionsOutbound += sign * d.connectionsOutbound
  u.streamsInbound += sign * d.streamsInbound
  u.streamsOutbound += sign * d.streamsOutbound
  u.memory += sign * d.memory
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

const limitError = (node: Node, resource: Resource) =>
  new LimitExceeded({
    scope: node.kind,
    resource,
    limit: node.limit[resource],
    message: `${node.kind}${node.name !== "" ? ` ${node.name}` : ""}: ${resource} limit of ${
      node.limit[resource]
    } reached`
  })

const connectionDelta = (direction: Direction): Usage => ({
  ...zero(),
  ...(direction === "inbound" ? { connectionsInbound: 1 } : { connectionsOutbound: 1 })
})
const streamDelta = (direction: Direction): Usage => ({
  ...zero(),
  ...(direction === "inbound" ? { streamsInbound: 1 } : { streamsOutbound: 1 })
})
const memoryDelta = (bytes: number): Usage => ({ ...zero(), memory: bytes })

const snapshot = (u: Usage): Usage => ({ ...u })

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

  const node = (kind: ScopeKind, name: string, limit: ResolvedLimit, onIdle?: () => void): Node => ({
    kind,
    name,
    limit,
    usage: zero(),
    refs: 0,
    onIdle
  })
  const system = node("system", "", systemLimit)
  const transient = node("transient", "", transientLimit)
  const peers = new Map<string, Node>()
  const protocols = new Map<string, Node>()
  let openConnections = 0
  let openStreams = 0

  const peerNode = (key: string): Node => {
    let n = peers.get(key)
    if (n === undefined) {
      n = node("peer", key, limitForPeer(key), () => void peers.delete(key))
      peers.set(key, n)
    }
    return n
  }
  const protocolNode = (protocol: string): Node => {
    let n = protocols.get(protocol)
    if (n === undefined) {
      n = node("protocol", protocol, limitForProtocol(protocol), () => void protocols.delete(protocol))
      protocols.set(protocol, n)
    }
    return n
  }
  const unref = (n: Node) => {
    n.refs--
    if (n.refs === 0 && n.onIdle !== undefined && isZero(n.usage)) n.onIdle()
  }
  /** A node that nothing references any more is dropped (lazily created peer/protocol scopes). */
  const dropIfIdle = (n: Node) => {
    if (n.refs === 0 && n.onIdle !== undefined && isZero(n.usage)) n.onIdle()
  }

  /** Charge `delta` to every node, all or nothing. */
  const reserve = (owner: Set<Reservation>, nodes: ReadonlyArray<Node>, delta: Usage) =>
    Effect.suspend(() => {
      for (const n of nodes) {
        const r = exceeded(n, delta)
        if (r !== undefined) {
          for (const m of nodes) dropIfIdle(m)
          return Effect.fail(limitError(n, r))
        }
      }
      const charges: Array<Charge> = []
      for (const n of nodes) {
        add(n.usage, delta, 1)
        n.refs++
        charges.push({ node: n, delta })
      }
      const reservation: Reservation = { charges, released: false }
      owner.add(reservation)
      return Effect.succeed(reservation)
    })

  const release = (owner: Set<Reservation>, reservation: Reservation) =>
    Effect.sync(() => {
      if (reservation.released) return
      reservation.released = true
      owner.delete(reservation)
      for (const c of reservation.charges) {
        add(c.node.usage, c.delta, -1)
        unref(c.node)
      }
    })

  /** A scoped reservation released when the current scope closes. */
  const scoped = (owner: Set<Reservation>, nodes: ReadonlyArray<Node>, delta: Usage) =>
    Effect.acquireRelease(reserve(owner, nodes, delta), (r) => release(owner, r))

  /** Move every charge of `owner` on `from` to `to`, checked against `to`'s limits. */
  const move = (owner: Set<Reservation>, from: Node, to: Node) =>
    Effect.suspend(() => {
      const total = zero()
      const moving: Array<Charge> = []
      for (const r of owner) {
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
        return Effect.fail(limitError(to, r))
      }
      add(from.usage, total, -1)
      add(to.usage, total, 1)
      for (const c of moving) {
        c.node = to
        to.refs++
        unref(from)
      }
      return Effect.void
    })

  const openConnection = (direction: Direction) =>
    Effect.gen(function*() {
      const conn = node("connection", "", connectionLimit)
      const owner = new Set<Reservation>()
      // the slot the connection is charged to: transient, then its peer's scope
      let slot: Node = transient
      let peer: PeerId.PeerId | undefined
      yield* scoped(owner, [system, transient], connectionDelta(direction))
      openConnections++
      yield* Effect.addFinalizer(() => Effect.sync(() => void openConnections--))

      const scope: ConnectionScope = {
        direction,
        peer: () => peer,
        setPeer: (p) =>
          Effect.suspend(() => {
            if (peer !== undefined) {
              return PeerId.equals(peer, p)
                ? Effect.void
                : Effect.fail(
                  new LimitExceeded({
                    scope: "connection",
                    resource: "connections",
                    limit: 1,
                    message: "the connection already belongs to another peer"
                  })
                )
            }
            const target = peerNode(PeerId.toString(p))
            return Effect.map(move(owner, transient, target), () => {
              slot = target
              peer = p
            })
          }),
        reserveMemory: (bytes) =>
          bytes <= 0 ? Effect.void : Effect.asVoid(scoped(owner, [conn, slot, system], memoryDelta(bytes))),
        openStream: (streamDirection) =>
          Effect.gen(function*() {
            const stream = node("stream", "", streamLimit)
            const streamOwner = new Set<Reservation>()
            // peer (fixed at open) and the stream's own slot: transient, then its protocol's scope
            const peerScope = slot
            let streamSlot: Node = transient
            let protocol: string | undefined
            const chain = () =>
              peerScope === transient ? [conn, streamSlot, system] : [conn, streamSlot, peerScope, system]
            yield* scoped(streamOwner, chain(), streamDelta(streamDirection))
            openStreams++
            yield* Effect.addFinalizer(() => Effect.sync(() => void openStreams--))
            const s: StreamScope = {
              direction: streamDirection,
              protocol: () => protocol,
              setProtocol: (p) =>
                Effect.suspend(() => {
                  if (protocol !== undefined) return Effect.void
                  const target = protocolNode(p)
                  return Effect.map(move(streamOwner, transient, target), () => {
                    streamSlot = target
                    protocol = p
                  })
                }),
              reserveMemory: (bytes) =>
                bytes <= 0
                  ? Effect.void
                  : Effect.asVoid(scoped(streamOwner, [stream, ...chain()], memoryDelta(bytes))),
              usage: () => snapshot(stream.usage)
            }
            return s
          }),
        usage: () => snapshot(conn.usage)
      }
      return scope
    })

  return {
    limits: {
      system: systemLimit,
      transient: transientLimit,
      peer: (p) => limitForPeer(PeerId.toString(p)),
      protocol: limitForProtocol,
      connection: connectionLimit,
      stream: streamLimit
    },
    openConnection,
    stats: () => ({
      system: snapshot(system.usage),
      transient: snapshot(transient.usage),
      peers: new Map(Array.from(peers, ([k, n]) => [k, snapshot(n.usage)])),
      protocols: new Map(Array.from(protocols, ([k, n]) => [k, snapshot(n.usage)])),
      connections: openConnections,
      streams: openStreams
    })
  }
}
