/**
 * Kad-DHT's routing table (kad-dht spec §Kademlia routing table, §Distance):
 * k-buckets of peers keyed by SHA-256 of the peer id's bytes, XOR distance.
 * Pure data, no I/O: the service (`Kad.ts`) decides who enters (server-mode
 * peers that speak the protocol) and what to do with a full bucket (ask the
 * least recently seen peer, replace it if it does not answer).
 *
 * Buckets are indexed by the common prefix length (CPL) of a peer's key with
 * ours: bucket `i` holds peers whose key shares exactly `i` leading bits with
 * ours. This is the spec's lazily unfolded table with all 256 buckets unfolded
 * at once (a bucket that is empty costs nothing): the peers a bucket can hold
 * are the same, and so is `closest`. At most `k` per bucket, so at most 256·k
 * peers in all.
 *
 * Anchors: rust protocols/kad/src/kbucket/, go-libp2p-kbucket table.go.
 *
 * @since 0.2.0
 */
import * as crypto from "node:crypto"
import * as PeerId from "../../core/PeerId.ts"

/** The spec's replication parameter and bucket size. */
export const K = 20
/** Bits of a key (SHA-256). */
export const KEY_BITS = 256

/** A 32-byte point in the keyspace. */
export type KadKey = Uint8Array

/** The keyspace point of any key bytes (spec §Distance: `sha256(key)`). */
export const keyOf = (bytes: Uint8Array): KadKey => new Uint8Array(crypto.createHash("sha256").update(bytes).digest())

/** The keyspace point of a peer: SHA-256 of its id's bytes. */
export const peerKey = (peer: PeerId.PeerId): KadKey => keyOf(PeerId.toBytes(peer))

/** XOR of two keys, the distance (as a 32-byte big-endian number). */
export const distance = (a: KadKey, b: KadKey): Uint8Array => {
  const out = new Uint8Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!
  return out
}

/** Byte-wise comparison of two distances (or keys): negative when `a` < `b`. */
export const compare = (a: Uint8Array, b: Uint8Array): number => {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!
    if (d !== 0) return d
  }
  return 0
}

/** Whether `a` is closer to `target` than `b` is: negative when it is. */
export const compareDistance = (target: KadKey, a: KadKey, b: KadKey): number => {
  for (let i = 0; i < target.length; i++) {
    const d = (a[i]! ^ target[i]!) - (b[i]! ^ target[i]!)
    if (d !== 0) return d
  }
  return 0
}

