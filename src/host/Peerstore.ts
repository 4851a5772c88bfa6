/**
 * Peerstore: what the node knows about other peers — addresses (each with
 * where it came from and when it expires), public key, protocols, agent and
 * protocol versions, the latest signed peer record (RFC 0003), tags and
 * metadata. Two layers: `layerMemory` (forgets everything when it stops) and
 * `layerDatastore` (the same store, written through to the `Datastore` and
 * loaded from it at start).
 *
 * **Addresses and TTLs** (go-libp2p `peerstore` TTLs): an address is added
 * with a source. While the peer is connected (`connected` … `disconnected`)
 * its `connected`, `identify` and `certified` addresses do not expire; when
 * its last connection closes they expire after `recentlyConnectedTtl`
 * (default 24 h: go-libp2p's 15 min is for a node that does not restart; a
 * node that redials the peers it knew after a restart needs them longer).
 * `routing` addresses expire after `routingTtl` (1 h, go's `AddressTTL`),
 * renewed when learned again. Expired addresses are not returned and are
 * dropped at the peer's next write. Addresses from a verified signed peer
 * record replace the peer's `identify`/`certified` addresses (they are
 * certified) only when the record's `seq` is newer than the last one accepted.
 *
 * **Reads** (`get`, `all`) are synchronous, from memory. **Writes** change
 * memory at once; with `layerDatastore` the peer's key is then put on a
 * bounded queue (`maxPendingWrites`, default 1,024 distinct peers) unless it
 * is already waiting there (coalescing: a peer changed ten times before the
 * writer runs is written once, in its latest state). One writer fiber takes
 * every waiting key and writes them in one `Datastore.batch` (one
 * transaction). A write waits only when the queue is full, i.e. when the store
 * is `maxPendingWrites` peers behind. A failed batch is logged and retried
 * (exponential backoff, 100 ms … 30 s) with the keys still dirty. When the
 * scope closes the writer drains what is queued first. `flush` waits until
 * every change made before it is committed (a barrier on the same queue):
 * after a `kill -9`, every peer whose flush had returned is in the store
 * (`spec-tests/host/Peerstore.test.ts`).
 *
 * **Bounds**: at most `maxPeers` peers (default 10,000). Adding one more
 * evicts the least recently seen peer that is neither connected nor
 * protected (`protect`); when every peer is connected or protected the store
 * grows past the cap rather than forget one of them (by one peer that is
 * neither: the newest, evicted by the next newcomer). Per peer, at most
 * `maxAddrsPerPeer` addresses (default 64), kept by source: addresses of a
 * signed peer record (and `manual` ones) first, then identify's and the
 * dialed one, then routing's — a newcomer replaces the oldest address of the
 * lowest-ranked source only when it ranks no lower; at most
 * `maxProtocolsPerPeer` protocols (default 128), agent and protocol versions
 * of at most 256 characters, tags and metadata at most 64 entries each and
 * metadata at most `maxMetadataBytes` (default 64 KiB) per peer.
 *
 * **Cost**: merging `m` addresses into a peer's list costs O(cap + min(m,
 * cap)) — an update is cut to `maxAddrsPerPeer` addresses before it is
 * looked at, and known addresses are found through a map, not by comparing
 * with the whole list — so a flood of identify pushes costs the same per push
 * however many addresses it carried before (issue 23, attack 3).
 *
 * **Garbage collection**: at most every `gcInterval` (default 1 min), the
 * next write sweeps the store: expired addresses are dropped, and a peer that
 * is neither connected nor protected, has no address left and was last seen
 * more than `recentlyConnectedTtl` ago is forgotten.
 *
 * **Records** are stored at `/peers/<base58 peer id>` as JSON (`PeerRecordJson`);
 * a record that does not decode at load is skipped with a warning and left in
 * the store.
 *
 * @since 0.1.0
 */
import type { Cause, Scope } from "effect"
import { Clock, Context, Deferred, Duration, Effect, Fiber, Layer, Queue, Schedule, Schema, Stream } from "effect"
import * as Keys from "../core/Keys.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Datastore from "../datastore/Datastore.ts"

