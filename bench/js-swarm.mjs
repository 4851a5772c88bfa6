/**
 * js-swarm: several js-libp2p nodes (TCP + Noise + Yamux on 127.0.0.1, identify, ping) in one
 * process, with @libp2p/gossipsub or @libp2p/kad-dht, driven over stdin/stdout JSON lines with the
 * same commands as bench/ours-swarm.ts (see there). The Kad config is the interop harness's
 * (spec-tests/interop/harness/js-kad.mjs `kadService`: passthrough mapper, server mode).
 * `dhtServed` counts the Kad requests node 0 sent and had answered (PEER_RESPONSE query events):
 * js-libp2p's kad-dht has no counter of served requests without a metrics implementation.
 */
import { noise } from "@chainsafe/libp2p-noise"
import { yamux } from "@chainsafe/libp2p-yamux"
import { gossipsub } from "@libp2p/gossipsub"
import { identify } from "@libp2p/identify"
import { kadDHT, passthroughMapper } from "@libp2p/kad-dht"
import { peerIdFromString } from "@libp2p/peer-id"
import { ping } from "@libp2p/ping"
import { tcp } from "@libp2p/tcp"
import { multiaddr } from "@multiformats/multiaddr"
import { createLibp2p } from "libp2p"
import { CID } from "multiformats/cid"
import * as Digest from "multiformats/hashes/digest"
import * as Readline from "node:readline"

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")
const nowMs = () => performance.timeOrigin + performance.now()
const base = () => ({
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 100_000, maxIncomingPendingConnections: 1000 }
})
const full = (n) => `${n.getMultiaddrs()[0].toString()}`

// ---------------------------------------------------------------- gossipsub
const gsNodes = []
let latencies = []
let lastAt = 0

const gsStart = async (args) => {
  const started = []
  for (let i = 0; i < args.count; i++) {
    const node = await createLibp2p({
      ...base(),
      services: { identify: identify(), ping: ping(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) }
    })
    const entry = { node, received: 0 }
    const peers = [...(args.dial ?? []), ...gsNodes.map((n) => full(n.node))]
    gsNodes.push(entry)
    started.push(entry)
    if (args.subscribe) {
      node.services.pubsub.subscribe(args.topic)
      node.services.pubsub.addEventListener("message", (evt) => {
        if (evt.detail.topic !== args.topic) return
        const at = nowMs()
        const d = evt.detail.data
        entry.received++
        latencies.push(at - new DataView(d.buffer, d.byteOffset, 8).getFloat64(0))
        lastAt = at
      })
    }
    for (const a of peers) await node.dial(multiaddr(a))
  }
  return { addrs: started.map((n) => full(n.node)) }
}

const gsPublish = async (args) => {
  const pubsub = gsNodes[0].node.services.pubsub
  const start = performance.now()
  const pending = []
  for (let i = 0; i < args.count; i++) {
    const data = new Uint8Array(args.size)
    const view = new DataView(data.buffer)
    view.setFloat64(0, nowMs())
    view.setUint32(8, i)
    pending.push(pubsub.publish(args.topic, data))
    if (args.intervalMs > 0) await new Promise((r) => setTimeout(r, args.intervalMs))
    else if (i % 16 === 15) await new Promise((r) => setImmediate(r))
  }
  await Promise.all(pending)
  return { ms: performance.now() - start }
}

// ---------------------------------------------------------------- kad
const dhtNodes = []
let answered = 0

const dhtStart = async (args) => {
  const started = []
  const mesh = args.mesh ?? 3
  for (let i = 0; i < args.count; i++) {
    const node = await createLibp2p({
      ...base(),
      services: {
        identify: identify(),
        ping: ping(),
        dht: kadDHT({
          clientMode: args.client === true,
          protocol: "/ipfs/kad/1.0.0",
          peerInfoMapper: passthroughMapper,
          allowQueryWithZeroPeers: true
        })
      }
    })
    const peers = [...(args.dial ?? []), ...dhtNodes.slice(Math.max(0, dhtNodes.length - mesh)).map(full)]
    dhtNodes.push(node)
    started.push(node)
    for (const a of peers) await node.dial(multiaddr(a))
  }
  return { nodes: started.map((n) => ({ peerId: n.peerId.toString(), addr: full(n) })) }
}

const drain = async (events) => {
  let ok = false
  for await (const e of events) {
    if (e.name === "PEER_RESPONSE") answered++
    if (e.name === "FINAL_PEER") ok = true
  }
  return ok
}

const dhtWarm = async () => {
  await Promise.all(
    dhtNodes.map((n) => drain(n.services.dht.getClosestPeers(n.peerId.toMultihash().bytes)).catch(() => false))
  )
  return {}
}

const dhtLookups = async (args) => {
  const dht = dhtNodes[0].services.dht
  const us = []
  let found = 0
  // provide/findProviders: a CIDv1 (raw) of the sha2-256 digest; findProviders stops at the first provider
  const cid = (k) => CID.createV1(0x55, Digest.create(0x12, Uint8Array.from(Buffer.from(k, "hex"))))
  const firstProvider = async (events) => {
    for await (const e of events) {
      if (e.name === "PEER_RESPONSE") answered++
      if (e.name === "PROVIDER" && e.providers.some((p) => p.id.toString() === args.provider)) return true
    }
    return false
  }
  const items = args.kind === "findPeer"
    ? args.peerIds.map((p) => () => drain(dht.findPeer(peerIdFromString(p))))
    : args.kind === "provide"
    ? args.keys.map((k) => async () => (await drain(dht.provide(cid(k))), true))
    : args.kind === "findProviders"
    ? args.keys.map((k) => () => firstProvider(dht.findProviders(cid(k))))
    : args.keys.map((k) => () => drain(dht.getClosestPeers(Uint8Array.from(Buffer.from(k, "hex")))))
  for (const lookup of items) {
    const t = performance.now()
    const ok = await lookup().catch(() => false)
    us.push((performance.now() - t) * 1000)
    if (ok) found++
  }
  return { us, found }
}

// ---------------------------------------------------------------- commands
const commands = {
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
  dhtServed: () => ({ requests: answered }),
  cpu: () => {
    const c = process.cpuUsage()
    return { user: c.user, system: c.system, monoUs: Number(process.hrtime.bigint() / 1000n) }
  }
}

const stop = async () => {
  await Promise.all([...gsNodes.map((n) => n.node), ...dhtNodes].map((n) => n.stop().catch(() => {})))
  process.exit(0)
}

Readline.createInterface({ input: process.stdin, crlfDelay: Infinity }).on("line", (line) => {
  const msg = JSON.parse(line)
  if (msg.cmd === "stop") {
    emit({ id: msg.id, ok: true })
    void stop()
    return
  }
  const f = commands[msg.cmd]
  Promise.resolve()
    .then(() => (f === undefined ? Promise.reject(new Error(`unknown command ${msg.cmd}`)) : f(msg)))
    .then(
      (r) => emit({ id: msg.id, ok: true, ...r }),
      (e) => emit({ id: msg.id, ok: false, error: e instanceof Error ? e.message : String(e) })
    )
}).on("close", () => void stop())
emit({ event: "ready", peerId: "", addrs: [] })
