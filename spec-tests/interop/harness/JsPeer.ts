/**
 * JsPeer: a typed driver for `js-peer.mjs`, a real js-libp2p v3 node (TCP and/or WebSockets + Noise + Yamux,
 * identify, ping, `/echo/1.0.0`, `/perf/1.0.0`) run in a separate process for the interop
 * tests of ARCHITECTURE.md §6. The process speaks JSON lines over stdin/stdout (the command
 * protocol is documented at the top of js-peer.mjs).
 *
 * `JsPeer.start(options)` is a scoped resource: the process is spawned with the test's own
 * Node (`process.execPath`, Node 24 under npm), waits for the `ready` line, and is stopped
 * when the scope closes (stdin closed → graceful stop; SIGKILL if it has not exited after
 * `stopTimeout`). Timeouts use the live clock even inside `it.effect` (TestClock), since a
 * foreign process runs on real time; prefer `it.live` for interop tests anyway.
 */
import { Clock, Duration, Effect, Queue, Schema, Scope, Stream } from "effect"
import * as ChildProcess from "node:child_process"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"

/** Absolute path of the js-libp2p peer script. */
export const SCRIPT = fileURLToPath(new URL("./js-peer.mjs", import.meta.url))

export type Json = Schema.Json
export type JsonObject = Schema.JsonObject

/** Any harness failure: the process could not start, died, timed out, or a command failed on the js side. */
export class HarnessError extends Schema.TaggedError<HarnessError>()("HarnessError", {
  reason: Schema.Literals(["Spawn", "StartTimeout", "Exited", "CommandTimeout", "CommandFailed", "BadResponse"]),
  message: Schema.String,
  /** For CommandFailed: the js error's `name` (e.g. "UnsupportedProtocolError"). */
  errorName: Schema.optionalKey(Schema.String)
}) {}

export interface ServicesOptions {
  readonly identify?: boolean | JsonObject
  readonly ping?: boolean | JsonObject
  readonly echo?: boolean
  readonly perf?: boolean
  /** identify/push (on by default, as in a typical js-libp2p node). */
  readonly identifyPush?: boolean | JsonObject
}

export interface Options {
  /** Listen multiaddrs; default ["/ip4/127.0.0.1/tcp/0"]. */
  readonly listen?: ReadonlyArray<string>
  /** js transports; default ["tcp"]. "websockets" is @libp2p/websockets (listen on ".../tcp/0/ws"). */
  readonly transports?: ReadonlyArray<"tcp" | "websockets">
  /** Protobuf-encoded private key (libp2p key format); a fresh Ed25519 key when absent. */
  readonly privateKey?: Uint8Array
  /** Which services run; all default to on. Objects are passed as the service's init. */
  readonly services?: ServicesOptions
  /** Merged over the harness defaults { inboundConnectionThreshold: 100000, maxIncomingPendingConnections: 1000 }. */
  readonly connectionManager?: JsonObject
  /** js-libp2p's connection monitor init (default: js's own, a ping every 10 s). */
  readonly connectionMonitor?: JsonObject
  readonly userAgent?: string
  /** js connection encrypters in preference order; default ["noise"]. "tls" is @libp2p/tls. */
  readonly encrypters?: ReadonlyArray<"noise" | "tls" | "plaintext">
  /** js stream muxers in preference order; default ["yamux"]. "mplex" is @libp2p/mplex. */
  readonly muxers?: ReadonlyArray<"yamux" | "mplex">
  /** @libp2p/mplex init, e.g. { disconnectThreshold: 100 } (js's default 5 resets the connection on the 6th stream in a second). */
  readonly mplex?: JsonObject
  /** Extra environment for the process, e.g. { DEBUG: "libp2p:*" } (logs go to stderr). */
  readonly env?: Readonly<Record<string, string>>
  /** Copy the process's stderr to ours as it arrives (also on when JS_PEER_STDERR=1). */
  readonly echoStderr?: boolean
  /** How long to wait for `ready`; default 20 s. */
  readonly startTimeout?: Duration.Input
  /** Default per-command timeout; default 30 s. */
  readonly commandTimeout?: Duration.Input
  /** Grace period after closing stdin before SIGKILL; default 3 s. */
  readonly stopTimeout?: Duration.Input
  /** Run @libp2p/kad-dht as service `dht` (js-kad.mjs; driven through JsKad.ts). */
  readonly kad?: { readonly clientMode?: boolean; readonly protocol?: string }
  /** pubsub (wt-gossip): `{ router: "gossipsub" | "floodsub", ...init }` adds that service (see {@link pubsubOf}). */
  readonly pubsub?: JsonObject
  /** circuit relay v2 (wt-relay): `server` adds `circuitRelayServer`, `transport` the `circuitRelayTransport` (true or init). */
  readonly relay?: { readonly server?: true | JsonObject; readonly transport?: true | JsonObject }
  /** @libp2p/autonat-v2 as service `autoNAT` (true, or its init); command `autonatAddrs` (wt-autonat). */
  readonly autonat?: boolean | JsonObject
  /** @libp2p/dcutr as service `dcutr` (true, or its init) (wt-jsnat). */
  readonly dcutr?: true | JsonObject
  /** js's `addresses.appendAnnounce`: addresses it offers as its own besides its listeners (wt-jsnat). */
  readonly appendAnnounce?: ReadonlyArray<string>
  /** Run the process in this network namespace (`ip netns exec <netns>`: root, Linux; support/netns.ts) (wt-jsnat). */
  readonly netns?: string
}

