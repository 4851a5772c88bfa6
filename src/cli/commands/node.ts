/**
 * `node`: run a node until SIGINT/SIGTERM, printing its events (ARCHITECTURE.md
 * §7, docs/CLI.md). `npm start` with no command runs it with the defaults.
 *
 * @since 0.1.0
 */
import { Context, Effect, FileSystem, Layer, Option, Path, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import * as Nodes from "../../../layers/Node.ts"
import { ConnectionManager } from "../../connection/ConnectionManager.ts"
import * as Keys from "../../core/Keys.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import type * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import * as PeerId from "../../core/PeerId.ts"
import { Datastore } from "../../datastore/Datastore.ts"
import * as Bootstrap from "../../discovery/Bootstrap.ts"
import * as Mdns from "../../discovery/Mdns.ts"
import * as PeerDiscovery from "../../discovery/PeerDiscovery.ts"
import { AddressManager } from "../../host/AddressManager.ts"
import * as HostModule from "../../host/Host.ts"
import { Host } from "../../host/Host.ts"
import * as Peerstore from "../../host/Peerstore.ts"
import * as HttpStatus from "../../observability/HttpStatus.ts"
import * as Tracing from "../../observability/Tracing.ts"
import * as AutoNat from "../../protocols/autonat/AutoNat.ts"
import * as Dcutr from "../../protocols/dcutr/Dcutr.ts"
import { Identify } from "../../protocols/identify/Identify.ts"
import * as Kad from "../../protocols/kad/Kad.ts"
import * as RelayClient from "../../protocols/relay/RelayClient.ts"
import * as RelayServer from "../../protocols/relay/RelayServer.ts"
import * as ConfigFile from "../config.ts"
import * as DataDir from "../dataDir.ts"
import {
  type AddressFlags,
  addressFlags,
  httpOptions,
  json,
  nonNegative,
  observabilityFlags,
  otlpOption,
  parseMultiaddr,
  type StackFlags,
  stackFlags,
  stackOptions
} from "../flags.ts"
import * as IdentityFile from "../identityFile.ts"
import { emit, errorInfo, Output, printError, usageAsHelp, UsageError, warn } from "../output.ts"
import * as Nat from "./nat.ts"
import * as PubsubCli from "./pubsub.ts"
import * as RendezvousCli from "./rendezvous.ts"

/** Where `npm start` listens (a free port instead when it is taken). */
export const DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/4001"

/**
 * Print the node's events (the only place the CLI consumes them): `peer:connect`,
 * `peer:disconnect`, `peer:identify`, `peer:trimmed`. Subscribes, forks the
 * printers into the current scope and returns, so nothing that happens after
 * it returns is missed.
 */
const printEvents = (
  services: {
    readonly host: Host["Service"]
    readonly identify: Identify["Service"]
    readonly connectionManager: ConnectionManager["Service"]
  },
  json: boolean
) =>
  Effect.gen(function*() {
    const hostEvents = yield* services.host.subscribe
    const identifyEvents = yield* services.identify.subscribe
    const trimEvents = yield* services.connectionManager.subscribe
    yield* Effect.forkScoped(
      hostEvents.pipe(Stream.runForEach((event) => {
        switch (event._tag) {
          case "PeerConnect": {
            const id = PeerId.toString(event.peerId)
            const addr = Multiaddr.toString(event.connection.remoteAddr)
            return emit(json, { event: "peer:connect", peerId: id, addr }, `connected ${id} at ${addr}`)
          }
          case "PeerDisconnect": {
            const id = PeerId.toString(event.peerId)
            return emit(
              json,
              { event: "peer:disconnect", peerId: id, reason: event.reason },
              `disconnected ${id} (${event.reason})`
            )
          }
          case "ConnectionOpen":
            return Nat.printConnection(json, "connection:open", event.connection)
          case "ConnectionClose":
            return Nat.printConnection(json, "connection:close", event.connection, event.reason)
          default:
            return Effect.void
        }
      }))
    )
    yield* Effect.forkScoped(
      identifyEvents.pipe(Stream.runForEach((r) =>
        emit(json, {
          event: "peer:identify",
          peerId: PeerId.toString(r.peerId),
          agentVersion: r.agentVersion ?? null,
          protocols: r.protocols
        }, `identified ${PeerId.toString(r.peerId)} (${r.agentVersion ?? "?"})`)
      ))
    )
    yield* Effect.forkScoped(
      trimEvents.pipe(Stream.runForEach((e) => {
        if (e._tag !== "PeerTrimmed") return Effect.void
        const id = PeerId.toString(e.peerId)
        const addr = Multiaddr.toString(e.connection.remoteAddr)
        return emit(json, {
          event: "peer:trimmed",
          peerId: id,
          addr,
          value: e.value,
          reason: e.reason,
          connections: e.before,
          target: e.target
        }, `trimmed ${id} at ${addr} (value ${e.value}, ${e.reason})`)
      }))
    )
  })

/** `peer:discovery` lines: each peer once per source (again when its addresses change; PeerDiscovery dedupes). */
const printDiscovery = (discovery: PeerDiscovery.PeerDiscovery["Service"], json: boolean) =>
  Effect.gen(function*() {
    const stream = yield* discovery.subscribe
    yield* Effect.forkScoped(stream.pipe(Stream.runForEach((p) => {
      const id = PeerId.toString(p.peerId)
      return emit(
        json,
        { event: "peer:discovery", peerId: id, addrs: p.addrs.map(Multiaddr.toString), source: p.source },
        `discovered ${id} (${p.source})`
      )
    })))
  })

/**
 * Print each reservation the relay client holds or makes (`reservation`: relay, circuit
 * addresses, expiry in UNIX seconds), once per relay and expiry; a failed one is an error
 * line with the relay's `addr` (the client retries).
 */
const printReservations = (client: RelayClient.RelayClient["Service"], json: boolean) =>
  Effect.gen(function*() {
    const events = yield* client.subscribe
    const printed = new Map<string, bigint>()
    const print = (r: RelayClient.Reservation) => {
      const relay = PeerId.toString(r.relay)
      if (printed.get(relay) === r.expire) return Effect.void
      printed.set(relay, r.expire)
      const addrs = r.addrs.map(Multiaddr.toString)
      return emit(
        json,
        { event: "reservation", relay, addrs, expires: Number(r.expire) },
        `reserved on ${relay}: ${addrs.join(", ")}`
      )
    }
    for (const r of client.reservations()) yield* print(r)
    yield* Effect.forkScoped(events.pipe(Stream.runForEach((e) =>
      e._tag === "Reserved"
        ? print(e.reservation)
        : printError(json, errorInfo(e.error), { addr: Multiaddr.toString(e.relay) })
    )))
  })

/** `/tcp/<port>` → `/tcp/0`. */
const anyPort = (addr: Multiaddr.Multiaddr) => parseMultiaddr(Multiaddr.toString(addr).replace(/\/tcp\/\d+/, "/tcp/0"))

/**
 * Dial up to `n` peers of the peer store that have addresses, the most
 * recently seen first, each in its own fiber; prints `reconnecting` with
 * their ids. A failed redial is logged (the peer may be gone), not an error line.
 */
const reconnect = (host: Host["Service"], peerstore: Peerstore.Peerstore["Service"], n: number, json: boolean) =>
  Effect.gen(function*() {
    if (n <= 0) return
    const targets = peerstore.all().filter((p) => p.addrs.length > 0 && !PeerId.equals(p.peerId, host.peerId))
      .reverse().slice(0, n)
    if (targets.length === 0) return
    const ids = targets.map((p) => PeerId.toString(p.peerId))
    yield* emit(json, { event: "reconnecting", peerIds: ids }, `reconnecting to ${ids.length} known peers`)
    for (const p of targets) {
      yield* Effect.forkScoped(
        host.dial(p.peerId).pipe(
          Effect.catch((e) => Effect.logInfo(`reconnect to ${PeerId.toString(p.peerId)} failed: ${e.message}`))
        )
      )
    }
  })

/** Run a node until interrupted (SIGINT/SIGTERM), printing events. */
export const runNode = (options: {
  readonly listen: ReadonlyArray<string>
  readonly privateKey: Keys.PrivateKey
  readonly json: boolean
  /** Without `--listen`: a taken port moves to a free one (with a warning and `fallbackFrom` in `listening`). */
  readonly fallbackToFreePort: boolean
  /** Dialed at start, each on its own: a failure is an error line with its `addr`, the node keeps running. */
  readonly dial?: ReadonlyArray<Multiaddr.Multiaddr>
  /**
   * Dialed at start and kept connected (protected and tagged so trimming keeps them, redialed with
   * backoff when dropped); each failed dial is an error line with its `addr`.
   */
  readonly bootstrap?: ReadonlyArray<Multiaddr.Multiaddr>
  /** Secure channels, muxers, connection limits, WebSocket certificate: passed to the Default preset. */
  readonly preset?: Nodes.PresetOptions
  /** After `listening`, dial up to this many known peers (the most recently seen first). Default 0. */
  readonly reconnect?: number
  /** `--http`: serve /metrics, /api/status and the status page there (loopback only unless `public`). */
  readonly http?: { readonly listen: Multiaddr.Multiaddr; readonly public: boolean } | undefined
  /** `--otlp`: export traces to this OTLP/HTTP collector (base URL). */
  readonly otlp?: string | undefined
  /** `--dht`: Kad-DHT on the node, its records and providers in `datastore` (memory when absent). */
  readonly dht?: { readonly options: Kad.KadOptions; readonly datastore?: Datastore["Service"] } | undefined
  /** `--pubsub` with `--subscribe`: the router, the topics (message lines, stdin `publish`). */
  readonly pubsub?: { readonly router: PubsubCli.RouterName; readonly topics: ReadonlyArray<string> } | undefined
  /** `--mdns`: LAN discovery (discovery/Mdns.ts); discovered peers are printed and dialed. */
  readonly mdns?: Mdns.MdnsOptions | undefined
  /** `--relay` (serve as a circuit relay v2 hop) and `--relay-reserve` (relays to reserve on and keep). */
  readonly relay?: { readonly server: boolean; readonly reserve: ReadonlyArray<Multiaddr.Multiaddr> } | undefined
  /** `--autonat`: AutoNAT v2 on the node; its reachability changes are printed (`reachability` events). */
  readonly autonat?: AutoNat.AutoNatOptions | undefined
  /**
   * Hole punching (DCUtR; default on): TCP with SO_REUSEPORT, dials from the listening port,
   * `hole-punch` lines. `publicCidrs` (`--public-cidr`) also count as public for DCUtR.
   */
  readonly holePunch?: { readonly publicCidrs: ReadonlyArray<MultiaddrNet.Cidr> } | false | undefined
  /** `--rendezvous-server`, `--rendezvous` with `--namespace`: the point's registrations in `datastore` (memory when absent). */
  readonly rendezvous?: (RendezvousCli.RendezvousRun & { readonly datastore?: Datastore["Service"] }) | undefined
}) =>
  Effect.gen(function*() {
    const listen = yield* Effect.forEach(options.listen, parseMultiaddr)
    const otlp = options.otlp
    const holePunch = options.holePunch === false ? undefined : options.holePunch ?? { publicCidrs: [] }
    const start = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => {
      const preset = Nodes.Default({
        ...options.preset,
        ...(holePunch !== undefined ? { tcp: { ...options.preset?.tcp, ...Nat.tcpOptions } } : {}),
        privateKey: options.privateKey,
        listen: addrs,
        relay: { relays: options.relay?.reserve ?? [] }
      })
      const relayed = options.relay?.server === true ? Layer.provideMerge(RelayServer.layer(), preset) : preset
      const stack = holePunch === undefined
        ? relayed
        : Layer.provideMerge(Dcutr.layer(Nat.dcutrOptions(holePunch.publicCidrs)), relayed)
      const base = Layer.provideMerge(
        PeerDiscovery.layer(),
        options.autonat === undefined ? stack : Layer.provideMerge(AutoNat.layer(options.autonat), stack)
      )
      const dht = options.dht
      // with a DHT, dialing a peer id with no known address looks it up (Host.layerRouting)
      const node = dht === undefined ? base : Layer.provideMerge(
        Layer.provideMerge(
          HostModule.layerRouting.pipe(Layer.provide(Kad.layerPeerRouting)),
          dht.datastore === undefined
            ? Kad.layer(dht.options)
            : Kad.layerDatastore(dht.options).pipe(Layer.provide(Layer.succeed(Datastore, dht.datastore)))
        ),
        base
      )
      return Layer.build(otlp === undefined ? node : node.pipe(Layer.provide(Tracing.layerOtlp({ url: otlp }))))
    }
    const { ctx, fallbackFrom } = yield* start(listen).pipe(
      Effect.map((ctx) => ({ ctx, fallbackFrom: null as ReadonlyArray<string> | null })),
      Effect.catchTag("ListenError", (e) =>
        options.fallbackToFreePort
          ? Effect.gen(function*() {
            const free = yield* Effect.forEach(listen, anyPort)
            yield* warn(
              `cannot listen on ${e.address} (${e.message}); listening on ${
                free.map(Multiaddr.toString).join(", ")
              } instead`
            )
            return { ctx: yield* start(free), fallbackFrom: options.listen }
          })
          : Effect.fail(e))
    )
    const host = Context.get(ctx, Host)
    if (options.rendezvous?.server === true) yield* RendezvousCli.serve(ctx, options.rendezvous.datastore)
    const peerId = PeerId.toString(host.peerId)
    const addrs = host.addrs().map(Multiaddr.toString)
    const http = options.http === undefined
      ? undefined
      : yield* HttpStatus.serve({ listen: options.http.listen, public: options.http.public }).pipe(
        Effect.provideContext(ctx)
      )
    yield* emit(
      options.json,
      { event: "listening", peerId, addrs, fallbackFrom, ...(http !== undefined ? { http: http.url } : {}) },
      `peer id: ${peerId}\n${addrs.map((a) => `listening on ${a}`).join("\n")}${
        http !== undefined ? `\nstatus page and metrics at ${http.url}` : ""
      }`
    )
    yield* printEvents({
      host,
      identify: Context.get(ctx, Identify),
      connectionManager: Context.get(ctx, ConnectionManager)
    }, options.json)
    yield* printReservations(Context.get(ctx, RelayClient.RelayClient), options.json)
    if (holePunch !== undefined) {
      // provided just above when hole punching is on (the context type is that of both graphs)
      const dcutr = Context.get(ctx as unknown as Context.Context<Dcutr.Dcutr>, Dcutr.Dcutr)
      yield* Nat.printHolePunches(dcutr, options.json)
    }
    if (options.pubsub !== undefined) yield* PubsubCli.runOnNode(ctx, { ...options.pubsub, json: options.json })
    if (options.autonat !== undefined) {
      const changes = Stream.filter(Context.get(ctx, AddressManager).events, (e) => e._tag === "ReachabilityChanged")
      yield* Effect.forkScoped(Stream.runForEach(changes, (e) =>
        emit(
          options.json,
          { event: "reachability", reachability: e.reachability, addrs: e.addrs.map(Multiaddr.toString) },
          `reachability: ${e.reachability}${
            e.addrs.length > 0 ? ` (${e.addrs.map(Multiaddr.toString).join(", ")})` : ""
          }`
        )))
    }
    yield* reconnect(host, Context.get(ctx, Peerstore.Peerstore), options.reconnect ?? 0, options.json)
    const output = yield* Output
    yield* printDiscovery(Context.get(ctx, PeerDiscovery.PeerDiscovery), options.json)
    yield* PeerDiscovery.connect().pipe(Effect.provideContext(ctx))
    if (options.rendezvous !== undefined && options.rendezvous.points.length > 0) {
      yield* RendezvousCli.runOnNode(ctx, options.rendezvous, options.json)
    }
    yield* Bootstrap.start({
      peers: options.bootstrap ?? [],
      onDialFailure: (addr, e) =>
        printError(options.json, errorInfo(e), { addr: Multiaddr.toString(addr) }).pipe(
          Effect.provideService(Output, output)
        )
    }).pipe(Effect.provideContext(ctx))
    if (options.mdns !== undefined) yield* Layer.build(Mdns.layer(options.mdns)).pipe(Effect.provideContext(ctx))
    for (const addr of options.dial ?? []) {
      yield* Effect.forkScoped(
        host.dial(addr).pipe(
          Effect.catch((e) => printError(options.json, errorInfo(e), { addr: Multiaddr.toString(addr) }))
        )
      )
    }
    return yield* Effect.never
  }).pipe(Effect.scoped)

/** The certificate for secure WebSocket listeners, from `--ws-cert` and `--ws-key` (both or neither). */
const readCertificate = (cert: Option.Option<string>, key: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isNone(cert) && Option.isNone(key)) return undefined
    if (Option.isNone(cert) || Option.isNone(key)) {
      return yield* new UsageError({ message: "--ws-cert and --ws-key go together" })
    }
    const fs = yield* FileSystem.FileSystem
    const read = (file: string) =>
      Effect.mapError(
        fs.readFileString(file),
        (e) => new UsageError({ message: `cannot read --ws-cert/--ws-key ${file}: ${e.message}` })
      )
    return { cert: yield* read(cert.value), key: yield* read(key.value) }
  })

