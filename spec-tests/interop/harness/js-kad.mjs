/**
 * js-kad: the Kad-DHT part of the js peer harness (`js-peer.mjs` imports it), kept in its own
 * file so that other protocols' additions to the harness do not touch it.
 *
 * Config (js-peer's JSON config): `kad?: { clientMode?: boolean (default false: server),
 *   protocol?: string (default "/ipfs/kad/1.0.0") }` runs @libp2p/kad-dht as service `dht` on the
 * main node, with the passthrough address mapper (the test network is on 127.0.0.1, which js's
 * default mapper would drop), a 1 s self-query at start, and the `ipns` package's validator and
 * selector for `/ipns/` records (js-libp2p's kad-dht has only `/pk/` built in; IPFS nodes add these).
 *
 * Commands (`node`: absent = the main node, a number = that node of `kadStart`); keys and values are
 * hex, CIDs are hex of the CID's bytes; `timeoutMs` bounds each (default 20 s):
 *   kadStart {count, protocol?, dial?: [addr], mesh=3} → {nodes:[{peerId, addrs}]}  start `count`
 *       more js nodes in this process, each a DHT server listening on 127.0.0.1/tcp/0 and dialing
 *       every address in `dial` and `mesh` of the nodes started before it
 *   kadDial {node?, addr} → {}
 *   kadTable {node?} → {peers:[peerId]}           the DHT's routing table
 *   kadFindPeer {node?, peerId} → {peerId, addrs}
 *   kadClosest {node?, key} → {peers:[peerId]}
 *   kadPut {node?, key, value} → {}               kadGet {node?, key} → {value}
 *   kadProvide {node?, cid} → {}                  kadFindProviders {node?, cid, limit=20} → {providers:[{peerId, addrs}]}
 *   kadStop → {}                                  stop the kadStart nodes
 */
import { identify } from "@libp2p/identify"
import { kadDHT, passthroughMapper } from "@libp2p/kad-dht"
import { peerIdFromString } from "@libp2p/peer-id"
import { ping } from "@libp2p/ping"
import { tcp } from "@libp2p/tcp"
import { multiaddr } from "@multiformats/multiaddr"
import { ipnsSelector } from "ipns/selector"
import { ipnsValidator } from "ipns/validator"
import { createLibp2p } from "libp2p"
import { CID } from "multiformats/cid"

const fromHex = (hex) => Uint8Array.from(Buffer.from(hex, "hex"))
const toHex = (bytes) => Buffer.from(bytes).toString("hex")

/** The kad-dht service for a node, or undefined when `init` is absent. */
export const kadService = (init) =>
  init == null
    ? undefined
    : kadDHT({
      clientMode: init.clientMode ?? false,
      protocol: init.protocol ?? "/ipfs/kad/1.0.0",
      peerInfoMapper: passthroughMapper,
      initialQuerySelfInterval: 1000,
      allowQueryWithZeroPeers: true,
      validators: { ipns: ipnsValidator },
      selectors: { ipns: ipnsSelector }
    })

/**
 * The kad commands, given the main node and the harness's transport/encrypter/muxer factories.
 * @param {{ node: any, encrypters: () => any[], muxers: () => any[] }} env
 */
export const kadCommands = (env) => {
  /** The nodes of kadStart. */
  let kadNodes = []
  const pick = (args) => {
    if (args.node == null) return env.node
    const n = kadNodes[args.node]
    if (n == null) throw new Error(`no kad node ${args.node}`)
    return n
  }
  const signal = (args) => AbortSignal.timeout(args.timeoutMs ?? 20_000)
  const info = (p) => ({ peerId: p.id.toString(), addrs: p.multiaddrs.map(String) })

  return {
    async kadStart(args) {
      const created = []
      for (let i = 0; i < args.count; i++) {
        const n = await createLibp2p({
          addresses: { listen: ["/ip4/127.0.0.1/tcp/0"] },
          transports: [tcp()],
          connectionEncrypters: env.encrypters(),
          streamMuxers: env.muxers(),
          connectionManager: { inboundConnectionThreshold: 100_000, maxIncomingPendingConnections: 1000 },
          services: {
            identify: identify(),
            ping: ping(),
            dht: kadService({ protocol: args.protocol })
          }
        })
        const before = kadNodes.length
        kadNodes.push(n)
        created.push(n)
        const mesh = args.mesh ?? 3
        for (let j = Math.max(0, before - mesh); j < before; j++) await n.dial(kadNodes[j].getMultiaddrs()[0])
        for (const addr of args.dial ?? []) await n.dial(multiaddr(addr))
      }
      return { nodes: created.map((n) => ({ peerId: n.peerId.toString(), addrs: n.getMultiaddrs().map(String) })) }
    },

    async kadDial(args) {
      await pick(args).dial(multiaddr(args.addr), { signal: signal(args) })
      return {}
    },

    async kadTable(args) {
      const rt = pick(args).services.dht.routingTable
      return { peers: [...rt.kb.toIterable()].map((c) => c.peerId.toString()) }
    },

    async kadFindPeer(args) {
      return info(await pick(args).peerRouting.findPeer(peerIdFromString(args.peerId), { signal: signal(args) }))
    },

    async kadClosest(args) {
      const peers = []
      for await (const p of pick(args).peerRouting.getClosestPeers(fromHex(args.key), { signal: signal(args) })) {
        peers.push(p.id.toString())
      }
      return { peers }
    },

    async kadPut(args) {
      await pick(args).contentRouting.put(fromHex(args.key), fromHex(args.value), { signal: signal(args) })
      return {}
    },

    async kadGet(args) {
      return { value: toHex(await pick(args).contentRouting.get(fromHex(args.key), { signal: signal(args) })) }
    },

    async kadProvide(args) {
      await pick(args).contentRouting.provide(CID.decode(fromHex(args.cid)), { signal: signal(args) })
      return {}
    },

    async kadFindProviders(args) {
      const providers = []
      const limit = args.limit ?? 20
      const s = signal(args)
      for await (const p of pick(args).contentRouting.findProviders(CID.decode(fromHex(args.cid)), { signal: s })) {
        providers.push(info(p))
        if (providers.length >= limit) break
      }
      return { providers }
    },

    async kadStop() {
      const nodes = kadNodes
      kadNodes = []
      await Promise.all(nodes.map((n) => n.stop().catch(() => {})))
      return {}
    }
  }
}
