/**
 * effect-libp2p: a libp2p node as Effect services.
 *
 * Each module is re-exported as a namespace (as `effect` does): the service is
 * `Host.Host`, its errors `Host.DialError`, `Connection.ConnectionError`, …
 * A node is a Layer from `effect-libp2p/layers` (`Default`, `Memory`, `layer`).
 *
 * Your own protocol: register a handler with the `Registrar` (for as long as
 * the current scope lives) and open streams with `host.newStream`; speak
 * length-prefixed messages on them with `LengthPrefixed.messages`.
 *
 * ```ts
 * import { Host, LengthPrefixed, Multiaddr, Registrar } from "effect-libp2p"
 * import { Default } from "effect-libp2p/layers"
 * import { Effect, Layer, Result } from "effect"
 *
 * const ECHO = "/my-app/echo/1.0.0"
 *
 * // The protocol's Layer: the handler is registered while the layer lives.
 * const Echo = Layer.effectDiscard(Effect.gen(function*() {
 *   const registrar = yield* Registrar.Registrar
 *   yield* registrar.handle(ECHO, (stream) =>
 *     Effect.gen(function*() {
 *       const msgs = LengthPrefixed.messages(stream, { maxLength: 4096 })
 *       const msg = yield* msgs.readOne
 *       yield* msgs.write(msg)
 *       yield* msgs.closeWrite
 *     }))
 * }))
 *
 * // The client side: a stream to a peer (dialed if needed), one request, one reply.
 * const echo = (peer: Multiaddr.Multiaddr, msg: Uint8Array) =>
 *   Effect.gen(function*() {
 *     const host = yield* Host.Host
 *     const stream = yield* host.newStream(peer, [ECHO])
 *     const msgs = LengthPrefixed.messages(stream, { maxLength: 4096 })
 *     yield* msgs.write(msg)
 *     return yield* msgs.readOne
 *   }).pipe(Effect.scoped)
 *
 * const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]
 * const node = Echo.pipe(Layer.provideMerge(Default({ listen })))
 * ```
 *
 * @since 0.1.0
 */

// Node and services

/**
 * The facade: listen, dial, open streams, connections, events (`Host.Host`).
 *
 * @since 0.1.0
 */
export * as Host from "./host/Host.ts"

/**
 * Inbound protocol handlers: `registrar.handle(protocol, handler)` (`Registrar.Registrar`).
 *
 * @since 0.1.0
 */
export * as Registrar from "./connection/Registrar.ts"

/**
 * What the node knows about peers: keys, addresses with TTLs, protocols, signed
 * records, tags (`Peerstore.Peerstore`); in memory (`layerMemory`) or on a
 * `Datastore` (`layerDatastore`).
 *
 * @since 0.1.0
 */
export * as Peerstore from "./host/Peerstore.ts"

/**
 * Our addresses as others can reach them: listen, observed (identify), confirmed, and reachability
 * (`AddressManager.AddressManager`).
 *
 * @since 0.2.0
 */
export * as AddressManager from "./host/AddressManager.ts"
export * as KeepConnected from "./host/KeepConnected.ts"

/**
 * The node's own key pair and peer id (`Identity.Identity`).
 *
 * @since 0.1.0
 */
export * as Identity from "./core/Identity.ts"

/**
 * The `Connection` and `Stream` a Host hands out, and `ConnectionError`.
 *
 * @since 0.1.0
 */
export * as Connection from "./connection/Connection.ts"

/**
 * Connection limits, watermarks, trimming.
 *
 * @since 0.1.0
 */
export * as ConnectionManager from "./connection/ConnectionManager.ts"

/**
 * Per-scope connection and stream limits, `LimitExceeded`.
 *
 * @since 0.1.0
 */
export * as ResourceManager from "./connection/ResourceManager.ts"

/**
 * Dial scheduling, backoff and `DialError`.
 *
 * @since 0.1.0
 */
export * as Dialer from "./connection/Dialer.ts"

/**
 * Raw connection → secured, multiplexed connection; `UpgradeError`.
 *
 * @since 0.1.0
 */