const nodeFlags = {
  listen: Flag.String("listen").pipe(
    Flag.withDescription(
      `multiaddr to listen on (repeatable; replaces the config file's; default ${DEFAULT_LISTEN}, or a free port if taken)`
    ),
    Flag.atLeast(0)
  ),
  dial: Flag.String("dial").pipe(
    Flag.withDescription(
      "multiaddr to dial at start (repeatable, besides the config file's bootstrap); a failed dial prints an error line with its addr, the node keeps running"
    ),
    Flag.atLeast(0)
  ),
  bootstrap: Flag.String("bootstrap").pipe(
    Flag.withDescription("multiaddr dialed at every start (repeatable; replaces the config file's bootstrap list)"),
    Flag.atLeast(0)
  ),
  identity: Flag.String("identity").pipe(
    Flag.withDescription(
      "private key file (protobuf PrivateKey); created with a new Ed25519 key if missing (default <data dir>/identity.key)"
    ),
    Flag.optional
  ),
  dataDir: Flag.String("data-dir").pipe(
    Flag.withDescription(
      "directory of identity.key, datastore.sqlite (known peers) and config.json, created if missing; " +
        "default $XDG_DATA_HOME/effect-libp2p, else ~/.local/share/effect-libp2p. One node per directory"
    ),
    Flag.optional
  ),
  ephemeral: Flag.Boolean("ephemeral").pipe(
    Flag.withDescription("no data directory: a new identity (unless --identity), peers kept in memory, no config file"),
    Flag.withDefault(false)
  ),
  reconnect: Flag.Int("reconnect").pipe(
    nonNegative,
    Flag.withDescription(
      `at start, redial up to this many known peers (default ${ConfigFile.DEFAULT_RECONNECT}; 0: none)`
    ),
    Flag.optional
  ),
  printConfig: Flag.Boolean("print-config").pipe(
    Flag.withDescription("print the effective configuration (defaults, config file, flags) as JSON and exit"),
    Flag.withDefault(false)
  ),
  wsCert: Flag.String("ws-cert").pipe(
    Flag.withDescription("PEM certificate file for listening on /wss and /tls/ws"),
    Flag.optional
  ),
  wsKey: Flag.String("ws-key").pipe(Flag.withDescription("PEM private key file of --ws-cert"), Flag.optional),
  dht: Flag.Literals("dht", ["server", "client", "auto"]).pipe(
    Flag.withDescription(
      "run Kad-DHT (server: answers queries and enters others' tables; client: only asks; auto: server while AutoNAT finds us public, implies --autonat); --bootstrap peers are its bootstrap peers"
    ),
    Flag.optional
  ),
  pubsub: PubsubCli.routerFlag(
    "pubsub",
    "run this pubsub router (gossipsub or floodsub); stdin takes {\"publish\":{\"topic\":…,\"data\":…}} lines"
  )
    .pipe(Flag.optional),
  subscribe: Flag.String("subscribe").pipe(
    Flag.withDescription("with --pubsub: subscribe to this topic and print its messages (repeatable)"),
    Flag.atLeast(0)
  ),
  mdns: Flag.Boolean("mdns").pipe(
    Flag.withDescription(
      "discover peers on the LAN with mDNS (224.0.0.251 and ff02::fb, port 5353) and dial them; prints peer:discovery lines"
    ),
    Flag.withDefault(false)
  ),
  relay: Flag.Boolean("relay").pipe(
    Flag.withDescription("serve as a circuit relay v2 (hop) for others: reservations, relayed connections"),
    Flag.withDefault(false)
  ),
  relayReserve: Flag.String("relay-reserve").pipe(
    Flag.withDescription(
      "reserve a slot on this relay (multiaddr with /p2p/<relay>; repeatable), keep it, print its circuit addresses"
    ),
    Flag.atLeast(0)
  ),
  ...RendezvousCli.flags,
  ...observabilityFlags,
  ...addressFlags,
  json,
  ...stackFlags
}

