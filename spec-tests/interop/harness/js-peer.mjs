/**
 * js-peer: a js-libp2p v3 node (TCP and/or WebSockets + Noise + Yamux, identify, ping, and our own
 * `/echo/1.0.0` and `/perf/1.0.0` handlers) run in its own process and driven over
 * stdin/stdout with JSON lines. Interop tests (ARCHITECTURE.md §6) start it through
 * `JsPeer.ts` (a typed Effect driver); the line protocol is below.
 *
 * The perf handler and client follow https://github.com/libp2p/specs/blob/master/perf/perf.md
 * (there is no @libp2p/perf for js-libp2p v3, ARCHITECTURE.md §8): the client sends an
 * 8-byte big-endian u64 "bytes to send back", then its upload, then closes its write
 * side; the server discards until EOF, then sends that many bytes and closes.
 *
 * Configuration: a JSON object as the first command-line argument, or in the env var
 * JS_PEER_CONFIG (the argument wins):
 *   { listen?: string[]                      default ["/ip4/127.0.0.1/tcp/0"]
 *     transports?: ("tcp"|"websockets")[]    default ["tcp"]; "websockets" is @libp2p/websockets
 *                                              (listen on e.g. "/ip4/127.0.0.1/tcp/0/ws"; it dials
 *                                              every /ws, /wss and /tls/ws address)
 *     privateKey?: string                    hex of the protobuf-encoded private key
 *     services?: { identify?, identifyPush?, ping?: boolean | init object,
 *                  echo?, perf?: boolean }   all default true
 *     connectionManager?: object             merged over { inboundConnectionThreshold: 100000,
 *                                              maxIncomingPendingConnections: 1000 }
 *     connectionMonitor?: object             js-libp2p's own (default: enabled, pings every 10 s)
 *     userAgent?: string
 *     encrypters?: ("noise"|"tls")[]       connection encrypters in preference order, default
 *                                              ["noise"]; "tls" is @libp2p/tls (libp2p TLS 1.3)
 *     muxers?: ("yamux"|"mplex")[]         stream muxers in preference order, default ["yamux"];
 *                                              "mplex" is @libp2p/mplex
 *     mplex?: object                         @libp2p/mplex init, e.g. { disconnectThreshold: 100 }
 *     autonat?: true | object }              @libp2p/autonat-v2 as service autoNAT (its init);
 *                                              command autonatAddrs → {addrs:[{addr,type,verified}]}
 * Without `muxers` / `mplex` in the config, the env vars JS_PEER_MUXERS (comma-separated, e.g.
 * "mplex,yamux") and JS_PEER_MPLEX (JSON) are used, so a driver passing only env can set them.
 *
 * Output (stdout, one JSON object per line):
 *   {"event":"ready","peerId":"...","addrs":["/ip4/127.0.0.1/tcp/N/p2p/..."]}   once, first
 *   {"event":"peer:connect","peerId":"..."}    {"event":"peer:disconnect","peerId":"..."}
 *   {"event":"connection:open"|"connection:close","peerId","remoteAddr","direction","id"}
 *   {"event":"peer:identify","peerId","agentVersion","protocolVersion","protocols",
 *     "listenAddrs","observedAddr","signedPeerRecord":{"seq","addrs"}|null,"connectionId"}
 *   {"event":"identify:error","peerId","connectionId","error"}   js's automatic identify failed
 *   {"event":"handler:error","protocol","streamId","error"}      our echo/perf handler failed
 *   {"id":N,"ok":true,...result}  or  {"id":N,"ok":false,"error":"Name: message","errorName":"Name"}
 *   {"event":"ready",...,"node":"v24.x"} also carries the child's Node version.
 * Input (stdin, one JSON object per line): {"id":N,"cmd":"<name>",...args}; answers may come
 * out of order (commands run concurrently). A target is {"addr":multiaddr} (dials if needed)
 * or {"peerId":id} (an existing connection or the peer store's addresses). Commands that open
 * a stream (ping mode "stream", echo, perf, negotiate) take `negotiateFully: false` to have js
 * send the protocol name together with the first data (optimistic multistream-select).
 *   dial {addr}                      → {peerId, remoteAddr, direction, encryption, multiplexer, connectionId}
 *   hangup {peerId}                  → {}
 *   ping {target, count=1, mode="service"|"stream"} → {rtts:[ms]}   service: @libp2p/ping, one
 *                                      stream per ping, whole ms; stream: all pings on one stream
 *   identify {peerId, fresh=false, timeoutMs=5000} → {peerId, agentVersion, protocolVersion,
 *       protocols, listenAddrs, observedAddr, signedPeerRecord:{seq,addrs}|null, connectionId,
 *       peerRecordVerified, peerRecordError, peerRecord:{peerId,seq,addrs}|null}
 *   echo {target, protocol="/echo/1.0.0", bytes=1024, streams=1} → {bytes (total), streams, ms}
 *       (fails if any stream's echo differs)
 *   perf {target, uploadBytes, downloadBytes, protocol="/perf/1.0.0"}
 *                                    → {seconds, uploadSeconds, uploadBytes, downloadBytes}
 *   negotiate {target, protocols:[...]} → {protocol}   (multistream-select's choice)
 *   handle {protocol, behavior="echo"|"perf"|"sink"} → {}      unhandle {protocol} → {}
 *   push                             → {}   identify/push to all connections now
 *   peers                            → {peers:[{peerId, addrs:[remoteAddr...]}]}
 *   connections                      → {count, connections:[{peerId, remoteAddr, direction,
 *                                        status, encryption, multiplexer, streams, id}]}
 *   addrs                            → {peerId, addrs}
 *   (for bench/, the same commands as bench/ours-peer.ts; times in µs from performance.now:)
 *   echoLoop {target, count, size=1} → {us:[µs per round trip]}  `count` echoes on ONE stream
 *   perfLoop {target, count}         → {us:[µs]}  a new perf stream per request, 1 byte each way
 *   dialLoop {addr, count}           → {us:[µs], seconds}  dial + Noise + Yamux + /echo stream +
 *                                      1-byte echo, timed; then hang up (untimed, but in `seconds`)
 *   spawnNodes {addr, count, concurrency=8} → {count, ms}  start `count` more js nodes in this
 *                                      process (fresh identities, no listeners), each dialing addr
 *   closeNodes                       → {}   stop them
 *   startNodes {addr, count, concurrency=count, dialDelayMs=0} → {nodes:[{peerId, ok, error}], ms}
 *                                      like spawnNodes, but every node's dial outcome is reported
 *                                      (a refused dial is not a failure of the command); one
 *                                      process hosts them all (~116 MiB and ~0.5 s per js-peer
 *                                      process here, so 40 processes would not fit a test)
 *   nodesConnected {peerId}          → {connected, nodes}  how many started nodes have an open
 *                                      connection to peerId (nodes: how many were started)
 *   cpu {gc=false}                   → {user, system (µs), heapUsed, rss, external, arrayBuffers, monoUs
 *                                      (monotonic clock in µs, the time base of node --cpu-prof)}
 *                                      (gc: true runs global.gc first, "last-resort" also V8's
 *                                      shrinking collection; needs node --expose-gc)
 *   stop                             → {} then exit 0
 *   kad* commands and the `kad` config: see js-kad.mjs
 * Closing stdin (or SIGTERM/SIGINT) stops the node and exits 0, so the process never
 * outlives its parent's pipe.
 *
 * Pubsub (wt-gossip; additive): config `pubsub?: { router: "gossipsub"|"floodsub", ...init }` adds
 * @libp2p/gossipsub (default init: { allowPublishToZeroTopicPeers: true }) or @libp2p/floodsub as
 * `services.pubsub`. Every message it delivers is reported:
 *   {"event":"pubsub:message","topic","from","seqno","data":<base64>,"text":<utf-8>}
 *   pubsubSubscribe {topic} → {}     pubsubUnsubscribe {topic} → {}
 *   pubsubPublish {topic, text | base64} → {recipients:[peerId...]}
 *   pubsubPeers {topic} → {peers:[peerId...]}   (subscribers of topic known to js)
 *   pubsubMesh {topic} → {peers:[peerId...]}    (gossipsub mesh; [] for floodsub)
 *
 * mDNS (wt-disc; additive): config `mdns?: object` adds @libp2p/mdns (init passed on, e.g.
 * { interval: 1000 }) as `services.mdns`. Every peer mDNS finds is reported:
 *   {"event":"mdns:peer","peerId","addrs":[multiaddr...]}
 * (and, as for every config, each peer new to the peer store as "peer:discovery")
 * Circuit relay v2 (wt-relay; additive): config `relay?: { server?: true | init, transport?: true | init }`
 * adds @libp2p/circuit-relay-v2's `circuitRelayServer` as `services.relay` and/or its
 * `circuitRelayTransport` (listen on `<relay addr>/p2p-circuit` to reserve there; `addrs` then
 * lists the circuit address once reserved). Streams opened by commands and our echo/perf handlers
 * run on limited (relayed) connections too (`runOnLimitedConnection`).
 *   relayReservations → {reservations:[peerId...]}   (the server's current reservations)
 * DCUtR (wt-jsnat; additive): config `dcutr?: true | init` adds @libp2p/dcutr as `services.dcutr`
 * (its init, e.g. { timeout: 5000, retries: 3 }); js reports its hole punches only in its debug
 * log (env DEBUG=libp2p:dcutr*, on stderr). Config `appendAnnounce?: string[]` is js's
 * `addresses.appendAnnounce` (addresses js offers as its own, verified, besides its listeners).
 * connection:open / connection:close events also carry `limited` (js's `connection.limits` is
 * set: a relayed connection under the relay's limits) and `relayed` (a /p2p-circuit address).
 */
