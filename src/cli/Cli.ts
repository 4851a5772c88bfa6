/**
 * The command-line program (ARCHITECTURE.md §7): `node`, `ping`, `identify`, `perf`.
 * With `--json` every command prints one JSON object per line on stdout and
 * nothing else there (logs go to stderr). On failure every command prints
 * `{"event":"error","error":{"_tag":…,"message":…}}` and exits non-zero.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Layer, Option, Result, Schema, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Nodes from "../../layers/Node.ts"
import * as ConnectionManager from "../connection/ConnectionManager.ts"
import * as Keys from "../core/Keys.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import { Host } from "../host/Host.ts"
import { Identify } from "../protocols/identify/Identify.ts"
import { Perf } from "../protocols/perf/Perf.ts"
import { Ping } from "../protocols/ping/Ping.ts"

export const VERSION = "0.1.0"

/** A CLI usage or environment problem (bad flag value, unreadable identity file). */
export class CliUsageError extends Schema.TaggedError<CliUsageError>()("CliUsageError", {
  message: Schema.String
}) {}

// ---------------------------------------------------------------------------
// output

const writeLine = (line: string) => Effect.sync(() => void process.stdout.write(line + "\n"))

/** Print an event: JSON line with --json, a short human line otherwise. */
const emit = (json: boolean, event: Record<string, unknown>, human: string) =>
  json ? writeLine(JSON.stringify(event)) : writeLine(human)

const errorInfo = (e: unknown): { readonly _tag: string; readonly message: string } => {
  if (typeof e === "object" && e !== null) {
    const tag = "_tag" in e && typeof e._tag === "string" ? e._tag : "Error"
    const reason = "reason" in e && typeof e.reason === "string" ? `${e.reason}: ` : ""
    const message = "message" in e && typeof e.message === "string" ? e.message : String(e)
    return { _tag: tag, message: reason + message }
  }
  return { _tag: "Error", message: String(e) }
}

/** Report a failure the way §7 says and mark the process as failed. */
const reportFailure = (json: boolean) => (e: unknown) =>
  Effect.gen(function*() {
    const error = errorInfo(e)
    if (json) yield* writeLine(JSON.stringify({ event: "error", error }))
    else yield* Effect.sync(() => void process.stderr.write(`error: ${error._tag}: ${error.message}\n`))
    yield* Effect.sync(() => void (process.exitCode = 1))
  })

// ---------------------------------------------------------------------------
// flags

const json = Flag.Boolean("json").pipe(
  Flag.withDescription("one JSON object per line on stdout"),
  Flag.withDefault(false)
)
const security = Flag.String("security").pipe(
  Flag.withDescription("secure channels in preference order: noise, tls (e.g. noise,tls)"),
  Flag.withDefault("noise")
)
const muxer = Flag.String("muxer").pipe(
  Flag.withDescription("stream muxers in preference order: yamux, mplex (e.g. yamux,mplex)"),
  Flag.withDefault("yamux")
)
const maxConnections = Flag.Int("max-connections").pipe(
  Flag.withDescription("hard cap on connections, handshaking ones included (default 300)"),
  Flag.optional
)
const connLow = Flag.Int("conn-low").pipe(
  Flag.withDescription("trimming closes connections down to this many (default 160)"),
  Flag.optional
)
const connHigh = Flag.Int("conn-high").pipe(
  Flag.withDescription("trimming starts above this many connections (default 192)"),
  Flag.optional
)
const connGrace = Flag.String("conn-grace").pipe(
  Flag.withDescription("new connections are not trimmed for this long, e.g. 30s, 500ms, 1m (default 1m)"),
  Flag.optional
)

interface StackFlags {
  readonly security: string
  readonly muxer: string
  readonly maxConnections: Option.Option<number>
  readonly connLow: Option.Option<number>
  readonly connHigh: Option.Option<number>
  readonly connGrace: Option.Option<string>
}

const stackFlags = { security, muxer, maxConnections, connLow, connHigh, connGrace }

const parseList = <A extends string>(flag: string, value: string, known: ReadonlyArray<A>) =>
  Effect.gen(function*() {
    const names = value.split(",").map((x) => x.trim()).filter((x) => x.length > 0)
    if (names.length === 0) return yield* new CliUsageError({ message: `${flag}: empty list` })
    const out: Array<A> = []
    for (const name of names) {
      const found = known.find((k) => k === name)
      if (found === undefined) {
        return yield* new CliUsageError({ message: `${flag}: unknown "${name}" (known: ${known.join(", ")})` })
      }
      if (!out.includes(found)) out.push(found)
    }
    return out
  })

