/**
 * ours-peer: one of OUR nodes (layers/Node.ts `Default`: TCP + Noise + Yamux,
 * identify, ping, perf) in its own process, driven over stdin/stdout with the
 * same JSON-lines protocol as the js-libp2p harness
 * (spec-tests/interop/harness/js-peer.mjs), so that bench/main.ts can drive
 * either kind of node with the same commands. It serves `/echo/1.0.0` (echo
 * until EOF, then close) and `/perf/1.0.0` (perf spec §Protocol, through our
 * Perf layer).
 *
 * Configuration: a JSON object as the first command-line argument:
 *   { listen?: string[]                 default ["/ip4/127.0.0.1/tcp/0"]
 *     connectionManager?: { maxConnections?, lowWater?, highWater? }   (ConnectionManagerOptions)
 *     resources?: ResourceManager.Limits }   both passed to the Default preset
 * The node's logs go to stderr, at the level named by env BENCH_LOG (default Warn).
 *
 * Output (stdout, one JSON object per line):
 *   {"event":"ready","peerId":"...","addrs":[".../p2p/..."],"node":"v24..."}   once, first
 *   {"id":N,"ok":true,...result}  or  {"id":N,"ok":false,"error":"Tag: message","errorName":"Tag"}
 * Input (stdin): {"id":N,"cmd":"<name>",...args}. A target is {"addr":multiaddr} or {"peerId":id}.
 *   dial {addr}                          → {peerId, remoteAddr, direction, encryption, multiplexer, connectionId}
 *   hangup {peerId}                      → {}
 *   ping {target, count=1}               → {rtts:[ms]}   (all on one stream)
 *   perf {target, uploadBytes, downloadBytes} → {seconds, uploadSeconds, uploadBytes, downloadBytes}
 *   echoLoop {target, count, size=1}     → {us:[µs per round trip]}  `count` echoes on ONE stream
 *   perfLoop {target, count}             → {us:[µs]}  one new perf stream per request, 1 byte each way
 *   dialLoop {addr, count}               → {us:[µs], seconds}  dial + Noise + Yamux + /echo stream +
 *                                          1-byte echo, timed; then hang up (untimed, but in `seconds`)
 *   spawnNodes {addr, count, concurrency=8} → {count, failed, errors, ms}  start `count` more nodes in
 *                                          this process (fresh identities, no listeners), each dialing addr
 *                                          (one retry; `failed` dials are counted, not fatal)
 *   closeNodes                           → {}   stop those nodes
 *   cpu {gc=false|true|"last-resort"}    → {user, system (µs), heapUsed, rss, external, arrayBuffers (bytes),
 *                                          monoUs (the monotonic clock, µs: the time base of --cpu-prof)}
 *                                          (gc: true runs global.gc first; start node with --expose-gc)
 *   connections                          → {count}
 *   addrs                                → {peerId, addrs}
 *   stop                                 → {} then exit 0
 * Closing stdin (or SIGTERM/SIGINT) stops the node and exits 0.
 *
 * Run: node bench/ours-peer.ts '{"listen":["/ip4/127.0.0.1/tcp/0"]}'
 */
import { Cause, Context, Effect, Exit, Layer, Logger, type LogLevel, References, Result, Scope } from "effect"
import * as Readline from "node:readline"
import * as Nodes from "../layers/Node.ts"
import type * as Connection from "../src/connection/Connection.ts"
import { Registrar } from "../src/connection/Registrar.ts"
import type * as ResourceManager from "../src/connection/ResourceManager.ts"
import type * as Duplex from "../src/core/Duplex.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import * as PeerId from "../src/core/PeerId.ts"
import { Host } from "../src/host/Host.ts"
import { Perf } from "../src/protocols/perf/Perf.ts"
import { Ping } from "../src/protocols/ping/Ping.ts"

const ECHO = "/echo/1.0.0"

// ---------------------------------------------------------------- output

const emit = (obj: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(obj) + "\n")
}
const log = (...args: ReadonlyArray<unknown>): void => {
  process.stderr.write(`[ours-peer ${process.pid}] ${args.join(" ")}\n`)
}

class CommandError extends Error {
  constructor(message: string, name = "CommandError") {
    super(message)
    this.name = name
  }
}

const fail = (message: string): never => {
  throw new CommandError(message)
}

// ---------------------------------------------------------------- args

type Args = Readonly<Record<string, unknown>>