/** Where an address was learned. */
export type AddrSource = "connected" | "identify" | "certified" | "routing" | "manual"

export interface AddrEntry {
  readonly addr: Multiaddr.Multiaddr
  readonly source: AddrSource
  /** Epoch ms after which it is gone; `Infinity` while the peer is connected (or for `manual` addresses). */
  readonly expires: number
}

export interface PeerInfo {
  readonly peerId: PeerId.PeerId
  /** The addresses that have not expired. */
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  /** Every stored address with its source and expiry (expired ones included until the next write). */
  readonly addrEntries: ReadonlyArray<AddrEntry>
  readonly publicKey?: Keys.PublicKey
  readonly protocols: ReadonlyArray<string>
  readonly agentVersion?: string
  readonly protocolVersion?: string
  /** Sequence number of the last certified record accepted (records with lower seq are ignored). */
  readonly recordSeq?: bigint
  /** The signed envelope of that record, as received. */
  readonly signedRecord?: Uint8Array
  /** Connection-manager tags (name → value). */
  readonly tags: Readonly<Record<string, number>>
  readonly metadata: Readonly<Record<string, Uint8Array>>
  /** Epoch ms of the last time the peer was connected, disconnected or learned about. */
  readonly lastSeen: number
  /** The peer has an open connection. */
  readonly connected: boolean
  /** Protection tags: a protected peer is never evicted. */
  readonly protectedBy: ReadonlyArray<string>
}

export interface PeerUpdate {
  readonly addrs?: ReadonlyArray<Multiaddr.Multiaddr>
  /** Where `addrs` come from (default `identify`). */
  readonly addrSource?: AddrSource
  readonly publicKey?: Keys.PublicKey
  readonly protocols?: ReadonlyArray<string>
  readonly agentVersion?: string
  readonly protocolVersion?: string
}

export interface PeerstoreOptions {
  /** Peers kept (default 10,000); see the module doc for who is evicted. */
  readonly maxPeers?: number | undefined
  readonly maxAddrsPerPeer?: number | undefined
  /** How long a disconnected peer's addresses are kept (default 24 h). */
  readonly recentlyConnectedTtl?: Duration.Input | undefined
  /** How long a `routing` address is kept (default 1 h). */
  readonly routingTtl?: Duration.Input | undefined
  /** Distinct peers waiting for the writer before a write waits (default 1,024; `layerDatastore`). */
  readonly maxPendingWrites?: number | undefined
  /** Protocols kept per peer (default 128; the first ones of an update). */
  readonly maxProtocolsPerPeer?: number | undefined
  /** Bytes of metadata values per peer (default 64 KiB; a value beyond it is not stored). */
  readonly maxMetadataBytes?: number | undefined
  /** How often (at most) a write sweeps expired addresses and gone peers (default 1 min). */
  readonly gcInterval?: Duration.Input | undefined
}

export const defaults = {
  maxPeers: 10_000,
  maxAddrsPerPeer: 64,
  recentlyConnectedTtl: Duration.hours(24),
  routingTtl: Duration.hours(1),
  maxPendingWrites: 1024,
  maxProtocolsPerPeer: 128,
  maxMetadataBytes: 64 * 1024,
  gcInterval: Duration.minutes(1)
} as const

const MAX_ENTRIES = 64
/** Longest agent / protocol version kept. */
const MAX_VERSION_LENGTH = 256

/** Which addresses a full list keeps: lower ranks first (signed records, then identify, then others). */
const RANK: Readonly<Record<AddrSource, number>> = { manual: 0, certified: 0, identify: 1, connected: 1, routing: 2 }

/** The address a full list gives up first: the lowest-ranked, not pinned by a connection if possible, oldest. */
const worstIndex = (addrs: ReadonlyArray<AddrEntry>): number => {
  let w = -1
  for (let i = 0; i < addrs.length; i++) {
    const a = addrs[i]!
    if (w < 0) {
      w = i
      continue
    }
    const b = addrs[w]!
    const ra = RANK[a.source]
    const rb = RANK[b.source]
    if (ra > rb || (ra === rb && a.expires !== Infinity && b.expires === Infinity)) w = i
  }
  return w
}

