/**
 * Host: the facade a user talks to — listen, dial a peer or a multiaddr, open
 * a stream, list connections, subscribe to events, run a handler on every
 * connection (`onConnection`: how a protocol keeps per-connection or per-peer
 * state, living and dying with the connection).
 *
 * Connections live in scopes owned by the Host: closing the Host's scope
 * (removing its Layer) closes every listener and connection. Each outbound
 * connection has a child scope of the Host's; each inbound one lives in the
 * scope its listener gives it. A connection that ends for any reason is
 * removed and `peer:disconnect` is published when it was the peer's last.
 *
 * A `/dnsaddr` address is expanded through the `Dns.Resolver` into the
 * addresses it links to (addressing spec §dnsaddr Links) before dialing;
 * `/dns*` names are left to the transports (a TLS or WebSocket transport needs
 * the name). An expanded address that carries `/p2p/<id>` must be that peer.
 *
 * Connection management: new connections go through the {@link Dialer}
 * (one in-flight dial per peer, a global dial queue, Happy Eyeballs ranking,
 * per-address timeouts and backoff); every connection, inbound or outbound,
 * first takes a slot from the {@link ConnectionManager} (the hard cap,
 * checked before the security handshake) and a connection scope from the
 * {@link ResourceManager} (connection and stream limits), and is tracked by the
 * ConnectionManager for trimming while it lives.
 *
 * Peer routing (go's `routedhost`, js's dial queue): dialing a peer id the
 * peer store has no address for asks the {@link PeerRouting} registered with
 * `useRouting` (or {@link layerRouting}) — Kad-DHT, Delegated Routing —
 * stores what it finds as `routing` addresses and dials them; with no router,
 * or when it finds nothing, the dial fails `NoAddresses` with the router's
 * error as its cause. The router's own dials, and dials inside
 * {@link withoutRouting} (a DHT asking the peers of a lookup), never ask it.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option, PubSub, Schema, Scope, Stream } from "effect"
import * as Connection from "../connection/Connection.ts"
import { ConnectionManager } from "../connection/ConnectionManager.ts"
import * as Dialer from "../connection/Dialer.ts"
import { DialError } from "../connection/Dialer.ts"
import { ResourceManager } from "../connection/ResourceManager.ts"
import { Upgrader } from "../connection/Upgrader.ts"
import { Identity } from "../core/Identity.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as MultiaddrNet from "../core/MultiaddrNet.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Metrics from "../internal/metrics.ts"
import * as Release from "../internal/release.ts"
import * as Spans from "../internal/spans.ts"
import { PeerRouting } from "../routing/PeerRouting.ts"
import * as Dns from "../transport/Dns.ts"
import * as Transport from "../transport/Transport.ts"
import { Transports } from "../transport/Transport.ts"
import { AddressManager } from "./AddressManager.ts"
import * as HostMetrics from "./metrics.ts"
import { Peerstore } from "./Peerstore.ts"

/** The Dialer's error: `reason` is one of {@link Dialer.DialErrorReason}, the lower error itself where there is one. */
export { DialError }
export { DialErrorReason } from "../connection/Dialer.ts"

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  reason: Schema.Literals(["NoTransport", "Transport"]),
  address: Schema.String,
  message: Schema.String,
  /** `Transport`: the transport's own error (its `reason`, e.g. `AddressInUse`, and the socket's error). */
  cause: Schema.optional(Transport.TransportError)
}) {}

export type HostEvent =
  | { readonly _tag: "PeerConnect"; readonly peerId: PeerId.PeerId; readonly connection: Connection.Connection }
  /** `reason`: why the peer's last connection ended. */
  | { readonly _tag: "PeerDisconnect"; readonly peerId: PeerId.PeerId; readonly reason: Connection.CloseReason }
  | { readonly _tag: "ConnectionOpen"; readonly connection: Connection.Connection }
  | {
    readonly _tag: "ConnectionClose"
    readonly connection: Connection.Connection
    readonly reason: Connection.CloseReason
  }
  | { readonly _tag: "Listening"; readonly addrs: ReadonlyArray<Multiaddr.Multiaddr> }