const str = (args: Args, key: string): string | undefined => {
  const v = args[key]
  return typeof v === "string" ? v : undefined
}
const num = (args: Args, key: string, dflt?: number): number => {
  const v = args[key]
  if (typeof v === "number" && Number.isFinite(v)) return v
  if (dflt !== undefined) return dflt
  return fail(`need a number \`${key}\``)
}
const parseAddr = (s: string): Multiaddr.Multiaddr => {
  const r = Multiaddr.fromString(s)
  return Result.isSuccess(r) ? r.success : fail(`bad multiaddr ${s}: ${r.failure.message}`)
}
const parsePeerId = (s: string): PeerId.PeerId => {
  const r = PeerId.fromString(s)
  return Result.isSuccess(r) ? r.success : fail(`bad peer id ${s}: ${r.failure.message}`)
}
type Target = Multiaddr.Multiaddr | PeerId.PeerId
const target = (args: Args): Target => {
  const addr = str(args, "addr")
  if (addr !== undefined) return parseAddr(addr)
  const peer = str(args, "peerId")
  if (peer !== undefined) return parsePeerId(peer)
  return fail("need `addr` or `peerId`")
}

// ---------------------------------------------------------------- node

type NodeServices = Host | Registrar | Ping | Perf

const config = JSON.parse(process.argv[2] ?? "{}") as {
  readonly listen?: ReadonlyArray<string>
  readonly connectionManager?: {
    readonly maxConnections?: number
    readonly lowWater?: number
    readonly highWater?: number
  }
  readonly resources?: ResourceManager.Limits
}
const listen = (config.listen ?? ["/ip4/127.0.0.1/tcp/0"]).map(parseAddr)
const presetOptions: Nodes.PresetOptions = {
  ...(config.connectionManager !== undefined ? { connectionManager: config.connectionManager } : {}),
  ...(config.resources !== undefined ? { resources: config.resources } : {})
}

const LOG_LEVELS: ReadonlyArray<LogLevel.LogLevel> = ["All", "Fatal", "Error", "Warn", "Info", "Debug", "Trace", "None"]
const logLevelEnv = process.env["BENCH_LOG"]
/** The node's logs go to stderr (stdout is the command protocol), at BENCH_LOG's level (default Warn). */
const logging = Layer.mergeAll(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(
    References.MinimumLogLevel,
    LOG_LEVELS.find((l) => l.toLowerCase() === logLevelEnv?.toLowerCase()) ?? "Warn"
  )
)

/** Build one node in its own scope. */
const startNode = async (listenAddrs: ReadonlyArray<Multiaddr.Multiaddr>) => {
  const scope = Effect.runSync(Scope.make())
  const ctx = await Effect.runPromise(
    Layer.buildWithScope(
      Nodes.Default(listenAddrs.length > 0 ? { ...presetOptions, listen: listenAddrs } : presetOptions).pipe(
        Layer.provideMerge(logging)
      ),
      scope
    )
  ) as Context.Context<NodeServices>
  return { scope, ctx, host: Context.get(ctx, Host) }
}

const errorText = (cause: Cause.Cause<unknown>): { error: string; errorName: string } => {
  const e = Cause.squash(cause)
  if (typeof e === "object" && e !== null) {
    const tag = "_tag" in e && typeof e._tag === "string"
      ? e._tag
      : "name" in e && typeof e.name === "string"
      ? e.name
      : "Error"
    const reason = "reason" in e && typeof e.reason === "string" ? ` (${e.reason})` : ""
    const message = "message" in e && typeof e.message === "string" ? e.message : String(e)
    return { error: `${tag}${reason}: ${message}`, errorName: tag }
  }
  return { error: String(e), errorName: "Error" }
}

const main = await startNode(listen)
const { ctx, host } = main

const run = async <A, E>(effect: Effect.Effect<A, E, NodeServices | Scope.Scope>): Promise<A> => {
  const exit = await Effect.runPromiseExit(effect.pipe(Effect.scoped, Effect.provideContext(ctx)))
  if (Exit.isSuccess(exit)) return exit.value
  const { error, errorName } = errorText(exit.cause)
  throw new CommandError(error, errorName)
}

/** /echo/1.0.0: write back every batch until EOF, then close our side. */
const echoServe = (stream: Duplex.Duplex) =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* stream.read
      if (chunks.length === 0) break
      yield* stream.write(chunks)
    }
    yield* stream.closeWrite
  })

await Effect.runPromise(
  Effect.gen(function*() {
    const registrar = yield* Registrar
    yield* registrar.handle(ECHO, echoServe, { maxInboundStreams: 1024, maxOutboundStreams: 1024 })
  }).pipe(Effect.provideContext(ctx), Scope.provide(main.scope))
)

