/**
 * Mix (LIP-99) figures, in this process (one core):
 * - Sphinx packets processed per second by one intermediary hop (X25519 twice,
 *   AES-CTR over β and δ, HMAC; `sphinx.ts` `processPacket` with a replay table);
 * - Sphinx packets built per second by a sender (L = 3);
 * - end-to-end latency without delays: five of our nodes on the memory
 *   transport (real clock, mean delays 0), a 32-byte message through 3 mix hops
 *   to a sixth node's user protocol (one way), and a ping `request` whose pong
 *   comes back through a SURB (3 hops out, 3 back).
 * `npm run bench -- --only=mix` runs it inside the bench table; standalone:
 * `npx node bench/mix.ts` (N=… packets, ROUNDS=… latency samples).
 */
import { Context, Deferred, Effect, Layer, Result } from "effect"
import * as crypto from "node:crypto"
import * as Nodes from "../layers/Node.ts"
import { Registrar } from "../src/connection/Registrar.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import { Host } from "../src/host/Host.ts"
import { Peerstore } from "../src/host/Peerstore.ts"
import * as Message from "../src/protocols/mix/message.ts"
import * as Mix from "../src/protocols/mix/Mix.ts"
import * as MixDiscovery from "../src/protocols/mix/MixDiscovery.ts"
import * as Replay from "../src/protocols/mix/replay.ts"
import * as Sphinx from "../src/protocols/mix/sphinx.ts"
import * as Ping from "../src/protocols/ping/Ping.ts"
import * as Memory from "../src/transport/Memory.ts"

export interface MixOptions {
  readonly packets: number
  readonly rounds: number
}

const get = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

const sphinxRates = (packets: number) => {
  const keys = [0, 1, 2].map(() => new Uint8Array(crypto.randomBytes(32)))
  const path = keys.map((k, i) => {
    const address = new Uint8Array(Sphinx.ADDRESS_SIZE)
    address[0] = i + 1
    return { publicKey: get(Sphinx.publicKeyOf(k)), address }
  })
  const message = get(Message.encodeForward("/ipfs/ping/1.0.0", [], new Uint8Array(32)))
  const build = () =>
    get(Sphinx.createPacket({
      path,
      delays: [0, 0, 0],
      destination: path[2]!.address,
      ephemeral: new Uint8Array(crypto.randomBytes(32)),
      message
    })).packet
  let start = performance.now()
  const built = Array.from({ length: packets }, build)
  const buildPerSec = packets / ((performance.now() - start) / 1000)
  const table = Replay.make({ maxEntries: packets * 2, ttlMillis: 3_600_000 })
  start = performance.now()
  for (const p of built) {
    const out = get(Sphinx.processPacket(p, keys[0]!, { seen: (tag) => table.seen(tag, 0) }))
    if (out._tag !== "Forward") throw new Error("mix bench: expected a forward")
  }
  const processPerSec = packets / ((performance.now() - start) / 1000)
  return { buildPerSec, processPerSec }
}

const network = Effect.gen(function*() {
  const registry = yield* MixDiscovery.makeRegistry()
  const memory = yield* Memory.MemoryNetwork
  const listen = [get(Multiaddr.fromString("/memory/0"))]
  const base = () => Nodes.Memory({ listen }).pipe(Layer.provide(Layer.succeed(Memory.MemoryNetwork, memory)))
  const build = <A, E, R>(layer: Layer.Layer<A, E, R>) =>
    Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
  const nodes: Array<{ readonly mix: Mix.Mix["Service"]; readonly peerstore: Peerstore["Service"] }> = []
  for (let i = 0; i < 5; i++) {
    const ctx = yield* build(
      Mix.layer({ meanDelay: 0, entryMeanDelay: 0 }).pipe(
        Layer.provideMerge(base()),
        Layer.provide(MixDiscovery.layerRegistry(registry))
      )
    )
    const mix = Context.get(ctx, Mix.Mix)
    yield* registry.add(mix.info())
    nodes.push({ mix, peerstore: Context.get(ctx, Peerstore) })
  }
  const destCtx = yield* build(base())
  const dest = Context.get(destCtx, Host)
  // The exits reach the destination through their peerstores.
  for (const n of nodes) yield* n.peerstore.merge(dest.peerId, { addrs: dest.addrs() })
  let arrived = yield* Deferred.make<void>()
  yield* Context.get(destCtx, Registrar).handle("/bench/mix-sink/1.0.0", (stream) =>
    Effect.gen(function*() {
      while ((yield* stream.read).length > 0) {
        // drain to EOF
      }
      yield* stream.closeWrite
      yield* Deferred.succeed(arrived, undefined)
    }))
  return {
    mixes: nodes.map((n) => n.mix),
    target: { peerId: dest.peerId },
    arrived: () => arrived,
    reset: Effect.map(Deferred.make<void>(), (d) => {
      arrived = d
    })
  }
})

/** Measure and report each figure as (name, unit, value). */
export const measure = async (
  options: MixOptions,
  report: (figure: string, unit: string, value: number) => void
): Promise<void> => {
  const rates = sphinxRates(options.packets)
  report("mix: Sphinx packets processed per second (one hop, one core)", "packets/s", rates.processPerSec)
  report("mix: Sphinx packets built per second (L = 3)", "packets/s", rates.buildPerSec)
  const result = await Effect.runPromise(Effect.scoped(
    Effect.gen(function*() {
      const net = yield* network
      const oneWay: Array<number> = []
      const roundTrip: Array<number> = []
      for (let r = 0; r < options.rounds + 1; r++) {
        const sender = net.mixes[r % net.mixes.length]!
        yield* net.reset
        const t0 = performance.now()
        yield* sender.send(net.target, "/bench/mix-sink/1.0.0", new Uint8Array(32))
        yield* Deferred.await(net.arrived())
        const t1 = performance.now()
        const pong = yield* sender.request(net.target, Ping.PROTOCOL, new Uint8Array(crypto.randomBytes(32)))
        const t2 = performance.now()
        if (pong.byteLength !== 32) throw new Error("mix bench: a bad pong")
        if (r > 0) { // the first round warms up connections
          oneWay.push(t1 - t0)
          roundTrip.push(t2 - t1)
        }
      }
      return { oneWay: median(oneWay), roundTrip: median(roundTrip) }
    }).pipe(Effect.provide(Memory.layerNetwork))
  ))
  report("mix: one-way latency, 3 hops, no delays (memory transport)", "ms", result.oneWay)
  report("mix: ping round trip via SURB, 3+3 hops, no delays", "ms", result.roundTrip)
}

if (import.meta.main) {
  await measure(
    { packets: Number(process.env["N"] ?? 2000), rounds: Number(process.env["ROUNDS"] ?? 20) },
    (f, u, v) => process.stdout.write(`${f}: ${v.toFixed(u === "ms" ? 2 : 0)} ${u}\n`)
  )
}
