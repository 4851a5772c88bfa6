/**
 * Host: the facade a user talks to — listen, dial a peer or a multiaddr, open
 * a stream, list connections, subscribe to events.
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
 * Concurrent dials to the same peer share one in-flight dial. (Dial queues,
 * backoff and ranking come with the Dialer of the connection-management work.)
 *
 * @since 0.1.0
 */
import { Context, Deferred, Effect, Exit, Layer, PubSub, Schema, Scope } from "effect"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import type * as Connection from "../connection/Connection.ts"
import { Upgrader } from "../connection/Upgrader.ts"
import * as Dns from "../transport/Dns.ts"
import { Transports } from "../transport/Transport.ts"
import { Identity } from "./Identity.ts"
import { Peerstore } from "./Peerstore.ts"

export const DialErrorReason = Schema.Literals([
  "NoAddresses", // nothing known to dial
  "NoTransport", // no transport handles any of the addresses
  "Transport", // every transport-level dial failed (refused, timeout, unreachable)
  "Upgrade", // the connection could not be secured or multiplexed
  "PeerIdMismatch", // the remote is not the peer in the address
  "SelfDial", // the target is this node
  "Closed" // the host is shutting down
])
export type DialErrorReason = typeof DialErrorReason.Type

export class DialError extends Schema.TaggedError<DialError>()("DialError", {
  reason: DialErrorReason,
  message: Schema.String
}) {}

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  reason: Schema.Literals(["NoTransport", "Transport"]),
  address: Schema.String,
  message: Schema.String
}) {}

export type HostEvent =
  | { readonly _tag: "PeerConnect"; readonly peerId: PeerId.PeerId; readonly connection: Connection.Connection }
  | { readonly _tag: "PeerDisconnect"; readonly peerId: PeerId.PeerId }
  | { readonly _tag: "ConnectionOpen"; readonly connection: Connection.Connection }
  | { readonly _tag: "ConnectionClose"; readonly connection: Connection.Connection }
  | { readonly _tag: "Listening"; readonly addrs: ReadonlyArray<Multiaddr.Multiaddr> }

export type DialTarget = PeerId.PeerId | Multiaddr.Multiaddr

export class Host extends Context.Service<Host, {
  readonly peerId: PeerId.PeerId
  /** Start listening; listeners live as long as the Host. Returns the bound addresses. */
  readonly listen: (
    addrs: ReadonlyArray<Multiaddr.Multiaddr>
  ) => Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>, ListenError>
  /** The bound listen addresses, each ending in /p2p/<our peer id>. */
  readonly addrs: () => ReadonlyArray<Multiaddr.Multiaddr>
  /** A connection to the target: an existing one, or a new dial. */
  readonly dial: (target: DialTarget) => Effect.Effect<Connection.Connection, DialError>
  /** Dial if needed, then open a stream negotiating one of `protocols`. */
  readonly newStream: (
    target: DialTarget,
    protocols: ReadonlyArray<string>,
    options?: Connection.NewStreamOptions
  ) => Effect.Effect<Connection.Stream, DialError | Connection.ConnectionError, Scope.Scope>
  readonly connections: (peer?: PeerId.PeerId) => ReadonlyArray<Connection.Connection>
  /** Close every connection to `peer`. */
  readonly hangUp: (peer: PeerId.PeerId) => Effect.Effect<void>
  readonly events: PubSub.PubSub<HostEvent>
}>()("effect-libp2p/Host") {}

export interface HostOptions {
  /** Addresses to listen on when the layer starts. */
  readonly listen?: ReadonlyArray<Multiaddr.Multiaddr>
}

const isPeerId = (t: DialTarget): t is PeerId.PeerId => !Multiaddr.isMultiaddr(t)