/** Leading bits `a` and `b` share (256 when equal). */
export const commonPrefixLength = (a: KadKey, b: KadKey): number => {
  for (let i = 0; i < a.length; i++) {
    const x = a[i]! ^ b[i]!
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return a.length * 8
}

export interface Entry {
  readonly peerId: PeerId.PeerId
  readonly key: KadKey
  /** Clock time (ms) the peer entered the table. */
  readonly addedAt: number
  /** Clock time (ms) the peer last answered or was seen useful. */
  lastSeen: number
}

export interface RoutingTable {
  readonly self: KadKey
  readonly k: number
  /** `buckets[cpl]`: least recently seen first. */
  readonly buckets: ReadonlyArray<Array<Entry>>
  /** Peer id string → entry. */
  readonly index: Map<string, Entry>
}

export const make = (self: PeerId.PeerId, k: number = K): RoutingTable => ({
  self: peerKey(self),
  k,
  buckets: Array.from({ length: KEY_BITS }, () => []),
  index: new Map()
})

/** What `add` did. */
export type AddResult =
  | { readonly _tag: "Added"; readonly entry: Entry }
  | { readonly _tag: "Updated"; readonly entry: Entry }
  /** The bucket is full; `oldest` is its least recently seen peer (the candidate for replacement). */
  | { readonly _tag: "Full"; readonly oldest: Entry }
  | { readonly _tag: "Self" }

const bucketOf = (table: RoutingTable, key: KadKey): Array<Entry> =>
  table.buckets[Math.min(commonPrefixLength(table.self, key), KEY_BITS - 1)]!

/** Add or refresh a peer; a full bucket is left unchanged (see {@link AddResult}). */
export const add = (table: RoutingTable, peer: PeerId.PeerId, now: number): AddResult => {
  const id = peer.toString()
  const known = table.index.get(id)
  if (known !== undefined) {
    known.lastSeen = now
    const bucket = bucketOf(table, known.key)
    bucket.splice(bucket.indexOf(known), 1)
    bucket.push(known)
    return { _tag: "Updated", entry: known }
  }
  const key = peerKey(peer)
  if (commonPrefixLength(table.self, key) === KEY_BITS) return { _tag: "Self" }
  const bucket = bucketOf(table, key)
  if (bucket.length >= table.k) return { _tag: "Full", oldest: bucket[0]! }
  const entry: Entry = { peerId: peer, key, addedAt: now, lastSeen: now }
  bucket.push(entry)
  table.index.set(id, entry)
  return { _tag: "Added", entry }
}

/** Remove a peer; true when it was there. */
export const remove = (table: RoutingTable, peer: PeerId.PeerId): boolean => {
  const entry = table.index.get(peer.toString())
  if (entry === undefined) return false
  const bucket = bucketOf(table, entry.key)
  bucket.splice(bucket.indexOf(entry), 1)
  table.index.delete(peer.toString())
  return true
}

/** Replace `oldest` (which did not answer) with `peer`. */
export const replace = (table: RoutingTable, oldest: PeerId.PeerId, peer: PeerId.PeerId, now: number): AddResult => {
  remove(table, oldest)
  return add(table, peer, now)
}

export const has = (table: RoutingTable, peer: PeerId.PeerId): boolean => table.index.has(peer.toString())

export const size = (table: RoutingTable): number => table.index.size

export const peers = (table: RoutingTable): ReadonlyArray<Entry> => Array.from(table.index.values())

/**
 * The `count` peers closest to `target` (a keyspace point), closest first.
 * Walks the buckets outward from the target's own bucket: every peer of bucket
 * `cpl(self, target)` and of deeper buckets is closer than any of a shallower
 * one, and shallower buckets are ordered closest-first by decreasing cpl.
 */
export const closest = (table: RoutingTable, target: KadKey, count: number = table.k): ReadonlyArray<Entry> => {
  const cpl = Math.min(commonPrefixLength(table.self, target), KEY_BITS - 1)
  const out: Array<Entry> = []
  // the target's bucket and every deeper one (they all share cpl bits with the target)
  for (let i = cpl; i < KEY_BITS; i++) out.push(...table.buckets[i]!)
  for (let i = cpl - 1; i >= 0 && out.length < count; i--) out.push(...table.buckets[i]!)
  out.sort((a, b) => compareDistance(target, a.key, b.key))
  return out.slice(0, count)
}

/** Bucket indexes holding at least one peer, for refresh. */
export const usedBuckets = (table: RoutingTable): ReadonlyArray<number> =>
  table.buckets.flatMap((b, i) => (b.length > 0 ? [i] : []))

/**
 * Key bytes (a sha2-256 multihash, shaped like a peer id) whose keyspace point
 * falls in bucket `cpl`: what a bucket refresh looks up (FIND_NODE keys are
 * hashed by the receiver, so the bytes are searched for, as go-libp2p-kbucket
 * does). `seed` drives a small PRNG; undefined when `maxTries` did not suffice
 * (a bucket `cpl` takes about 2^(cpl+1) tries).
 */
export const randomKeyInBucket = (
  table: RoutingTable,
  cpl: number,
  seed: number,
  maxTries: number = 1 << 16
): Uint8Array | undefined => {
  let x = (seed | 0) || 1
  const bytes = new Uint8Array(34)
  bytes[0] = 0x12
  bytes[1] = 0x20
  for (let t = 0; t < maxTries; t++) {
    for (let i = 2; i < 34; i++) {
      // xorshift32
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      bytes[i] = x & 0xff
    }
    if (commonPrefixLength(table.self, keyOf(bytes)) === cpl) return bytes.slice()
  }
  return undefined
}
