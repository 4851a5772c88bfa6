/**
 * The rendezvous point's registrations (rendezvous spec §Registration
 * Lifetime, §Interaction): an index in memory, written through to the node's
 * `Datastore` so the registrations survive a restart.
 *
 * - Every registration gets the next number of a counter (`seq`); a refresh
 *   (a new `REGISTER` of the same peer in the same namespace) replaces the old
 *   one under a new number. Discovery walks the registrations in `seq` order
 *   after the cookie's number, so a cookie continues where the last answer
 *   stopped and nothing is returned twice (only a refresh is new again).
 * - In the datastore: `/rendezvous/registrations/<seq, 16 hex digits>` → the
 *   namespace, the signed record, the TTL and the expiry (Unix ms);
 *   `/rendezvous/seq` → the counter (so cookies stay valid across a restart
 *   even when every registration expired); `/rendezvous/secret` → 32 random
 *   bytes keying the cookies' MAC.
 * - Bounded: per peer (over all namespaces), per namespace, and in total.
 *   Expired registrations are skipped when read and deleted by `gc`.
 * - Cookies: `seq (8 bytes, big-endian) ‖ hex(HMAC-SHA256(secret, "rdv1" ‖ seq ‖ namespace)[0..16])`
 *   (40 bytes): no state per cookie, and a cookie made up by a client, or one
 *   issued for another namespace, does not verify (`E_INVALID_COOKIE`). The
 *   shape is rust-libp2p's (`Cookie::from_wire_encoding`: a u64 and a UTF-8
 *   tail of at most 255 bytes), whose client refuses an answer whose cookie
 *   does not parse so; go and nim treat cookies as opaque bytes.
 *
 * @internal
 */
import { Clock, Effect, Result, Stream } from "effect"
import * as Crypto from "node:crypto"
import type * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as PeerRecord from "../../core/PeerRecord.ts"
import * as Protobuf from "../../core/Protobuf.ts"
import * as Datastore from "../../datastore/Datastore.ts"
import { fail, type RendezvousError, StoreFailed } from "./errors.ts"
import * as Records from "./records.ts"

const storage = Protobuf.define(`
syntax = "proto3";
message Registration {
  string ns = 1;
  bytes signedPeerRecord = 2;
  uint64 ttl = 3;
  uint64 expires = 4;
}
message Counter {
  uint64 seq = 1;
}`)

interface StoredRegistration {
  readonly ns: string
  readonly signedPeerRecord: Uint8Array
  readonly ttl: bigint
  readonly expires: bigint
}
const StoredRegistration = storage.codec<StoredRegistration>("Registration")
const Counter = storage.codec<{ readonly seq: bigint }>("Counter")

export interface Registration {
  readonly seq: number
  readonly ns: string
  readonly peerId: PeerId.PeerId
  readonly signedPeerRecord: Uint8Array
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  /** Seconds, as granted. */
  readonly ttl: number
  /** Unix ms. */
  readonly expires: number
}

export interface StoreLimits {
  readonly maxPerPeer: number
  readonly maxPerNamespace: number
  readonly maxTotal: number
}

/** Why a registration was not taken. */
export type AddRefusal = "PeerLimit" | "NamespaceLimit" | "Full"

const ROOT = "/rendezvous/registrations" as Datastore.Key
const SEQ_KEY = "/rendezvous/seq" as Datastore.Key
const SECRET_KEY = "/rendezvous/secret" as Datastore.Key
const COOKIE_DOMAIN = new TextEncoder().encode("rdv1")
const MAC_HEX_LENGTH = 32
const COOKIE_LENGTH = 8 + MAC_HEX_LENGTH

const regKey = (seq: number) => `${ROOT}/${seq.toString(16).padStart(16, "0")}` as Datastore.Key

const storeError = (e: Datastore.DatastoreError): RendezvousError =>
  fail(new StoreFailed({ message: e.message, cause: e }))