const metadataBytes = (m: Readonly<Record<string, Uint8Array>>): number => {
  let n = 0
  for (const k in m) n += k.length + m[k]!.byteLength
  return n
}

export class Peerstore extends Context.Service<Peerstore, {
  readonly get: (peer: PeerId.PeerId) => PeerInfo | undefined
  /** Merge what is known (addresses are added, other fields replaced). */
  readonly merge: (peer: PeerId.PeerId, update: PeerUpdate) => Effect.Effect<PeerInfo>
  /**
   * Replace a peer's identify/certified addresses with those of a certified
   * record, if `seq` is newer than the last one; `envelope` is kept as the
   * peer's latest signed record.
   */
  readonly certify: (
    peer: PeerId.PeerId,
    seq: bigint,
    addrs: ReadonlyArray<Multiaddr.Multiaddr>,
    envelope?: Uint8Array
  ) => Effect.Effect<boolean>
  /** The peer's first connection opened (`addr`: the address dialed, for outbound connections). */
  readonly connected: (
    peer: PeerId.PeerId,
    info: { readonly publicKey?: Keys.PublicKey; readonly addr?: Multiaddr.Multiaddr }
  ) => Effect.Effect<void>
  /** The peer's last connection closed: its addresses start to expire. */
  readonly disconnected: (peer: PeerId.PeerId) => Effect.Effect<void>
  /** Set (a number) or remove (`undefined`) a tag. */
  readonly tag: (peer: PeerId.PeerId, name: string, value: number | undefined) => Effect.Effect<void>
  readonly setMetadata: (peer: PeerId.PeerId, key: string, value: Uint8Array | undefined) => Effect.Effect<void>
  /** Keep the peer from eviction until every protecting tag is removed. */
  readonly protect: (peer: PeerId.PeerId, tag: string) => Effect.Effect<void>
  readonly unprotect: (peer: PeerId.PeerId, tag: string) => Effect.Effect<void>
  /** Every peer, least recently seen first. */
  readonly all: () => ReadonlyArray<PeerInfo>
  readonly remove: (peer: PeerId.PeerId) => Effect.Effect<void>
  /** The number of peers held. */
  readonly size: () => number
  /**
   * Waits until every change made before it is written to the store (and
   * fails nothing: a failed write is retried by the writer). Immediate for
   * `layerMemory`. The hot path never needs it; a shutdown or a test does.
   */
  readonly flush: Effect.Effect<void>
}>()("effect-libp2p/Peerstore") {}

const NONE: ReadonlyArray<never> = Object.freeze([])
const EMPTY: Readonly<Record<string, never>> = Object.freeze({})

// --- the in-memory state ----------------------------------------------------

interface Entry {
  readonly peerId: PeerId.PeerId
  addrs: ReadonlyArray<AddrEntry>
  publicKey?: Keys.PublicKey
  protocols: ReadonlyArray<string>
  agentVersion?: string
  protocolVersion?: string
  recordSeq?: bigint
  signedRecord?: Uint8Array
  tags: Readonly<Record<string, number>>
  metadata: Readonly<Record<string, Uint8Array>>
  lastSeen: number
  connected: boolean
  protectedBy: ReadonlyArray<string>
}

const liveAddrs = (e: Entry, now: number): ReadonlyArray<Multiaddr.Multiaddr> => {
  let out: Array<Multiaddr.Multiaddr> | undefined
  for (let i = 0; i < e.addrs.length; i++) {
    const a = e.addrs[i]!
    if (a.expires > now) {
      if (out !== undefined) out.push(a.addr)
    } else if (out === undefined) out = e.addrs.slice(0, i).map((x) => x.addr)
  }
  return out ?? e.addrs.map((x) => x.addr)
}

