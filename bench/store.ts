/**
 * The `store` scenario of bench/main.ts (also runnable alone: `npx node bench/store.ts`):
 * the peer store and the datastore under it, ours beside js-libp2p's, in this process.
 *
 * - peer store updates/s: each update merges one address and the protocol list
 *   of a peer among `peers`, `rounds` times over. Ours in memory and on SQLite
 *   (write-through; the final `flush` is counted); js-libp2p's
 *   `@libp2p/peer-store` (`persistentPeerStore`, which awaits its datastore on
 *   every update) on `datastore-core`'s MemoryDatastore and on
 *   `datastore-level` (LevelDB on disk).
 * - datastore ops/s: puts one at a time (each awaited) of new keys, puts in
 *   batches of 256 overwriting those keys with another value, gets one at a
 *   time, of `keys` keys shaped like the peer store's (`/peers/<43 chars>/addrs`)
 *   with 256-byte values. Ours: Memory and SQLite; js: MemoryDatastore and
 *   LevelDatastore. (The batches write a value different from the first puts':
 *   SQLite skips the page write of an update that changes nothing, so
 *   rewriting the same bytes would measure no I/O at all.)
 *
 * The memory rows are a few milliseconds each (5,000 ops), so each side first
 * runs the same sequence once, untimed, on a throwaway store: otherwise the
 * figure is mostly whether the JIT had warmed up yet.
 *
 * Memory is compared with memory, disk with disk (SQLite with LevelDB). On disk
 * the rows say what each side promises. LevelDB writes without fsync by
 * default (`sync: false`): an acknowledged write survives `kill -9` of the
 * process but not an OS crash or power loss. The "disk" rows run our SQLite
 * store with its default, synchronous=FULL, which fsyncs every transaction and
 * so survives power loss too: not like for like, LevelDB in the js column
 * promises less. The "disk (no fsync)" rows run our store with
 * synchronous=NORMAL, which promises what LevelDB does (WAL written before the
 * acknowledgement, fsynced only at checkpoints): those are like for like. In
 * bench/main.ts's table ours is in the ours↔ours column and js-libp2p in the
 * js↔js one (LevelDB in both disk row groups).
 */
import { generateKeyPair } from "@libp2p/crypto/keys"
import { defaultLogger } from "@libp2p/logger"
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id"
import { persistentPeerStore } from "@libp2p/peer-store"
import { multiaddr } from "@multiformats/multiaddr"
import { MemoryDatastore } from "datastore-core"
import { LevelDatastore } from "datastore-level"
import type { Scope } from "effect"
import { Effect } from "effect"
import type { Datastore as JsDatastore } from "interface-datastore"
import { Key } from "interface-datastore"
import { TypedEventEmitter } from "main-event"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Keys from "../src/core/Keys.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import * as PeerId from "../src/core/PeerId.ts"
import * as Datastore from "../src/datastore/Datastore.ts"
import * as Memory from "../src/datastore/Memory.ts"
import * as Sqlite from "../src/datastore/Sqlite.ts"
import * as Peerstore from "../src/host/Peerstore.ts"

export interface StoreConfig {
  readonly peers: number
  readonly rounds: number
  readonly keys: number
}

/** One measurement: `figure` (e.g. "peerstore updates, disk"), who, ops per second. */
export type Report = (figure: string, who: "ours" | "js", opsPerSecond: number) => void

const PROTOCOLS = ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/ipfs/kad/1.0.0"]
const ADDRS = ["/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.3/tcp/4001"]
const BATCH = 256

const perSecond = (ops: number, start: number) => ops / ((performance.now() - start) / 1000)

const oursPeerstore = (cfg: StoreConfig, dir: string, report: Report) =>
  Effect.gen(function*() {
    const peers = yield* Effect.forEach(
      Array.from({ length: cfg.peers }),
      () => Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey)
    )
    const addrs = yield* Effect.forEach(ADDRS, (a) => Effect.fromResult(Multiaddr.fromString(a)))
    const measure = (figure: string, ps: Peerstore.Peerstore["Service"]) =>
      Effect.gen(function*() {
        const start = performance.now()
        for (let r = 0; r < cfg.rounds; r++) {
          for (const p of peers) yield* ps.merge(p, { addrs: [addrs[r % addrs.length]!], protocols: PROTOCOLS })
        }
        yield* ps.flush
        report(figure, "ours", perSecond(cfg.peers * cfg.rounds, start))
      })
    yield* measure("peerstore updates, memory", yield* Peerstore.makeMemory())
    yield* Effect.scoped(Effect.gen(function*() {
      const ds = yield* Sqlite.make({ filename: Path.join(dir, "peerstore.sqlite") })
      const ps = yield* Peerstore.makeDatastore({ maxPeers: cfg.peers }).pipe(
        Effect.provideService(Datastore.Datastore, ds)
      )
      yield* measure("peerstore updates, disk", ps)
    }))
  })