export const make = (options: HostOptions = {}) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const upgrader = yield* Upgrader
    const transports = yield* Transports
    const peerstore = yield* Peerstore
    const resolver = yield* Dns.Resolver
    const hostScope = yield* Effect.scope
    const events = yield* PubSub.unbounded<HostEvent>()
    const byPeer = new Map<string, Set<Connection.Connection>>()
    const pendingDials = new Map<string, Deferred.Deferred<Connection.Connection, DialError>>()
    const listenAddrs: Array<Multiaddr.Multiaddr> = []
    let shuttingDown = false
    const selfId = PeerId.toString(identity.peerId)
    // our own peer id always forms a valid /p2p component: a failure here is a bug (defect)
    const p2p = yield* Effect.orDie(Effect.fromResult(Multiaddr.fromString(`/p2p/${selfId}`)))

    yield* Effect.addFinalizer(() => Effect.sync(() => void (shuttingDown = true)))

    /** Track a live connection until its scope closes. */
    const register = (conn: Connection.Connection) =>
      Effect.gen(function*() {
        const key = PeerId.toString(conn.remotePeer)
        let set = byPeer.get(key)
        const first = set === undefined || set.size === 0
        if (set === undefined) byPeer.set(key, set = new Set())
        set.add(conn)
        yield* peerstore.merge(conn.remotePeer, { publicKey: conn.remotePublicKey })
        yield* PubSub.publish(events, { _tag: "ConnectionOpen", connection: conn })
        if (first) yield* PubSub.publish(events, { _tag: "PeerConnect", peerId: conn.remotePeer, connection: conn })
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            set!.delete(conn)
            yield* PubSub.publish(events, { _tag: "ConnectionClose", connection: conn })
            if (set!.size === 0) {
              byPeer.delete(key)
              yield* PubSub.publish(events, { _tag: "PeerDisconnect", peerId: conn.remotePeer })
            }
          })
        )
      })

    const connections = (peer?: PeerId.PeerId): ReadonlyArray<Connection.Connection> => {
      if (peer !== undefined) return Array.from(byPeer.get(PeerId.toString(peer)) ?? []).filter((c) => !c.isClosed())
      const all: Array<Connection.Connection> = []
      for (const set of byPeer.values()) for (const c of set) if (!c.isClosed()) all.push(c)
      return all
    }

    const dialAddr = (addr: Multiaddr.Multiaddr, expected: PeerId.PeerId | undefined) =>
      Effect.gen(function*() {
        const transport = transports.find((t) => t.canDial(addr))
        if (transport === undefined) {
          return yield* new DialError({ reason: "NoTransport", message: `no transport for ${Multiaddr.toString(addr)}` })
        }
        const connScope = yield* Scope.fork(hostScope)
        const conn = yield* Effect.gen(function*() {
          const raw = yield* transport.dial(addr).pipe(
            Effect.mapError((e) =>
              new DialError({ reason: "Transport", message: `${Multiaddr.toString(addr)}: ${e.reason}: ${e.message}` })
            )
          )
          const conn = yield* upgrader.upgradeOutbound(raw, expected !== undefined ? { remotePeer: expected } : {}).pipe(
            Effect.mapError((e) =>
              new DialError({
                reason: e.reason === "PeerIdMismatch" ? "PeerIdMismatch" : "Upgrade",
                message: `${Multiaddr.toString(addr)}: ${e.reason}: ${e.message}`
              })
            )
          )
          yield* register(conn)
          return conn
        }).pipe(
          Scope.provide(connScope),
          Effect.onError((cause) => Scope.close(connScope, Exit.failCause(cause)))
        )
        // When the connection ends, release its scope (socket, fibers).
        yield* Effect.forkIn(
          Effect.andThen(conn.closed, Scope.close(connScope, Exit.void)),
          hostScope
        )
        return conn
      })

    /** `/dnsaddr` addresses replaced by what they link to; a link that resolves to nothing adds to `errors`. */
    const expandDnsaddr = (addrs: ReadonlyArray<Multiaddr.Multiaddr>, errors: Array<string>) =>
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
          else errors.push(`${Multiaddr.toString(addr)}: ${resolved.failure.reason}: ${resolved.failure.message}`)
        }
        return out
      })

    /** The peer an address names with `/p2p/<id>`, if any. */
    const peerIn = (addr: Multiaddr.Multiaddr): PeerId.PeerId | undefined => {
      const id = Multiaddr.getPeerId(addr)
      const parsed = id === undefined ? undefined : PeerId.fromString(id)
      return parsed !== undefined && parsed._tag === "Success" ? parsed.success : undefined
    }

    const dialNew = (peer: PeerId.PeerId | undefined, addrs: ReadonlyArray<Multiaddr.Multiaddr>) =>
      Effect.gen(function*() {
        if (addrs.length === 0) {
          return yield* new DialError({ reason: "NoAddresses", message: "no addresses to dial" })
        }
        const errors: Array<string> = []
        const targets = yield* expandDnsaddr(addrs, errors)
        if (targets.length === 0) {
          return yield* new DialError({ reason: "NoAddresses", message: errors.join("; ") || "no addresses to dial" })
        }
        let last: DialError | undefined
        for (const addr of targets) {
          const result = yield* Effect.result(dialAddr(addr, peer ?? peerIn(addr)))
          if (result._tag === "Success") return result.success
          last = result.failure
          errors.push(result.failure.message)
          if (result.failure.reason === "PeerIdMismatch") break
        }
        return yield* new DialError({
          reason: targets.length === 1 && errors.length === 1 && last !== undefined ? last.reason : "Transport",
          message: errors.join("; ")
        })
      })

    const dial = (target: DialTarget): Effect.Effect<Connection.Connection, DialError> =>
      Effect.gen(function*() {
        if (shuttingDown) return yield* new DialError({ reason: "Closed", message: "host is shutting down" })
        let peer: PeerId.PeerId | undefined
        let addrs: ReadonlyArray<Multiaddr.Multiaddr>
        if (isPeerId(target)) {
          peer = target
          addrs = peerstore.get(target)?.addrs ?? []
        } else {
          const id = Multiaddr.getPeerId(target)
          if (id !== undefined) {
            const parsed = PeerId.fromString(id)
            if (parsed._tag === "Failure") {
              return yield* new DialError({ reason: "NoAddresses", message: `bad /p2p peer id in ${Multiaddr.toString(target)}` })
            }
            peer = parsed.success
          }
          addrs = [target]
        }
        if (peer !== undefined && PeerId.equals(peer, identity.peerId)) {
          return yield* new DialError({ reason: "SelfDial", message: "cannot dial self" })
        }
        if (peer === undefined) return yield* dialNew(undefined, addrs)
        const existing = connections(peer)[0]
        if (existing !== undefined) return existing
        const key = PeerId.toString(peer)
        const pending = pendingDials.get(key)
        if (pending !== undefined) return yield* Deferred.await(pending)
        const deferred = yield* Deferred.make<Connection.Connection, DialError>()
        pendingDials.set(key, deferred)
        return yield* dialNew(peer, addrs).pipe(
          Effect.onExit((exit) => {
            pendingDials.delete(key)
            return Deferred.done(deferred, exit)
          })
        )
      })

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
          const listener = yield* transport.listen(addr, (raw) =>
            Effect.gen(function*() {
              const conn = yield* upgrader.upgradeInbound(raw)
              yield* register(conn)
              yield* conn.closed
            }).pipe(
              Effect.catchCause((cause) => Effect.logDebug("inbound connection failed", cause))
            )
          ).pipe(
            Scope.provide(hostScope),
            Effect.mapError((e) =>
              new ListenError({ reason: "Transport", address: Multiaddr.toString(addr), message: e.message })
            )
          )
          bound.push(...listener.addrs)
        }
        listenAddrs.push(...bound)
        yield* PubSub.publish(events, { _tag: "Listening", addrs: bound })
        return bound
      })

    const service = Host.of({
      peerId: identity.peerId,
      listen,
      addrs: () => listenAddrs.map((a) => Multiaddr.encapsulate(a, p2p)),
      dial,
      newStream: (target, protocols, opts) =>
        Effect.flatMap(dial(target), (conn) => conn.newStream(protocols, opts)),
      connections,
      hangUp: (peer) => Effect.forEach(connections(peer), (c) => c.close, { discard: true, concurrency: "unbounded" }),
      events
    })
    if (options.listen !== undefined && options.listen.length > 0) {
      yield* listen(options.listen)
    }
    return service
  })

export const layer = (options: HostOptions = {}) => Layer.effect(Host, make(options))