/** A line the process printed with an `event` field. */
export interface JsPeerEvent extends JsonObject {
  readonly event: string
}

/** Where a command goes: a multiaddr (dials if needed) or an already connected peer. */
export type Target = { readonly addr: string } | { readonly peerId: string }

export interface CommandOptions {
  readonly timeout?: Duration.Input
}

// ------------------------------------------------------------------ typed results

export const DialResult = Schema.Struct({
  peerId: Schema.String,
  remoteAddr: Schema.String,
  direction: Schema.String,
  encryption: Schema.NullOr(Schema.String),
  multiplexer: Schema.NullOr(Schema.String),
  connectionId: Schema.String
})
export type DialResult = typeof DialResult.Type

export const PingResult = Schema.Struct({ rtts: Schema.Array(Schema.Number) })
export type PingResult = typeof PingResult.Type

export const IdentifyResult = Schema.Struct({
  peerId: Schema.String,
  agentVersion: Schema.NullOr(Schema.String),
  protocolVersion: Schema.NullOr(Schema.String),
  protocols: Schema.Array(Schema.String),
  listenAddrs: Schema.Array(Schema.String),
  observedAddr: Schema.NullOr(Schema.String),
  /** What identify delivered (js verified it before accepting the message). */
  signedPeerRecord: Schema.NullOr(Schema.Struct({ seq: Schema.String, addrs: Schema.Array(Schema.String) })),
  connectionId: Schema.NullOr(Schema.String),
  /** The envelope in js's peer store, opened again with RecordEnvelope.openAndCertify. */
  peerRecordVerified: Schema.Boolean,
  peerRecordError: Schema.NullOr(Schema.String),
  peerRecord: Schema.NullOr(
    Schema.Struct({ peerId: Schema.String, seq: Schema.String, addrs: Schema.Array(Schema.String) })
  )
})
export type IdentifyResult = typeof IdentifyResult.Type

export const EchoResult = Schema.Struct({ bytes: Schema.Number, streams: Schema.Number, ms: Schema.Number })
export type EchoResult = typeof EchoResult.Type

export const PerfResult = Schema.Struct({
  seconds: Schema.Number,
  uploadSeconds: Schema.Number,
  uploadBytes: Schema.Number,
  downloadBytes: Schema.Number
})
export type PerfResult = typeof PerfResult.Type

export const NegotiateResult = Schema.Struct({ protocol: Schema.String })

export const PeersResult = Schema.Struct({
  peers: Schema.Array(Schema.Struct({ peerId: Schema.String, addrs: Schema.Array(Schema.String) }))
})
export type PeersResult = typeof PeersResult.Type