const jsPeerstore = async (cfg: StoreConfig, dir: string, report: Report) => {
  const self = peerIdFromPrivateKey(await generateKeyPair("Ed25519"))
  const peers = await Promise.all(
    Array.from(
      { length: cfg.peers },
      async () => peerIdFromString(peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString())
    )
  )
  const addrs = ADDRS.map((a) => multiaddr(a))
  const measure = async (figure: string, datastore: JsDatastore) => {
    const store = persistentPeerStore({
      peerId: self,
      datastore,
      events: new TypedEventEmitter(),
      logger: defaultLogger()
    })
    const start = performance.now()
    for (let r = 0; r < cfg.rounds; r++) {
      for (const p of peers) {
        await store.merge(p, { multiaddrs: [addrs[r % addrs.length]!], protocols: PROTOCOLS })
      }
    }
    report(figure, "js", perSecond(cfg.peers * cfg.rounds, start))
  }
  await measure("peerstore updates, memory", new MemoryDatastore())
  const level = new LevelDatastore(Path.join(dir, "peerstore-level"))
  await level.open()
  try {
    await measure("peerstore updates, disk", level)
  } finally {
    await level.close()
  }
}

const keyNames = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => `/peers/${Crypto.createHash("sha256").update(String(i)).digest("base64url").slice(0, 43)}/addrs`
  )

type Where = "memory" | "disk" | "disk (no fsync)"

const oursDatastore = (
  where: Where,
  store: Effect.Effect<Datastore.Datastore["Service"], Datastore.DatastoreError, Scope.Scope>,
  names: ReadonlyArray<string>,
  value: Uint8Array,
  value2: Uint8Array,
  report: Report
) =>
  Effect.scoped(Effect.gen(function*() {
    const ds = yield* store
    const keys = names as ReadonlyArray<Datastore.Key>
    let start = performance.now()
    yield* Effect.forEach(keys, (k) => ds.put(k, value), { discard: true })
    report(`datastore put, one at a time, ${where}`, "ours", perSecond(keys.length, start))
    const batches: Array<ReadonlyArray<Datastore.BatchOp>> = []
    for (let i = 0; i < keys.length; i += BATCH) {
      batches.push(keys.slice(i, i + BATCH).map((k) => Datastore.putOp(k, value2)))
    }
    start = performance.now()
    yield* Effect.forEach(batches, ds.batch, { discard: true })
    report(`datastore put, batches of ${BATCH}, ${where}`, "ours", perSecond(keys.length, start))
    start = performance.now()
    yield* Effect.forEach(keys, (k) => ds.get(k), { discard: true })
    report(`datastore get, one at a time, ${where}`, "ours", perSecond(keys.length, start))
  }))

const jsDatastore = async (
  where: Where,
  ds: JsDatastore,
  names: ReadonlyArray<string>,
  value: Uint8Array,
  value2: Uint8Array,
  report: Report
) => {
  const keys = names.map((n) => new Key(n))
  let start = performance.now()
  for (const k of keys) await ds.put(k, value)
  report(`datastore put, one at a time, ${where}`, "js", perSecond(keys.length, start))
  start = performance.now()
  for (let i = 0; i < keys.length; i += BATCH) {
    const b = ds.batch()
    for (const k of keys.slice(i, i + BATCH)) b.put(k, value2)
    await b.commit()
  }
  report(`datastore put, batches of ${BATCH}, ${where}`, "js", perSecond(keys.length, start))
  start = performance.now()
  for (const k of keys) await ds.get(k)
  report(`datastore get, one at a time, ${where}`, "js", perSecond(keys.length, start))
}

/** Run every measurement once, in this process, on files in a temporary directory. */
export const measure = async (cfg: StoreConfig, report: Report): Promise<void> => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "store-bench-"))
  try {
    const names = keyNames(cfg.keys)
    const value = Crypto.randomBytes(256)
    const value2 = Crypto.randomBytes(256)
    await Effect.runPromise(Effect.gen(function*() {
      yield* oursPeerstore(cfg, dir, report)
      yield* oursDatastore("memory", Memory.make, names, value, value2, () => {}) // warm-up, untimed
      yield* oursDatastore("memory", Memory.make, names, value, value2, report)
      for (const [where, synchronous] of [["disk", "full"], ["disk (no fsync)", "normal"]] as const) {
        const filename = Path.join(dir, `datastore-${synchronous}.sqlite`)
        yield* oursDatastore(where, Sqlite.make({ filename, synchronous }), names, value, value2, report)
      }
    }))
    await jsPeerstore(cfg, dir, report)
    await jsDatastore("memory", new MemoryDatastore(), names, value, value2, () => {}) // warm-up, untimed
    await jsDatastore("memory", new MemoryDatastore(), names, value, value2, report)
    for (const where of ["disk", "disk (no fsync)"] as const) {
      const level = new LevelDatastore(Path.join(dir, `datastore-level-${where === "disk" ? "a" : "b"}`))
      await level.open()
      try {
        await jsDatastore(where, level, names, value, value2, report)
      } finally {
        await level.close()
      }
    }
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  console.log(`load average ${Os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  await measure(
    { peers: 2000, rounds: 3, keys: 5000 },
    (figure, who, ops) => console.log(`${figure.padEnd(50)} ${who.padEnd(5)} ${Math.round(ops)}/s`)
  )
  console.log(`load average ${Os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
}