/** Events buffered for a subscriber that lags (sliding: beyond it the oldest are dropped). */
export const EVENTS_BUFFER = 1024

export type DialTarget = PeerId.PeerId | Multiaddr.Multiaddr

export interface DialOptions {
  /** Dial even addresses that are backing off after failures. */
  readonly force?: boolean
}

/** How {@link Host} `dialDirect` dials (hole punching). */
export interface DirectDialOptions {
  /** The peer the connection must authenticate as. */
  readonly peer: PeerId.PeerId
  /** The upgrade's role (`Upgrader.UpgradeOptions.role`); default: initiator, as for every outbound connection. */
  readonly role?: "initiator" | "responder"
  /** Leave from a listening port (`Transport.DialOptions.fromListenPort`: TCP with `reusePort`). */
  readonly fromListenPort?: boolean
  /** The transport's dial deadline. */
  readonly timeout?: Duration.Input
}

export class Host extends Context.Service<Host, {
  readonly peerId: PeerId.PeerId
  /** Start listening; listeners live as long as the Host. Returns the bound addresses. */
  readonly listen: (
    addrs: ReadonlyArray<Multiaddr.Multiaddr>
  ) => Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>, ListenError>
  /** The bound listen addresses, each ending in /p2p/<our peer id>. */
  readonly addrs: () => ReadonlyArray<Multiaddr.Multiaddr>
  /** A connection to the target: an existing one, or a new dial. */
  readonly dial: (target: DialTarget, options?: DialOptions) => Effect.Effect<Connection.Connection, DialError>
  /**
   * One dial of one address, now: not through the Dialer (no queue, no
   * backoff, no reuse of an existing connection — there is one, the relayed
   * connection a hole punch upgrades from), with the upgrade's role and the
   * transport options a TCP simultaneous open needs. The connection is
   * registered like every other one (hooks, events, connection manager).
   */
  readonly dialDirect: (
    addr: Multiaddr.Multiaddr,
    options: DirectDialOptions
  ) => Effect.Effect<Connection.Connection, DialError>
  /** Dial if needed, then open a stream negotiating one of `protocols`. */
  readonly newStream: (
    target: DialTarget,
    protocols: ReadonlyArray<string>,
    options?: Connection.NewStreamOptions
  ) => Effect.Effect<Connection.Stream, DialError | Connection.ConnectionError, Scope.Scope>
  readonly connections: (peer?: PeerId.PeerId) => ReadonlyArray<Connection.Connection>
  /** Close every connection to `peer`. */
  readonly hangUp: (peer: PeerId.PeerId) => Effect.Effect<void>
  /**
   * The host's events from the moment the stream is run (each run is a
   * subscription of its own; what happens before it subscribes is not seen).
   * Buffered per subscriber up to {@link EVENTS_BUFFER}: a subscriber that
   * falls further behind loses the oldest events (sliding).
   */
  readonly events: Stream.Stream<HostEvent>
  /**
   * Subscribe now: the stream it returns has every event from the moment
   * `subscribe` returned (nothing is missed between subscribing and running
   * the stream), while the current scope lasts. Same buffer as `events`.
   */
  readonly subscribe: Effect.Effect<Stream.Stream<HostEvent>, never, Scope.Scope>
  /**
   * Run `handler` for every connection, inbound and outbound — those open now
   * and every later one — while the current scope lasts (when it closes, no
   * new connection starts it). Each run is a fiber in the connection's scope,
   * started with the connection (before `dial` returns it or `ConnectionOpen`
   * is published); it is interrupted when the connection closes or this
   * registration ends. What the handler acquires in its `Scope` (finalizers,
   * per-connection state) is the connection's: released when the connection
   * closes. A failure or defect of the handler is logged; the connection
   * stays open. A run that has ended costs an idle connection nothing.
   */
  readonly onConnection: (handler: ConnectionHandler) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Ask `routing` for the addresses of a peer id `dial` has none for, while
   * the current scope lasts (the latest registration is asked). See
   * {@link layerRouting}.
   */
  readonly useRouting: (routing: PeerRouting["Service"]) => Effect.Effect<void, never, Scope.Scope>
  /** The dialer: dials in flight, the queue, backoffs. */
  readonly dialer: Dialer.Dialer
  /** Bytes read and written by all connections so far, closed ones included (those whose transport counts them). */
  readonly bytes: () => { readonly read: number; readonly written: number }
  /**
   * Data bytes of all streams so far, closed ones included, by protocol label
   * (the protocol when registered, else "other"), as the muxers count them.
   */
  readonly streamBytes: () => ReadonlyMap<string, Connection.ByteTotals>
}>()("effect-libp2p/Host") {}