export const ConnectionsResult = Schema.Struct({
  count: Schema.Number,
  connections: Schema.Array(Schema.Struct({
    peerId: Schema.String,
    remoteAddr: Schema.String,
    direction: Schema.String,
    status: Schema.String,
    encryption: Schema.NullOr(Schema.String),
    multiplexer: Schema.NullOr(Schema.String),
    streams: Schema.Number,
    id: Schema.String
  }))
})
export type ConnectionsResult = typeof ConnectionsResult.Type

// ------------------------------------------------------------------ the handle

export interface JsPeer {
  readonly peerId: string
  /** Listen addresses with the /p2p/ suffix, as js reports them. */
  readonly addrs: ReadonlyArray<string>
  /** The first listen address (with /p2p/). */
  readonly addr: string
  readonly pid: number
  /** `process.version` of the child (expected v24.x). */
  readonly nodeVersion: string
  /** Send any command; resolves with the whole response object (including `id`, `ok`). */
  readonly command: (
    name: string,
    args?: JsonObject,
    options?: CommandOptions
  ) => Effect.Effect<JsonObject, HarnessError>
  /** Events from now on (ends when the process exits). */
  readonly events: Stream.Stream<JsPeerEvent>
  /** All events so far, in order. */
  readonly eventLog: Effect.Effect<ReadonlyArray<JsPeerEvent>>
  /**
   * The first event matching `predicate` with index ≥ `after` (default 0: past events count,
   * so an event that already happened is found); fails on timeout or if the process exits.
   * Use `eventCount` to get a mark for "only new events".
   */
  readonly awaitEvent: (
    predicate: (event: JsPeerEvent) => boolean,
    options?: { readonly timeout?: Duration.Input; readonly after?: number }
  ) => Effect.Effect<JsPeerEvent, HarnessError>
  readonly eventCount: Effect.Effect<number>
  /** What the process wrote to stderr so far (last 64 KiB). */
  readonly stderr: Effect.Effect<string>

  readonly dial: (addr: string, options?: CommandOptions) => Effect.Effect<DialResult, HarnessError>
  readonly hangup: (peerId: string, options?: CommandOptions) => Effect.Effect<void, HarnessError>
  /** mode "service": @libp2p/ping, a new stream per ping, whole ms; "stream": all pings on one stream, fractional ms. */
  readonly ping: (
    target: Target,
    args?: { readonly count?: number; readonly mode?: "service" | "stream"; readonly negotiateFully?: boolean },
    options?: CommandOptions
  ) => Effect.Effect<PingResult, HarnessError>
  /** The identify result js got on its connection to `peerId` (`fresh`: run identify again). */
  readonly identify: (
    peerId: string,
    args?: { readonly fresh?: boolean; readonly timeoutMs?: number },
    options?: CommandOptions
  ) => Effect.Effect<IdentifyResult, HarnessError>
  /**
   * Echo `bytes` pseudo-random bytes on each of `streams` concurrent streams and check them.
   * `negotiateFully: false` (here, in ping "stream" mode and in perf): js sends the protocol
   * name together with the first data (optimistic multistream-select).
   */
  readonly echo: (
    target: Target,
    args?: {
      readonly bytes?: number
      readonly streams?: number
      readonly protocol?: string
      readonly negotiateFully?: boolean
    },
    options?: CommandOptions
  ) => Effect.Effect<EchoResult, HarnessError>
  /** perf client (perf spec): send `uploadBytes`, ask for `downloadBytes`. */
  readonly perf: (
    target: Target,
    args: {
      readonly uploadBytes: number
      readonly downloadBytes: number
      readonly protocol?: string
      readonly negotiateFully?: boolean
    },
    options?: CommandOptions
  ) => Effect.Effect<PerfResult, HarnessError>
  /** Open a stream offering `protocols` in order; the protocol multistream-select agreed on. */
  readonly negotiate: (
    target: Target,
    protocols: ReadonlyArray<string>,
    options?: CommandOptions
  ) => Effect.Effect<string, HarnessError>
  /** Register `protocol` on the js node with one of the harness handlers ("sink": read to EOF, then close). */
  readonly handle: (protocol: string, behavior?: "echo" | "perf" | "sink") => Effect.Effect<void, HarnessError>
  readonly unhandle: (protocol: string) => Effect.Effect<void, HarnessError>
  /** identify/push to all connected peers now (js also pushes by itself when its protocols or addresses change). */
  readonly push: Effect.Effect<void, HarnessError>
  readonly peers: Effect.Effect<PeersResult, HarnessError>
  readonly connections: Effect.Effect<ConnectionsResult, HarnessError>
  /** Stop the node gracefully and wait for the process to exit. */
  readonly stop: Effect.Effect<void, HarnessError>
}