import { noise } from "@chainsafe/libp2p-noise"
import { yamux } from "@chainsafe/libp2p-yamux"
import { privateKeyFromProtobuf } from "@libp2p/crypto/keys"
import { identify, identifyPush } from "@libp2p/identify"
import { mdns } from "@libp2p/mdns"
import { mplex } from "@libp2p/mplex"
import { peerIdFromString } from "@libp2p/peer-id"
import { PeerRecord, RecordEnvelope } from "@libp2p/peer-record"
import { ping } from "@libp2p/ping"
import { plaintext } from "@libp2p/plaintext"
import { tcp } from "@libp2p/tcp"
import { tls } from "@libp2p/tls"
import { webSockets } from "@libp2p/websockets"
import { multiaddr } from "@multiformats/multiaddr"
import { createLibp2p } from "libp2p"
// pubsub (wt-gossip)
import { circuitRelayServer, circuitRelayTransport } from "@libp2p/circuit-relay-v2"
import { floodsub } from "@libp2p/floodsub"
import { gossipsub } from "@libp2p/gossipsub"
import { createInterface } from "node:readline"
// kad-dht (its own file: js-kad.mjs)
import { autoNATv2 } from "@libp2p/autonat-v2"
// DCUtR (wt-jsnat)
import { dcutr } from "@libp2p/dcutr"
import { kadCommands, kadService } from "./js-kad.mjs"

