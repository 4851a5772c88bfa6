/**
 * Stack presets: the Layers a user imports to get a working node.
 *
 * `Default(options)` is a node on TCP, WebSocket and Unix socket transports
 * with Noise and Yamux, identify, ping, perf and the circuit relay v2 client
 * (docs/ARCHITECTURE.md §2.1,
 * §3, §4). Swapping a piece is swapping its entry: the transports, secure
 * channels and muxers are plain lists in preference order.
 *
 * ```ts
 * import { Effect } from "effect"
 * import * as Multiaddr from "../src/core/Multiaddr.ts"
 * import { Ping } from "../src/protocols/ping/Ping.ts"
 * import { Default } from "./Node.ts"
 *
 * const program = Effect.gen(function*() {
 *   const ping = yield* Ping
 *   const target = yield* Effect.fromResult(Multiaddr.fromString("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…"))
 *   const rtts = yield* ping.ping(target, { count: 3 })
 *   yield* Effect.log(`round trips: ${rtts.join(", ")} ms`)
 * }).pipe(Effect.provide(Default()))
 * ```
 *
 * Without `listen` this is a client node; `listen` takes parsed addresses
 * (`Multiaddr.Multiaddr` values), not strings.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, Layer, Metric } from "effect"
import * as ConnectionManager from "../src/connection/ConnectionManager.ts"
import type * as Dialer from "../src/connection/Dialer.ts"
import * as Registrar from "../src/connection/Registrar.ts"
import * as ResourceManager from "../src/connection/ResourceManager.ts"
import * as Upgrader from "../src/connection/Upgrader.ts"
import * as Identity from "../src/core/Identity.ts"
import type * as Keys from "../src/core/Keys.ts"
import type * as Multiaddr from "../src/core/Multiaddr.ts"
import type * as Datastore from "../src/datastore/Datastore.ts"
import * as AddressManager from "../src/host/AddressManager.ts"
import * as Host from "../src/host/Host.ts"
import * as Peerstore from "../src/host/Peerstore.ts"
import * as Mplex from "../src/muxer/Mplex.ts"
import type { StreamMuxer } from "../src/muxer/StreamMuxer.ts"
import * as Yamux from "../src/muxer/Yamux.ts"
import * as Status from "../src/observability/Status.ts"
import * as Identify from "../src/protocols/identify/Identify.ts"
import * as Perf from "../src/protocols/perf/Perf.ts"
import * as Ping from "../src/protocols/ping/Ping.ts"
import * as RelayClient from "../src/protocols/relay/RelayClient.ts"
import * as RelayTransport from "../src/protocols/relay/RelayTransport.ts"
import * as Noise from "../src/security/Noise.ts"
import * as Plaintext from "../src/security/Plaintext.ts"
import type { SecureChannel, SecurityError } from "../src/security/SecureChannel.ts"
import * as Tls from "../src/security/Tls.ts"
import * as Dns from "../src/transport/Dns.ts"
import * as MemoryTransport from "../src/transport/Memory.ts"
import * as Tcp from "../src/transport/Tcp.ts"
import * as Transport from "../src/transport/Transport.ts"
import * as Unix from "../src/transport/Unix.ts"
import * as WebSocket from "../src/transport/WebSocket.ts"

export interface NodeOptions {
  /** The node's identity; a fresh Ed25519 key when absent. */
  readonly privateKey?: Keys.PrivateKey
  /** Addresses to listen on at start. */
  readonly listen?: ReadonlyArray<Multiaddr.Multiaddr>
  readonly transports: ReadonlyArray<Transport.Transport>
  readonly security: ReadonlyArray<SecureChannel>
  readonly muxers: ReadonlyArray<StreamMuxer>
  readonly agentVersion?: string
  /** Deadline for upgrading a raw connection (security + muxer); the Upgrader's default (10 s) when absent. */
  readonly upgradeTimeout?: Duration.Input
  /** DNS for dialing `/dnsaddr` addresses; `node:dns` (`Dns.makeNode()`) when absent. */
  readonly resolver?: Dns.ResolverService
  /** Connection limits, watermarks, grace period, allow list (ConnectionManager defaults when absent). */
  readonly connectionManager?: ConnectionManager.ConnectionManagerOptions
  /** Resource limits per scope, merged over the ResourceManager's defaults. */
  readonly resources?: ResourceManager.Limits
  /** Dial concurrency, per-address timeout, backoff, ranking. */
  readonly dialer?: Dialer.DialerOptions
  /** Observed-address trust and bounds, public CIDRs (AddressManager defaults when absent). */
  readonly addressManager?: AddressManager.AddressManagerOptions
  /** The peer store; `Peerstore.layerMemory` when absent (e.g. `Peerstore.layerDatastore()` over a Datastore). */
  readonly peerstore?: Layer.Layer<Peerstore.Peerstore, Datastore.DatastoreError>
  /**
   * The circuit relay v2 client (always on: dials and accepts `/p2p-circuit`
   * connections); `relays` are reserved on and kept. To serve as a relay,
   * provide `RelayServer.layer(options)` with the node.
   */
  readonly relay?: RelayClient.RelayClientOptions
}

