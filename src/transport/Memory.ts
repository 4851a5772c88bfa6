/**
 * Memory transport: many nodes in one process over an in-process network,
 * addressed as `/memory/<n>` (multiaddr protocol 0x0309). No sockets and no
 * timers: connections are `Duplex.pair()`s, so a test under `TestClock` runs
 * deterministically.
 *
 * A `MemoryNetwork` is the shared switchboard; each node's transport is
 * `make(network)`. Listening on `/memory/0` picks the next free number.
 *
 * Latency (simulations): a network made with `layerNetworkWith({ latency: true })`
 * delivers every write, and the end of a stream, `latencyMillis` later on the
 * `Clock` (in order, per direction), where `latencyMillis` is the network's
 * field at the time of the write (0: at once), so a simulation under
 * `TestClock` can build its network without delay and then measure lookups in
 * virtual time. A delivery fiber per direction lives in the connection's
 * scope; at most 64 batches wait per direction (then the writer waits). A
 * reset, and closing the connection's scope, act at once and drop what is
 * still in flight (as a TCP RST does); a write after the other end reset
 * fails. A simulation tool: the transport compliance suite runs on the plain
 * network.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, FiberSet, Layer, Queue, Result, type Scope } from "effect"
import * as Duplex from "../core/Duplex.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as Inbound from "./internal/inbound.ts"
import { type RawConnection, type Transport, TransportError } from "./Transport.ts"

type Accept = (conn: RawConnection) => Effect.Effect<void>

export interface MemoryNetworkShape {
  readonly listeners: Map<string, Accept>
  nextPort: number
  nextDialer: number
  /** With a latency: every connection's writes go through a delay line (see the module doc). */
  readonly latency?: boolean | undefined
  /** One-way delay of each write, read at write time (latency networks only). */
  latencyMillis?: number | undefined
}

/** The switchboard shared by every node of one in-process network. */
export class MemoryNetwork
  extends Context.Service<MemoryNetwork, MemoryNetworkShape>()("effect-libp2p/MemoryNetwork")
{}

/** A fresh in-process network whose connections can be delayed (`latencyMillis`, see the module doc). */
export const layerNetworkWith = (options: { readonly latency: boolean }): Layer.Layer<MemoryNetwork> =>
  Layer.sync(MemoryNetwork, (): MemoryNetworkShape => ({
    listeners: new Map(),
    nextPort: 1,
    nextDialer: 1_000_000,
    latency: options.latency,
    latencyMillis: 0
  }))

/**
 * `end` with its writes (and its end of stream) delivered `delay()` ms later on the Clock, in order,
 * by a fiber in the current scope. A failed delivery (the other end reset) fails the later writes.
 */
const delayed = (end: Duplex.Duplex, delay: () => number): Effect.Effect<Duplex.Duplex, never, Scope.Scope> =>
  Effect.gen(function*() {
    const line = yield* Queue.bounded<readonly [number, Duplex.Chunks | undefined]>(64)
    let failure: Duplex.DuplexError | undefined
    const deliver = Effect.gen(function*() {
      for (;;) {
        const [at, chunks] = yield* Queue.take(line)
        const now = yield* Clock.currentTimeMillis
        if (at > now) yield* Effect.sleep(at - now)
        if (chunks === undefined) return yield* end.closeWrite
        const sent = yield* Effect.result(end.write(chunks))
        if (Result.isFailure(sent)) {
          failure = sent.failure
          return
        }
      }
    })
    yield* Effect.forkScoped(Effect.ignore(deliver))
    let writeClosed = false
    const enqueue = (chunks: Duplex.Chunks | undefined) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Queue.offer(line, [now + delay(), chunks]))
    return {
      read: end.read,
      write: (chunks) =>
        Effect.suspend(() =>
          failure !== undefined
            ? Effect.fail(failure)
            : writeClosed
            ? Effect.fail(Duplex.closedError())
            : Effect.asVoid(enqueue(chunks))
        ),
      closeWrite: Effect.suspend(() => {
        if (writeClosed || failure !== undefined) return Effect.void
        writeClosed = true
        return Effect.asVoid(enqueue(undefined))
      }),
      reset: Effect.suspend(() => {
        failure ??= Duplex.resetError()
        return end.reset
      })
    }
  })

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
      const [plainLocal, plainRemote] = yield* Duplex.pair()
      const delay = () => network.latencyMillis ?? 0
      const local = network.latency === true ? yield* delayed(plainLocal, delay) : plainLocal
      const remote = network.latency === true ? yield* delayed(plainRemote, delay) : plainRemote
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