export interface NodeFlags extends StackFlags, AddressFlags, RendezvousCli.RendezvousFlags {
  readonly listen: ReadonlyArray<string>
  readonly dial: ReadonlyArray<string>
  readonly bootstrap: ReadonlyArray<string>
  readonly identity: Option.Option<string>
  readonly dataDir: Option.Option<string>
  readonly ephemeral: boolean
  readonly reconnect: Option.Option<number>
  readonly printConfig: boolean
  readonly wsCert: Option.Option<string>
  readonly wsKey: Option.Option<string>
  readonly dht: Option.Option<"server" | "client" | "auto">
  readonly http: Option.Option<string>
  readonly httpPublic: boolean
  readonly otlp: Option.Option<string>
  readonly pubsub: Option.Option<PubsubCli.RouterName>
  readonly subscribe: ReadonlyArray<string>
  readonly mdns: boolean
  readonly relay: boolean
  readonly relayReserve: ReadonlyArray<string>
  readonly json: boolean
}

/** The flags of `npm start` with no arguments. */
export const defaultFlags = (json: boolean): NodeFlags => ({
  listen: [],
  dial: [],
  bootstrap: [],
  identity: Option.none(),
  dataDir: Option.none(),
  ephemeral: false,
  reconnect: Option.none(),
  printConfig: false,
  wsCert: Option.none(),
  wsKey: Option.none(),
  dht: Option.none(),
  http: Option.none(),
  httpPublic: false,
  otlp: Option.none(),
  pubsub: Option.none(),
  subscribe: [],
  mdns: false,
  relay: false,
  relayReserve: [],
  announce: [],
  noAnnounce: [],
  autonat: false,
  publicCidr: [],
  ...RendezvousCli.defaultFlags,
  json,
  security: Option.none(),
  muxer: Option.none(),
  maxConnections: Option.none(),
  connLow: Option.none(),
  connHigh: Option.none(),
  connGrace: Option.none()
})

