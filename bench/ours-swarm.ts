/**
 * ours-swarm: several of OUR nodes (the Default preset over TCP on 127.0.0.1) in one process,
 * with gossipsub or Kad-DHT on top, driven over stdin/stdout JSON lines like bench/ours-peer.ts.
 * bench/swarm.ts runs it beside bench/js-swarm.mjs (the same commands on js-libp2p).
 *
 * Output: {"event":"ready","peerId":"","addrs":[]} once, then {"id":N,"ok":true,...} per command.
 * Commands:
 *   gsStart {count, topic, subscribe, dial:[addr]} → {addrs:[addr]}  start `count` gossipsub nodes;
 *       each dials every address in `dial` and every node started before it here (a full mesh),
 *       and subscribes to `topic` when `subscribe`. Each delivered message is timed: its first 8
 *       bytes are the sender's wall clock (ms, float64: performance.timeOrigin + now()).
 *   gsPublish {topic, count, size, intervalMs=0} → {ms}  node 0 publishes `count` messages of `size`
 *       bytes, back to back (0) or one every `intervalMs`
 *   gsStats → {received:[per node], latencies:[ms], lastAt}   gsReset → {}
 *   dhtStart {count, client, dial:[addr], mesh=3} → {nodes:[{peerId, addr}]}  start `count` Kad
 *       nodes (servers, or clients when `client`), each dialing `dial` and the `mesh` nodes before it
 *   dhtWarm → {}  every node looks up its own id (fills the tables, as a refresh does)
 *   dhtLookups {kind: "closest"|"findPeer"|"provide"|"findProviders", keys:[hex]|peerIds:[id], provider?}
 *     → {us:[µs], found}  node 0, in turn; provide/findProviders keys are sha2-256 digests (the CID's
 *     multihash); findProviders stops at the first provider, found when it is `provider`
 *   dhtServed → {requests}  Kad requests received by this process's nodes so far
 *   cpu → {user, system (µs), monoUs}   stop → {} then exit
 */
import { Context, Effect, Layer, Metric, Result, Scope, Stream } from "effect"
import * as Readline from "node:readline"
import * as Nodes from "../layers/Node.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import * as PeerId from "../src/core/PeerId.ts"
import { Host } from "../src/host/Host.ts"
import * as Kad from "../src/protocols/kad/Kad.ts"
import * as Gossipsub from "../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import { Pubsub } from "../src/protocols/pubsub/Pubsub.ts"

type Args = Readonly<Record<string, unknown>>
const emit = (obj: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(obj) + "\n")
}
const addr = (s: string): Multiaddr.Multiaddr => Result.getOrThrow(Multiaddr.fromString(s))
/** A node's first listen address with its `/p2p/<id>`. */
const full = (host: Host["Service"]): string => {
  const a = host.addrs()[0]!.toString()
  return a.includes("/p2p/") ? a : `${a}/p2p/${host.peerId.toString()}`
}
const nowMs = (): number => performance.timeOrigin + performance.now()

const scope = Effect.runSync(Scope.make())
const build = <A, E>(layer: Layer.Layer<A, E>) => Effect.runPromise(Layer.buildWithScope(layer, scope))
const listen = [addr("/ip4/127.0.0.1/tcp/0")]

// ---------------------------------------------------------------- gossipsub

interface GsNode {
  readonly host: Host["Service"]
  readonly pubsub: Pubsub["Service"]
  received: number
}
const gsNodes: Array<GsNode> = []
let latencies: Array<number> = []
let lastAt = 0

const gsStart = async (args: Args) => {
  const count = Number(args["count"])
  const topic = String(args["topic"])
  const dial = (args["dial"] as ReadonlyArray<string> | undefined ?? []).map(addr)
  const started: Array<GsNode> = []
  for (let i = 0; i < count; i++) {
    const ctx = await build(Gossipsub.layer().pipe(Layer.provideMerge(Nodes.Default({ listen }))))
    const node: GsNode = { host: Context.get(ctx, Host), pubsub: Context.get(ctx, Pubsub), received: 0 }
    const peers = [...dial, ...gsNodes.map((n) => n.host.addrs()[0]!)]
    gsNodes.push(node)
    started.push(node)
    if (args["subscribe"] === true) {
      const messages = await Effect.runPromise(Scope.provide(node.pubsub.subscribe(topic), scope))
      Effect.runFork(Stream.runForEach(messages, (m) =>
        Effect.sync(() => {
          const at = nowMs()
          node.received++
          latencies.push(at - new DataView(m.data.buffer, m.data.byteOffset, 8).getFloat64(0))
          lastAt = at
        })))
    }
    for (const a of peers) await Effect.runPromise(node.host.dial(a))
  }
  return { addrs: started.map((n) => full(n.host)) }
}

const gsPublish = async (args: Args) => {
  const topic = String(args["topic"])
  const count = Number(args["count"])
  const size = Number(args["size"])
  const interval = Number(args["intervalMs"] ?? 0)
  const publisher = gsNodes[0]!.pubsub
  const start = performance.now()
  await Effect.runPromise(Effect.gen(function*() {
    for (let i = 0; i < count; i++) {
      const data = new Uint8Array(size)
      const view = new DataView(data.buffer)
      view.setFloat64(0, nowMs())
      view.setUint32(8, i)
      yield* publisher.publish(topic, data)
      if (interval > 0) yield* Effect.sleep(interval)
      else if (i % 16 === 15) yield* Effect.yieldNow
    }
    yield* publisher.flush
  }))
  return { ms: performance.now() - start }
}