export * as Upgrader from "./connection/Upgrader.ts"

// Protocols

/**
 * `/ipfs/ping/1.0.0` (`Ping.Ping`, `PingError`).
 *
 * @since 0.1.0
 */
export * as Ping from "./protocols/ping/Ping.ts"

/**
 * `/ipfs/id/1.0.0` and push (`Identify.Identify`, `IdentifyError`).
 *
 * @since 0.1.0
 */
export * as Identify from "./protocols/identify/Identify.ts"

/**
 * `/perf/1.0.0` (`Perf.Perf`).
 *
 * @since 0.1.0
 */
export * as Perf from "./protocols/perf/Perf.ts"

/**
 * Kad-DHT, `/ipfs/kad/1.0.0` (`Kad.Kad`, `Kad.layer`, `KadError`): peer routing, records, providers.
 *
 * @since 0.2.0
 */
export * as Kad from "./protocols/kad/Kad.ts"

/**
 * AutoNAT v2 client and server and a v1 server (`AutoNat.AutoNat`, `AutoNat.layer`, `AutoNatError`):
 * which of our addresses others can dial; verdicts go to the AddressManager.
 *
 * @since 0.3.0
 */
export * as AutoNat from "./protocols/autonat/AutoNat.ts"

/**
 * DCUtR, `/libp2p/dcutr` (`Dcutr.Dcutr`, `Dcutr.layer`, `DcutrError`): hole punching over relayed connections
 * (TCP simultaneous open from the listening port: `Tcp.make({ reusePort: true })`).
 *
 * @since 0.2.0
 */
export * as Dcutr from "./protocols/dcutr/Dcutr.ts"

/**
 * The peer routing contract (`PeerRouting.PeerRouting`, `RoutingError`); `Kad.layerPeerRouting` implements it.
 *
 * @since 0.2.0
 */
export * as PeerRouting from "./routing/PeerRouting.ts"

/**
 * The content routing contract (`ContentRouting.ContentRouting`); `Kad.layerContentRouting` implements it.
 *
 * @since 0.2.0
 */
export * as ContentRouting from "./routing/ContentRouting.ts"

/**
 * Delegated Routing V1 HTTP client (`DelegatedRouting.DelegatedRouting`, `layerFetch`,
 * `DelegatedRoutingError`): providers, peers, closest peers, IPNS over `/routing/v1`;
 * `layerPeerRouting`/`layerContentRouting` implement the routing contracts.
 *
 * @since 0.3.0
 */
export * as DelegatedRouting from "./protocols/delegated-routing/DelegatedRouting.ts"

/**
 * Pubsub core (pubsub/README.md): the router-agnostic `Pubsub.Pubsub` service
 * (subscribe, publish, validators, signing policies), provided by a router's layer.
 *
 * @since 0.2.0
 */
export * as Pubsub from "./protocols/pubsub/Pubsub.ts"

/**
 * Floodsub, `/floodsub/1.0.0` (`Floodsub.layer` provides `Pubsub.Pubsub`).
 *
 * @since 0.2.0
 */
export * as Floodsub from "./protocols/pubsub/floodsub/Floodsub.ts"

/**
 * Gossipsub v1.0–v1.2, `/meshsub/1.2.0` (`Gossipsub.layer` provides `Pubsub.Pubsub`
 * and `Gossipsub.Gossipsub`).
 *
 * @since 0.2.0
 */
export * as Gossipsub from "./protocols/pubsub/gossipsub/Gossipsub.ts"

/**
 * Gossipsub's pluggable peer score (`PeerScore.PeerScore`).
 *
 * @since 0.2.0
 */
export * as PeerScore from "./protocols/pubsub/gossipsub/PeerScore.ts"

/**
 * Mix, `/mix/1.0.0` (LIP-99 LIBP2P-MIX): anonymous routing of single messages
 * through Sphinx packets and mix nodes (`Mix.Mix`: `send`, `request` with SURB
 * replies), pluggable spam protection and cover traffic.
 *
 * @since 0.2.0
 */
export * as Mix from "./protocols/mix/Mix.ts"