const snapshot = (e: Entry, now: number): PeerInfo => ({
  peerId: e.peerId,
  addrs: liveAddrs(e, now),
  addrEntries: e.addrs,
  protocols: e.protocols,
  tags: e.tags,
  metadata: e.metadata,
  lastSeen: e.lastSeen,
  connected: e.connected,
  protectedBy: e.protectedBy,
  ...(e.publicKey !== undefined ? { publicKey: e.publicKey } : {}),
  ...(e.agentVersion !== undefined ? { agentVersion: e.agentVersion } : {}),
  ...(e.protocolVersion !== undefined ? { protocolVersion: e.protocolVersion } : {}),
  ...(e.recordSeq !== undefined ? { recordSeq: e.recordSeq } : {}),
  ...(e.signedRecord !== undefined ? { signedRecord: e.signedRecord } : {})
})

/** Put `key = value` into a record of at most MAX_ENTRIES keys (`undefined` removes it). */
const setEntry = <V>(
  record: Readonly<Record<string, V>>,
  key: string,
  value: V | undefined
): Readonly<Record<string, V>> => {
  if (value === undefined) {
    if (!(key in record)) return record
    const { [key]: _, ...rest } = record
    return rest
  }
  if (!(key in record) && Object.keys(record).length >= MAX_ENTRIES) return record
  return { ...record, [key]: value }
}

/**
 * The core shared by both layers: a `Map` in least-recently-seen order
 * (a touched peer is moved to the end), and `changed(key)` called after every
 * change of a peer (including its removal).
 */