// ---------------------------------------------------------------- kad

interface DhtNode {
  readonly host: Host["Service"]
  readonly kad: Kad.Kad["Service"]
  readonly context: Context.Context<never>
}
const dhtNodes: Array<DhtNode> = []

const dhtStart = async (args: Args) => {
  const count = Number(args["count"])
  const mesh = Number(args["mesh"] ?? 3)
  const dial = (args["dial"] as ReadonlyArray<string> | undefined ?? []).map(addr)
  const started: Array<DhtNode> = []
  for (let i = 0; i < count; i++) {
    const ctx = await build(
      Kad.layer({ mode: args["client"] === true ? "client" : "server", refreshInterval: "1 hour" }).pipe(
        Layer.provideMerge(Nodes.Default({ listen }))
      )
    )
    const node: DhtNode = {
      host: Context.get(ctx, Host),
      kad: Context.get(ctx, Kad.Kad),
      context: ctx as Context.Context<never>
    }
    const peers = [...dial, ...dhtNodes.slice(Math.max(0, dhtNodes.length - mesh)).map((n) => n.host.addrs()[0]!)]
    dhtNodes.push(node)
    started.push(node)
    for (const a of peers) await Effect.runPromise(node.host.dial(a))
  }
  return {
    nodes: started.map((n) => ({
      peerId: n.host.peerId.toString(),
      addr: full(n.host)
    }))
  }
}

const dhtWarm = async () => {
  await Promise.all(
    dhtNodes.map((n) => Effect.runPromise(Effect.ignore(n.kad.getClosestPeers(PeerId.toBytes(n.host.peerId)))))
  )
  return {}
}

const dhtLookups = async (args: Args) => {
  const kad = dhtNodes[0]!.kad
  const us: Array<number> = []
  let found = 0
  const multihash = (k: string) => Uint8Array.of(0x12, 0x20, ...Buffer.from(k, "hex"))
  const keys = (args["keys"] ?? []) as ReadonlyArray<string>
  const kind = args["kind"]
  const items: ReadonlyArray<Effect.Effect<unknown, Kad.KadError>> = kind === "findPeer"
    ? (args["peerIds"] as ReadonlyArray<string>).map((p) => kad.findPeer(Result.getOrThrow(PeerId.fromString(p))))
    : kind === "provide"
    ? keys.map((k) => kad.provide(multihash(k)))
    : kind === "findProviders"
    ? keys.map((k) =>
      kad.findProviders(multihash(k), { limit: 1 }).pipe(
        Effect.filterOrFail(
          (ps) => ps.some((p) => p.peerId.toString() === args["provider"]),
          () => new Kad.KadError({ reason: new Kad.NotFound({ message: "provider not found" }) })
        )
      )
    )
    : keys.map((k) => kad.getClosestPeers(Buffer.from(k, "hex")))
  for (const lookup of items) {
    const t = performance.now()
    const ok = await Effect.runPromise(Effect.isSuccess(lookup))
    us.push((performance.now() - t) * 1000)
    if (ok) found++
  }
  return { us, found }
}

const dhtServed = () => {
  let requests = 0
  for (const n of dhtNodes) {
    for (const s of Metric.snapshotUnsafe(n.context)) {
      if (s.id === "libp2p_kad_inbound_requests_total") requests += Number((s.state as { count: number }).count)
    }
  }
  return { requests }
}

// ---------------------------------------------------------------- commands

const commands: Record<string, (args: Args) => unknown> = {
  gsStart,
  gsPublish,
  gsStats: () => ({ received: gsNodes.map((n) => n.received), latencies, lastAt }),
  gsReset: () => {
    for (const n of gsNodes) n.received = 0
    latencies = []
    lastAt = 0
    return {}
  },
  dhtStart,
  dhtWarm,
  dhtLookups,
  dhtServed,
  cpu: () => {
    const c = process.cpuUsage()
    return { user: c.user, system: c.system, monoUs: Number(process.hrtime.bigint() / 1000n) }
  }
}

const stop = async () => {
  await Effect.runPromise(Scope.close(scope, Effect.runSync(Effect.exit(Effect.void))))
  process.exit(0)
}

Readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on("line", (line) => {
  const msg = JSON.parse(line) as { id: number; cmd: string } & Args
  if (msg.cmd === "stop") {
    emit({ id: msg.id, ok: true })
    void stop()
    return
  }
  const f = commands[msg.cmd]
  Promise.resolve()
    .then(() => (f === undefined ? Promise.reject(new Error(`unknown command ${msg.cmd}`)) : f(msg)))
    .then(
      (r) => emit({ id: msg.id, ok: true, ...(r as object) }),
      (e: unknown) => emit({ id: msg.id, ok: false, error: e instanceof Error ? e.message : String(e) })
    )
}).on("close", () => void stop())
emit({ event: "ready", peerId: "", addrs: [] })