/** The configuration in effect: the defaults, then `config.json`, then the flags (`--print-config`). */
export const effectiveConfig = (
  flags: NodeFlags,
  dataDir: DataDir.Files | undefined,
  file: ConfigFile.ConfigFile
) => {
  const cm = file.connectionManager ?? {}
  const orFile = <A>(flag: Option.Option<A>, value: A | undefined) =>
    Option.isSome(flag) ? flag : Option.fromUndefinedOr(value)
  const stack: StackFlags = {
    security: orFile(flags.security, file.security?.join(",")),
    muxer: orFile(flags.muxer, file.muxers?.join(",")),
    maxConnections: orFile(flags.maxConnections, cm.maxConnections),
    connLow: orFile(flags.connLow, cm.lowWater),
    connHigh: orFile(flags.connHigh, cm.highWater),
    connGrace: orFile(flags.connGrace, cm.gracePeriod)
  }
  const listen = flags.listen.length > 0 ? flags.listen : file.listen ?? [DEFAULT_LISTEN]
  return {
    stack,
    /** The default address (not one an operator chose): a taken port moves to a free one. */
    fallbackToFreePort: flags.listen.length === 0 && listen.length === 1 && listen[0] === DEFAULT_LISTEN,
    json: {
      dataDir: dataDir?.dir ?? null,
      identity: Option.getOrUndefined(flags.identity) ?? dataDir?.identityFile ?? null,
      listen,
      bootstrap: flags.bootstrap.length > 0 ? flags.bootstrap : file.bootstrap ?? [],
      dial: flags.dial,
      security: Option.getOrElse(stack.security, () => "noise").split(","),
      muxers: Option.getOrElse(stack.muxer, () => "yamux").split(","),
      connectionManager: {
        ...Option.match(stack.maxConnections, { onNone: () => ({}), onSome: (maxConnections) => ({ maxConnections }) }),
        ...Option.match(stack.connLow, { onNone: () => ({}), onSome: (lowWater) => ({ lowWater }) }),
        ...Option.match(stack.connHigh, { onNone: () => ({}), onSome: (highWater) => ({ highWater }) }),
        ...Option.match(stack.connGrace, { onNone: () => ({}), onSome: (gracePeriod) => ({ gracePeriod }) })
      },
      reconnect: dataDir === undefined
        ? 0
        : Option.getOrElse(flags.reconnect, () => file.reconnect ?? ConfigFile.DEFAULT_RECONNECT),
      peerstore: {
        persistent: dataDir !== undefined,
        maxPeers: file.peerstore?.maxPeers ?? Peerstore.defaults.maxPeers
      },
      announce: flags.announce.length > 0 ? flags.announce : file.announce ?? [],
      noAnnounce: flags.noAnnounce.length > 0 ? flags.noAnnounce : file.noAnnounce ?? [],
      publicCidrs: flags.publicCidr,
      autonat: {
        ...file.autonat,
        enabled: flags.autonat || (Option.isSome(flags.dht) && flags.dht.value === "auto") ||
          file.autonat?.enabled === true
      },
      dht: Option.isSome(flags.dht) ? { ...file.dht, mode: flags.dht.value } : file.dht ?? {},
      pubsub: file.pubsub ?? {},
      mdns: flags.mdns || file.mdns === true,
      http: file.http ?? {},
      relay: { server: flags.relay, reserve: flags.relayReserve },
      rendezvous: RendezvousCli.effective(flags, file.rendezvous)
    }
  }
}