export interface HostOptions {
  /** Addresses to listen on when the layer starts. */
  readonly listen?: ReadonlyArray<Multiaddr.Multiaddr>
  /** Dial concurrency, timeouts, backoff and ranking. */
  readonly dialer?: Dialer.DialerOptions
}

/**
 * Whether a dial of a peer id with no known address may ask peer routing
 * (default true). {@link withoutRouting} turns it off for an effect.
 */
export const DialRouting = Context.Reference<boolean>("effect-libp2p/Host/DialRouting", { defaultValue: () => true })

/** Run `self` with dials that never ask peer routing (a router's own dials: no lookup inside a lookup). */
export const withoutRouting = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, DialRouting, false)

/** A lower layer's failure, kept as the dial's reason. */
const dialError = (reason: Dialer.DialErrorReason) => new DialError({ reason })

const isPeerId = (t: DialTarget): t is PeerId.PeerId => !Multiaddr.isMultiaddr(t)

/**
 * What runs for every connection, inbound and outbound, in the connection's
 * scope (rust's `handle_established_*_connection`): register it with
 * `host.onConnection`.
 */
export type ConnectionHandler = (connection: Connection.Connection) => Effect.Effect<void, never, Scope.Scope>

/** One `onConnection` registration and its runs still going. */
class ConnectionHook {
  readonly handler: ConnectionHandler
  /** Its registration scope closed: it starts on no more connections. */
  removed = false
  /** The runs still going, made on the first. */
  running: Set<Fiber.Fiber<void>> | undefined = undefined
  constructor(handler: ConnectionHandler) {
    this.handler = handler
  }
}

/**
 * A live connection in the Host's table: added at once, removed (with
 * `ConnectionClose`, and `PeerDisconnect` for the peer's last) when the
 * connection's scope closes. The events PubSub slides, so publishing never
 * waits.
 */
class Registration implements Release.Releasable {
  /** The open connections by peer (`PeerId.mapKey`: no base58 per lookup). */
  readonly byPeer: Map<string, Set<Registration>>
  readonly events: PubSub.PubSub<HostEvent>
  readonly conn: Connection.Connection
  /** The connection's scope: the `onConnection` handlers run in it. */
  readonly scope: Scope.Scope
  readonly key: string
  /** The peer's first connection. */
  readonly first: boolean
  /** Through a relay (`/p2p-circuit`): direct connections are preferred (see `connections`). */
  readonly relayed: boolean
  readonly metrics: Metrics.Recorder
  readonly closedBytes: { read: number; written: number }
  constructor(
    byPeer: Map<string, Set<Registration>>,
    events: PubSub.PubSub<HostEvent>,
    conn: Connection.Connection,
    scope: Scope.Scope,
    metrics: Metrics.Recorder,
    closedBytes: { read: number; written: number }
  ) {
    this.metrics = metrics
    this.closedBytes = closedBytes
    this.byPeer = byPeer
    this.events = events
    this.conn = conn
    this.scope = scope
    this.relayed = MultiaddrNet.isRelayed(conn.remoteAddr)
    const key = this.key = PeerId.mapKey(conn.remotePeer)
    let set = byPeer.get(key)
    this.first = set === undefined || set.size === 0
    if (set === undefined) byPeer.set(key, set = new Set())
    set.add(this)
  }
  release(): void {
    const conn = this.conn
    const set = this.byPeer.get(this.key)
    if (set === undefined || !set.delete(this)) return
    const reason = conn.closeReason?.() ?? "local"
    this.metrics.update(HostMetrics.connectionsClosed.with(...HostMetrics.labelsOf(conn), reason), 1)
    const bytes = conn.bytes()
    if (bytes !== undefined) {
      this.closedBytes.read += bytes.read
      this.closedBytes.written += bytes.written
    }
    PubSub.publishUnsafe(this.events, { _tag: "ConnectionClose", connection: conn, reason })
    if (set.size === 0) {
      this.byPeer.delete(this.key)
      PubSub.publishUnsafe(this.events, { _tag: "PeerDisconnect", peerId: conn.remotePeer, reason })
    }
  }
}