/**
 * The secure channels and muxers named by `--security` and `--muxer`, in the
 * preference order given (ARCHITECTURE.md §7); unknown names are usage errors.
 */
const checkStack = (flags: StackFlags) =>
  Effect.gen(function*() {
    const stack: Pick<Nodes.PresetOptions, "security" | "muxers"> = {
      security: yield* parseList("--security", flags.security, Nodes.securityNames),
      muxers: yield* parseList("--muxer", flags.muxer, Nodes.muxerNames)
    }
    return stack
  })

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `500ms`, `1s`, `1.5s`, `2m`, `1h`, or an Effect duration (`1 second`). */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text)
  if (m !== null) return Duration.millis(Number(m[1]) * UNITS[m[2]!]!)
  const d = Duration.fromInput(text as Duration.Input)
  return d._tag === "Some" ? d.value : undefined
}

/**
 * The connection manager's options from `--max-connections`, `--conn-low`,
 * `--conn-high`, `--conn-grace` (ARCHITECTURE.md §7), checked at the edge:
 * counts are non-negative integers, the grace period a duration, and
 * `conn-low ≤ conn-high` where both are given (a watermark above
 * `--max-connections` is lowered to it, as the ConnectionManager does).
 */
export const connectionManagerOptions = (flags: StackFlags) =>
  Effect.gen(function*() {
    const count = (flag: string, value: Option.Option<number>) =>
      Option.isNone(value)
        ? Effect.succeed(undefined)
        : Effect.mapError(
          Schema.decodeUnknownEffect(Count)(value.value),
          () => new CliUsageError({ message: `${flag}: expected a non-negative integer, got ${value.value}` })
        )
    const max = yield* count("--max-connections", flags.maxConnections)
    const low = yield* count("--conn-low", flags.connLow)
    const high = yield* count("--conn-high", flags.connHigh)
    let grace: Duration.Duration | undefined
    if (Option.isSome(flags.connGrace)) {
      grace = parseDuration(flags.connGrace.value)
      if (grace === undefined) {
        return yield* new CliUsageError({
          message: `--conn-grace: not a duration: "${flags.connGrace.value}" (e.g. 30s, 500ms, 1m)`
        })
      }
    }
    if (low !== undefined && high !== undefined && low > high) {
      return yield* new CliUsageError({ message: `--conn-low (${low}) must not exceed --conn-high (${high})` })
    }
    if ((high ?? 0) > (max ?? Infinity) || (low ?? 0) > (max ?? Infinity)) {
      yield* Effect.sync(() =>
        void process.stderr.write(`warning: watermarks above --max-connections (${max}) are lowered to it\n`)
      )
    }
    const options: ConnectionManager.ConnectionManagerOptions = {
      ...(max !== undefined ? { maxConnections: max } : {}),
      ...(low !== undefined ? { lowWater: low } : {}),
      ...(high !== undefined ? { highWater: high } : {}),
      ...(grace !== undefined ? { gracePeriod: grace } : {})
    }
    return options
  })

const parseMultiaddr = (text: string) =>
  Effect.mapError(
    Effect.fromResult(Multiaddr.fromString(text)),
    (e) => new CliUsageError({ message: `bad multiaddr "${text}": ${e.message}` })
  )

/** Read the identity file (protobuf PrivateKey, raw bytes), creating an Ed25519 one if missing. */
export const loadIdentity = (file: string) =>
  Effect.gen(function*() {
    const existing = yield* Effect.try({
      try: () => (fs.existsSync(file) ? new Uint8Array(fs.readFileSync(file)) : undefined),
      catch: (e) => new CliUsageError({ message: `cannot read identity file ${file}: ${String(e)}` })
    })
    if (existing !== undefined) {
      return yield* Effect.mapError(
        Effect.fromResult(Keys.privateKeyFromProtobuf(existing)),
        (e) => new CliUsageError({ message: `identity file ${file}: ${e.message}` })
      )
    }
    const key = yield* Keys.generate("Ed25519")
    yield* Effect.try({
      try: () => {
        fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
        fs.writeFileSync(file, Keys.privateKeyToProtobuf(key), { mode: 0o600 })
      },
      catch: (e) => new CliUsageError({ message: `cannot write identity file ${file}: ${String(e)}` })
    })
    return key
  })