const makeStore = (
  options: PeerstoreOptions,
  now: () => number,
  changed: (key: string) => Effect.Effect<void>
) => {
  const maxPeers = Math.max(1, options.maxPeers ?? defaults.maxPeers)
  const maxAddrs = Math.max(1, options.maxAddrsPerPeer ?? defaults.maxAddrsPerPeer)
  const recentTtl = Duration.toMillis(
    Duration.fromInputUnsafe(options.recentlyConnectedTtl ?? defaults.recentlyConnectedTtl)
  )
  const routingTtl = Duration.toMillis(Duration.fromInputUnsafe(options.routingTtl ?? defaults.routingTtl))
  const maxProtocols = Math.max(0, options.maxProtocolsPerPeer ?? defaults.maxProtocolsPerPeer)
  const maxMetadata = Math.max(0, options.maxMetadataBytes ?? defaults.maxMetadataBytes)
  const gcInterval = Duration.toMillis(Duration.fromInputUnsafe(options.gcInterval ?? defaults.gcInterval))
  const peers = new Map<string, Entry>()
  const key = (p: PeerId.PeerId) => PeerId.toString(p)

  const ttlOf = (source: AddrSource, connected: boolean, t: number): number =>
    source === "manual"
      ? Infinity
      : source === "routing"
      ? t + routingTtl
      : connected
      ? Infinity
      : t + recentTtl

  /**
   * Add `addrs` (of `source`) to `e`'s, renewing the expiry of those already
   * there; drop expired ones; keep at most `maxAddrs` by rank (module doc).
   * O(cap + min(|addrs|, cap)): only the first `maxAddrs` of `addrs` can be
   * kept, so only those are looked at; known ones are found by their string.
   */
  const addAddrs = (e: Entry, addrs: ReadonlyArray<Multiaddr.Multiaddr>, source: AddrSource, t: number) => {
    const expires = ttlOf(source, e.connected, t)
    const rank = RANK[source]
    const out: Array<AddrEntry> = e.addrs.filter((a) => a.expires > t)
    const index = new Map<string, number>()
    for (let i = 0; i < out.length; i++) index.set(Multiaddr.key(out[i]!.addr), i)
    const n = Math.min(addrs.length, maxAddrs)
    for (let j = 0; j < n; j++) {
      const addr = addrs[j]!
      const k = Multiaddr.key(addr)
      const i = index.get(k)
      if (i !== undefined) {
        const old = out[i]!
        if (old.expires < expires) out[i] = { addr, source: RANK[old.source] <= rank ? old.source : source, expires }
        continue
      }
      if (out.length < maxAddrs) {
        index.set(k, out.length)
        out.push({ addr, source, expires })
        continue
      }
      const w = worstIndex(out)
      if (RANK[out[w]!.source] < rank) continue
      index.delete(Multiaddr.key(out[w]!.addr))
      // the newcomer goes to the end (the newest), the others keep their order
      out.splice(w, 1)
      for (let x = w; x < out.length; x++) index.set(Multiaddr.key(out[x]!.addr), x)
      index.set(k, out.length)
      out.push({ addr, source, expires })
    }
    e.addrs = out
  }

  /** When the store was last swept (see `sweep`). */
  let lastSweep = now()
  /**
   * Drop expired addresses and forget gone peers (module doc); the keys
   * changed. Runs from a write at most every `gcInterval`: O(peers) then.
   */
  const sweep = (t: number): ReadonlyArray<string> => {
    if (t - lastSweep < gcInterval) return NONE
    lastSweep = t
    const out: Array<string> = []
    for (const [k, e] of peers) {
      const live = e.addrs.filter((a) => a.expires > t)
      if (!e.connected && e.protectedBy.length === 0 && live.length === 0 && t - e.lastSeen > recentTtl) {
        peers.delete(k)
        out.push(k)
      } else if (live.length !== e.addrs.length) {
        e.addrs = live
        out.push(k)
      }
    }
    return out
  }

  /** The peer's entry, created (and the cap enforced) if missing, moved to the most recent end. */
  const touch = (
    peer: PeerId.PeerId,
    t: number
  ): { readonly entry: Entry; readonly evicted: ReadonlyArray<string> } => {
    const k = key(peer)
    let e = peers.get(k)
    const evicted: Array<string> = []
    if (e === undefined) {
      e = {
        peerId: peer,
        addrs: NONE,
        protocols: NONE,
        tags: EMPTY,
        metadata: EMPTY,
        lastSeen: t,
        connected: false,
        protectedBy: NONE
      }
      if (peers.size >= maxPeers) {
        for (const [other, o] of peers) {
          if (peers.size < maxPeers) break
          if (o.connected || o.protectedBy.length > 0) continue
          peers.delete(other)
          evicted.push(other)
        }
      }
    } else {
      peers.delete(k)
    }
    e.lastSeen = Math.max(e.lastSeen, t)
    peers.set(k, e)
    return { entry: e, evicted }
  }

  const update = <A>(peer: PeerId.PeerId, f: (e: Entry, t: number) => A): Effect.Effect<A> =>
    Effect.suspend(() => {
      const t = now()
      const swept = sweep(t)
      const { entry, evicted } = touch(peer, t)
      const out = f(entry, t)
      return Effect.as(
        Effect.forEach([...swept, ...evicted, key(peer)], changed, { discard: true }),
        out
      )
    })

  /** Change an existing peer without touching its recency; nothing for an unknown one. */
  const modify = (peer: PeerId.PeerId, f: (e: Entry, t: number) => void): Effect.Effect<void> =>
    Effect.suspend(() => {
      const k = key(peer)
      const e = peers.get(k)
      if (e === undefined) return Effect.void
      f(e, now())
      return changed(k)
    })

  const service: Peerstore["Service"] = {
    get: (peer) => {
      const e = peers.get(key(peer))
      return e === undefined ? undefined : snapshot(e, now())
    },
    merge: (peer, u) =>
      update(peer, (e, t) => {
        if (u.publicKey !== undefined) e.publicKey = u.publicKey
        if (u.protocols !== undefined) {
          e.protocols = u.protocols.length > maxProtocols ? u.protocols.slice(0, maxProtocols) : u.protocols
        }
        if (u.agentVersion !== undefined) e.agentVersion = u.agentVersion.slice(0, MAX_VERSION_LENGTH)
        if (u.protocolVersion !== undefined) e.protocolVersion = u.protocolVersion.slice(0, MAX_VERSION_LENGTH)
        if (u.addrs !== undefined && u.addrs.length > 0) addAddrs(e, u.addrs, u.addrSource ?? "identify", t)
        return snapshot(e, t)
      }),
    certify: (peer, seq, addrs, envelope) =>
      update(peer, (e, t) => {
        if (e.recordSeq !== undefined && seq <= e.recordSeq) return false
        e.recordSeq = seq
        if (envelope !== undefined) e.signedRecord = envelope
        e.addrs = e.addrs.filter((a) => a.source !== "identify" && a.source !== "certified")
        addAddrs(e, addrs, "certified", t)
        return true
      }),
    connected: (peer, info) =>
      update(peer, (e, t) => {
        e.connected = true
        if (info.publicKey !== undefined) e.publicKey = info.publicKey
        e.addrs = e.addrs.map((a) => a.source === "routing" || a.expires === Infinity ? a : { ...a, expires: Infinity })
        if (info.addr !== undefined) addAddrs(e, [info.addr], "connected", t)
      }),
    disconnected: (peer) =>
      update(peer, (e, t) => {
        e.connected = false
        e.addrs = e.addrs.map((a) =>
          a.expires === Infinity && a.source !== "manual" && a.source !== "routing"
            ? { ...a, expires: t + recentTtl }
            : a
        )
      }),
    tag: (peer, name, value) => modify(peer, (e) => void (e.tags = setEntry(e.tags, name, value))),
    setMetadata: (peer, k, value) =>
      update(peer, (e) => {
        if (value !== undefined) {
          const others = metadataBytes(e.metadata) - (k in e.metadata ? k.length + e.metadata[k]!.byteLength : 0)
          if (others + k.length + value.byteLength > maxMetadata) return
        }
        e.metadata = setEntry(e.metadata, k, value === undefined ? undefined : value.slice())
      }),
    protect: (peer, tag) =>
      update(peer, (e) => {
        if (!e.protectedBy.includes(tag) && e.protectedBy.length < MAX_ENTRIES) e.protectedBy = [...e.protectedBy, tag]
      }),
    unprotect: (peer, tag) => modify(peer, (e) => void (e.protectedBy = e.protectedBy.filter((x) => x !== tag))),
    all: () => {
      const t = now()
      return Array.from(peers.values(), (e) => snapshot(e, t))
    },
    remove: (peer) =>
      Effect.suspend(() => {
        const k = key(peer)
        return peers.delete(k) ? changed(k) : Effect.void
      }),
    size: () => peers.size,
    flush: Effect.void
  }

  /** Put a loaded peer in (oldest first, so the map keeps recency order); no `changed`. */
  const load = (e: Entry) => {
    const k = key(e.peerId)
    peers.delete(k)
    peers.set(k, e)
    while (peers.size > maxPeers) {
      const oldest = peers.keys().next()
      if (oldest.done === true) break
      peers.delete(oldest.value)
    }
  }

  return { service, peers, load, recentTtl }
}

