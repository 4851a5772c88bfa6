/**
 * Memory transport: many nodes in one process over an in-process network,
 * addressed as `/memory/<n>` (multiaddr protocol 0x0309). No sockets and no
 * timers: connections are `Duplex.pair()`s, so a test under `TestClock` runs
 * deterministically.
 *
 * A `MemoryNetwork` is the shared switchboard; each node's transport is
 * `make(network)`. Listening on `/memory/0` picks the next free number.
 *
 * @since 0.1.0
 */
import { Context, Effect, FiberSet, Layer, Result } from "effect"
import * as Duplex from "../core/Duplex.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as Inbound from "./internal/inbound.ts"
import { type RawConnection, type Transport, TransportError } from "./Transport.ts"

type Accept = (conn: RawConnection) => Effect.Effect<void>

export interface MemoryNetworkShape {
  readonly listeners: Map<string, Accept>
  nextPort: number
  nextDialer: number
}

/** The switchboard shared by every node of one in-process network. */
export class MemoryNetwork
  extends Context.Service<MemoryNetwork, MemoryNetworkShape>()("effect-libp2p/MemoryNetwork")
{}

/** A fresh in-process network (one per test or simulation). */
export const layerNetwork: Layer.Layer<MemoryNetwork> = Layer.sync(MemoryNetwork, (): MemoryNetworkShape => ({
  listeners: new Map(),
  nextPort: 1,
  nextDialer: 1_000_000
}))

const memoryPort = (addr: Multiaddr.Multiaddr): string | undefined => {
  const first = Multiaddr.components(addr)[0]
  return first !== undefined && first.code === Multiaddr.codes.memory ? first.value : undefined
}

const memoryAddr = (port: string | number): Multiaddr.Multiaddr =>
  Result.getOrElse(Multiaddr.fromString(`/memory/${port}`), () => Multiaddr.empty)

export const make = (network: MemoryNetworkShape): Transport => ({
  name: "memory",
  canDial: (addr) => memoryPort(addr) !== undefined,
  canListen: (addr) => memoryPort(addr) !== undefined,
  dial: (addr) =>
    Effect.gen(function*() {
      const port = memoryPort(addr)
      const accept = port !== undefined ? network.listeners.get(port) : undefined
      if (port === undefined || accept === undefined) {
        return yield* new TransportError({
          reason: "Refused",
          address: Multiaddr.toString(addr),
          message: "no memory listener at this address"
        })
      }
      const [local, remote] = yield* Duplex.pair()
      const localAddr = memoryAddr(network.nextDialer++)
      const remoteAddr = memoryAddr(port)
      yield* accept({ duplex: remote, remoteAddr: localAddr, localAddr: remoteAddr })
      return { duplex: local, remoteAddr, localAddr }
    }),
  listen: (addr, handler) =>
    Effect.gen(function*() {
      let port = memoryPort(addr)
      if (port === undefined) {
        return yield* new TransportError({
          reason: "Unsupported",
          address: Multiaddr.toString(addr),
          message: "not /memory"
        })
      }
      if (port === "0") port = String(network.nextPort++)
      if (network.listeners.has(port)) {
        return yield* new TransportError({
          reason: "AddressInUse",
          address: Multiaddr.toString(addr),
          message: "memory address in use"
        })
      }
      const fibers = yield* FiberSet.make<void, never>()
      const run = yield* FiberSet.runtime(fibers)<never>()
      const parent = yield* Inbound.connectionsScope
      const bound = port
      // Each inbound connection has its own scope, closed when the handler ends
      // (or by its new owner, for a handler that keeps it open); closing it resets the pair.
      const accept: Accept = (conn) =>
        Effect.sync(() => {
          Inbound.serve({ name: "memory", parent, run, handler, conn, release: conn.duplex.reset, quiet: true })
        })
      network.listeners.set(bound, accept)
      yield* Effect.addFinalizer(() => Effect.sync(() => void network.listeners.delete(bound)))
      return { addrs: [memoryAddr(bound)] }
    })
})

/** The Transports entry for a node on the network in context. */
export const transport: Effect.Effect<Transport, never, MemoryNetwork> = Effect.gen(function*() {
  return make(yield* MemoryNetwork)
})