/** The certificate for secure WebSocket listeners, from `--ws-cert` and `--ws-key` (both or neither). */
const readCertificate = (cert: Option.Option<string>, key: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isNone(cert) && Option.isNone(key)) return undefined
    if (Option.isNone(cert) || Option.isNone(key)) {
      return yield* new CliUsageError({ message: "--ws-cert and --ws-key go together" })
    }
    return yield* Effect.try({
      try: () => ({ cert: fs.readFileSync(cert.value, "utf8"), key: fs.readFileSync(key.value, "utf8") }),
      catch: (e) => new CliUsageError({ message: `cannot read --ws-cert/--ws-key: ${String(e)}` })
    })
  })

// ---------------------------------------------------------------------------
// node

const DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/4001"

/** Run a node until interrupted (SIGINT/SIGTERM), printing events. */
export const runNode = (options: {
  readonly listen: ReadonlyArray<string>
  readonly identity: Option.Option<string>
  readonly json: boolean
  readonly fallbackToFreePort: boolean
  readonly connectionManager?: ConnectionManager.ConnectionManagerOptions
  /** Secure channels, muxers, WebSocket certificate: passed to the Default preset. */
  readonly preset?: Nodes.PresetOptions
}) =>
  Effect.gen(function*() {
    const privateKey = Option.isSome(options.identity)
      ? yield* loadIdentity(options.identity.value)
      : yield* Keys.generate("Ed25519")
    const listen = yield* Effect.forEach(options.listen, parseMultiaddr)
    const start = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const ctx = yield* Layer.buildWithScope(
          Nodes.Default({
            ...options.preset,
            privateKey,
            listen: addrs,
            ...(options.connectionManager !== undefined ? { connectionManager: options.connectionManager } : {})
          }),
          scope
        )
        return ctx
      })
    const ctx = yield* start(listen).pipe(
      Effect.catchTag("ListenError", (e) =>
        options.fallbackToFreePort
          ? Effect.flatMap(
            Effect.forEach(listen, (a) => parseMultiaddr(Multiaddr.toString(a).replace(/\/tcp\/\d+/, "/tcp/0"))),
            start
          )
          : Effect.fail(e))
    )
    const host = ctx.mapUnsafe.get(Host.key) as Host["Service"]
    const identify = ctx.mapUnsafe.get(Identify.key) as Identify["Service"]
    const connectionManager = ctx.mapUnsafe.get(
      ConnectionManager.ConnectionManager.key
    ) as ConnectionManager.ConnectionManager[
      "Service"
    ]
    const peerId = PeerId.toString(host.peerId)
    const addrs = host.addrs().map(Multiaddr.toString)
    yield* emit(
      options.json,
      { event: "listening", peerId, addrs },
      `peer id: ${peerId}\n${addrs.map((a) => `listening on ${a}`).join("\n")}`
    )
    const hostEvents = yield* host.subscribe
    const identifyEvents = yield* identify.subscribe
    const trimEvents = yield* connectionManager.subscribe
    yield* Effect.forkScoped(
      trimEvents.pipe(Stream.runForEach((e) => {
        if (e._tag !== "PeerTrimmed") return Effect.void
        const id = PeerId.toString(e.peerId)
        const addr = Multiaddr.toString(e.connection.remoteAddr)
        return emit(options.json, {
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
    yield* Effect.forkScoped(
      identifyEvents.pipe(Stream.runForEach((r) =>
        emit(options.json, {
          event: "peer:identify",
          peerId: PeerId.toString(r.peerId),
          agentVersion: r.agentVersion ?? null,
          protocols: r.protocols
        }, `identified ${PeerId.toString(r.peerId)} (${r.agentVersion ?? "?"})`)
      ))
    )
    return yield* hostEvents.pipe(Stream.runForEach((event) => {
      switch (event._tag) {
        case "PeerConnect": {
          const id = PeerId.toString(event.peerId)
          const addr = Multiaddr.toString(event.connection.remoteAddr)
          return emit(options.json, { event: "peer:connect", peerId: id, addr }, `connected ${id} at ${addr}`)
        }
        case "PeerDisconnect": {
          const id = PeerId.toString(event.peerId)
          return emit(options.json, { event: "peer:disconnect", peerId: id }, `disconnected ${id}`)
        }
        default:
          return Effect.void
      }
    }))
  }).pipe(Effect.scoped)

const nodeCommand = Command.make(
  "node",
  {
    listen: Flag.String("listen").pipe(Flag.withDescription("multiaddr to listen on (repeatable)"), Flag.atLeast(0)),
    identity: Flag.String("identity").pipe(
      Flag.withDescription("private key file (protobuf PrivateKey)"),
      Flag.optional
    ),
    dataDir: Flag.String("data-dir").pipe(Flag.optional),
    wsCert: Flag.String("ws-cert").pipe(
      Flag.withDescription("PEM certificate file for listening on /wss and /tls/ws"),
      Flag.optional
    ),
    wsKey: Flag.String("ws-key").pipe(Flag.withDescription("PEM private key file of --ws-cert"), Flag.optional),
    json,
    ...stackFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const stack = yield* checkStack(flags)
      if (Option.isSome(flags.dataDir)) {
        yield* Effect.logDebug("--data-dir: nothing is persisted yet (in-memory peerstore)")
      }
      const listen = flags.listen.length > 0 ? flags.listen : [DEFAULT_LISTEN]
      const connectionManager = yield* connectionManagerOptions(flags)
      const certificate = yield* readCertificate(flags.wsCert, flags.wsKey)
      yield* runNode({
        listen,
        identity: flags.identity,
        json: flags.json,
        fallbackToFreePort: flags.listen.length === 0,
        connectionManager,
        preset: { ...stack, ...(certificate !== undefined ? { webSocket: { certificate } } : {}) }
      })
    }).pipe(Effect.catch(reportFailure(flags.json)))
).pipe(Command.withDescription("run a node until SIGINT/SIGTERM"))

// ---------------------------------------------------------------------------
// ping and identify (a short-lived client node)

const withClient = <A, E>(
  body: (services: {
    readonly host: Host["Service"]
    readonly ping: Ping["Service"]
    readonly identify: Identify["Service"]
    readonly perf: Perf["Service"]
  }) => Effect.Effect<A, E>,
  options: Nodes.PresetOptions = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const scope = yield* Effect.scope
    const ctx = yield* Layer.buildWithScope(Nodes.Default(options), scope)
    return yield* body({
      host: ctx.mapUnsafe.get(Host.key) as Host["Service"],
      ping: ctx.mapUnsafe.get(Ping.key) as Ping["Service"],
      identify: ctx.mapUnsafe.get(Identify.key) as Identify["Service"],
      perf: ctx.mapUnsafe.get(Perf.key) as Perf["Service"]
    })
  }))

const targetPeer = (addr: Multiaddr.Multiaddr) =>
  Effect.gen(function*() {
    const id = Multiaddr.getPeerId(addr)
    if (id === undefined) return yield* new CliUsageError({ message: "the address must end in /p2p/<peer id>" })
    const peer = PeerId.fromString(id)
    if (Result.isFailure(peer)) return yield* new CliUsageError({ message: peer.failure.message })
    return peer.success
  })

const pingCommand = Command.make(
  "ping",
  {
    addr: Argument.String("multiaddr").pipe(Argument.withDescription("address ending in /p2p/<peer id>")),
    count: Flag.Int("count").pipe(Flag.withDefault(1)),
    json,
    ...stackFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const client: Nodes.PresetOptions = {
        ...(yield* checkStack(flags)),
        connectionManager: yield* connectionManagerOptions(flags)
      }
      const addr = yield* parseMultiaddr(flags.addr)
      const peer = yield* targetPeer(addr)
      const peerId = PeerId.toString(peer)
      yield* withClient(({ ping }) =>
        Effect.gen(function*() {
          const rtts = yield* ping.ping(addr, { count: Math.max(1, flags.count) })
          for (const rttMs of rtts) {
            const rounded = Math.round(rttMs * 1000) / 1000
            yield* emit(flags.json, { event: "ping", peerId, rttMs: rounded }, `ping ${peerId}: ${rounded} ms`)
          }
        }), client)
    }).pipe(Effect.catch(reportFailure(flags.json)))
).pipe(Command.withDescription("ping a peer (/ipfs/ping/1.0.0)"))