/** The data directory the flags name (`undefined` with `--ephemeral`). */
const dataDirOf = (flags: NodeFlags) =>
  Effect.gen(function*() {
    if (flags.ephemeral) {
      if (Option.isSome(flags.dataDir)) {
        return yield* new UsageError({ message: "--ephemeral and --data-dir exclude each other" })
      }
      return undefined
    }
    const path = yield* Path.Path
    return DataDir.files(
      path,
      path.resolve(Option.isSome(flags.dataDir) ? flags.dataDir.value : yield* DataDir.defaultLocation)
    )
  })

/** `--pubsub` and `--subscribe` (which needs `--pubsub`). */
const pubsubOption = (flags: NodeFlags) =>
  Option.isSome(flags.pubsub)
    ? Effect.succeed({ router: flags.pubsub.value, topics: flags.subscribe })
    : flags.subscribe.length > 0
    ? Effect.fail(new UsageError({ message: "--subscribe needs --pubsub gossipsub|floodsub" }))
    : Effect.succeed(undefined)

/** A `--relay-reserve` value: a multiaddr that names its relay (`/p2p/<id>`), else a usage error. */
const relayAddress = (text: string) =>
  Effect.flatMap(parseMultiaddr(text), (addr) =>
    Multiaddr.getPeerId(addr) === undefined
      ? Effect.fail(new UsageError({ message: `--relay-reserve ${text}: the address needs /p2p/<relay peer id>` }))
      : Effect.succeed(addr))

