/**
 * The gossipsub and Kad-DHT scenarios of `npm run bench` (`--only=gossipsub`, `--only=dht`):
 * many nodes of ONE implementation, ours (bench/ours-swarm.ts) or js-libp2p
 * (bench/js-swarm.mjs), over TCP on 127.0.0.1, the two implementations interleaved round by round.
 *
 * - gossipsub: a publisher process (one node, not subscribed: it publishes through its fanout,
 *   flood-publishing to every subscriber it knows, the default of both) and a subscriber process
 *   with `subscribers` nodes, each dialing the publisher and every other subscriber (a full mesh;
 *   gossipsub's own D = 6 mesh forms on top). Per message size, the publisher sends `messages`
 *   messages as fast as its publish call returns; figures: messages/s delivered to every subscriber
 *   (delivered ÷ subscribers, over the time from the first publish to the last delivery), CPU per
 *   message (both processes' CPU time ÷ messages); end-to-end latency median and p99 (each message
 *   carries the sender's wall clock; one machine, so one clock) of `latencyMessages` messages, first,
 *   published at a pace (one per 50 ms of 1 KiB, per 500 ms of 64 KiB), not back to back, so that
 *   the figure is the path's latency and not the queue's.
 * - dht: a server process with `servers` Kad servers (each dials the 3 started before it, then all
 *   look up their own id to fill the tables) and a client process with one Kad client that knows
 *   one server; it runs `lookups` getClosestPeers of random keys and `lookups` findPeer of random
 *   absent peer ids (both full iterative walks), one at a time. Figures: lookups/s, Kad requests
 *   per lookup (ours: counted by the servers, `libp2p_kad_inbound_requests_total`; js: the
 *   client's answered requests, PEER_RESPONSE events), latency median and p99, CPU per lookup of
 *   the client and of the servers. Then content routing: the first server provides `lookups` new
 *   CIDs one at a time (provide time: its lookup plus the ADD_PROVIDER messages), and the client
 *   looks each up until the first provider answers (find-providers time; with 20 servers every
 *   server is among the k closest, so this is one round of requests).
 */
import * as Crypto from "node:crypto"
import * as Os from "node:os"
import * as Keys from "../src/core/Keys.ts"
import * as PeerId from "../src/core/PeerId.ts"

export type Impl = "ours" | "js"

/** A swarm process: the same JSON-lines driver as bench/main.ts's peers. */
export interface Swarm {
  readonly call: (cmd: string, args?: Record<string, unknown>, timeoutMs?: number) => Promise<Record<string, unknown>>
  readonly stop: () => Promise<void>
}

export interface Env {
  readonly spawn: (impl: Impl, name: string) => Promise<Swarm>
  /** one value of a figure for one implementation (bench/main.ts takes the median over rounds) */
  readonly record: (figure: string, unit: string, lowerIsBetter: boolean, impl: Impl, value: number) => void
  readonly progress: (msg: string) => void
  /** true while another round fits the scenario's budget share */
  readonly moreRounds: (done: number, roundMs: number) => boolean
}

export interface GossipsubOptions {
  readonly subscribers: number
  /** messages per round, by message size in bytes */
  readonly messages: ReadonlyArray<readonly [size: number, count: number]>
  readonly rounds: number
  /** paced messages per round for the latency figures */
  readonly latencyMessages: number
}

/** The pace of the latency messages: well under what one core delivers to 10 subscribers. */
const interval = (size: number): number => (size > 4096 ? 500 : 50)

export interface DhtOptions {
  readonly servers: number
  readonly lookups: number
  readonly rounds: number
}

const IMPLS: ReadonlyArray<Impl> = ["ours", "js"]
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const nowMs = (): number => performance.timeOrigin + performance.now()
const cpuUs = async (s: Swarm): Promise<number> => {
  const r = await s.call("cpu")
  return Number(r["user"]) + Number(r["system"])
}
const quantile = (xs: ReadonlyArray<number>, q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const at = (s.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo)
}
const label = (size: number) => (size >= 1024 ? `${size / 1024} KiB` : `${size} B`)

// ---------------------------------------------------------------- gossipsub

interface GsStats {
  readonly received: ReadonlyArray<number>
  readonly latencies: ReadonlyArray<number>
  readonly lastAt: number
}
const stats = async (s: Swarm): Promise<GsStats> => (await s.call("gsStats")) as unknown as GsStats
const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)

/** Poll until every subscriber has `count` messages or nothing arrived for 10 s. */
const awaitDelivery = async (subs: Swarm, expected: number): Promise<GsStats> => {
  let last = -1
  let still = performance.now()
  for (;;) {
    const s = await stats(subs)
    const got = sum(s.received)
    if (got >= expected) return s
    if (got !== last) {
      last = got
      still = performance.now()
    } else if (performance.now() - still > 10_000) return s
    await sleep(50)
  }
}

