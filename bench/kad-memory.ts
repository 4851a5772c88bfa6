/**
 * Kad-DHT memory, in this process (part of `npm run bench -- --only=dht`; also
 * runnable alone: `npx node bench/kad-memory.ts`): heap per stored provider
 * record and per routing-table entry.
 *
 * - provider records: `records` ADD_PROVIDER results for distinct keys (CIDv1
 *   raw of random sha2-256 digests) from 100 provider peers, in an in-memory
 *   datastore. Ours: `Store.make` over `Memory` (a record keeps the provider's
 *   addresses: with none, and with two TCP addresses as ADD_PROVIDER usually
 *   carries); js-libp2p: `@libp2p/kad-dht`'s `Providers` over `datastore-core`'s
 *   MemoryDatastore (a record is the provider's id and time; js keeps the
 *   addresses in its peer store, not counted here). Its class is not exported,
 *   so it is loaded from the package's file.
 * - routing-table entries (ours only: js's table needs a whole node's
 *   components): `RoutingTable.add` of random peer ids until `peers` were
 *   offered; the heap the table keeps (ids included) ÷ the entries it holds.
 *
 * Heap is read after a full GC (`gc` exposed through `v8.setFlagsFromString`),
 * before and after, with the structure kept alive in between.
 */
import { generateKeyPair } from "@libp2p/crypto/keys"
import { defaultLogger } from "@libp2p/logger"
import { peerIdFromPrivateKey } from "@libp2p/peer-id"
import { MemoryDatastore } from "datastore-core"
import { Effect, Result } from "effect"
import { CID } from "multiformats/cid"
import * as Digest from "multiformats/hashes/digest"
import * as Crypto from "node:crypto"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import * as Keys from "../src/core/Keys.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import * as PeerId from "../src/core/PeerId.ts"
import * as MemoryDatastoreOurs from "../src/datastore/Memory.ts"
import * as RoutingTable from "../src/protocols/kad/RoutingTable.ts"
import * as Store from "../src/protocols/kad/store.ts"

V8.setFlagsFromString("--expose-gc")
const gc = Vm.runInNewContext("gc") as () => void

const heapAfterGc = (): number => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const digest = () => new Uint8Array(Crypto.randomBytes(32))
const multihash = (d: Uint8Array) => Uint8Array.of(0x12, 0x20, ...d)

export interface KadMemoryOptions {
  readonly records: number
  readonly peers: number
}

export type Report = (figure: string, who: "ours" | "js", bytes: number, note?: string) => void

const ours = async (records: number, addrsPerRecord: number): Promise<number> => {
  const providers = Array.from(
    { length: 100 },
    () => PeerId.fromPrivateKey(Result.getOrThrow(Keys.ed25519FromSeed(digest())))
  )
  const addrs = [
    Result.getOrThrow(Multiaddr.fromString("/ip4/1.2.3.4/tcp/4001")),
    Result.getOrThrow(Multiaddr.fromString("/ip6/2001:db8::1/tcp/4001"))
  ].slice(0, addrsPerRecord)
  const keys = Array.from({ length: records }, () => multihash(digest()))
  return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const ds = yield* MemoryDatastoreOurs.make
    const store = Store.make(ds, { maxRecordAgeMillis: 1e12, provideValidityMillis: 1e12, maxProvidersPerKey: 20 })
    const before = heapAfterGc()
    for (let i = 0; i < records; i++) {
      yield* store.addProvider(keys[i]!, { peerId: providers[i % providers.length]!, addrs })
    }
    const after = heapAfterGc()
    // kept alive until measured
    if ((yield* store.getProviders(keys[0]!)).length !== 1) throw new Error("kad-memory: record lost")
    return (after - before) / records
  })))
}

const js = async (records: number): Promise<number> => {
  const file = Path.join(import.meta.dirname, "..", "node_modules", "@libp2p", "kad-dht", "dist", "src", "providers.js")
  const { Providers } = await import(pathToFileURL(file).href) as {
    readonly Providers: new(components: unknown, init: unknown) => {
      addProvider(cid: CID, peer: unknown): Promise<void>
      getProviders(cid: CID): Promise<ReadonlyArray<unknown>>
    }
  }
  const providers = await Promise.all(
    Array.from({ length: 100 }, async () => peerIdFromPrivateKey(await generateKeyPair("Ed25519")))
  )
  const cids = Array.from({ length: records }, () => CID.createV1(0x55, Digest.create(0x12, digest())))
  const store = new Providers(
    { logger: defaultLogger(), datastore: new MemoryDatastore() },
    { logPrefix: "bench", datastorePrefix: "/dht" }
  )
  const before = heapAfterGc()
  for (let i = 0; i < records; i++) await store.addProvider(cids[i]!, providers[i % providers.length])
  const after = heapAfterGc()
  if ((await store.getProviders(cids[0]!)).length !== 1) throw new Error("kad-memory: js record lost")
  return (after - before) / records
}

const table = (peers: number): { readonly bytes: number; readonly entries: number } => {
  const self = PeerId.fromPrivateKey(Result.getOrThrow(Keys.ed25519FromSeed(digest())))
  const t = RoutingTable.make(self)
  const before = heapAfterGc()
  for (let i = 0; i < peers; i++) {
    const id = Result.getOrThrow(PeerId.fromBytes(multihash(digest())))
    RoutingTable.add(t, id, i)
  }
  const after = heapAfterGc()
  const entries = RoutingTable.size(t)
  return { bytes: (after - before) / entries, entries }
}

export const measure = async (options: KadMemoryOptions, report: Report): Promise<void> => {
  report("Kad provider record (no addresses): heap per record", "ours", await ours(options.records, 0))
  report("Kad provider record (no addresses): heap per record", "js", await js(options.records))
  report("Kad provider record (2 addresses): heap per record", "ours", await ours(options.records, 2))
  const t = table(options.peers)
  report("Kad routing-table entry: heap per entry", "ours", t.bytes, `${t.entries} entries held`)
}

if (import.meta.main) {
  await measure({ records: 20_000, peers: 20_000 }, (figure, who, bytes, note) => {
    process.stdout.write(`${figure}, ${who}: ${bytes.toFixed(0)} bytes${note === undefined ? "" : ` (${note})`}\n`)
  })
}