const ECHO = "/echo/1.0.0"
const PERF = "/perf/1.0.0"
const PING = "/ipfs/ping/1.0.0"
const CHUNK = 64 * 1024

// ---------------------------------------------------------------- output

const emit = (obj) => {
  process.stdout.write(JSON.stringify(obj, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n")
}
const log = (...args) => process.stderr.write(`[js-peer ${process.pid}] ${args.join(" ")}\n`)

const errorText = (err) => {
  if (err == null) return "unknown error"
  if (typeof err !== "object") return String(err)
  const name = err.name ?? "Error"
  return `${name}: ${err.message ?? String(err)}`
}

process.on("unhandledRejection", (err) => log("unhandled rejection:", errorText(err)))
process.on("uncaughtException", (err) => log("uncaught exception:", errorText(err), err?.stack ?? ""))

// ---------------------------------------------------------------- config

const parseConfig = () => {
  const raw = process.argv[2] ?? process.env.JS_PEER_CONFIG ?? "{}"
  return JSON.parse(raw)
}

const hexToBytes = (hex) => {
  const clean = hex.startsWith("0x") ? hex.slice(2) : hex
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${hex}`)
  return Uint8Array.from(Buffer.from(clean, "hex"))
}

const serviceInit = (value) => (value === undefined || value === true ? {} : value === false ? null : value)

// ---------------------------------------------------------------- stream helpers

const toBytes = (data) => (data instanceof Uint8Array ? data : data.subarray())

/**
 * Read a stream until the remote closes its write side, calling onChunk for each chunk.
 * Resolves on EOF, rejects on reset/abort. (Unlike `for await (const c of stream)`, this
 * also terminates when the remote half-closed before we started listening.)
 */
const consume = (stream, onChunk) =>
  new Promise((resolve, reject) => {
    let done = false
    const cleanup = () => {
      done = true
      stream.removeEventListener("message", onMessage)
      stream.removeEventListener("end", onEnd)
      stream.removeEventListener("close", onClose)
    }
    const onMessage = (evt) => {
      if (done) return
      try {
        onChunk(toBytes(evt.data))
      } catch (err) {
        cleanup()
        reject(err)
      }
    }
    const onEnd = () => {
      if (done) return
      cleanup()
      resolve()
    }
    const onClose = (evt) => {
      if (done) return
      if (evt.error != null) {
        cleanup()
        reject(evt.error)
      } else if (stream.readableEnded || stream.readBufferLength === 0) {
        cleanup()
        resolve()
      }
    }
    stream.addEventListener("message", onMessage)
    stream.addEventListener("end", onEnd)
    stream.addEventListener("close", onClose)
    // js-libp2p can report `readableEnded` while still holding bytes: multistream-select
    // pushes the bytes it read past the protocol name back into the read buffer after
    // the remote's FIN was seen. Adding the 'message' listener above queued a microtask
    // that dispatches them; end after it, or those bytes would be lost.
    if (stream.readableEnded) queueMicrotask(onEnd)
  })

/** Send a chunk, waiting for 'drain' when the stream asks for it. */
const send = async (stream, chunk) => {
  if (!stream.send(chunk)) await stream.onDrain()
}

/** Deterministic pseudo-random bytes (xorshift32 seeded by `seed`). */
const pattern = (length, seed) => {
  const out = new Uint8Array(length)
  const words = new Uint32Array(out.buffer, 0, length >>> 2)
  let x = (seed * 0x9e3779b1 + 0x7f4a7c15) >>> 0 || 1
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    words[i] = x
  }
  for (let i = words.length * 4; i < length; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

// ---------------------------------------------------------------- protocol handlers

const handlerError = (protocol, stream, err) => {
  log(`${protocol} handler:`, errorText(err))
  emit({ event: "handler:error", protocol, streamId: stream.id, error: errorText(err) })
}

const echoHandler = async (stream) => {
  try {
    let failed = null
    let chain = Promise.resolve()
    await consume(stream, (chunk) => {
      // keep order: chain sends (send() itself is synchronous unless backpressured)
      chain = chain.then(() => send(stream, chunk)).catch((err) => {
        failed = err
      })
    })
    await chain
    if (failed) throw failed
    await stream.close()
  } catch (err) {
    handlerError(stream.protocol ?? ECHO, stream, err)
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

const sinkHandler = async (stream) => {
  try {
    await consume(stream, () => {})
    await stream.close()
  } catch (err) {
    handlerError(stream.protocol, stream, err)
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

const perfHandler = async (stream) => {
  try {
    let header = new Uint8Array(0)
    let received = 0
    await consume(stream, (chunk) => {
      if (header.length < 8) {
        const need = 8 - header.length
        const take = chunk.subarray(0, need)
        const merged = new Uint8Array(header.length + take.length)
        merged.set(header)
        merged.set(take, header.length)
        header = merged
        received += chunk.length - take.length
      } else {
        received += chunk.length
      }
    })
    if (header.length < 8) throw new Error(`perf: stream ended after ${header.length} header bytes`)
    const toSend = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0, false)
    if (toSend > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`perf: download size too large: ${toSend}`)
    let left = Number(toSend)
    const buf = new Uint8Array(CHUNK)
    while (left > 0) {
      const n = Math.min(left, CHUNK)
      await send(stream, n === CHUNK ? buf : buf.subarray(0, n))
      left -= n
    }
    await stream.close()
  } catch (err) {
    handlerError(stream.protocol ?? PERF, stream, err)
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

// ---------------------------------------------------------------- node

const config = parseConfig()
const services = {}
const identifyInit = serviceInit(config.services?.identify)
const pingInit = serviceInit(config.services?.ping)
const pushInit = serviceInit(config.services?.identifyPush)
if (identifyInit) services.identify = identify(identifyInit)
if (pushInit) services.identifyPush = identifyPush(pushInit)
if (pingInit) services.ping = ping(pingInit)
// kad-dht: config.kad (js-kad.mjs)
if (config.kad != null) services.dht = kadService(config.kad)
// ---------------------------------------------------------------- pubsub service (wt-gossip)
if (config.pubsub) {
  const { router, ...init } = config.pubsub
  services.pubsub = router === "floodsub" ? floodsub(init) : gossipsub({ allowPublishToZeroTopicPeers: true, ...init })
}
// ---------------------------------------------------------------- end pubsub service
// mdns: config.mdns (wt-disc)
if (config.mdns != null) services.mdns = mdns(config.mdns)
// ---------------------------------------------------------------- circuit relay v2 (wt-relay)
const relayInit = (v) => (v === true ? {} : v)
if (config.relay?.server) services.relay = circuitRelayServer(relayInit(config.relay.server))
// ---------------------------------------------------------------- end circuit relay v2
// autonat (wt-autonat): config.autonat true or an @libp2p/autonat-v2 init adds service `autoNAT`
if (config.autonat) services.autoNAT = autoNATv2(config.autonat === true ? {} : config.autonat)
// DCUtR (wt-jsnat): config.dcutr true or an @libp2p/dcutr init adds service `dcutr`
if (config.dcutr) services.dcutr = dcutr(config.dcutr === true ? {} : config.dcutr)

const TRANSPORTS = { tcp: () => tcp(), websockets: () => webSockets() }
const transports = (config.transports ?? ["tcp"]).map((name) => {
  if (!Object.hasOwn(TRANSPORTS, name)) throw new Error(`unknown transport ${name}`)
  return TRANSPORTS[name]()
})
if (config.relay?.transport) transports.push(circuitRelayTransport(relayInit(config.relay.transport)))

const ENCRYPTERS = { noise: () => noise(), tls: () => tls(), plaintext: () => plaintext() }
const encrypters = () =>
  (config.encrypters ?? ["noise"]).map((name) => {
    if (!Object.hasOwn(ENCRYPTERS, name)) throw new Error(`unknown encrypter ${name}`)
    return ENCRYPTERS[name]()
  })

const mplexInit = config.mplex ?? (process.env.JS_PEER_MPLEX ? JSON.parse(process.env.JS_PEER_MPLEX) : {})
const MUXERS = { yamux: () => yamux(), mplex: () => mplex(mplexInit) }
const muxers = () =>
  (config.muxers ?? (process.env.JS_PEER_MUXERS ? process.env.JS_PEER_MUXERS.split(",") : ["yamux"])).map((name) => {
    if (!Object.hasOwn(MUXERS, name)) throw new Error(`unknown muxer ${name}`)
    return MUXERS[name]()
  })

const node = await createLibp2p({
  ...(config.privateKey ? { privateKey: privateKeyFromProtobuf(hexToBytes(config.privateKey)) } : {}),
  addresses: {
    listen: config.listen ?? ["/ip4/127.0.0.1/tcp/0"],
    ...(config.appendAnnounce ? { appendAnnounce: config.appendAnnounce } : {})
  },
  transports,
  connectionEncrypters: encrypters(),
  streamMuxers: muxers(),
  services,
  connectionManager: {
    inboundConnectionThreshold: 100_000,
    maxIncomingPendingConnections: 1000,
    ...config.connectionManager
  },
  ...(config.connectionMonitor ? { connectionMonitor: config.connectionMonitor } : {}),
  ...(config.userAgent ? { nodeInfo: { userAgent: config.userAgent } } : {})
})

const handlerOptions = { maxInboundStreams: 1024, maxOutboundStreams: 1024, runOnLimitedConnection: true }
if (config.services?.echo !== false) await node.handle(ECHO, echoHandler, handlerOptions)
if (config.services?.perf !== false) await node.handle(PERF, perfHandler, handlerOptions)

/** peerId string → the latest identify result seen for it (cleared on disconnect). */
const identified = new Map()
const identifyWaiters = new Map()
/** peerId string → the error of the latest failed identify (js itself only logs these). */
const identifyFailures = new Map()
const wakeIdentifyWaiters = (key) => {
  for (const wake of identifyWaiters.get(key) ?? []) wake()
  identifyWaiters.delete(key)
}

// js runs identify on every new connection and swallows its errors; wrap the service's
// method (its connection:open listener calls it through `this`) to report them.
if (node.services.identify) {
  const svc = node.services.identify
  const original = svc.identify.bind(svc)
  svc.identify = async (connection, options) => {
    try {
      return await original(connection, options)
    } catch (err) {
      const key = connection.remotePeer.toString()
      identifyFailures.set(key, err)
      emit({ event: "identify:error", peerId: key, connectionId: connection.id, error: errorText(err) })
      if (!identified.has(key)) wakeIdentifyWaiters(key)
      throw err
    }
  }
}

const identifyJson = (r) => ({
  peerId: r.peerId.toString(),
  agentVersion: r.agentVersion ?? null,
  protocolVersion: r.protocolVersion ?? null,
  protocols: r.protocols,
  listenAddrs: r.listenAddrs.map(String),
  observedAddr: r.observedAddr ? r.observedAddr.toString() : null,
  signedPeerRecord: r.signedPeerRecord
    ? { seq: r.signedPeerRecord.seq.toString(), addrs: r.signedPeerRecord.addresses.map(String) }
    : null,
  connectionId: r.connection?.id ?? null
})

node.addEventListener("peer:connect", (evt) => emit({ event: "peer:connect", peerId: evt.detail.toString() }))
node.addEventListener(
  "peer:discovery",
  (evt) => emit({ event: "peer:discovery", peerId: evt.detail.id.toString(), addrs: evt.detail.multiaddrs.map(String) })
)
// js-libp2p's "peer:discovery" means "new in the peer store" (an inbound
// connection counts), so mDNS's own finds are reported from the service itself
node.services.mdns?.addEventListener(
  "peer",
  (evt) => emit({ event: "mdns:peer", peerId: evt.detail.id.toString(), addrs: evt.detail.multiaddrs.map(String) })
)
node.addEventListener("peer:disconnect", (evt) => {
  identified.delete(evt.detail.toString())
  identifyFailures.delete(evt.detail.toString())
  emit({ event: "peer:disconnect", peerId: evt.detail.toString() })
})
const connectionEvent = (name) => (evt) =>
  emit({
    event: name,
    peerId: evt.detail.remotePeer.toString(),
    remoteAddr: evt.detail.remoteAddr.toString(),
    direction: evt.detail.direction,
    id: evt.detail.id,
    limited: evt.detail.limits != null,
    relayed: evt.detail.remoteAddr.toString().includes("/p2p-circuit")
  })
node.addEventListener("connection:open", connectionEvent("connection:open"))
node.addEventListener("connection:close", connectionEvent("connection:close"))
node.addEventListener("peer:identify", (evt) => {
  const key = evt.detail.peerId.toString()
  identified.set(key, evt.detail)
  identifyFailures.delete(key)
  emit({ event: "peer:identify", ...identifyJson(evt.detail) })
  wakeIdentifyWaiters(key)
})

// ---------------------------------------------------------------- commands

const target = (args) => {
  if (typeof args.addr === "string") return multiaddr(args.addr)
  if (typeof args.peerId === "string") return peerIdFromString(args.peerId)
  throw new Error("need `addr` or `peerId`")
}

const requirePeerId = (args) => {
  if (typeof args.peerId === "string") return peerIdFromString(args.peerId)
  if (typeof args.addr === "string") {
    const id = multiaddr(args.addr).getComponents().findLast((c) => c.name === "p2p")?.value
    if (id) return peerIdFromString(id)
  }
  throw new Error("need `peerId` (or an `addr` ending in /p2p/<id>)")
}

/** `negotiateFully: false` lets js send the protocol name together with the first data
 *  (optimistic multistream-select, single protocol only). */
const openStream = (args, protocol) =>
  node.dialProtocol(target(args), protocol, {
    maxOutboundStreams: 1024,
    runOnLimitedConnection: true,
    ...(args.negotiateFully === false ? { negotiateFully: false } : {})
  })

const waitIdentify = (peerId, timeoutMs) => {
  const key = peerId.toString()
  if (identified.has(key)) return Promise.resolve(identified.get(key))
  if (identifyFailures.has(key)) return Promise.reject(identifyFailures.get(key))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const list = identifyWaiters.get(key) ?? []
      identifyWaiters.set(key, list.filter((w) => w !== wake))
      reject(new Error(`no identify result from ${key} within ${timeoutMs} ms`))
    }, timeoutMs)
    const wake = () => {
      clearTimeout(timer)
      if (identified.has(key)) resolve(identified.get(key))
      else reject(identifyFailures.get(key) ?? new Error(`identify of ${key} ended without a result`))
    }
    identifyWaiters.set(key, [...(identifyWaiters.get(key) ?? []), wake])
  })
}

/** What the peer store holds as the peer's signed record, checked again from the envelope bytes. */
const storedPeerRecord = async (peerId) => {
  let peer
  try {
    peer = await node.peerStore.get(peerId)
  } catch (err) {
    return { peerRecordVerified: false, peerRecordError: errorText(err), peerRecord: null }
  }
  if (peer.peerRecordEnvelope == null) {
    return { peerRecordVerified: false, peerRecordError: "no signed peer record stored", peerRecord: null }
  }
  try {
    const envelope = await RecordEnvelope.openAndCertify(peer.peerRecordEnvelope, PeerRecord.DOMAIN)
    const record = PeerRecord.createFromProtobuf(envelope.payload)
    const signer = envelope.publicKey.toCID().toString()
    const verified = record.peerId.equals(peerId) && record.peerId.toCID().toString() === signer
    return {
      peerRecordVerified: verified,
      peerRecordError: verified ? null : "record peer id does not match its signer or the remote peer",
      peerRecord: {
        peerId: record.peerId.toString(),
        seq: record.seqNumber.toString(),
        addrs: record.multiaddrs.map(String)
      }
    }
  } catch (err) {
    return { peerRecordVerified: false, peerRecordError: errorText(err), peerRecord: null }
  }
}

const pingOverOneStream = async (args, count) => {
  const stream = await openStream(args, PING)
  const rtts = []
  let buffer = new Uint8Array(0)
  let wake = null
  const reading = consume(stream, (chunk) => {
    const merged = new Uint8Array(buffer.length + chunk.length)
    merged.set(buffer)
    merged.set(chunk, buffer.length)
    buffer = merged
    wake?.()
  })
  reading.catch(() => wake?.())
  try {
    for (let i = 0; i < count; i++) {
      const payload = crypto.getRandomValues(new Uint8Array(32))
      const t0 = performance.now()
      await send(stream, payload)
      while (buffer.length < 32) {
        await Promise.race([
          new Promise((r) => (wake = r)),
          reading.then(() => {
            throw new Error(`ping stream ended after ${rtts.length} pings`)
          })
        ])
      }
      rtts.push(performance.now() - t0)
      const got = buffer.subarray(0, 32)
      if (!Buffer.from(got).equals(Buffer.from(payload))) throw new Error(`ping ${i}: payload mismatch`)
      buffer = buffer.subarray(32)
    }
    await stream.close()
    await reading
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
  return rtts
}

const echoOne = async (args, protocol, size, seed) => {
  const data = pattern(size, seed)
  const stream = await openStream(args, protocol)
  const received = new Uint8Array(size)
  let got = 0
  let overflow = false
  const reading = consume(stream, (chunk) => {
    if (got + chunk.length > size) overflow = true
    else received.set(chunk, got)
    got += chunk.length
  })
  try {
    for (let off = 0; off < size; off += CHUNK) await send(stream, data.subarray(off, Math.min(size, off + CHUNK)))
    await stream.close()
    await reading
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
  if (overflow || got !== size) throw new Error(`echo stream ${seed}: sent ${size} bytes, got back ${got}`)
  if (!Buffer.from(received).equals(Buffer.from(data))) {
    let at = 0
    while (received[at] === data[at]) at++
    throw new Error(`echo stream ${seed}: bytes differ at offset ${at}`)
  }
  return size
}

/** Counts the bytes a stream delivers; `until(n)` resolves once n bytes in total arrived. */
const byteCounter = (stream) => {
  let got = 0
  let target = 0
  let waiter = null
  let ended = null
  const reading = consume(stream, (chunk) => {
    got += chunk.length
    if (waiter !== null && got >= target) {
      const w = waiter
      waiter = null
      w.resolve()
    }
  })
  reading.then(
    () => {
      ended = new Error(`stream ended after ${got} bytes`)
      waiter?.reject(ended)
    },
    (err) => {
      ended = err
      waiter?.reject(err)
    }
  )
  return {
    reading,
    got: () => got,
    until: (n) =>
      got >= n ? Promise.resolve() : ended !== null ? Promise.reject(ended) : new Promise((resolve, reject) => {
        target = n
        waiter = { resolve, reject }
      })
  }
}

const ONE = Uint8Array.of(0x2a)
const nowUs = () => performance.now() * 1000

/** Extra nodes started by spawnNodes. */
let extraNodes = []
const closeExtraNodes = async () => {
  const nodes = extraNodes
  extraNodes = []
  await Promise.all(nodes.map((n) => n.stop().catch((err) => log("stop extra node:", errorText(err)))))
}

const commands = {
  /** `count` round trips of `size` bytes on one /echo/1.0.0 stream, µs each. */
  async echoLoop(args) {
    const count = args.count
    const payload = new Uint8Array(args.size ?? 1).fill(0x2a)
    const stream = await openStream(args, ECHO)
    const counter = byteCounter(stream)
    const us = []
    try {
      for (let i = 0; i < count; i++) {
        const t0 = nowUs()
        await send(stream, payload)
        await counter.until((i + 1) * payload.length)
        us.push(nowUs() - t0)
      }
      await stream.close()
      await counter.reading
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
    return { us }
  },

  /** `count` perf requests (1 byte up, 1 byte down), each on a new stream, µs each. */
  async perfLoop(args) {
    const header = new Uint8Array(8)
    new DataView(header.buffer).setBigUint64(0, 1n, false)
    await node.dial(target(args))
    const us = []
    for (let i = 0; i < args.count; i++) {
      const t0 = nowUs()
      const stream = await openStream(args, PERF)
      const counter = byteCounter(stream)
      try {
        await send(stream, header)
        await send(stream, ONE)
        await stream.close()
        await counter.reading
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        throw err
      }
      if (counter.got() !== 1) throw new Error(`perf: asked for 1 byte, got ${counter.got()}`)
      us.push(nowUs() - t0)
    }
    return { us }
  },

  /** `count` times: dial (TCP + Noise + Yamux), open /echo/1.0.0, 1-byte echo (timed), hang up. */
  async dialLoop(args) {
    const addr = multiaddr(args.addr)
    const peer = requirePeerId(args)
    await node.hangUp(peer)
    const us = []
    const start = nowUs()
    for (let i = 0; i < args.count; i++) {
      const t0 = nowUs()
      const conn = await node.dial(addr)
      const stream = await conn.newStream(ECHO)
      const counter = byteCounter(stream)
      await send(stream, ONE)
      await counter.until(1)
      us.push(nowUs() - t0)
      await stream.close()
      await node.hangUp(peer)
    }
    return { us, seconds: (nowUs() - start) / 1e6 }
  },

  /** Start `count` js nodes (no listeners, identify + ping), each connected to `addr`. */
  async spawnNodes(args) {
    const addr = multiaddr(args.addr)
    const count = args.count
    const t0 = performance.now()
    let next = 0
    const worker = async () => {
      while (next < count) {
        next++
        const extra = await createLibp2p({
          addresses: { listen: [] },
          transports,
          connectionEncrypters: encrypters(),
          streamMuxers: muxers(),
          services: { identify: identify(), ping: ping() }
        })
        extraNodes.push(extra)
        await extra.dial(addr)
      }
    }
    await Promise.all(Array.from({ length: args.concurrency ?? 8 }, worker))
    return { count: extraNodes.length, ms: performance.now() - t0 }
  },

  async closeNodes() {
    await closeExtraNodes()
    return {}
  },

  /** Start `count` js nodes (fresh identities, no listeners, identify + ping), then dial `addr`
   *  from each (at most `concurrency` at once, optionally `dialDelayMs` apart); per-node outcome. */
  async startNodes(args) {
    const addr = multiaddr(args.addr)
    const t0 = performance.now()
    const created = await Promise.all(
      Array.from({ length: args.count }, () =>
        createLibp2p({
          addresses: { listen: [] },
          transports,
          connectionEncrypters: encrypters(),
          streamMuxers: muxers(),
          services: { identify: identify(), ping: ping() }
        }))
    )
    extraNodes.push(...created)
    const results = new Array(created.length)
    let next = 0
    const worker = async () => {
      while (next < created.length) {
        const i = next++
        const extra = created[i]
        if (args.dialDelayMs) await new Promise((r) => setTimeout(r, args.dialDelayMs * i))
        try {
          await extra.dial(addr)
          results[i] = { peerId: extra.peerId.toString(), ok: true, error: null }
        } catch (err) {
          results[i] = { peerId: extra.peerId.toString(), ok: false, error: errorText(err) }
        }
      }
    }
    await Promise.all(Array.from({ length: args.concurrency ?? created.length }, worker))
    return { nodes: results, ms: performance.now() - t0 }
  },

  async nodesConnected(args) {
    const peer = peerIdFromString(args.peerId)
    return {
      connected: extraNodes.filter((n) => n.getConnections(peer).length > 0).length,
      nodes: extraNodes.length
    }
  },

  /** process.cpuUsage() and memoryUsage(); `gc: true` collects garbage first. */
  async cpu(args) {
    if (args.gc) {
      if (typeof globalThis.gc !== "function") throw new Error("cpu {gc:true} needs node --expose-gc")
      globalThis.gc()
      await new Promise((r) => setImmediate(r))
      globalThis.gc()
      // V8's "all available garbage" collection, which also shrinks the young generation
      if (args.gc === "last-resort") globalThis.gc({ type: "major", execution: "sync", flavor: "last-resort" })
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

  async dial(args) {
    const conn = await node.dial(target(args))
    return {
      peerId: conn.remotePeer.toString(),
      remoteAddr: conn.remoteAddr.toString(),
      direction: conn.direction,
      encryption: conn.encryption ?? null,
      multiplexer: conn.multiplexer ?? null,
      connectionId: conn.id
    }
  },

  async hangup(args) {
    await node.hangUp(requirePeerId(args))
    return {}
  },

  /** mode "service" (default): @libp2p/ping's ping(), one new stream per ping, whole ms.
   *  mode "stream": `count` pings over one stream, fractional ms (performance.now). */
  async ping(args) {
    const count = args.count ?? 1
    if (args.mode === "stream") return { rtts: await pingOverOneStream(args, count) }
    if (!node.services.ping) throw new Error("ping service disabled")
    const rtts = []
    for (let i = 0; i < count; i++) rtts.push(await node.services.ping.ping(target(args)))
    return { rtts }
  },

  /** The identify result of the current connection (js identifies each new connection by
   *  itself); `fresh: true` runs identify again on it instead. Plus the stored peer record. */
  async identify(args) {
    const peerId = requirePeerId(args)
    let result
    if (args.fresh) {
      if (!node.services.identify) throw new Error("identify service disabled")
      const conn = node.getConnections(peerId)[0]
      if (!conn) throw new Error(`not connected to ${peerId}`)
      result = await node.services.identify.identify(conn)
    } else {
      result = await waitIdentify(peerId, args.timeoutMs ?? 5000)
    }
    return { ...identifyJson(result), ...(await storedPeerRecord(peerId)) }
  },

  async echo(args) {
    const bytes = args.bytes ?? 1024
    const streams = args.streams ?? 1
    const protocol = args.protocol ?? ECHO
    const t0 = performance.now()
    const sizes = await Promise.all(Array.from({ length: streams }, (_, i) => echoOne(args, protocol, bytes, i + 1)))
    const ms = performance.now() - t0
    return { bytes: sizes.reduce((a, b) => a + b, 0), streams, ms }
  },

  /** perf client (perf spec): upload `uploadBytes`, ask for `downloadBytes` back. */
  async perf(args) {
    const upload = args.uploadBytes ?? 0
    const download = args.downloadBytes ?? 0
    const t0 = performance.now()
    const stream = await openStream(args, args.protocol ?? PERF)
    let got = 0
    const reading = consume(stream, (chunk) => {
      got += chunk.length
    })
    let uploadDone = t0
    try {
      const header = new Uint8Array(8)
      new DataView(header.buffer).setBigUint64(0, BigInt(download), false)
      await send(stream, header)
      const buf = new Uint8Array(CHUNK)
      for (let left = upload; left > 0; left -= CHUNK) await send(stream, left >= CHUNK ? buf : buf.subarray(0, left))
      await stream.close()
      uploadDone = performance.now()
      await reading
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
    const t1 = performance.now()
    if (got !== download) throw new Error(`perf: asked for ${download} bytes, got ${got}`)
    return {
      seconds: (t1 - t0) / 1000,
      uploadSeconds: (uploadDone - t0) / 1000,
      uploadBytes: upload,
      downloadBytes: got
    }
  },

  /** Open a stream offering `protocols` (multistream-select) and report what was chosen. */
  async negotiate(args) {
    const stream = await openStream(args, args.protocols)
    const protocol = stream.protocol
    await stream.close().catch(() => {})
    stream.abort(new Error("negotiate: done"))
    return { protocol }
  },

  async peers() {
    const byPeer = new Map()
    for (const conn of node.getConnections()) {
      const key = conn.remotePeer.toString()
      byPeer.set(key, [...(byPeer.get(key) ?? []), conn.remoteAddr.toString()])
    }
    return { peers: [...byPeer].map(([peerId, addrs]) => ({ peerId, addrs })) }
  },

  async connections() {
    const conns = node.getConnections()
    return {
      count: conns.length,
      connections: conns.map((c) => ({
        peerId: c.remotePeer.toString(),
        remoteAddr: c.remoteAddr.toString(),
        direction: c.direction,
        status: c.status,
        encryption: c.encryption ?? null,
        multiplexer: c.multiplexer ?? null,
        streams: c.streams.length,
        id: c.id
      }))
    }
  },

  /** Register `protocol` with one of our handlers: "echo", "perf" or "sink" (read and
   *  discard until EOF, then close). js pushes identify updates when its protocols change. */
  async handle(args) {
    const behavior = args.behavior ?? "echo"
    const handler = behavior === "echo"
      ? echoHandler
      : behavior === "perf"
      ? perfHandler
      : behavior === "sink"
      ? sinkHandler
      : null
    if (!handler) throw new Error(`unknown behavior ${behavior}`)
    await node.handle(args.protocol, handler, handlerOptions)
    return {}
  },

  async unhandle(args) {
    await node.unhandle(args.protocol)
    return {}
  },

  /** identify/push to every connected peer now (needs services.identifyPush). */
  async push() {
    if (!node.services.identifyPush) throw new Error("identifyPush service disabled")
    await node.services.identifyPush.push()
    return {}
  },

  async addrs() {
    return { peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) }
  }
}

// autonat (wt-autonat): our addresses as js's AddressManager holds them, with AutoNAT's verdict
commands.autonatAddrs = async () => ({
  addrs: node.components.addressManager.getAddressesWithMetadata().map((a) => ({
    addr: a.multiaddr.toString(),
    type: a.type,
    verified: a.verified
  }))
})

// kad-dht commands (js-kad.mjs)
const kad = kadCommands({ node, encrypters, muxers })
Object.assign(commands, kad)
// ---------------------------------------------------------------- pubsub commands (wt-gossip)
const pubsubService = () => {
  if (!node.services.pubsub) throw new Error("no pubsub service (config.pubsub)")
  return node.services.pubsub
}
if (node.services.pubsub) {
  node.services.pubsub.addEventListener("message", (evt) => {
    const m = evt.detail
    emit({
      event: "pubsub:message",
      topic: m.topic,
      from: m.type === "signed" ? m.from.toString() : null,
      seqno: m.type === "signed" ? m.sequenceNumber.toString() : null,
      data: Buffer.from(m.data).toString("base64"),
      text: new TextDecoder().decode(m.data)
    })
  })
}
Object.assign(commands, {
  async pubsubSubscribe(args) {
    pubsubService().subscribe(args.topic)
    return {}
  },
  async pubsubUnsubscribe(args) {
    pubsubService().unsubscribe(args.topic)
    return {}
  },
  async pubsubPublish(args) {
    const data = typeof args.base64 === "string"
      ? new Uint8Array(Buffer.from(args.base64, "base64"))
      : new TextEncoder().encode(args.text ?? "")
    const result = await pubsubService().publish(args.topic, data)
    return { recipients: (result?.recipients ?? []).map(String) }
  },
  async pubsubPeers(args) {
    return { peers: pubsubService().getSubscribers(args.topic).map(String) }
  },
  async pubsubMesh(args) {
    const svc = pubsubService()
    return { peers: typeof svc.getMeshPeers === "function" ? svc.getMeshPeers(args.topic).map(String) : [] }
  }
})
// ---------------------------------------------------------------- end pubsub commands
// ---------------------------------------------------------------- circuit relay v2 commands (wt-relay)
Object.assign(commands, {
  async relayReservations() {
    const relay = node.services.relay
    if (relay == null) throw new Error("no relay server (config.relay.server)")
    return { reservations: [...relay.reservations.keys()].map(String) }
  }
})
// ---------------------------------------------------------------- end circuit relay v2 commands

let stopping = false
const shutdown = async (code) => {
  if (stopping) return
  stopping = true
  const timer = setTimeout(() => process.exit(code), 3000)
  try {
    await closeExtraNodes()
    await kad.kadStop()
    await node.stop()
  } catch (err) {
    log("stop:", errorText(err))
  }
  clearTimeout(timer)
}

const handleLine = async (line) => {
  if (line.trim() === "") return
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    emit({ id: null, ok: false, error: `bad JSON: ${line.slice(0, 200)}`, errorName: "BadRequest" })
    return
  }
  const { id, cmd, ...args } = msg
  if (cmd === "stop") {
    await shutdown(0)
    process.stdout.write(JSON.stringify({ id, ok: true }) + "\n", () => process.exit(0))
    return
  }
  const fn = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined
  if (!fn) {
    emit({ id, ok: false, error: `unknown command: ${cmd}`, errorName: "BadRequest" })
    return
  }
  try {
    emit({ id, ok: true, ...(await fn(args)) })
  } catch (err) {
    emit({ id, ok: false, error: errorText(err), errorName: err?.name ?? "Error" })
  }
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on("line", (line) => void handleLine(line))
rl.on("close", () => void shutdown(0).then(() => process.exit(0)))
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => void shutdown(0).then(() => process.exit(0)))

// js-libp2p withholds public listen addresses until AutoNAT verified them: then the ready line
// carries the bound listen addresses (wt-autonat)
const readyAddrs = () => {
  const addrs = node.getMultiaddrs().map(String)
  if (addrs.length > 0 || !config.autonat) return addrs
  const p2p = `/p2p/${node.peerId.toString()}`
  return node.components.transportManager.getAddrs().map((a) => `${a.toString()}${p2p}`)
}
emit({ event: "ready", peerId: node.peerId.toString(), addrs: readyAddrs(), node: process.version })