/** A peer store held in memory. */
export const makeMemory = (options: PeerstoreOptions = {}): Effect.Effect<Peerstore["Service"]> =>
  Effect.map(
    Effect.service(Clock.Clock),
    (clock) => makeStore(options, () => clock.currentTimeMillisUnsafe(), () => Effect.void).service
  )

/** A peer store held in memory. */
export const layerMemory: Layer.Layer<Peerstore> = Layer.effect(Peerstore, makeMemory())

/** A peer store held in memory, with options. */
export const layerMemoryWith = (options: PeerstoreOptions): Layer.Layer<Peerstore> =>
  Layer.effect(Peerstore, makeMemory(options))

// --- the stored form -----------------------------------------------------------

/** The prefix of the peer records in the datastore. */
export const PREFIX = "/peers" as Datastore.Key

const Base64 = Schema.String

/** A peer's record as stored (JSON, UTF-8). Bytes are base64; `expires` null is `Infinity`. */
export const PeerRecordJson = Schema.Struct({
  v: Schema.Literal(1),
  addrs: Schema.Array(Schema.Struct({
    a: Schema.String,
    s: Schema.Literals(["connected", "identify", "certified", "routing", "manual"]),
    e: Schema.NullOr(Schema.Number)
  })),
  publicKey: Schema.optional(Base64),
  protocols: Schema.Array(Schema.String),
  agentVersion: Schema.optional(Schema.String),
  protocolVersion: Schema.optional(Schema.String),
  recordSeq: Schema.optional(Schema.String),
  signedRecord: Schema.optional(Base64),
  tags: Schema.Record(Schema.String, Schema.Number),
  metadata: Schema.Record(Schema.String, Base64),
  lastSeen: Schema.Number,
  protectedBy: Schema.Array(Schema.String)
})
export type PeerRecordJson = typeof PeerRecordJson.Type

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64")
const unb64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"))