// ------------------------------------------------------------------ implementation

const STDERR_KEEP = 64 * 1024
const TAIL = 4000

const liveClock = Clock.Clock.defaultValue()
/** Run with the real clock, so timeouts fire under TestClock too. */
const live = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, Clock.Clock, liveClock)

const withTimeout = <A, R>(
  self: Effect.Effect<A, HarnessError, R>,
  duration: Duration.Input,
  onTimeout: () => HarnessError
): Effect.Effect<A, HarnessError, R> =>
  live(Effect.timeoutOrElse(self, { duration, orElse: () => Effect.fail(onTimeout()) }))

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

interface Exited {
  readonly code: number | null
  readonly signal: string | null
  readonly error?: string
}

interface State {
  readonly child: ChildProcess.ChildProcessWithoutNullStreams
  readonly name: string
  stderr: string
  exited: Exited | undefined
  nextId: number
  readonly pending: Map<number, (response: Result) => void>
  readonly eventLog: Array<JsPeerEvent>
  readonly listeners: Set<(event: JsPeerEvent) => void>
  readonly exitListeners: Set<() => void>
}

type Result = { readonly _tag: "Response"; readonly value: JsonObject } | { readonly _tag: "Exited" }

const tail = (state: State): string => {
  const s = state.stderr.trimEnd()
  return s === "" ? "(stderr empty)" : `stderr:\n${s.length > TAIL ? "…" + s.slice(-TAIL) : s}`
}

/** Read through a call so flow narrowing does not assume the field never changes. */
const exitedOf = (state: State): Exited | undefined => state.exited

const exitText = (e: Exited): string =>
  e.error !== undefined
    ? `failed: ${e.error}`
    : `exited with code ${e.code ?? "null"}${e.signal ? ` (signal ${e.signal})` : ""}`

const exitedError = (state: State, what: string): HarnessError =>
  new HarnessError({
    reason: "Exited",
    message: `${state.name}: ${what}: process ${state.exited ? exitText(state.exited) : "exited"}\n${tail(state)}`
  })

/** A peer's config argument (js-peer.mjs's and go/main.go's first command-line argument). */
export const configOf = (options: Options): Record<string, unknown> => {
  const config: Record<string, unknown> = {}
  if (options.listen !== undefined) config["listen"] = options.listen
  if (options.transports !== undefined) config["transports"] = options.transports
  if (options.privateKey !== undefined) config["privateKey"] = Buffer.from(options.privateKey).toString("hex")
  if (options.services !== undefined) config["services"] = options.services
  if (options.connectionManager !== undefined) config["connectionManager"] = options.connectionManager
  if (options.connectionMonitor !== undefined) config["connectionMonitor"] = options.connectionMonitor
  if (options.userAgent !== undefined) config["userAgent"] = options.userAgent
  if (options.encrypters !== undefined) config["encrypters"] = options.encrypters
  if (options.muxers !== undefined) config["muxers"] = options.muxers
  if (options.mplex !== undefined) config["mplex"] = options.mplex
  if (options.kad !== undefined) config["kad"] = options.kad
  if (options.pubsub !== undefined) config["pubsub"] = options.pubsub
  if (options.relay !== undefined) config["relay"] = options.relay
  if (options.autonat !== undefined) config["autonat"] = options.autonat
  if (options.dcutr !== undefined) config["dcutr"] = options.dcutr
  if (options.appendAnnounce !== undefined) config["appendAnnounce"] = options.appendAnnounce
  return config
}