// ---------------------------------------------------------------- helpers

const ONE = Uint8Array.of(0x2a)
const nowUs = (): number => performance.now() * 1000

/** Read until `n` bytes arrived (fails on EOF first). */
const readBytes = (stream: Duplex.Duplex, n: number) =>
  Effect.gen(function*() {
    let got = 0
    while (got < n) {
      const chunks = yield* stream.read
      if (chunks.length === 0) return yield* Effect.die(new CommandError(`stream ended after ${got} of ${n} bytes`))
      for (const c of chunks) got += c.byteLength
    }
    return got
  })

const drainToEof = (stream: Duplex.Duplex) =>
  Effect.gen(function*() {
    let got = 0
    while (true) {
      const chunks = yield* stream.read
      if (chunks.length === 0) return got
      for (const c of chunks) got += c.byteLength
    }
  })

const connectionJson = (c: Connection.Connection) => ({
  peerId: PeerId.toString(c.remotePeer),
  remoteAddr: Multiaddr.toString(c.remoteAddr),
  direction: c.direction,
  encryption: c.security,
  multiplexer: c.muxer,
  connectionId: c.id
})

/** Extra nodes started by spawnNodes (the memory scenario's dialers). */
let extra: Array<Scope.Closeable> = []

const closeExtra = async (): Promise<void> => {
  const scopes = extra
  extra = []
  await Promise.all(scopes.map((s) => Effect.runPromise(Scope.close(s, Exit.void))))
}

// ---------------------------------------------------------------- commands

