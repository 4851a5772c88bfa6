/**
 * Quick measurement (not a test, not in bench/main.ts): peer store updates per
 * second — ours in memory, ours on the SQLite datastore (write-through, then
 * `flush` counted in the time), and js-libp2p's `@libp2p/peer-store`
 * (`persistentPeerStore`, which awaits its datastore on every update) on
 * `datastore-core`'s MemoryDatastore. `datastore-level` is not installed, so
 * js-libp2p runs on its in-memory datastore only: a lower bound of its cost
 * on disk. Each update merges one address and the protocol list of a peer
 * among N (N=… , default 2000), `ROUNDS` times over.
 *
 * Run: npx node bench/peerstore.ts
 */
import { generateKeyPair } from "@libp2p/crypto/keys"
import { defaultLogger } from "@libp2p/logger"
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id"
import { persistentPeerStore } from "@libp2p/peer-store"
import { multiaddr } from "@multiformats/multiaddr"
import { MemoryDatastore } from "datastore-core"
import { Effect } from "effect"
import { TypedEventEmitter } from "main-event"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Keys from "../src/core/Keys.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import * as PeerId from "../src/core/PeerId.ts"
import * as Datastore from "../src/datastore/Datastore.ts"
import * as Sqlite from "../src/datastore/Sqlite.ts"
import * as Peerstore from "../src/host/Peerstore.ts"

const N = Number(process.env.N ?? 2000)
const ROUNDS = 3
const PROTOCOLS = ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/ipfs/kad/1.0.0"]
const ADDRS = ["/ip4/10.0.0.1/tcp/4001", "/ip4/10.0.0.2/tcp/4001", "/ip4/10.0.0.3/tcp/4001"]

const rate = (label: string, ops: number, ms: number) =>
  console.log(
    `  ${label.padEnd(40)} ${String(Math.round(ops / (ms / 1000))).padStart(9)} updates/s  (${ops} in ${
      ms.toFixed(0)
    } ms)`
  )

const ours = Effect.gen(function*() {
  const peers = yield* Effect.forEach(
    Array.from({ length: N }),
    () => Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey)
  )
  const addrs = yield* Effect.forEach(ADDRS, (a) => Effect.fromResult(Multiaddr.fromString(a)))
  const measure = (label: string, ps: Peerstore.Peerstore["Service"]) =>
    Effect.gen(function*() {
      const start = performance.now()
      for (let r = 0; r < ROUNDS; r++) {
        for (const p of peers) yield* ps.merge(p, { addrs: [addrs[r % addrs.length]!], protocols: PROTOCOLS })
      }
      yield* ps.flush
      rate(label, N * ROUNDS, performance.now() - start)
    })
  yield* measure("ours, memory", yield* Peerstore.makeMemory())
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peerstore-bench-"))
  yield* Effect.scoped(Effect.gen(function*() {
    const ds = yield* Sqlite.make({ filename: path.join(dir, "datastore.sqlite") })
    const ps = yield* Peerstore.makeDatastore({ maxPeers: N }).pipe(Effect.provideService(Datastore.Datastore, ds))
    yield* measure("ours, SQLite (synchronous=FULL)", ps)
  }))
  fs.rmSync(dir, { recursive: true, force: true })
})

const js = async () => {
  const self = peerIdFromPrivateKey(await generateKeyPair("Ed25519"))
  const store = persistentPeerStore({
    peerId: self,
    datastore: new MemoryDatastore(),
    events: new TypedEventEmitter(),
    logger: defaultLogger()
  })
  const peers = await Promise.all(
    Array.from(
      { length: N },
      async () => peerIdFromString(peerIdFromPrivateKey(await generateKeyPair("Ed25519")).toString())
    )
  )
  const addrs = ADDRS.map((a) => multiaddr(a))
  const start = performance.now()
  for (let r = 0; r < ROUNDS; r++) {
    for (const p of peers) await store.merge(p, { multiaddrs: [addrs[r % addrs.length]!], protocols: PROTOCOLS })
  }
  rate("js-libp2p peer-store, MemoryDatastore", N * ROUNDS, performance.now() - start)
}

console.log(`peer store updates (N=${N} peers, ${ROUNDS} rounds)`)
await Effect.runPromise(ours)
await js()