/**
 * A peer process speaking the line protocol of js-peer.mjs (the go peer, spec-tests/interop/go,
 * speaks it too): what to run, its name in messages, and which env var echoes its stderr.
 */
export interface ProcessSpec {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly name: string
  /** `<stderrEnv>=1` in our environment copies the process's stderr to ours. */
  readonly stderrEnv: string
}

/** The options every peer process takes, whatever runs in it. */
export type ProcessOptions = Pick<Options, "env" | "echoStderr" | "startTimeout" | "commandTimeout" | "stopTimeout">

const spawn = (spec: ProcessSpec, options: ProcessOptions): Effect.Effect<State, HarnessError> =>
  Effect.try({
    try: () => {
      const name = spec.name
      const child = ChildProcess.spawn(spec.command, [...spec.args], {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...process.env, ...options.env }
      })
      const state: State = {
        child,
        name,
        stderr: "",
        exited: undefined,
        nextId: 1,
        pending: new Map(),
        eventLog: [],
        listeners: new Set(),
        exitListeners: new Set()
      }
      const echo = options.echoStderr ?? process.env[spec.stderrEnv] === "1"
      child.stderr.setEncoding("utf8")
      child.stderr.on("data", (chunk: string) => {
        state.stderr = (state.stderr + chunk).slice(-STDERR_KEEP)
        if (echo) process.stderr.write(chunk)
      })
      child.stdin.on("error", () => {}) // EPIPE after the child died: reported through 'exit'
      const lines = Readline.createInterface({ input: child.stdout, crlfDelay: Infinity })
      lines.on("line", (line) => onLine(state, line))
      const finish = (exited: Exited) => {
        if (state.exited !== undefined) return
        state.exited = exited
        for (const resume of state.pending.values()) resume({ _tag: "Exited" })
        state.pending.clear()
        for (const wake of state.exitListeners) wake()
        state.exitListeners.clear()
      }
      child.on("error", (err) => finish({ code: null, signal: null, error: String(err) }))
      // 'close' fires after stdout/stderr are drained, so every line has been seen
      child.on("close", (code, signal) => finish({ code, signal }))
      return state
    },
    catch: (err) =>
      new HarnessError({ reason: "Spawn", message: `${spec.name}: cannot spawn ${spec.command}: ${String(err)}` })
  })

const onLine = (state: State, line: string): void => {
  let msg: unknown
  try {
    msg = JSON.parse(line)
  } catch {
    state.stderr = (state.stderr + `[stdout, not JSON] ${line}\n`).slice(-STDERR_KEEP)
    return
  }
  if (!isObject(msg)) return
  if (typeof msg["event"] === "string") {
    const event = msg as JsPeerEvent
    state.eventLog.push(event)
    for (const listener of state.listeners) listener(event)
  } else if (typeof msg["id"] === "number") {
    const resume = state.pending.get(msg["id"])
    if (resume !== undefined) {
      state.pending.delete(msg["id"])
      resume({ _tag: "Response", value: msg as JsonObject })
    }
  }
}

/** Resolves when the process has exited (immediately if it already has). */
const awaitExit = (state: State): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (state.exited !== undefined) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    state.exitListeners.add(wake)
    return Effect.sync(() => state.exitListeners.delete(wake))
  })

const kill = (state: State, grace: Duration.Input): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (state.exited !== undefined) return
    state.child.stdin.end()
    const graceful = yield* live(Effect.timeoutOption(awaitExit(state), grace))
    if (graceful._tag === "Some") return
    state.child.kill("SIGKILL")
    yield* live(Effect.timeoutOption(awaitExit(state), "5 seconds"))
  })