/**
 * Mix node discovery (`MixDiscovery.MixDiscovery`; `layerStatic`, `makeRegistry`).
 *
 * @since 0.2.0
 */
export * as MixDiscovery from "./protocols/mix/MixDiscovery.ts"

/**
 * multistream-select protocol negotiation.
 *
 * @since 0.1.0
 */
export * as Multistream from "./multistream/Multistream.ts"

// Transports, security, muxers

/**
 * The transport contract and the `Transports` service.
 *
 * @since 0.1.0
 */
export * as Transport from "./transport/Transport.ts"

/**
 * TCP transport.
 *
 * @since 0.1.0
 */
export * as Tcp from "./transport/Tcp.ts"

/**
 * WebSocket transport (`/ws`, `/wss`, `/tls/ws`).
 *
 * @since 0.1.0
 */
export * as WebSocket from "./transport/WebSocket.ts"

/**
 * Unix domain socket transport.
 *
 * @since 0.1.0
 */
export * as Unix from "./transport/Unix.ts"

/**
 * In-process memory transport and the `MemoryNetwork` service.
 *
 * @since 0.1.0
 */
export * as Memory from "./transport/Memory.ts"

/**
 * `/dns*` and `/dnsaddr` resolution (`Dns.Resolver`).
 *
 * @since 0.1.0
 */
export * as Dns from "./transport/Dns.ts"

/**
 * A `node:net` socket as a Duplex.
 *
 * @since 0.1.0
 */
export * as SocketDuplex from "./transport/SocketDuplex.ts"

/**
 * The secure channel contract and `SecurityError`.
 *
 * @since 0.1.0
 */
export * as SecureChannel from "./security/SecureChannel.ts"

/**
 * Noise XX secure channel.
 *
 * @since 0.1.0
 */
export * as Noise from "./security/Noise.ts"

/**
 * TLS 1.3 secure channel.
 *
 * @since 0.1.0
 */
export * as Tls from "./security/Tls.ts"

/**
 * `/plaintext/2.0.0`: no encryption (interop tests only; never a default).
 *
 * @since 0.2.0
 */
export * as Plaintext from "./security/Plaintext.ts"

/**
 * The stream muxer contract.
 *
 * @since 0.1.0
 */
export * as StreamMuxer from "./muxer/StreamMuxer.ts"

/**
 * Yamux stream muxer.
 *
 * @since 0.1.0
 */
export * as Yamux from "./muxer/Yamux.ts"

/**
 * mplex stream muxer.
 *
 * @since 0.1.0
 */
export * as Mplex from "./muxer/Mplex.ts"

// Data and codecs

/**
 * Peer ids: parse, print, derive from a key.
 *
 * @since 0.1.0
 */
export * as PeerId from "./core/PeerId.ts"

/**
 * Multiaddresses: parse, print, encapsulate.
 *
 * @since 0.1.0
 */
export * as Multiaddr from "./core/Multiaddr.ts"

/**
 * Ed25519, secp256k1, ECDSA and RSA keys.
 *
 * @since 0.1.0
 */
export * as Keys from "./core/Keys.ts"

/**
 * The byte-stream shape every layer speaks, `DuplexError`.
 *
 * @since 0.1.0
 */
export * as Duplex from "./core/Duplex.ts"

/**
 * A buffered reader over a Duplex, `ReaderError`.
 *
 * @since 0.1.0
 */
export * as Reader from "./core/Reader.ts"

/**
 * Varint length-prefixed messages: `LengthPrefixed.messages(stream, { maxLength })`.
 *
 * @since 0.1.0
 */
export * as LengthPrefixed from "./core/LengthPrefixed.ts"

/**
 * Unsigned varints.
 *
 * @since 0.1.0
 */
export * as Varint from "./core/Varint.ts"

/**
 * Typed protobuf codecs from `.proto` text.
 *
 * @since 0.1.0
 */
export * as Protobuf from "./core/Protobuf.ts"

/**
 * Multibase encodings.
 *
 * @since 0.1.0
 */
export * as Multibase from "./core/Multibase.ts"

