/**
 * Child process of the peer store's crash test (`Peerstore.test.ts`): a
 * `Peerstore.layerDatastore` on the SQLite datastore at argv[2], learning new
 * peers until it is killed — 2 fibers, each merging a new peer (key, address,
 * protocols) then `flush` — and printing the peer id on stdout once the flush
 * returned (the write is committed). Prints `ready` once the store is open.
 */
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as Sqlite from "../../src/datastore/Sqlite.ts"
import * as Peerstore from "../../src/host/Peerstore.ts"

const file = process.argv[2]!

const program = Effect.gen(function*() {
  const ds = yield* Sqlite.make({ filename: file })
  const ps = yield* Peerstore.makeDatastore().pipe(Effect.provideService(Datastore.Datastore, ds))
  const addr = yield* Effect.fromResult(Multiaddr.fromString("/ip4/10.1.2.3/tcp/4001"))
  process.stdout.write("ready\n")
  const writer = Effect.forever(Effect.gen(function*() {
    const key = yield* Keys.generate("Ed25519")
    const peer = PeerId.fromPrivateKey(key)
    yield* ps.merge(peer, { addrs: [addr], publicKey: key.publicKey, protocols: ["/ipfs/ping/1.0.0"] })
    yield* ps.flush
    process.stdout.write(`${PeerId.toString(peer)}\n`)
  }))
  yield* Effect.all([writer, writer], { concurrency: "unbounded" })
})

Effect.runPromise(Effect.scoped(program)).catch((e: unknown) => {
  process.stderr.write(`peerstoreCrashWriter: ${String(e)}\n`)
  process.exit(2)
})