/** `--rendezvous-server`, `--rendezvous` and `--namespace` (or the config file's `rendezvous`), checked. */
const rendezvousOption = (
  settings: ReturnType<typeof RendezvousCli.effective>,
  datastore: Datastore["Service"] | undefined
) =>
  Effect.map(
    RendezvousCli.check(settings, parseMultiaddr),
    (run) => run === undefined ? undefined : { ...run, ...(datastore !== undefined ? { datastore } : {}) }
  )

/** `node`, and `npm start` with no arguments (`defaultFlags`). */
export const main = (flags: NodeFlags) =>
  Effect.gen(function*() {
    const dir = yield* dataDirOf(flags)
    if (flags.printConfig) {
      const file = dir !== undefined ? (yield* ConfigFile.read(dir.configFile)) ?? {} : {}
      const effective = effectiveConfig(flags, dir, file)
      yield* stackOptions(effective.stack) // the same checks as a start
      yield* Nat.parsePublicCidrs(effective.json.publicCidrs)
      return yield* emit(true, effective.json, "")
    }
    // the data directory first: its lock keeps a second node from reading or writing anything
    const data = dir !== undefined ? yield* DataDir.open(dir.dir) : undefined
    const file = data !== undefined ? yield* ConfigFile.load(data.configFile, ConfigFile.initial([DEFAULT_LISTEN])) : {}
    const effective = effectiveConfig(flags, dir, file)
    const stack = yield* stackOptions(effective.stack)
    const bootstrap = yield* Effect.forEach(effective.json.bootstrap, parseMultiaddr)
    yield* Bootstrap.parsePeers(bootstrap).pipe(Effect.mapError((e) => new UsageError({ message: e.message })))
    const dial = yield* Effect.forEach(flags.dial, parseMultiaddr)
    const listen = yield* Effect.forEach(effective.json.listen, parseMultiaddr)
    const certificate = yield* readCertificate(flags.wsCert, flags.wsKey)
    const publicCidrs = yield* Nat.parsePublicCidrs(effective.json.publicCidrs)
    const key = Option.isSome(flags.identity)
      ? yield* IdentityFile.load(flags.identity.value)
      : data !== undefined
      ? yield* IdentityFile.load(data.identityFile)
      : yield* Keys.generate("Ed25519")
    const peerstore = data !== undefined
      ? Peerstore.layerDatastore({ maxPeers: effective.json.peerstore.maxPeers }).pipe(
        Layer.provide(Layer.succeed(Datastore, data.datastore))
      )
      : undefined
    yield* runNode({
      listen: listen.map(Multiaddr.toString),
      privateKey: key,
      json: flags.json,
      fallbackToFreePort: effective.fallbackToFreePort,
      dial,
      bootstrap,
      reconnect: effective.json.reconnect,
      http: yield* httpOptions(flags),
      otlp: yield* otlpOption(flags.otlp),
      dht: Option.isSome(flags.dht)
        ? {
          options: { mode: flags.dht.value, bootstrap },
          ...(data !== undefined ? { datastore: data.datastore } : {})
        }
        : undefined,
      pubsub: yield* pubsubOption(flags),
      mdns: effective.json.mdns ? {} : undefined,
      relay: { server: flags.relay, reserve: yield* Effect.forEach(flags.relayReserve, relayAddress) },
      ...(effective.json.autonat.enabled
        ? { autonat: { allowPrivateAddrs: effective.json.autonat.allowPrivateAddrs === true } }
        : {}),
      rendezvous: yield* rendezvousOption(effective.json.rendezvous, data?.datastore),
      holePunch: { publicCidrs },
      preset: {
        ...stack,
        addressManager: {
          announce: yield* Effect.forEach(effective.json.announce, parseMultiaddr),
          noAnnounce: yield* Effect.forEach(effective.json.noAnnounce, parseMultiaddr),
          publicCidrs
        },
        ...(certificate !== undefined ? { webSocket: { certificate } } : {}),
        ...(peerstore !== undefined ? { peerstore } : {})
      }
    })
  }).pipe(Effect.scoped)

export const command = Command.make(
  "node",
  nodeFlags,
  (flags) => main(flags).pipe(usageAsHelp(["effect-libp2p", "node"]))
).pipe(Command.withDescription("run a node until SIGINT/SIGTERM"))