/**
 * A node from explicit parts: Identity, Registrar, Peerstore, Transports, the
 * DNS resolver, ConnectionManager, ResourceManager, AddressManager, Upgrader,
 * Host, then identify, ping and perf on top. Provides all of them.
 *
 * Each call is a separate node: providing two presets in one program (even
 * one inside the other) gives two independent nodes.
 */
export const layer = (options: NodeOptions) => {
  const identity = options.privateKey !== undefined
    ? Identity.layer(options.privateKey)
    : Identity.layerEd25519
  const base = Layer.mergeAll(
    identity,
    Registrar.layer,
    options.peerstore ?? Peerstore.layerMemory,
    // the circuit transport first: it is bound late by the relay client (RelayTransport.ts)
    RelayTransport.layerTransports(options.transports).pipe(Layer.provideMerge(RelayTransport.layer)),
    Layer.succeed(Dns.Resolver, options.resolver ?? Dns.makeNode()),
    ConnectionManager.layer(options.connectionManager),
    // the connection manager's allow list also exempts from the fairness shares (one allow list)
    ResourceManager.layer(ResourceManager.withAllowList(options.resources, options.connectionManager?.allow)),
    AddressManager.layer(options.addressManager),
    Status.layerSections
  )
  const upgrader = Upgrader.layer({
    security: options.security,
    muxers: options.muxers,
    ...(options.upgradeTimeout !== undefined ? { upgradeTimeout: options.upgradeTimeout } : {})
  }).pipe(
    Layer.provideMerge(base)
  )
  const host = Host.layer({
    ...(options.listen !== undefined ? { listen: options.listen } : {}),
    ...(options.dialer !== undefined ? { dialer: options.dialer } : {})
  }).pipe(
    Layer.provideMerge(upgrader)
  )
  const protocols = Layer.mergeAll(
    Ping.layer,
    Perf.layer,
    Identify.layer(options.agentVersion !== undefined ? { agentVersion: options.agentVersion } : {}),
    RelayClient.layer(options.relay)
  )
  return ownNode(protocols.pipe(Layer.provideMerge(host), Layer.provideMerge(metricRegistry)))
}

/**
 * Each node records its metrics (`libp2p_…`, served by `observability/`) in a
 * registry of its own, so two nodes in one process keep separate series.
 */
const metricRegistry = Layer.sync(Metric.MetricRegistry, () => new Map())

/**
 * A node's layer graph built with its own memo map, so that nothing inside it
 * is shared with another node: an inner `Effect.provide(Default())` inside an
 * outer one would otherwise reuse the outer node's Registrar, Identity and
 * Peerstore (Layer memoizes by layer value, and those are static layers), and
 * the second identify registration would fail with "already registered".
 * The wrapper itself is memoized like any layer: one preset value used twice in
 * one graph is one node.
 */
const ownNode = <A, E, R>(layer: Layer.Layer<A, E, R>): Layer.Layer<A, E, R> =>
  Layer.fromBuildMemo((_, scope) => Layer.buildWithMemoMap(layer, Layer.makeMemoMapUnsafe(), scope))