const findEvent = (
  state: State,
  predicate: (event: JsPeerEvent) => boolean,
  after: number
): Effect.Effect<JsPeerEvent, HarnessError> =>
  Effect.callback<JsPeerEvent, HarnessError>((resume) => {
    for (let i = after; i < state.eventLog.length; i++) {
      const e = state.eventLog[i]!
      if (predicate(e)) return resume(Effect.succeed(e))
    }
    if (state.exited !== undefined) return resume(Effect.fail(exitedError(state, "waiting for an event")))
    const listener = (e: JsPeerEvent) => {
      if (predicate(e)) {
        cleanup()
        resume(Effect.succeed(e))
      }
    }
    const onExit = () => {
      cleanup()
      resume(Effect.fail(exitedError(state, "waiting for an event")))
    }
    const cleanup = () => {
      state.listeners.delete(listener)
      state.exitListeners.delete(onExit)
    }
    state.listeners.add(listener)
    state.exitListeners.add(onExit)
    return Effect.sync(cleanup)
  })

const sendCommand = (
  state: State,
  name: string,
  args: JsonObject,
  timeout: Duration.Input
): Effect.Effect<JsonObject, HarnessError> => {
  const request = Effect.callback<JsonObject, HarnessError>((resume) => {
    const id = state.nextId++ // per run: the same Effect value may run many times, concurrently
    if (state.exited !== undefined) return resume(Effect.fail(exitedError(state, `command ${name}`)))
    state.pending.set(id, (result) => {
      if (result._tag === "Exited") return resume(Effect.fail(exitedError(state, `command ${name}`)))
      const value = result.value
      if (value["ok"] === true) return resume(Effect.succeed(value))
      const errorName = typeof value["errorName"] === "string" ? value["errorName"] : undefined
      resume(Effect.fail(
        new HarnessError({
          reason: "CommandFailed",
          message: `${state.name}: ${name} failed: ${String(value["error"])}`,
          ...(errorName !== undefined ? { errorName } : {})
        })
      ))
    })
    state.child.stdin.write(JSON.stringify({ ...args, id, cmd: name }) + "\n")
    return Effect.sync(() => state.pending.delete(id))
  })
  return withTimeout(request, timeout, () =>
    new HarnessError({
      reason: "CommandTimeout",
      message: `${state.name}: ${name} ${JSON.stringify(args)} got no answer within ${
        Duration.format(Duration.fromInputUnsafe(timeout))
      }\n${tail(state)}`
    }))
}

let counter = 0

/** Spawn a js-libp2p peer; it lives until the enclosing scope closes. */
export const start = (options: Options = {}): Effect.Effect<JsPeer, HarnessError, Scope.Scope> =>
  startProcess({
    command: options.netns !== undefined ? "ip" : process.execPath,
    args: [
      ...(options.netns !== undefined ? ["netns", "exec", options.netns, process.execPath] : []),
      SCRIPT,
      JSON.stringify(configOf(options))
    ],
    name: `js-peer#${++counter}`,
    stderrEnv: "JS_PEER_STDERR"
  }, options)

/**
 * Spawn any peer process speaking js-peer.mjs's line protocol and wait for its `ready` line;
 * it lives until the enclosing scope closes. `JsPeer` is the handle for every such process.
 */
