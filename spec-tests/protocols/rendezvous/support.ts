/**
 * Rendezvous test nodes on the memory transport: the Memory preset with the
 * rendezvous client, and the rendezvous point on top when asked (its
 * registrations in memory, or in the given `Datastore` layer); seeded
 * identities; raw requests on a stream for the bad-input tests.
 */
import { Context, Effect, Layer } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import type * as Keys from "../../../src/core/Keys.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import type * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as PeerRecord from "../../../src/core/PeerRecord.ts"
import type { Datastore, DatastoreError } from "../../../src/datastore/Datastore.ts"
import * as Client from "../../../src/protocols/rendezvous/client.ts"
import * as Rendezvous from "../../../src/protocols/rendezvous/Rendezvous.ts"
import { MemoryNetwork } from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../../support/node.ts"
import { seededKey } from "../kad/support.ts"

export interface RdvNodeOptions {
  readonly seed?: number
  readonly server?: Rendezvous.ServerOptions
  /** The point's registrations in this store (memory when absent). */
  readonly datastore?: Layer.Layer<Datastore, DatastoreError>
  readonly client?: Rendezvous.RendezvousOptions
}

/** A memory node with the rendezvous client (and the point with `server`), on the MemoryNetwork in context. */
export const rdvNode = (options: RdvNodeOptions = {}) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork
    const node = Nodes.Memory({
      listen: [ma("/memory/0")],
      ...(options.seed !== undefined ? { privateKey: seededKey(options.seed) } : {})
    }).pipe(Layer.provide(Layer.succeed(MemoryNetwork, network)))
    const client = Rendezvous.layer(options.client).pipe(Layer.provideMerge(node))
    const layer = options.server === undefined ? client : Layer.provideMerge(
      options.datastore === undefined
        ? Rendezvous.layerServer(options.server)
        : Rendezvous.layerServerDatastore(options.server).pipe(Layer.provide(options.datastore)),
      client
    )
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    const server = options.server === undefined
      ? undefined
      : Context.get(ctx as unknown as Context.Context<Rendezvous.RendezvousServer>, Rendezvous.RendezvousServer)
    return {
      ...servicesOf(ctx as Context.Context<NodeServices>),
      rdv: Context.get(ctx as Context.Context<Rendezvous.Rendezvous>, Rendezvous.Rendezvous),
      server,
      context: ctx
    }
  })

export type RdvNode = Effect.Success<ReturnType<typeof rdvNode>>

/** One request from `from` to `to` on a new stream; the answer (undefined for UNREGISTER). */
export const raw = (from: RdvNode, to: RdvNode, msg: Rendezvous.RendezvousMessage) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* from.host.newStream(to.addr, [Rendezvous.PROTOCOL])
    return yield* Client.request(stream, to.host.peerId, msg)
  }))

/** Write raw bytes (frame them with `LengthPrefixed.encode`) on a new stream and read what comes back (all of it, until EOF or a reset). */
export const rawFrames = (from: RdvNode, to: RdvNode, frames: ReadonlyArray<Uint8Array>, close = true) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* from.host.newStream(to.addr, [Rendezvous.PROTOCOL])
    const msgs = LengthPrefixed.messages(stream, { maxLength: Rendezvous.MAX_MESSAGE_SIZE })
    yield* stream.write(frames)
    if (close) yield* stream.closeWrite
    const answers: Array<Uint8Array> = []
    while (true) {
      const m = yield* Effect.result(msgs.read)
      if (m._tag === "Failure") return { answers, error: m.failure }
      if (m.success === undefined) return { answers, error: undefined }
      answers.push(m.success)
    }
  }))

/** A signed peer record of `key`'s peer with `addrs`. */
export const signedRecord = (key: Keys.PrivateKey, addrs: ReadonlyArray<Multiaddr.Multiaddr> = [], seq = 1n) =>
  Effect.orDie(Effect.fromResult(PeerRecord.seal(key, PeerRecord.make(PeerId.fromPrivateKey(key), seq, addrs))))

/** A REGISTER message. */
export const registerMsg = (ns: string, signedPeerRecord: Uint8Array, ttl?: number): Rendezvous.RendezvousMessage => ({
  type: Rendezvous.MessageType.REGISTER,
  register: { ns, signedPeerRecord, ...(ttl !== undefined ? { ttl: BigInt(ttl) } : {}) }
})