export interface RegistrationStore {
  /** Take a registration (replacing this peer's in this namespace); the refusal when a limit is reached. */
  readonly add: (
    reg: Omit<Registration, "seq">
  ) => Effect.Effect<AddRefusal | undefined, RendezvousError>
  /** Drop this peer's registration in `ns` (a no-op when there is none). */
  readonly remove: (ns: string, peerId: PeerId.PeerId) => Effect.Effect<void, RendezvousError>
  /** Live registrations in `ns` (every namespace when undefined) after number `after`, at most `limit`. */
  readonly discover: (
    ns: string | undefined,
    after: number,
    limit: number,
    fits?: (reg: Registration) => boolean
  ) => Effect.Effect<ReadonlyArray<Registration>>
  /** Delete expired registrations; the number deleted. */
  readonly gc: Effect.Effect<number, RendezvousError>
  /** The highest number given so far. */
  readonly lastSeq: () => number
  readonly cookie: (ns: string | undefined, seq: number) => Uint8Array
  /** The number a cookie continues after, or `undefined` when it is not one of ours for `ns`. */
  readonly openCookie: (ns: string | undefined, cookie: Uint8Array) => number | undefined
  /** Live registrations per namespace. */
  readonly counts: () => ReadonlyMap<string, number>
  readonly size: () => number
}