/** One implementation's publisher and subscribers, connected, meshes formed, warmed up. */
const gsNetwork = async (env: Env, impl: Impl, options: GossipsubOptions, live: Array<Swarm>) => {
  const [pub, subs] = await Promise.all([env.spawn(impl, `${impl}-gs-pub`), env.spawn(impl, `${impl}-gs-subs`)])
  live.push(pub, subs)
  const p = await pub.call("gsStart", { count: 1, topic: TOPIC, subscribe: false })
  await subs.call("gsStart", { count: options.subscribers, topic: TOPIC, subscribe: true, dial: p["addrs"] }, 120_000)
  await sleep(2500) // subscriptions spread and the meshes form at the first heartbeats (1 s in both)
  await pub.call("gsPublish", { topic: TOPIC, count: 20, size: 64 })
  const s = await awaitDelivery(subs, 20 * options.subscribers)
  if (sum(s.received) < 20 * options.subscribers) {
    env.progress(`  ${impl}: warm-up delivered ${sum(s.received)} of ${20 * options.subscribers}`)
  }
  return { pub, subs }
}
const TOPIC = "bench"

/**
 * Each (size, round, implementation) on a fresh network: js-libp2p's gossipsub (17.1) stops
 * delivering anything from this publisher after a back-to-back burst of a few hundred messages
 * (measured here: 300 × 1 KiB to 10 subscribers all arrive, then not one more message does), so a
 * network is not reused after its throughput phase.
 */
export const gossipsub = async (env: Env, options: GossipsubOptions): Promise<void> => {
  for (const [size, count] of options.messages) {
    for (let r = 0; r < options.rounds; r++) {
      const roundStart = performance.now()
      for (const impl of r % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
        const live: Array<Swarm> = []
        try {
          const { pub, subs } = await gsNetwork(env, impl, options, live)
          // latency first: messages paced (one every `interval(size)` ms), so queues stay short
          await subs.call("gsReset")
          await pub.call("gsPublish", {
            topic: TOPIC,
            count: options.latencyMessages,
            size,
            intervalMs: interval(size)
          })
          const l = await awaitDelivery(subs, options.latencyMessages * options.subscribers)
          const med = quantile(l.latencies, 0.5)
          const p99 = quantile(l.latencies, 0.99)
          // then throughput: `count` messages back to back
          await subs.call("gsReset")
          const [p0, s0] = await Promise.all([cpuUs(pub), cpuUs(subs)])
          const t0 = nowMs()
          await pub.call("gsPublish", { topic: TOPIC, count, size }, 300_000)
          const s = await awaitDelivery(subs, count * options.subscribers)
          const [p1, s1] = await Promise.all([cpuUs(pub), cpuUs(subs)])
          const delivered = sum(s.received) / options.subscribers
          const rate = delivered / ((s.lastAt - t0) / 1000)
          const cpu = (p1 - p0 + s1 - s0) / count
          const what = `gossipsub 1→${options.subscribers}, ${label(size)}`
          env.record(`${what}: messages/s delivered to all`, "msg/s", false, impl, rate)
          env.record(`${what}: CPU per message (pub + subs)`, "µs", true, impl, cpu)
          env.record(`${what}: latency median`, "ms", true, impl, med)
          env.record(`${what}: latency p99`, "ms", true, impl, p99)
          env.record(`${what}: delivered`, "%", false, impl, (100 * delivered) / count)
          env.progress(
            `  ${impl} ${label(size)}: ${rate.toFixed(0)} msg/s, ${cpu.toFixed(0)} µs CPU/msg, latency ${
              med.toFixed(2)
            } / ${p99.toFixed(2)} ms, ${delivered.toFixed(1)} of ${count} delivered (load ${
              Os.loadavg()[0]!.toFixed(2)
            })`
          )
        } finally {
          await Promise.all(live.map((s) => s.stop()))
        }
      }
      if (!env.moreRounds(r + 1, performance.now() - roundStart)) break
    }
  }
}

// ---------------------------------------------------------------- kad

const randomPeerId = (): string => {
  const key = Keys.ed25519FromSeed(new Uint8Array(Crypto.randomBytes(32)))
  if (key._tag !== "Success") throw new Error("dht bench: no key")
  return PeerId.fromPublicKey(key.success.publicKey).toString()
}