const commands: Record<string, (args: Args) => Promise<Record<string, unknown>>> = {
  dial: (args) => {
    const t = target(args)
    return run(Effect.map(Effect.flatMap(Host, (h) => h.dial(t)), connectionJson))
  },

  hangup: (args) => {
    const peer = parsePeerId(str(args, "peerId") ?? fail("need peerId"))
    return run(Effect.as(Effect.flatMap(Host, (h) => h.hangUp(peer)), {}))
  },

  ping: (args) => {
    const t = target(args)
    const count = num(args, "count", 1)
    return run(Effect.map(Effect.flatMap(Ping, (p) => p.ping(t, { count })), (rtts) => ({ rtts })))
  },

  perf: (args) => {
    const t = target(args)
    const options = { uploadBytes: num(args, "uploadBytes", 0), downloadBytes: num(args, "downloadBytes", 0) }
    return run(Effect.gen(function*() {
      const perf = yield* Perf
      const r = yield* perf.perf(t, options)
      return {
        seconds: r.seconds,
        uploadSeconds: r.uploadSeconds,
        uploadBytes: r.uploadBytes,
        downloadBytes: r.downloadBytes
      }
    }))
  },

  echoLoop: (args) => {
    const t = target(args)
    const count = num(args, "count")
    const size = num(args, "size", 1)
    const payload = new Uint8Array(size).fill(0x2a)
    return run(Effect.gen(function*() {
      const h = yield* Host
      const stream = yield* h.newStream(t, [ECHO])
      const us: Array<number> = []
      for (let i = 0; i < count; i++) {
        const t0 = nowUs()
        yield* stream.write([payload])
        yield* readBytes(stream, size)
        us.push(nowUs() - t0)
      }
      yield* stream.closeWrite
      yield* drainToEof(stream)
      return { us }
    }))
  },

  perfLoop: (args) => {
    const t = target(args)
    const count = num(args, "count")
    const header = new Uint8Array(8)
    new DataView(header.buffer).setBigUint64(0, 1n, false)
    return run(Effect.gen(function*() {
      const h = yield* Host
      yield* h.dial(t)
      const us: Array<number> = []
      for (let i = 0; i < count; i++) {
        const t0 = nowUs()
        yield* Effect.scoped(Effect.gen(function*() {
          const stream = yield* h.newStream(t, ["/perf/1.0.0"])
          yield* stream.write([header, ONE])
          yield* stream.closeWrite
          const got = yield* drainToEof(stream)
          if (got !== 1) return yield* Effect.die(new CommandError(`perf: asked for 1 byte, got ${got}`))
        }))
        us.push(nowUs() - t0)
      }
      return { us }
    }))
  },

  dialLoop: (args) => {
    const addr = parseAddr(str(args, "addr") ?? fail("need addr"))
    const idText = Multiaddr.getPeerId(addr) ?? fail("addr needs /p2p/<id>")
    const peer = parsePeerId(idText)
    const count = num(args, "count")
    return run(Effect.gen(function*() {
      const h = yield* Host
      yield* h.hangUp(peer)
      const us: Array<number> = []
      const start = nowUs()
      for (let i = 0; i < count; i++) {
        const t0 = nowUs()
        yield* Effect.scoped(Effect.gen(function*() {
          const conn = yield* h.dial(addr)
          const stream = yield* conn.newStream([ECHO])
          yield* stream.write([ONE])
          yield* readBytes(stream, 1)
          us.push(nowUs() - t0)
          yield* stream.closeWrite
        }))
        yield* h.hangUp(peer)
      }
      return { us, seconds: (nowUs() - start) / 1e6 }
    }))
  },

  spawnNodes: async (args) => {
    const addr = parseAddr(str(args, "addr") ?? fail("need addr"))
    const count = num(args, "count")
    const concurrency = num(args, "concurrency", 8)
    const t0 = performance.now()
    let next = 0
    let failed = 0
    const errors: Array<string> = []
    const worker = async (): Promise<void> => {
      while (next < count) {
        next++
        const node = await startNode([])
        extra.push(node.scope)
        // one retry: a busy listener may drop a handshake
        for (let attempt = 0; attempt < 2; attempt++) {
          const exit = await Effect.runPromiseExit(node.host.dial(addr))
          if (Exit.isSuccess(exit)) break
          const text = errorText(exit.cause).error
          log(`spawnNodes: dial failed (attempt ${attempt + 1}): ${text}`)
          if (attempt === 1) {
            failed++
            if (errors.length < 5) errors.push(text)
          }
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    return { count: extra.length, failed, errors, ms: performance.now() - t0 }
  },

  closeNodes: async () => {
    await closeExtra()
    return {}
  },

  cpu: async (args) => {
    const gc = (globalThis as { gc?: (options?: object) => void }).gc
    if (args["gc"] === true || args["gc"] === "last-resort") {
      if (gc === undefined) fail("cpu {gc:true} needs node --expose-gc")
      else {
        gc()
        await new Promise((r) => setImmediate(r))
        gc()
        // V8's "all available garbage" collection, which also shrinks the young generation
        if (args["gc"] === "last-resort") gc({ type: "major", execution: "sync", flavor: "last-resort" })
      }
    }
    const c = process.cpuUsage()
    const m = process.memoryUsage()
    return {
      user: c.user,
      system: c.system,
      heapUsed: m.heapUsed,
      rss: m.rss,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      monoUs: Number(process.hrtime.bigint() / 1000n)
    }
  },

  connections: async () => ({ count: host.connections().length }),

  addrs: async () => ({ peerId: PeerId.toString(host.peerId), addrs: host.addrs().map(Multiaddr.toString) })
}

// ---------------------------------------------------------------- loop

let stopping = false
const shutdown = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  const timer = setTimeout(() => process.exit(0), 3000)
  await closeExtra()
  await Effect.runPromise(Scope.close(main.scope, Exit.void))
  clearTimeout(timer)
}

const handleLine = async (line: string): Promise<void> => {
  if (line.trim() === "") return
  let msg: Record<string, unknown>
  try {
    msg = JSON.parse(line) as Record<string, unknown>
  } catch {
    emit({ id: null, ok: false, error: `bad JSON: ${line.slice(0, 200)}`, errorName: "BadRequest" })
    return
  }
  const { id, cmd, ...args } = msg
  if (cmd === "stop") {
    await shutdown()
    process.stdout.write(JSON.stringify({ id, ok: true }) + "\n", () => process.exit(0))
    return
  }
  const fn = typeof cmd === "string" && Object.hasOwn(commands, cmd) ? commands[cmd] : undefined
  if (fn === undefined) {
    emit({ id, ok: false, error: `unknown command: ${String(cmd)}`, errorName: "BadRequest" })
    return
  }
  try {
    emit({ id, ok: true, ...(await fn(args)) })
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    emit({ id, ok: false, error: `${e.name}: ${e.message}`, errorName: e.name })
  }
}

process.on("unhandledRejection", (err) => log("unhandled rejection:", String(err)))
const rl = Readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on("line", (line) => void handleLine(line))
rl.on("close", () => void shutdown().then(() => process.exit(0)))
for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => void shutdown().then(() => process.exit(0)))

emit({
  event: "ready",
  peerId: PeerId.toString(host.peerId),
  addrs: host.addrs().map(Multiaddr.toString),
  node: process.version
})