/**
 * Multihashes.
 *
 * @since 0.1.0
 */
export * as Multihash from "./core/Multihash.ts"

/**
 * Signed envelopes (RFC 0002).
 *
 * @since 0.1.0
 */
export * as Envelope from "./core/Envelope.ts"

/**
 * Peer records (RFC 0003).
 *
 * @since 0.1.0
 */
export * as PeerRecord from "./core/PeerRecord.ts"

/**
 * Address classes (loopback, private, reserved, public), CIDRs, thin-waist addresses.
 *
 * @since 0.2.0
 */
export * as MultiaddrNet from "./core/MultiaddrNet.ts"

/**
 * A key/value store over hierarchical keys (`Datastore.Datastore`): get, put, delete, prefix queries,
 * atomic batches. The SQLite store is `effect-libp2p/datastore/sqlite` (it loads `node:sqlite`).
 *
 * @since 0.2.0
 */
export * as Datastore from "./datastore/Datastore.ts"

/**
 * The in-memory Datastore (tests, simulation).
 *
 * @since 0.2.0
 */
export * as DatastoreMemory from "./datastore/Memory.ts"

/**
 * Circuit relay v2, the relay's side: `/libp2p/circuit/relay/0.2.0/hop` (`RelayServer.layer`).
 *
 * @since 0.3.0
 */
export * as RelayServer from "./protocols/relay/RelayServer.ts"

/**
 * Circuit relay v2, the client's side: reservations, the stop protocol (`RelayClient.layer`; on in every preset).
 *
 * @since 0.3.0
 */
export * as RelayClient from "./protocols/relay/RelayClient.ts"

/**
 * The `/p2p-circuit` transport, bound late by the relay client (`RelayTransport.CircuitTransport`).
 *
 * @since 0.3.0
 */
export * as RelayTransport from "./protocols/relay/RelayTransport.ts"

/**
 * Circuit relay v2 reservation vouchers (signed envelopes in `libp2p-relay-rsvp`).
 *
 * @since 0.3.0
 */
export * as RelayVoucher from "./protocols/relay/Voucher.ts"

/**
 * The status server (`/metrics`, `/api/status`, the status page).
 *
 * @since 0.2.0
 */
export * as HttpStatus from "./observability/HttpStatus.ts"

/**
 * The node's status snapshot and the sections protocols contribute to it.
 *
 * @since 0.2.0
 */
export * as Status from "./observability/Status.ts"

/**
 * The node's metrics in the Prometheus text format.
 *
 * @since 0.2.0
 */
export * as Metrics from "./observability/Metrics.ts"

/**
 * Traces exported with OTLP (`--otlp`).
 *
 * @since 0.2.0
 */
export * as Tracing from "./observability/Tracing.ts"

// Discovery (issue 18)

/**
 * The discovery hub every source announces to, and the consumer that stores and dials
 * (`PeerDiscovery.PeerDiscovery`, `layer`, `layerConnect`).
 *
 * @since 0.3.0
 */
export * as PeerDiscovery from "./discovery/PeerDiscovery.ts"

/**
 * Bootstrap peers: dialed at start, redialed with backoff while below a connection target.
 *
 * @since 0.3.0
 */
export * as Bootstrap from "./discovery/Bootstrap.ts"

/**
 * mDNS LAN discovery (`discovery/mdns.md`).
 *
 * @since 0.3.0
 */
export * as Mdns from "./discovery/Mdns.ts"
/**
 * The libp2p daemon: the node driven over go-libp2p-daemon's control protocol (`daemon` command).
 *
 * @since 0.2.0
 */
export * as Daemon from "./daemon/Daemon.ts"
/**
 * Rendezvous, `/rendezvous/1.0.0` (`Rendezvous.Rendezvous` client with `Rendezvous.layer`,
 * `Rendezvous.RendezvousServer` point with `Rendezvous.layerServer`/`layerServerDatastore`,
 * `RendezvousError`): registrations with TTLs, discovery with cookies.
 *
 * @since 0.2.0
 */
export * as Rendezvous from "./protocols/rendezvous/Rendezvous.ts"