/** The store over `ds`, loaded from it (expired registrations and undecodable entries are deleted). */
export const make = (
  ds: Datastore.Datastore["Service"],
  limits: StoreLimits
): Effect.Effect<RegistrationStore, RendezvousError> =>
  Effect.gen(function*() {
    const bySeq = new Map<number, Registration>() // insertion order = seq order
    const byNs = new Map<string, Map<number, Registration>>()
    const byKey = new Map<string, Registration>() // ns \0 peer
    const perPeer = new Map<string, number>()
    const keyOf = (ns: string, peer: PeerId.PeerId) => `${ns}\u0000${peer.toString()}`

    const getOr = (k: Datastore.Key) =>
      ds.get(k).pipe(
        Effect.map((b): Uint8Array | undefined => b),
        Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(undefined)),
        Effect.mapError(storeError)
      )

    let secret = yield* getOr(SECRET_KEY)
    if (secret === undefined || secret.byteLength !== 32) {
      secret = new Uint8Array(Crypto.randomBytes(32))
      yield* Effect.mapError(ds.put(SECRET_KEY, secret), storeError)
    }
    const key = secret
    const counterBytes = yield* getOr(SEQ_KEY)
    let seq = 0
    if (counterBytes !== undefined) {
      const c = Counter.decode(counterBytes)
      if (Result.isSuccess(c)) seq = Number(c.success.seq)
    }

    const index = (reg: Registration) => {
      bySeq.set(reg.seq, reg)
      let ns = byNs.get(reg.ns)
      if (ns === undefined) byNs.set(reg.ns, ns = new Map())
      ns.set(reg.seq, reg)
      byKey.set(keyOf(reg.ns, reg.peerId), reg)
      const p = reg.peerId.toString()
      perPeer.set(p, (perPeer.get(p) ?? 0) + 1)
    }
    const unindex = (reg: Registration) => {
      bySeq.delete(reg.seq)
      const ns = byNs.get(reg.ns)
      ns?.delete(reg.seq)
      if (ns !== undefined && ns.size === 0) byNs.delete(reg.ns)
      byKey.delete(keyOf(reg.ns, reg.peerId))
      const p = reg.peerId.toString()
      const n = (perPeer.get(p) ?? 1) - 1
      if (n <= 0) perPeer.delete(p)
      else perPeer.set(p, n)
    }

    // --- load
    const now0 = yield* Clock.currentTimeMillis
    const stale: Array<Datastore.Key> = []
    const loaded: Array<Registration> = []
    yield* ds.query({ prefix: ROOT }).pipe(
      Stream.runForEach((entry) =>
        Effect.sync(() => {
          const n = parseInt(Datastore.name(entry.key), 16)
          const stored = StoredRegistration.decode(entry.value)
          const record = Result.isSuccess(stored) ? Records.open(stored.success.signedPeerRecord) : undefined
          const addrs = record !== undefined && Result.isSuccess(record)
            ? PeerRecord.multiaddrs(record.success)
            : undefined
          if (
            !Number.isSafeInteger(n) || Result.isFailure(stored) || record === undefined || Result.isFailure(record) ||
            addrs === undefined || Result.isFailure(addrs) || Number(stored.success.expires) <= now0
          ) {
            stale.push(entry.key)
            return
          }
          loaded.push({
            seq: n,
            ns: stored.success.ns,
            peerId: record.success.peerId,
            signedPeerRecord: stored.success.signedPeerRecord,
            addrs: addrs.success,
            ttl: Number(stored.success.ttl),
            expires: Number(stored.success.expires)
          })
        })
      ),
      Effect.mapError(storeError)
    )
    for (const reg of loaded) {
      // a peer registered twice in one namespace (a crash between two writes): the later one wins
      const old = byKey.get(keyOf(reg.ns, reg.peerId))
      if (old !== undefined) {
        unindex(old)
        stale.push(regKey(old.seq))
      }
      index(reg)
      if (reg.seq > seq) seq = reg.seq
    }
    if (stale.length > 0) yield* Effect.mapError(ds.batch(stale.map(Datastore.deleteOp)), storeError)

    const live = (reg: Registration, now: number) => reg.expires > now

    const add: RegistrationStore["add"] = (reg) =>
      Effect.gen(function*() {
        const old = byKey.get(keyOf(reg.ns, reg.peerId))
        if (old === undefined) {
          if ((perPeer.get(reg.peerId.toString()) ?? 0) >= limits.maxPerPeer) return "PeerLimit" as const
          if ((byNs.get(reg.ns)?.size ?? 0) >= limits.maxPerNamespace) return "NamespaceLimit" as const
          if (bySeq.size >= limits.maxTotal) return "Full" as const
        }
        const next: Registration = { ...reg, seq: seq + 1 }
        const ops = [
          Datastore.putOp(
            regKey(next.seq),
            StoredRegistration.encode({
              ns: next.ns,
              signedPeerRecord: next.signedPeerRecord,
              ttl: BigInt(next.ttl),
              expires: BigInt(next.expires)
            })
          ),
          Datastore.putOp(SEQ_KEY, Counter.encode({ seq: BigInt(next.seq) })),
          ...(old !== undefined ? [Datastore.deleteOp(regKey(old.seq))] : [])
        ]
        yield* Effect.mapError(ds.batch(ops), storeError)
        seq = next.seq
        if (old !== undefined) unindex(old)
        index(next)
        return undefined
      })

    const remove: RegistrationStore["remove"] = (ns, peerId) =>
      Effect.gen(function*() {
        const old = byKey.get(keyOf(ns, peerId))
        if (old === undefined) return
        yield* Effect.mapError(ds.delete(regKey(old.seq)), storeError)
        if (byKey.get(keyOf(ns, peerId)) === old) unindex(old)
      })

    const discover: RegistrationStore["discover"] = (ns, after, limit, fits) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const source = ns === undefined ? bySeq : byNs.get(ns)
        const out: Array<Registration> = []
        if (source === undefined) return out
        for (const reg of source.values()) {
          if (out.length >= limit) break
          if (reg.seq <= after || !live(reg, now)) continue
          if (fits !== undefined && !fits(reg)) break
          out.push(reg)
        }
        return out
      })

    const gc = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const expired = [...bySeq.values()].filter((r) => !live(r, now))
      if (expired.length === 0) return 0
      yield* Effect.mapError(ds.batch(expired.map((r) => Datastore.deleteOp(regKey(r.seq)))), storeError)
      for (const r of expired) if (bySeq.get(r.seq) === r) unindex(r)
      return expired.length
    })

    /** The MAC of a cookie, as lowercase hex (ASCII bytes). */
    const mac = (ns: string | undefined, seqBytes: Uint8Array): Uint8Array =>
      new TextEncoder().encode(
        Crypto.createHmac("sha256", key).update(COOKIE_DOMAIN).update(seqBytes).update(ns ?? "").digest("hex")
          .slice(0, MAC_HEX_LENGTH)
      )

    const cookie = (ns: string | undefined, n: number) => {
      const out = new Uint8Array(COOKIE_LENGTH)
      new DataView(out.buffer).setBigUint64(0, BigInt(n))
      out.set(mac(ns, out.subarray(0, 8)), 8)
      return out
    }

    const openCookie = (ns: string | undefined, c: Uint8Array) => {
      if (c.byteLength !== COOKIE_LENGTH) return undefined
      if (!Crypto.timingSafeEqual(mac(ns, c.subarray(0, 8)), c.subarray(8))) return undefined
      const n = Number(new DataView(c.buffer, c.byteOffset, c.byteLength).getBigUint64(0))
      return n <= seq ? n : undefined
    }

    return {
      add,
      remove,
      discover,
      gc,
      lastSeq: () => seq,
      cookie,
      openCookie,
      counts: () => new Map([...byNs].map(([ns, m]) => [ns, m.size])),
      size: () => bySeq.size
    }
  })