const encodeEntry = (e: Entry): Uint8Array => {
  const json: PeerRecordJson = {
    v: 1,
    addrs: e.addrs.map((a) => ({
      a: Multiaddr.toString(a.addr),
      s: a.source,
      e: a.expires === Infinity ? null : a.expires
    })),
    ...(e.publicKey !== undefined ? { publicKey: b64(Keys.publicKeyToProtobuf(e.publicKey)) } : {}),
    protocols: e.protocols,
    ...(e.agentVersion !== undefined ? { agentVersion: e.agentVersion } : {}),
    ...(e.protocolVersion !== undefined ? { protocolVersion: e.protocolVersion } : {}),
    ...(e.recordSeq !== undefined ? { recordSeq: e.recordSeq.toString() } : {}),
    ...(e.signedRecord !== undefined ? { signedRecord: b64(e.signedRecord) } : {}),
    tags: e.tags,
    metadata: Object.fromEntries(Object.entries(e.metadata).map(([k, v]) => [k, b64(v)])),
    lastSeen: e.lastSeen,
    protectedBy: e.protectedBy
  }
  return new TextEncoder().encode(JSON.stringify(json))
}

const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(PeerRecordJson))

/**
 * A stored record back as an entry, the peer not connected: addresses that
 * did not expire while it was connected expire `recentTtl` from `now`.
 */
const decodeEntry = (
  peerText: string,
  bytes: Uint8Array,
  now: number,
  recentTtl: number
): Entry | string => {
  const peer = PeerId.fromString(peerText)
  if (peer._tag === "Failure") return `bad peer id: ${peer.failure.message}`
  const decoded = decodeJson(new TextDecoder().decode(bytes))
  if (decoded._tag === "Failure") return decoded.failure.message
  const j = decoded.success
  const addrs: Array<AddrEntry> = []
  for (const a of j.addrs) {
    const addr = Multiaddr.fromString(a.a)
    if (addr._tag === "Failure") return `bad address ${a.a}: ${addr.failure.message}`
    const expires = a.e === null ? (a.s === "manual" ? Infinity : now + recentTtl) : a.e
    if (expires > now) addrs.push({ addr: addr.success, source: a.s, expires })
  }
  let publicKey: Keys.PublicKey | undefined
  if (j.publicKey !== undefined) {
    const k = Keys.publicKeyFromProtobuf(unb64(j.publicKey))
    if (k._tag === "Failure") return `bad public key: ${k.failure.message}`
    publicKey = k.success
  }
  let recordSeq: bigint | undefined
  if (j.recordSeq !== undefined) {
    if (!/^\d+$/.test(j.recordSeq)) return `bad record seq ${j.recordSeq}`
    recordSeq = BigInt(j.recordSeq)
  }
  return {
    peerId: peer.success,
    addrs,
    protocols: j.protocols,
    tags: j.tags,
    metadata: Object.fromEntries(Object.entries(j.metadata).map(([k, v]) => [k, unb64(v)])),
    lastSeen: j.lastSeen,
    connected: false,
    protectedBy: j.protectedBy,
    ...(publicKey !== undefined ? { publicKey } : {}),
    ...(j.agentVersion !== undefined ? { agentVersion: j.agentVersion } : {}),
    ...(j.protocolVersion !== undefined ? { protocolVersion: j.protocolVersion } : {}),
    ...(recordSeq !== undefined ? { recordSeq } : {}),
    ...(j.signedRecord !== undefined ? { signedRecord: unb64(j.signedRecord) } : {})
  }
}

