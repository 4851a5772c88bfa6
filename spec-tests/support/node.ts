/**
 * Start one of our nodes inside the current test scope and hand back its
 * services. `tcpNode` uses the Default preset (TCP + Noise + Yamux); `memoryNode`
 * the Memory preset on the MemoryNetwork in context.
 */
import { Effect, Layer, Result } from "effect"
import * as Nodes from "../../layers/Node.ts"
import { Registrar } from "../../src/connection/Registrar.ts"
import { Identity } from "../../src/core/Identity.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import { Host } from "../../src/host/Host.ts"
import { Peerstore } from "../../src/host/Peerstore.ts"
import { Identify } from "../../src/protocols/identify/Identify.ts"
import { Perf } from "../../src/protocols/perf/Perf.ts"
import { Ping } from "../../src/protocols/ping/Ping.ts"
import { MemoryNetwork } from "../../src/transport/Memory.ts"

export const ma = (s: string): Multiaddr.Multiaddr => Result.getOrThrow(Multiaddr.fromString(s))

export interface TestNode {
  readonly host: Host["Service"]
  readonly ping: Ping["Service"]
  readonly identify: Identify["Service"]
  readonly perf: Perf["Service"]
  readonly registrar: Registrar["Service"]
  readonly peerstore: Peerstore["Service"]
  readonly identity: Identity["Service"]
  /** The first listen address, with /p2p. */
  readonly addr: Multiaddr.Multiaddr
}

const build = <E, R>(layer: Layer.Layer<Host | Ping | Identify | Perf | Registrar | Peerstore | Identity, E, R>) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const ctx = yield* Layer.buildWithScope(layer, scope)
    const get = <S>(key: string) => ctx.mapUnsafe.get(key) as S
    const host = get<Host["Service"]>(Host.key)
    return {
      host,
      ping: get<Ping["Service"]>(Ping.key),
      identify: get<Identify["Service"]>(Identify.key),
      perf: get<Perf["Service"]>(Perf.key),
      registrar: get<Registrar["Service"]>(Registrar.key),
      peerstore: get<Peerstore["Service"]>(Peerstore.key),
      identity: get<Identity["Service"]>(Identity.key),
      addr: host.addrs()[0] ?? Multiaddr.empty
    } satisfies TestNode
  })

/** A TCP node listening on 127.0.0.1 (port 0 unless `listen` says otherwise). */
export const tcpNode = (options: Nodes.PresetOptions = {}) =>
  build(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")], ...options }))

/** A node on the MemoryNetwork in context. */
export const memoryNode = (options: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork
    return yield* build(
      Nodes.Memory({ listen: [ma("/memory/0")], ...options }).pipe(Layer.provide(Layer.succeed(MemoryNetwork, network)))
    )
  })