const identifyCommand = Command.make(
  "identify",
  {
    addr: Argument.String("multiaddr").pipe(Argument.withDescription("address ending in /p2p/<peer id>")),
    json,
    ...stackFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const client: Nodes.PresetOptions = {
        ...(yield* checkStack(flags)),
        connectionManager: yield* connectionManagerOptions(flags)
      }
      const addr = yield* parseMultiaddr(flags.addr)
      yield* targetPeer(addr)
      yield* withClient(({ host, identify }) =>
        Effect.gen(function*() {
          const conn = yield* host.dial(addr)
          const r = yield* identify.identify(conn)
          const event = {
            event: "identify",
            peerId: PeerId.toString(r.peerId),
            agentVersion: r.agentVersion ?? null,
            protocolVersion: r.protocolVersion ?? null,
            protocols: r.protocols,
            listenAddrs: r.listenAddrs.map(Multiaddr.toString),
            observedAddr: r.observedAddr !== undefined ? Multiaddr.toString(r.observedAddr) : null,
            signedPeerRecord: r.signedPeerRecord !== undefined
              ? { seq: r.signedPeerRecord.seq.toString(), addrs: r.signedPeerRecord.addrs.map(Multiaddr.toString) }
              : null
          }
          yield* emit(flags.json, event, JSON.stringify(event, null, 2))
        }), client)
    }).pipe(Effect.catch(reportFailure(flags.json)))
).pipe(Command.withDescription("identify a peer (/ipfs/id/1.0.0)"))