export const startProcess = (
  spec: ProcessSpec,
  options: ProcessOptions = {}
): Effect.Effect<JsPeer, HarnessError, Scope.Scope> =>
  Effect.gen(function*() {
    const name = spec.name
    const commandTimeout = options.commandTimeout ?? "30 seconds"
    const state = yield* Effect.acquireRelease(spawn(spec, options), (s) => kill(s, options.stopTimeout ?? "3 seconds"))
    const startTimeout = options.startTimeout ?? "20 seconds"
    const ready = yield* withTimeout(
      findEvent(state, (e) => e.event === "ready", 0),
      startTimeout,
      () => {
        state.child.kill("SIGKILL") // a node that cannot start is not worth a graceful stop
        return new HarnessError({
          reason: "StartTimeout",
          message: `${name}: no ready line within ${Duration.format(Duration.fromInputUnsafe(startTimeout))}\n${
            tail(state)
          }`
        })
      }
    )
    const peerId = ready["peerId"]
    const addrs = ready["addrs"]
    const nodeVersion = ready["node"]
    if (
      typeof peerId !== "string" || !Array.isArray(addrs) || addrs.length === 0 ||
      !addrs.every((a) => typeof a === "string") || typeof nodeVersion !== "string"
    ) {
      return yield* new HarnessError({
        reason: "BadResponse",
        message: `${name}: bad ready line ${JSON.stringify(ready)}`
      })
    }
    const addrList = addrs as ReadonlyArray<string>

    const command = (cmd: string, args: JsonObject = {}, opts?: CommandOptions) =>
      sendCommand(state, cmd, args, opts?.timeout ?? commandTimeout)

    const typed = <S extends Schema.ConstraintDecoder<unknown>>(
      schema: S,
      cmd: string,
      args: JsonObject,
      opts?: CommandOptions
    ) =>
      command(cmd, args, opts).pipe(
        Effect.flatMap((value) =>
          Schema.decodeUnknownEffect(schema)(value).pipe(
            Effect.mapError((err) =>
              new HarnessError({
                reason: "BadResponse",
                message: `${name}: ${cmd}: unexpected response ${JSON.stringify(value)}: ${String(err)}`
              })
            )
          )
        )
      )

    const lazy = (negotiateFully: boolean | undefined): JsonObject =>
      negotiateFully === false ? { negotiateFully: false } : {}
    const targetJson = (
      target: Target
    ): JsonObject => ("addr" in target ? { addr: target.addr } : { peerId: target.peerId })

    const events = Stream.callback<JsPeerEvent>((queue) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          const listener = (e: JsPeerEvent) => void Queue.offerUnsafe(queue, e)
          const onExit = () => void Queue.endUnsafe(queue)
          state.listeners.add(listener)
          state.exitListeners.add(onExit)
          if (state.exited !== undefined) Queue.endUnsafe(queue)
          return { listener, onExit }
        }),
        ({ listener, onExit }) =>
          Effect.sync(() => {
            state.listeners.delete(listener)
            state.exitListeners.delete(onExit)
          })
      )
    )

    const peer: JsPeer = {
      peerId,
      addrs: addrList,
      addr: addrList[0]!,
      pid: state.child.pid ?? -1,
      nodeVersion,
      command,
      events,
      eventLog: Effect.sync(() => [...state.eventLog]),
      eventCount: Effect.sync(() => state.eventLog.length),
      awaitEvent: (predicate, opts) => {
        const timeout = opts?.timeout ?? commandTimeout
        return withTimeout(findEvent(state, predicate, opts?.after ?? 0), timeout, () =>
          new HarnessError({
            reason: "CommandTimeout",
            message: `${name}: no matching event within ${
              Duration.format(Duration.fromInputUnsafe(timeout))
            }; events so far: ${JSON.stringify(state.eventLog.slice(-20))}\n${tail(state)}`
          }))
      },
      stderr: Effect.sync(() => state.stderr),
      dial: (addr, opts) => typed(DialResult, "dial", { addr }, opts),
      hangup: (id, opts) => Effect.asVoid(command("hangup", { peerId: id }, opts)),
      ping: (target, args, opts) =>
        typed(PingResult, "ping", {
          ...targetJson(target),
          count: args?.count ?? 1,
          mode: args?.mode ?? "service",
          ...lazy(args?.negotiateFully)
        }, opts),
      identify: (id, args, opts) =>
        typed(IdentifyResult, "identify", {
          peerId: id,
          fresh: args?.fresh ?? false,
          ...(args?.timeoutMs !== undefined ? { timeoutMs: args.timeoutMs } : {})
        }, opts),
      echo: (target, args, opts) =>
        typed(EchoResult, "echo", {
          ...targetJson(target),
          bytes: args?.bytes ?? 1024,
          streams: args?.streams ?? 1,
          ...(args?.protocol !== undefined ? { protocol: args.protocol } : {}),
          ...lazy(args?.negotiateFully)
        }, opts),
      perf: (target, args, opts) =>
        typed(PerfResult, "perf", {
          ...targetJson(target),
          uploadBytes: args.uploadBytes,
          downloadBytes: args.downloadBytes,
          ...(args.protocol !== undefined ? { protocol: args.protocol } : {}),
          ...lazy(args.negotiateFully)
        }, opts),
      negotiate: (target, protocols, opts) =>
        Effect.map(
          typed(NegotiateResult, "negotiate", { ...targetJson(target), protocols: [...protocols] }, opts),
          (r) => r.protocol
        ),
      handle: (protocol, behavior) => Effect.asVoid(command("handle", { protocol, behavior: behavior ?? "echo" })),
      unhandle: (protocol) => Effect.asVoid(command("unhandle", { protocol })),
      push: Effect.asVoid(command("push", {})),
      peers: typed(PeersResult, "peers", {}),
      connections: typed(ConnectionsResult, "connections", {}),
      stop: Effect.gen(function*() {
        if (state.exited !== undefined) return
        yield* command("stop", {})
        yield* withTimeout(
          awaitExit(state),
          options.stopTimeout ?? "3 seconds",
          () =>
            new HarnessError({ reason: "CommandTimeout", message: `${name}: still running after stop\n${tail(state)}` })
        )
        const exited = exitedOf(state)
        if (exited !== undefined && exited.code !== 0) {
          return yield* exitedError(state, "stop")
        }
      })
    }
    return peer
  })

