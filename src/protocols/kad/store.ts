/**
 * Kad-DHT's records and provider records in the node's `Datastore`
 * (kad-dht spec §Value routing, §Content routing):
 *
 * - a record under `/dht/records/<hex of the key>`, its value the `Record`
 *   protobuf with `timeReceived` set (RFC 3339); older than `maxRecordAge`
 *   (36 h, go-libp2p-kad-dht's) it is gone;
 * - a provider under `/dht/providers/<hex of the key>/<provider peer id>`, its
 *   value the provider's addresses and expiry (`provideValidity`, 48 h as
 *   go-libp2p-kad-dht and the current spec say); at most `maxProvidersPerKey`
 *   per key: a new provider beyond the cap evicts the one that expires first.
 *
 * Expired entries are dropped when read and by `prune` (run hourly by `Kad.ts`).
 *
 * @internal
 */
import { Clock, Effect, Result, Stream } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"
import * as Datastore from "../../datastore/Datastore.ts"
import type { KadError } from "./errors.ts"
import { fail, StoreFailed } from "./errors.ts"
import { KadRecord } from "./messages.ts"

const storage = Protobuf.define(`
syntax = "proto3";
message Provider {
  uint64 expires = 1;
  repeated bytes addrs = 2;
}`)

interface ProviderValue {
  readonly expires: bigint
  readonly addrs: ReadonlyArray<Uint8Array>
}

const ProviderValue = storage.codec<ProviderValue>("Provider")

export interface Provider {
  readonly peerId: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

export interface StoreOptions {
  readonly maxRecordAgeMillis: number
  readonly provideValidityMillis: number
  readonly maxProvidersPerKey: number
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")

const storeError = (e: Datastore.DatastoreError): KadError => fail(new StoreFailed({ message: e.message, cause: e }))

const recordKey = (key: Uint8Array) => `/dht/records/${key.length === 0 ? "-" : hex(key)}` as Datastore.Key
const providersPrefix = (key: Uint8Array) => `/dht/providers/${key.length === 0 ? "-" : hex(key)}` as Datastore.Key
const PROVIDERS_ROOT = "/dht/providers" as Datastore.Key

export interface RecordStore {
  readonly getRecord: (key: Uint8Array) => Effect.Effect<KadRecord | undefined, KadError>
  readonly putRecord: (key: Uint8Array, value: Uint8Array) => Effect.Effect<void, KadError>
  readonly addProvider: (key: Uint8Array, provider: Provider) => Effect.Effect<void, KadError>
  readonly getProviders: (key: Uint8Array) => Effect.Effect<ReadonlyArray<Provider>, KadError>
  /** Delete expired provider records; the number deleted. */
  readonly prune: Effect.Effect<number, KadError>
}

export const make = (ds: Datastore.Datastore["Service"], options: StoreOptions): RecordStore => {
  const getRecord = (key: Uint8Array) =>
    Effect.gen(function*() {
      const k = recordKey(key)
      const bytes = yield* ds.get(k).pipe(
        Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed(undefined)),
        Effect.mapError(storeError)
      )
      if (bytes === undefined) return undefined
      const record = KadRecord.decode(bytes)
      const now = yield* Clock.currentTimeMillis
      if (
        Result.isFailure(record) ||
        !(now - Date.parse(record.success.timeReceived) <= options.maxRecordAgeMillis)
      ) {
        yield* ds.delete(k).pipe(Effect.mapError(storeError))
        return undefined
      }
      return record.success
    })

  const putRecord = (key: Uint8Array, value: Uint8Array) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const bytes = KadRecord.encode({ key, value, timeReceived: new Date(now).toISOString() })
      yield* ds.put(recordKey(key), bytes).pipe(Effect.mapError(storeError))
    })

  const entries = (prefix: Datastore.Key) => Stream.runCollect(ds.query({ prefix })).pipe(Effect.mapError(storeError))

  const decodeProvider = (entry: Datastore.Entry, now: number) => {
    const value = ProviderValue.decode(entry.value)
    const peer = PeerId.fromString(Datastore.name(entry.key))
    if (Result.isFailure(value) || Result.isFailure(peer) || Number(value.success.expires) <= now) return undefined
    const addrs: Array<Multiaddr.Multiaddr> = []
    for (const a of value.success.addrs) {
      const m = Multiaddr.fromBytes(a)
      if (Result.isSuccess(m)) addrs.push(m.success)
    }
    return { peerId: peer.success, addrs, expires: Number(value.success.expires) }
  }

  const getProviders = (key: Uint8Array) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const out: Array<Provider> = []
      const expired: Array<Datastore.BatchOp> = []
      for (const entry of yield* entries(providersPrefix(key))) {
        const p = decodeProvider(entry, now)
        if (p === undefined) expired.push(Datastore.deleteOp(entry.key))
        else out.push({ peerId: p.peerId, addrs: p.addrs })
      }
      if (expired.length > 0) yield* ds.batch(expired).pipe(Effect.mapError(storeError))
      return out
    })

  const addProvider = (key: Uint8Array, provider: Provider) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const prefix = providersPrefix(key)
      const k = `${prefix}/${provider.peerId.toString()}` as Datastore.Key
      const ops: Array<Datastore.BatchOp> = []
      if (!(yield* ds.has(k).pipe(Effect.mapError(storeError)))) {
        const held = (yield* entries(prefix)).map((e) => ({ key: e.key, p: decodeProvider(e, now) }))
        for (const h of held) if (h.p === undefined) ops.push(Datastore.deleteOp(h.key))
        const live = held.filter((h) => h.p !== undefined).sort((a, b) => a.p!.expires - b.p!.expires)
        for (let i = 0; i <= live.length - options.maxProvidersPerKey; i++) ops.push(Datastore.deleteOp(live[i]!.key))
      }
      const value = ProviderValue.encode({
        expires: BigInt(now + options.provideValidityMillis),
        addrs: provider.addrs.map(Multiaddr.toBytes)
      })
      ops.push(Datastore.putOp(k, value))
      yield* ds.batch(ops).pipe(Effect.mapError(storeError))
    })

  const prune = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const ops: Array<Datastore.BatchOp> = []
    for (const entry of yield* entries(PROVIDERS_ROOT)) {
      if (decodeProvider(entry, now) === undefined) ops.push(Datastore.deleteOp(entry.key))
    }
    if (ops.length > 0) yield* ds.batch(ops).pipe(Effect.mapError(storeError))
    return ops.length
  })

  return { getRecord, putRecord, addProvider, getProviders, prune }
}