/**
 * A peer store on the `Datastore`: loads `/peers/…` at start (the most
 * recently seen `maxPeers`), then writes every change through, off the hot
 * path (module doc). Fails only if the first read of the store fails.
 */
export const makeDatastore = (
  options: PeerstoreOptions = {}
): Effect.Effect<Peerstore["Service"], Datastore.DatastoreError, Datastore.Datastore | Scope.Scope> =>
  Effect.gen(function*() {
    const ds = yield* Datastore.Datastore
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    // a peer's key, or a barrier (`flush`) completed once everything queued before it is written
    const queue = yield* Queue.bounded<string | Deferred.Deferred<void>, Cause.Done>(
      Math.max(1, options.maxPendingWrites ?? defaults.maxPendingWrites)
    )
    const pending = new Set<string>()
    const changed = (k: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (pending.has(k)) return Effect.void
        pending.add(k)
        return Effect.asVoid(Queue.offer(queue, k))
      })
    const store = makeStore(options, now, changed)

    // load, oldest first so the map ends in recency order
    const t0 = now()
    const loaded: Array<Entry> = []
    yield* ds.query({ prefix: PREFIX }).pipe(
      Stream.runForEach((entry) =>
        Effect.suspend(() => {
          const e = decodeEntry(Datastore.name(entry.key), entry.value, t0, store.recentTtl)
          if (typeof e === "string") return Effect.logWarning(`peerstore: skipping the record at ${entry.key}: ${e}`)
          loaded.push(e)
          return Effect.void
        })
      )
    )
    loaded.sort((a, b) => a.lastSeen - b.lastSeen)
    for (const e of loaded) store.load(e)

    const keyOf = (k: string) => Datastore.child(PREFIX, k)
    const flush = (keys: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        if (keys.length === 0) return
        const ops: Array<Datastore.BatchOp> = []
        for (const k of keys) {
          pending.delete(k)
          const e = store.peers.get(k)
          const dk = yield* keyOf(k)
          ops.push(e === undefined ? Datastore.deleteOp(dk) : Datastore.putOp(dk, encodeEntry(e)))
        }
        yield* ds.batch(ops)
      }).pipe(
        Effect.tapError((e) =>
          Effect.logWarning(`peerstore: writing ${keys.length} peers failed, retrying: ${e.message}`)
        ),
        Effect.retry({
          schedule: Schedule.min([Schedule.exponential("100 millis"), Schedule.spaced("30 seconds")]),
          while: (e) => e.reason !== "Closed" && e.reason !== "InvalidKey"
        }),
        // the store is closed (or the key invalid): nothing more can be written
        Effect.catch((e) => Effect.logError(`peerstore: ${keys.length} peers not written: ${e.message}`))
      )
    const round = (items: ReadonlyArray<string | Deferred.Deferred<void>>) =>
      Effect.andThen(
        flush(items.filter((x): x is string => typeof x === "string")),
        Effect.forEach(items, (x) => typeof x === "string" ? Effect.void : Deferred.succeed(x, undefined), {
          discard: true
        })
      )
    const writer = yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.takeAll(queue), round)).pipe(
        Effect.catchTag("Done", () => Effect.void)
      )
    )
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(queue), Fiber.await(writer)))
    const barrier = Effect.flatMap(
      Deferred.make<void>(),
      (done) => Effect.flatMap(Queue.offer(queue, done), (accepted) => accepted ? Deferred.await(done) : Effect.void)
    )
    return { ...store.service, flush: barrier }
  })

/** A peer store on the `Datastore` in context (module doc). */
export const layerDatastore = (
  options: PeerstoreOptions = {}
): Layer.Layer<Peerstore, Datastore.DatastoreError, Datastore.Datastore> =>
  Layer.effect(Peerstore, makeDatastore(options))