/** A predicate for `awaitEvent`: event name plus equal top-level fields. */
export const isEvent = (event: string, fields: Readonly<Record<string, string>> = {}) => (e: JsPeerEvent): boolean =>
  e.event === event && Object.entries(fields).every(([k, v]) => e[k] === v)

// ------------------------------------------------------------------ pubsub (wt-gossip)

export const PubsubPeersResult = Schema.Struct({ peers: Schema.Array(Schema.String) })
export const PubsubPublishResult = Schema.Struct({ recipients: Schema.Array(Schema.String) })

/** A message the js node's pubsub service delivered (`pubsub:message` event). */
export interface PubsubMessageEvent {
  readonly topic: string
  readonly from: string | null
  readonly seqno: string | null
  /** base64 */
  readonly data: string
  readonly text: string
}

/** The pubsub commands of a js peer started with `pubsub` in its options. */
export const pubsubOf = (js: JsPeer) => {
  const run = <A>(schema: Schema.Decoder<A>, cmd: string, args: JsonObject) =>
    Effect.flatMap(js.command(cmd, args), (r) =>
      Effect.mapError(
        Schema.decodeUnknownEffect(schema)(r),
        (e) => new HarnessError({ reason: "BadResponse", message: `${cmd}: ${e.message}` })
      ))
  return {
    subscribe: (topic: string) => Effect.asVoid(js.command("pubsubSubscribe", { topic })),
    unsubscribe: (topic: string) => Effect.asVoid(js.command("pubsubUnsubscribe", { topic })),
    publish: (topic: string, text: string) =>
      Effect.map(run(PubsubPublishResult, "pubsubPublish", { topic, text }), (r) => r.recipients),
    /** Subscribers of `topic` js knows of. */
    peers: (topic: string) => Effect.map(run(PubsubPeersResult, "pubsubPeers", { topic }), (r) => r.peers),
    /** js's gossipsub mesh of `topic`. */
    mesh: (topic: string) => Effect.map(run(PubsubPeersResult, "pubsubMesh", { topic }), (r) => r.peers),
    /** Every message delivered so far (in order). */
    messages: Effect.map(
      js.eventLog,
      (log) => log.filter((e) => e.event === "pubsub:message") as unknown as ReadonlyArray<PubsubMessageEvent>
    ),
    /** The first delivered message with this text (past ones count). */
    awaitMessage: (text: string, options?: { readonly timeout?: Duration.Input }) =>
      Effect.map(
        js.awaitEvent((e) => e.event === "pubsub:message" && e["text"] === text, options),
        (e) => e as unknown as PubsubMessageEvent
      )
  }
}
// ------------------------------------------------------------------ end pubsub