/** Secure channels a preset can build, by name (`plaintext`: tests only, never a default). */
export type SecurityName = "noise" | "tls" | "plaintext"
/** Stream muxers a preset can build, by name. */
export type MuxerName = "yamux" | "mplex"
export const securityNames: ReadonlyArray<SecurityName> = ["noise", "tls", "plaintext"]
export const muxerNames: ReadonlyArray<MuxerName> = ["yamux", "mplex"]

export interface PresetOptions {
  /** Secure channels in preference order (default `["noise"]`). */
  readonly security?: ReadonlyArray<SecurityName>
  /** Stream muxers in preference order (default `["yamux"]`). */
  readonly muxers?: ReadonlyArray<MuxerName>
  /** WebSocket transport settings (a certificate to listen on `/wss` and `/tls/ws`, trusted CAs for dialing them). */
  readonly webSocket?: WebSocket.WebSocketOptions
  readonly privateKey?: Keys.PrivateKey
  readonly listen?: ReadonlyArray<Multiaddr.Multiaddr>
  readonly agentVersion?: string
  /** Yamux settings (keep-alive, windows, limits). */
  readonly yamux?: Yamux.YamuxOptions
  /** TCP settings (listen backlog, dial timeout, read buffer bound, close and keep-alive timing); the transport's defaults when absent. */
  readonly tcp?: Tcp.TcpOptions
  /** Deadline for upgrading a raw connection (security + muxer); default 10 s. */
  readonly upgradeTimeout?: Duration.Input
  /** DNS for dialing `/dnsaddr` addresses; `node:dns` when absent. */
  readonly resolver?: Dns.ResolverService
  /** Connection limits, watermarks, grace period, allow list. */
  readonly connectionManager?: ConnectionManager.ConnectionManagerOptions
  /** Resource limits per scope (merged over the defaults). */
  readonly resources?: ResourceManager.Limits
  /** Dial concurrency, per-address timeout, backoff, ranking. */
  readonly dialer?: Dialer.DialerOptions
  /** Observed-address trust and bounds, public CIDRs. */
  readonly addressManager?: AddressManager.AddressManagerOptions
  /** The peer store; in memory when absent. */
  readonly peerstore?: Layer.Layer<Peerstore.Peerstore, Datastore.DatastoreError>
  /** The circuit relay v2 client's relays and timing (the client is always on). */
  readonly relay?: RelayClient.RelayClientOptions
}

const buildSecurity = (name: SecurityName): Effect.Effect<SecureChannel, SecurityError> =>
  name === "tls" ? Tls.make() : name === "plaintext" ? Effect.succeed(Plaintext.plaintext) : Noise.make()

const buildMuxer = (name: MuxerName, options: PresetOptions): StreamMuxer =>
  name === "mplex" ? Mplex.mplex : options.yamux !== undefined ? Yamux.make(options.yamux) : Yamux.yamux

const withStack = <E, R>(
  transports: Effect.Effect<ReadonlyArray<Transport.Transport>, E, R>,
  options: PresetOptions
) =>
  Layer.unwrap(Effect.gen(function*() {
    const names: ReadonlyArray<SecurityName> = options.security ?? ["noise"]
    const muxerNames: ReadonlyArray<MuxerName> = options.muxers ?? ["yamux"]
    const security = yield* Effect.forEach(names, buildSecurity)
    return layer({
      ...options,
      transports: yield* transports,
      security,
      muxers: muxerNames.map((m) => buildMuxer(m, options))
    })
  }))

/**
 * TCP, WebSocket (`/ws`; `/wss` and `/tls/ws` with `webSocket.certificate`) and Unix socket transports;
 * Noise (or `security`) and Yamux (or `muxers`); identify, ping and perf.
 */
export const Default = (options: PresetOptions = {}) =>
  withStack(
    Effect.succeed([
      options.tcp !== undefined ? Tcp.make(options.tcp) : Tcp.transport,
      WebSocket.make(options.webSocket ?? {}),
      Unix.transport
    ]),
    options
  )

/**
 * The same stack over the in-process memory network (`/memory/<n>` addresses):
 * no sockets, no real timers. Needs a `MemoryNetwork` in context, shared by
 * every node of the network.
 */
export const Memory = (options: PresetOptions = {}) =>
  withStack(Effect.map(MemoryTransport.transport, (t) => [t]), options)
