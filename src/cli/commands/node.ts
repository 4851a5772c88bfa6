/**
 * `node`: run a node until SIGINT/SIGTERM, printing its events (ARCHITECTURE.md
 * §7, docs/CLI.md). `npm start` with no command runs it with the defaults.
 *
 * @since 0.1.0
 */
import { Context, Effect, FileSystem, Layer, Option, Stream } from "effect"
import { Command, Flag } from "effect/cli"
import * as Nodes from "../../../layers/Node.ts"
import { ConnectionManager } from "../../connection/ConnectionManager.ts"
import * as Keys from "../../core/Keys.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { Host } from "../../host/Host.ts"
import * as HttpStatus from "../../observability/HttpStatus.ts"
import * as Tracing from "../../observability/Tracing.ts"
import { Identify } from "../../protocols/identify/Identify.ts"
import {
  httpOptions,
  json,
  observabilityFlags,
  otlpOption,
  parseMultiaddr,
  stackFlags,
  stackOptions
} from "../flags.ts"
import * as IdentityFile from "../identityFile.ts"
import { emit, errorInfo, printError, usageAsHelp, UsageError, warn } from "../output.ts"

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
            return emit(json, { event: "peer:disconnect", peerId: id }, `disconnected ${id}`)
          }
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

/** `/tcp/<port>` → `/tcp/0`. */
const anyPort = (addr: Multiaddr.Multiaddr) => parseMultiaddr(Multiaddr.toString(addr).replace(/\/tcp\/\d+/, "/tcp/0"))

/** Run a node until interrupted (SIGINT/SIGTERM), printing events. */
export const runNode = (options: {
  readonly listen: ReadonlyArray<string>
  readonly privateKey: Keys.PrivateKey
  readonly json: boolean
  /** Without `--listen`: a taken port moves to a free one (with a warning and `fallbackFrom` in `listening`). */
  readonly fallbackToFreePort: boolean
  /** Dialed at start, each on its own: a failure is an error line with its `addr`, the node keeps running. */
  readonly dial?: ReadonlyArray<Multiaddr.Multiaddr>
  /** Secure channels, muxers, connection limits, WebSocket certificate: passed to the Default preset. */
  readonly preset?: Nodes.PresetOptions
  /** `--http`: serve /metrics, /api/status and the status page there (loopback only unless `public`). */
  readonly http?: { readonly listen: Multiaddr.Multiaddr; readonly public: boolean } | undefined
  /** `--otlp`: export traces to this OTLP/HTTP collector (base URL). */
  readonly otlp?: string | undefined
}) =>
  Effect.gen(function*() {
    const listen = yield* Effect.forEach(options.listen, parseMultiaddr)
    const otlp = options.otlp
    const start = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => {
      const node = Nodes.Default({ ...options.preset, privateKey: options.privateKey, listen: addrs })
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

export const command = Command.make(
  "node",
  {
    listen: Flag.String("listen").pipe(
      Flag.withDescription(`multiaddr to listen on (repeatable; default ${DEFAULT_LISTEN}, or a free port if taken)`),
      Flag.atLeast(0)
    ),
    dial: Flag.String("dial").pipe(
      Flag.withDescription(
        "multiaddr to dial at start (repeatable); a failed dial prints an error line with its addr, the node keeps running"
      ),
      Flag.atLeast(0)
    ),
    identity: Flag.String("identity").pipe(
      Flag.withDescription("private key file (protobuf PrivateKey); created with a new Ed25519 key if missing"),
      Flag.optional
    ),
    dataDir: Flag.String("data-dir").pipe(
      Flag.withDescription(
        "reserved for the coming datastore: nothing is persisted yet, a warning says so. Use --identity to keep a peer id"
      ),
      Flag.optional
    ),
    wsCert: Flag.String("ws-cert").pipe(
      Flag.withDescription("PEM certificate file for listening on /wss and /tls/ws"),
      Flag.optional
    ),
    wsKey: Flag.String("ws-key").pipe(Flag.withDescription("PEM private key file of --ws-cert"), Flag.optional),
    ...observabilityFlags,
    json,
    ...stackFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const stack = yield* stackOptions(flags)
      const dial = yield* Effect.forEach(flags.dial, parseMultiaddr)
      const certificate = yield* readCertificate(flags.wsCert, flags.wsKey)
      if (Option.isSome(flags.dataDir)) {
        yield* warn(
          `--data-dir ${flags.dataDir.value}: nothing is persisted yet (reserved flag); use --identity <file> to keep a peer id`
        )
      }
      yield* runNode({
        listen: flags.listen.length > 0 ? flags.listen : [DEFAULT_LISTEN],
        privateKey: yield* privateKey(flags.identity),
        json: flags.json,
        fallbackToFreePort: flags.listen.length === 0,
        dial,
        http: yield* httpOptions(flags),
        otlp: yield* otlpOption(flags.otlp),
        preset: { ...stack, ...(certificate !== undefined ? { webSocket: { certificate } } : {}) }
      })
    }).pipe(usageAsHelp(["effect-libp2p", "node"]))
).pipe(Command.withDescription("run a node until SIGINT/SIGTERM"))

/** The `--identity` file's key, or a fresh Ed25519 key. */
export const privateKey = (identity: Option.Option<string>) =>
  Option.isSome(identity) ? IdentityFile.load(identity.value) : Keys.generate("Ed25519")