/**
 * Run `hook` on the connection of `reg`, in a fiber in the connection's scope,
 * started at once (what the handler does before its first wait is done before
 * the connection is handed out). The connection's end or the hook's removal
 * interrupts it; once it ends nothing of it is kept (an idle connection keeps
 * no fiber). Failures and defects are logged.
 */
const startHook = (hook: ConnectionHook, reg: Registration): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (hook.removed || reg.scope.state._tag === "Closed") return Effect.void
    const run = Effect.suspend(() => hook.handler(reg.conn)).pipe(
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause)
          ? Effect.void
          : Effect.logWarning("onConnection handler failed (the connection stays open)", cause)
      ),
      Scope.provide(reg.scope)
    )
    return Effect.map(Effect.forkIn(run, reg.scope, { startImmediately: true }), (fiber) => {
      if (fiber.pollUnsafe() !== undefined) return
      const running = hook.running ??= new Set()
      running.add(fiber)
      fiber.addObserver(() => {
        running.delete(fiber)
        if (running.size === 0 && hook.running === running) hook.running = undefined
      })
    })
  })

export const make = (options: HostOptions = {}) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const upgrader = yield* Upgrader
    const transports = yield* Transports
    const peerstore = yield* Peerstore
    const resolver = yield* Dns.Resolver
    const connectionManager = yield* ConnectionManager
    const resourceManager = yield* ResourceManager
    const hostScope = yield* Effect.scope
    const metrics = yield* Metrics.recorder
    const tracer = yield* Effect.tracer
    /** Bytes of the connections that have closed (the open ones are read from their transports). */
    const closedBytes = { read: 0, written: 0 }
    const events = yield* PubSub.sliding<HostEvent>(EVENTS_BUFFER)
    const byPeer = new Map<string, Set<Registration>>()
    let hooks: ReadonlyArray<ConnectionHook> = []
    const listenAddrs: Array<Multiaddr.Multiaddr> = []
    /** The routers registered with `useRouting`, the latest last. */
    const routers: Array<PeerRouting["Service"]> = []
    let shuttingDown = false
    const selfId = PeerId.toString(identity.peerId)
    // our own peer id always forms a valid /p2p component: a failure here is a bug (defect)
    const p2p = yield* Effect.orDie(Effect.fromResult(Multiaddr.fromString(`/p2p/${selfId}`)))

    yield* Effect.addFinalizer(() => Effect.sync(() => void (shuttingDown = true)))

    // the connection manager's tags and protection outlive a restart in the peerstore:
    // restored first, then every change is written through
    yield* Effect.forEach(peerstore.all(), (info) =>
      Effect.gen(function*() {
        for (const [name, value] of Object.entries(info.tags)) {
          yield* connectionManager.tagPeer(info.peerId, name, value)
        }
        for (const tag of info.protectedBy) yield* connectionManager.protect(info.peerId, tag)
      }), { discard: true })
    yield* connectionManager.onChange((change) =>
      change._tag === "Tag"
        ? peerstore.tag(change.peerId, change.tag, change.value)
        : change._tag === "Protect"
        ? peerstore.protect(change.peerId, change.tag)
        : peerstore.unprotect(change.peerId, change.tag)
    )

    /** Track a live connection (living in `scope`) until its scope closes; start the hooks on it. */
    const register = (conn: Connection.Connection, scope: Scope.Scope) =>
      Effect.gen(function*() {
        const registration = yield* Release.acquire(() =>
          new Registration(byPeer, events, conn, scope, metrics, closedBytes)
        )
        metrics.update(HostMetrics.connectionsOpened.with(...HostMetrics.labelsOf(conn)), 1)
        yield* connectionManager.track(conn)
        yield* peerstore.connected(conn.remotePeer, {
          publicKey: conn.remotePublicKey,
          // an inbound connection's remote address is an ephemeral port: its identify listen addresses are kept
          ...(conn.direction === "outbound" ? { addr: conn.remoteAddr } : {})
        })
        yield* Scope.addFinalizerExit(scope, () => {
          const set = byPeer.get(registration.key)
          const others = set === undefined ? 0 : set.size - (set.has(registration) ? 1 : 0)
          return others === 0 ? peerstore.disconnected(conn.remotePeer) : Effect.void
        })
        for (const hook of hooks) yield* startHook(hook, registration)
        yield* PubSub.publish(events, { _tag: "ConnectionOpen", connection: conn })
        if (registration.first) {
          yield* PubSub.publish(events, { _tag: "PeerConnect", peerId: conn.remotePeer, connection: conn })
        }
      })

    const connections = (peer?: PeerId.PeerId): ReadonlyArray<Connection.Connection> => {
      const direct: Array<Connection.Connection> = []
      let relayed: Array<Connection.Connection> | undefined
      const add = (set: Set<Registration> | undefined) => {
        if (set === undefined) return
        for (const r of set) {
          if (r.conn.isClosed()) continue
          if (r.relayed) (relayed ??= []).push(r.conn)
          else direct.push(r.conn)
        }
      }
      if (peer !== undefined) add(byPeer.get(PeerId.mapKey(peer)))
      else for (const set of byPeer.values()) add(set)
      // direct connections first: `dial` and `newStream` take the first, so once a hole punch (DCUtR) made a
      // direct connection, new streams go there rather than through the relay (each group in its order)
      return relayed === undefined ? direct : direct.concat(relayed)
    }

    /** The connection `dial` takes for the peer of `key` (`PeerId.mapKey`): the first open one, direct first. */
    const openConnection = (key: string): Connection.Connection | undefined => {
      const set = byPeer.get(key)
      if (set === undefined) return undefined
      let relayed: Connection.Connection | undefined
      for (const r of set) {
        if (r.conn.isClosed()) continue
        if (!r.relayed) return r.conn
        relayed ??= r.conn
      }
      return relayed
    }

    const onConnection = (handler: ConnectionHandler): Effect.Effect<void, never, Scope.Scope> =>
      Effect.uninterruptible(Effect.suspend(() => {
        const hook = new ConnectionHook(handler)
        hooks = Release.append(hooks, hook)
        // the connections open now (a connection registered from here on starts the hook itself)
        const open: Array<Registration> = []
        for (const set of byPeer.values()) for (const r of set) open.push(r)
        return Effect.andThen(
          Effect.addFinalizer(() =>
            Effect.suspend(() => {
              hook.removed = true
              hooks = hooks.filter((h) => h !== hook)
              const running = hook.running
              return running === undefined ? Effect.void : Fiber.interruptAll(Array.from(running))
            })
          ),
          Effect.forEach(open, (r) => startHook(hook, r), { discard: true })
        )
      }))

    /** `/dnsaddr` addresses replaced by what they link to; a link that resolves to nothing adds to `errors`. */
    const expandDnsaddr = (addrs: ReadonlyArray<Multiaddr.Multiaddr>, errors: Array<Dns.DnsError>) =>
      Effect.gen(function*() {
        const out: Array<Multiaddr.Multiaddr> = []
        for (const addr of addrs) {
          if (addr.components[0]?.code !== Multiaddr.codes.dnsaddr) {
            out.push(addr)
            continue
          }
          const resolved = yield* Effect.result(
            Effect.provideService(Dns.resolveMultiaddr(addr, { dns: false }), Dns.Resolver, resolver)
          )
          if (resolved._tag === "Success") out.push(...resolved.success)
          else errors.push(resolved.failure)
        }
        return out
      })

    /** The peer an address names with `/p2p/<id>`, if any. */
    const peerIn = (addr: Multiaddr.Multiaddr): PeerId.PeerId | undefined => {
      const id = Multiaddr.getPeerIdBytes(addr)
      const parsed = id === undefined ? undefined : PeerId.fromBytes(id)
      return parsed !== undefined && parsed._tag === "Success" ? parsed.success : undefined
    }

    /**
     * One address, for the Dialer, inside the scope the Dialer gives the
     * connection: a connection-manager slot, a resource-manager connection
     * scope, the transport dial, the upgrade (checking the expected peer).
     * The connection owns that scope: it closes it when it ends.
     */
    const connect: Dialer.Connect = (addr, peer, scope) =>
      Effect.onExit(
        connectOnce(addr, peer, scope).pipe(
          Spans.withSpan("libp2p.dial", {
            attributes: { "libp2p.addr": Multiaddr.toString(addr), "libp2p.transport": HostMetrics.transportOf(addr) }
          }),
          // the node's tracer (what its layer was built with), also when the dial runs in a caller's fiber
          Effect.withTracer(tracer)
        ),
        (exit) =>
          Effect.sync(() => {
            const outcome = exit._tag === "Success"
              ? "success"
              : Cause.hasInterruptsOnly(exit.cause)
              ? "cancelled"
              : Metrics.kindOf(Option.getOrUndefined(Cause.findErrorOption(exit.cause))?.reason ?? { _tag: "Defect" })
            metrics.update(HostMetrics.dialAttempts.with(HostMetrics.transportOf(addr), outcome), 1)
          })
      )

    const connectOnce = (
      addr: Multiaddr.Multiaddr,
      peer: PeerId.PeerId | undefined,
      scope: Scope.Closeable,
      direct?: DirectDialOptions
    ) =>
      Effect.gen(function*() {
        const expected = peer ?? peerIn(addr)
        const transport = transports.find((t) => t.canDial(addr))
        if (transport === undefined) {
          return yield* dialError(new Dialer.NoTransport({ message: `no transport for ${Multiaddr.toString(addr)}` }))
        }
        yield* Effect.mapError(connectionManager.reserve("outbound", addr, expected), dialError)
        const resources = yield* Effect.mapError(resourceManager.openConnection("outbound"), dialError)
        const raw = yield* Effect.mapError(
          transport.dial(
            addr,
            direct === undefined ? undefined : {
              ...(direct.fromListenPort !== undefined ? { fromListenPort: direct.fromListenPort } : {}),
              ...(direct.timeout !== undefined ? { timeout: direct.timeout } : {})
            }
          ),
          dialError
        )
        // the connection closes the dialer's scope for it when it ends
        const conn = yield* upgrader.upgradeOutbound(raw, {
          resources,
          scope,
          ...(direct?.role !== undefined ? { role: direct.role } : {}),
          ...(expected !== undefined ? { remotePeer: expected } : {})
        }).pipe(Effect.mapError(dialError))
        yield* register(conn, scope)
        return conn
      })

    const dialer = yield* Dialer.make(connect, options.dialer)

    const dialDirect = (
      addr: Multiaddr.Multiaddr,
      direct: DirectDialOptions
    ): Effect.Effect<Connection.Connection, DialError> =>
      Effect.gen(function*() {
        if (shuttingDown) return yield* dialError(new Dialer.HostClosed())
        const scope = yield* Scope.fork(hostScope)
        return yield* connectOnce(addr, direct.peer, scope, direct).pipe(
          Scope.provide(scope),
          Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit)))
        )
      }).pipe(Spans.withSpan("libp2p.dialDirect"), Effect.withTracer(tracer))

    const dialNew = (
      peer: PeerId.PeerId | undefined,
      addrs: ReadonlyArray<Multiaddr.Multiaddr>,
      force: boolean
    ) =>
      Effect.gen(function*() {
        if (addrs.length === 0) {
          return yield* dialError(new Dialer.NoAddresses({ message: "no addresses to dial" }))
        }
        const errors: Array<Dns.DnsError> = []
        const expanded = yield* expandDnsaddr(addrs, errors)
        if (expanded.length === 0) {
          const message = errors.map((e) => `${e.reason}: ${e.message}`).join("; ") || "no addresses to dial"
          return yield* dialError(new Dialer.NoAddresses({ message, dns: errors }))
        }
        const targets = expanded.filter((a) => transports.some((t) => t.canDial(a)))
        if (targets.length === 0) {
          return yield* dialError(
            new Dialer.NoTransport({ message: `no transport for ${expanded.map(Multiaddr.toString).join(", ")}` })
          )
        }
        return yield* dialer.dial({ ...(peer !== undefined ? { peer } : {}), addrs: targets, force })
      })

    const dial = (target: DialTarget, dialOptions?: DialOptions): Effect.Effect<Connection.Connection, DialError> =>
      Effect.gen(function*() {
        if (shuttingDown) return yield* dialError(new Dialer.HostClosed())
        let peer: PeerId.PeerId | undefined
        let addrs: ReadonlyArray<Multiaddr.Multiaddr>
        if (isPeerId(target)) {
          peer = target
          addrs = peerstore.get(target)?.addrs ?? []
        } else {
          const id = Multiaddr.getPeerIdBytes(target)
          if (id !== undefined) {
            // already connected to that peer id: no need to decode it (its public key) again
            const open = openConnection(PeerId.mapKeyOfBytes(id))
            if (open !== undefined) return open
            const parsed = PeerId.fromBytes(id)
            if (parsed._tag === "Failure") {
              return yield* dialError(
                new Dialer.NoAddresses({ message: `bad /p2p peer id in ${Multiaddr.toString(target)}` })
              )
            }
            peer = parsed.success
          }
          addrs = [target]
        }
        if (peer !== undefined && PeerId.equals(peer, identity.peerId)) {
          return yield* dialError(new Dialer.SelfDial())
        }
        const force = dialOptions?.force === true
        if (peer === undefined) return yield* dialNew(undefined, addrs, force)
        const existing = openConnection(PeerId.mapKey(peer))
        if (existing !== undefined) return existing
        if (addrs.length === 0 && isPeerId(target)) addrs = yield* routed(peer)
        return yield* dialNew(peer, addrs, force)
      })

    /** The addresses peer routing finds for `peer` (kept in the peer store as `routing` addresses). */
    const routed = (peer: PeerId.PeerId): Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>, DialError> =>
      Effect.gen(function*() {
        const routing = routers.at(-1)
        if (routing === undefined || !(yield* DialRouting)) return []
        return yield* withoutRouting(routing.findPeer(peer)).pipe(
          Effect.tap((info) => peerstore.merge(peer, { addrs: info.addrs, addrSource: "routing" })),
          Effect.map((info) => info.addrs),
          Effect.catchTag("RoutingError", (e) =>
            dialError(
              new Dialer.NoAddresses({
                message: `no addresses known for ${PeerId.toString(peer)}; peer routing: ${e.message}`,
                cause: e
              })
            )),
          Spans.withSpan("libp2p.dial.findPeer", { attributes: { peer: PeerId.toString(peer) } }),
          Effect.withTracer(tracer)
        )
      })

    const useRouting = (routing: PeerRouting["Service"]): Effect.Effect<void, never, Scope.Scope> =>
      Effect.acquireRelease(
        Effect.sync(() => void routers.push(routing)),
        () =>
          Effect.sync(() => {
            const i = routers.lastIndexOf(routing)
            if (i >= 0) routers.splice(i, 1)
          })
      )

    /**
     * An inbound connection, in the scope its listener gives it: the hard cap
     * and the transient limits apply before the security handshake; once
     * upgraded and registered the connection owns that scope (it closes it when
     * it ends), so no fiber waits for it.
     */
    const inbound: Transport.Handler = (raw, scope) => {
      let peer = "unknown" // known once the security handshake authenticated the remote
      return connectionManager.reserve("inbound", raw.remoteAddr).pipe(
        Effect.andThen(resourceManager.openConnection("inbound", { remoteAddr: raw.remoteAddr })),
        Effect.flatMap((resources) => upgrader.upgradeInbound(raw, { resources, scope })),
        Effect.tap((conn) => Effect.sync(() => void (peer = PeerId.toString(conn.remotePeer)))),
        Effect.flatMap((conn) => register(conn, scope)),
        Effect.as(Transport.KeepOpen),
        Effect.catchCause((cause) =>
          Effect.as(
            Effect.logDebug(
              `inbound connection from ${Multiaddr.toString(raw.remoteAddr)} (peer ${peer}) failed`,
              cause
            ),
            undefined
          )
        )
      )
    }

    /** Listen addresses go to the AddressManager when the node has one (the presets do). */
    const addressManager = yield* Effect.serviceOption(AddressManager)

    const listen = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) =>
      Effect.gen(function*() {
        const bound: Array<Multiaddr.Multiaddr> = []
        for (const addr of addrs) {
          const transport = transports.find((t) => t.canListen(addr))
          if (transport === undefined) {
            return yield* new ListenError({
              reason: "NoTransport",
              address: Multiaddr.toString(addr),
              message: "no transport can listen on this address"
            })
          }
          const listener = yield* transport.listen(addr, inbound).pipe(
            Scope.provide(hostScope),
            Effect.mapError((e) =>
              new ListenError({ reason: "Transport", address: Multiaddr.toString(addr), message: e.message, cause: e })
            )
          )
          bound.push(...listener.addrs)
        }
        listenAddrs.push(...bound)
        if (addressManager._tag === "Some") yield* addressManager.value.addListenAddrs(bound)
        yield* PubSub.publish(events, { _tag: "Listening", addrs: bound })
        return bound
      })

    const service = Host.of({
      peerId: identity.peerId,
      listen,
      addrs: () => listenAddrs.map((a) => Multiaddr.encapsulate(a, p2p)),
      dial,
      newStream: (target, protocols, opts) => Effect.flatMap(dial(target), (conn) => conn.newStream(protocols, opts)),
      connections,
      dialDirect,
      hangUp: (peer) => Effect.forEach(connections(peer), (c) => c.close, { discard: true, concurrency: "unbounded" }),
      events: Stream.fromPubSub(events),
      subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription),
      onConnection,
      useRouting,
      dialer,
      bytes: () => {
        let read = closedBytes.read
        let written = closedBytes.written
        for (const set of byPeer.values()) {
          for (const r of set) {
            const b = r.conn.bytes()
            if (b !== undefined) {
              read += b.read
              written += b.written
            }
          }
        }
        return { read, written }
      },
      streamBytes: () => {
        const totals = new Map<string, Connection.ByteTotals>()
        for (const [key, t] of upgrader.closedStreamBytes()) Connection.addBytes(totals, key, t)
        for (const set of byPeer.values()) for (const r of set) r.conn.streamBytes?.(totals)
        return totals
      }
    })
    if (options.listen !== undefined && options.listen.length > 0) {
      yield* listen(options.listen)
    }
    return service
  })

export const layer = (options: HostOptions = {}) => Layer.effect(Host, make(options))

/**
 * The Host asks the {@link PeerRouting} in context for the addresses of peers
 * it has none for (go's `routedhost.Wrap`), while this layer lives:
 * `Host.layerRouting.pipe(Layer.provide(Kad.layerPeerRouting))`.
 */
export const layerRouting: Layer.Layer<never, never, Host | PeerRouting> = Layer.effectDiscard(
  Effect.gen(function*() {
    const host = yield* Host
    yield* host.useRouting(yield* PeerRouting)
  })
)