/** Bits per second in Gbit/s, 3 decimals; 0 when no time elapsed. */
const gbitPerSecond = (bytes: number, seconds: number) =>
  seconds > 0 ? Math.round((bytes * 8) / seconds / 1e6) / 1000 : 0

const perfCommand = Command.make(
  "perf",
  {
    addr: Argument.String("multiaddr").pipe(Argument.withDescription("address ending in /p2p/<peer id>")),
    uploadBytes: Flag.Int("upload-bytes").pipe(Flag.withDescription("bytes to send"), Flag.withDefault(0)),
    downloadBytes: Flag.Int("download-bytes").pipe(Flag.withDescription("bytes to ask back"), Flag.withDefault(0)),
    json,
    ...stackFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const client: Nodes.PresetOptions = {
        ...(yield* checkStack(flags)),
        connectionManager: yield* connectionManagerOptions(flags)
      }
      const addr = yield* parseMultiaddr(flags.addr)
      const peer = yield* targetPeer(addr)
      for (
        const [flag, n] of [["--upload-bytes", flags.uploadBytes], ["--download-bytes", flags.downloadBytes]] as const
      ) {
        if (n < 0) return yield* new CliUsageError({ message: `${flag} must not be negative` })
      }
      const peerId = PeerId.toString(peer)
      yield* withClient(({ perf }) =>
        Effect.gen(function*() {
          const r = yield* perf.perf(addr, { uploadBytes: flags.uploadBytes, downloadBytes: flags.downloadBytes })
          const event = {
            event: "perf",
            peerId,
            uploadBytes: r.uploadBytes,
            downloadBytes: r.downloadBytes,
            seconds: r.seconds,
            uploadSeconds: r.uploadSeconds,
            downloadSeconds: r.downloadSeconds,
            gbitPerSecond: gbitPerSecond(r.uploadBytes + r.downloadBytes, r.seconds),
            uploadGbitPerSecond: gbitPerSecond(r.uploadBytes, r.uploadSeconds),
            downloadGbitPerSecond: gbitPerSecond(r.downloadBytes, r.downloadSeconds)
          }
          yield* emit(
            flags.json,
            event,
            `perf ${peerId}: ${r.uploadBytes} bytes up, ${r.downloadBytes} bytes down in ${r.seconds.toFixed(3)} s ` +
              `(${event.gbitPerSecond} Gbit/s)`
          )
        }), client)
    }).pipe(Effect.catch(reportFailure(flags.json)))
).pipe(Command.withDescription("measure throughput with a peer (/perf/1.0.0)"))

// ---------------------------------------------------------------------------
// root: no command runs a node with the defaults

export const root = Command.make(
  "effect-libp2p",
  { json },
  (flags) =>
    runNode({ listen: [DEFAULT_LISTEN], identity: Option.none(), json: flags.json, fallbackToFreePort: true }).pipe(
      Effect.catch(reportFailure(flags.json))
    )
).pipe(
  Command.withDescription("a libp2p node on Effect"),
  Command.withSubcommands([nodeCommand, pingCommand, identifyCommand, perfCommand])
)

export const run = Command.run(root, { version: VERSION })