export const dht = async (env: Env, options: DhtOptions): Promise<void> => {
  const swarms = new Map<Impl, { servers: Swarm; client: Swarm }>()
  /** Each implementation's server 0, the provider of the content-routing figures. */
  const swarmIds = new Map<Impl, string>()
  try {
    for (const impl of IMPLS) {
      const [servers, client] = await Promise.all([
        env.spawn(impl, `${impl}-dht-servers`),
        env.spawn(impl, `${impl}-dht-client`)
      ])
      swarms.set(impl, { servers, client })
      const started = await servers.call("dhtStart", { count: options.servers, mesh: 3 }, 300_000)
      await servers.call("dhtWarm", {}, 300_000)
      const nodes = started["nodes"] as ReadonlyArray<{ readonly addr: string; readonly peerId: string }>
      swarmIds.set(impl, nodes[0]!.peerId)
      await client.call("dhtStart", { count: 1, client: true, dial: [nodes[nodes.length - 1]!.addr] })
    }
    await sleep(1000) // identify tells the client the server's protocols
    for (let r = 0; r < options.rounds; r++) {
      const roundStart = performance.now()
      for (const impl of r % 2 === 0 ? IMPLS : [...IMPLS].reverse()) {
        const { servers, client } = swarms.get(impl)!
        for (const kind of ["closest", "findPeer"] as const) {
          const args = kind === "closest"
            ? { kind, keys: Array.from({ length: options.lookups }, () => Crypto.randomBytes(32).toString("hex")) }
            : { kind, peerIds: Array.from({ length: options.lookups }, randomPeerId) }
          const served0 = Number((await servers.call("dhtServed"))["requests"]) +
            Number((await client.call("dhtServed"))["requests"])
          const [c0, s0] = await Promise.all([cpuUs(client), cpuUs(servers)])
          const t0 = performance.now()
          const res = await client.call("dhtLookups", args, 600_000)
          const seconds = (performance.now() - t0) / 1000
          const [c1, s1] = await Promise.all([cpuUs(client), cpuUs(servers)])
          const served1 = Number((await servers.call("dhtServed"))["requests"]) +
            Number((await client.call("dhtServed"))["requests"])
          const us = res["us"] as ReadonlyArray<number>
          const what = kind === "closest"
            ? `Kad getClosestPeers, ${options.servers} servers`
            : `Kad findPeer (absent peer), ${options.servers} servers`
          env.record(`${what}: lookups/s`, "lookups/s", false, impl, options.lookups / seconds)
          env.record(`${what}: requests per lookup`, "req", true, impl, (served1 - served0) / options.lookups)
          env.record(`${what}: latency median`, "ms", true, impl, quantile(us, 0.5) / 1000)
          env.record(`${what}: latency p99`, "ms", true, impl, quantile(us, 0.99) / 1000)
          env.record(`${what}: client CPU per lookup`, "µs", true, impl, (c1 - c0) / options.lookups)
          env.record(`${what}: servers' CPU per lookup`, "µs", true, impl, (s1 - s0) / options.lookups)
          env.progress(
            `  ${impl} ${kind}: ${(options.lookups / seconds).toFixed(1)} lookups/s, ${
              ((served1 - served0) / options.lookups).toFixed(1)
            } req/lookup, median ${(quantile(us, 0.5) / 1000).toFixed(2)} ms, client CPU ${
              ((c1 - c0) / options.lookups).toFixed(0)
            } µs, servers ${((s1 - s0) / options.lookups).toFixed(0)} µs per lookup${
              kind === "closest" ? `, ${String(res["found"])} ok` : ""
            } (load ${Os.loadavg()[0]!.toFixed(2)})`
          )
        }
        // content routing: server 0 provides fresh CIDs, the client finds their provider
        const keys = Array.from({ length: options.lookups }, () => Crypto.randomBytes(32).toString("hex"))
        const provider = String(swarmIds.get(impl))
        for (const [kind, swarm] of [["provide", servers], ["findProviders", client]] as const) {
          const t0 = performance.now()
          const res = await swarm.call("dhtLookups", { kind, keys, provider }, 600_000)
          const seconds = (performance.now() - t0) / 1000
          const us = res["us"] as ReadonlyArray<number>
          const what = kind === "provide"
            ? `Kad provide (from a server), ${options.servers} servers`
            : `Kad findProviders (first provider), ${options.servers} servers`
          env.record(`${what}: operations/s`, "ops/s", false, impl, options.lookups / seconds)
          env.record(`${what}: latency median`, "ms", true, impl, quantile(us, 0.5) / 1000)
          env.record(`${what}: latency p99`, "ms", true, impl, quantile(us, 0.99) / 1000)
          env.progress(
            `  ${impl} ${kind}: ${(options.lookups / seconds).toFixed(1)} ops/s, median ${
              (quantile(us, 0.5) / 1000).toFixed(2)
            } ms, ${String(res["found"])}/${options.lookups} ok (load ${Os.loadavg()[0]!.toFixed(2)})`
          )
        }
      }
      if (!env.moreRounds(r + 1, performance.now() - roundStart)) break
    }
  } finally {
    await Promise.all([...swarms.values()].flatMap((s) => [s.servers.stop(), s.client.stop()]))
  }
}
