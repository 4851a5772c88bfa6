/**
 * The `/p2p-circuit` transport (libp2p specs relay/circuit-v2.md
 * §Interaction: "B and A upgrade the relayed connection with a security
 * protocol and a multiplexer, just like they would e.g. upgrade a TCP
 * connection"): a `Transport` whose raw connections are hop streams
 * (dialing) and stop streams (accepting), upgraded by the Host through the
 * Upgrader like any socket.
 *
 * **Late binding.** The Host is built from its transports, and this
 * transport needs the Host (to reach relays). So the transport is a plain
 * value made first, in the node's base layer ({@link CircuitTransport}, put
 * at the head of `Transports` by {@link layerTransports}), and the relay client
 * — built above the Host — binds its dialer to it for the lifetime of its
 * layer (`bind`). Inbound, the client asks the Host to listen on
 * `/p2p-circuit`, which hands this transport the Host's listen handler; each
 * accepted stop stream is given to that handler as a raw connection in a
 * scope of its own (`accept`), exactly as a TCP listener does. Without a
 * bound client a dial fails with `TransportError { reason: "Unsupported" }`
 * whose cause is a `RelayError` (`NotRunning`).
 *
 * A relayed connection's `remoteAddr` is
 * `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<remote>` (so `/p2p-circuit` in
 * the remote address is how other code, DCUtR for one, recognises it), its
 * `localAddr` is `/p2p-circuit`, and its `limits` are the relay's announced
 * `Limit` (a limited connection), undefined when the relay announced none.
 *
 * Anchors: rust-libp2p `protocols/relay/src/priv_client/transport.rs`,
 * go-libp2p `p2p/protocol/circuitv2/client/transport.go`.
 *
 * @since 0.3.0
 */
import { Context, Deferred, Effect, Exit, Layer, Result, Scope } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as Transport from "../../transport/Transport.ts"
import * as Circuit from "./circuit.ts"
import { type RelayError, relayError } from "./errors.ts"

export { RelayError, RelayErrorReason } from "./errors.ts"

/** What the relay client binds: dial a `/p2p-circuit` address to a raw connection. */
export type CircuitDial = (
  addr: Multiaddr.Multiaddr,
  options?: Transport.DialOptions
) => Effect.Effect<Transport.RawConnection, Transport.TransportError, Scope.Scope>

export class CircuitTransport extends Context.Service<CircuitTransport, {
  /** The transport, for the node's `Transports` (first: other transports may claim `/memory/…/p2p-circuit/…`). */
  readonly transport: Transport.Transport
  /** Bind the relay client's dialer while the current scope lasts. */
  readonly bind: (dial: CircuitDial) => Effect.Effect<void, never, Scope.Scope>
  /** True while the Host listens on `/p2p-circuit` (accepted connections have somewhere to go). */
  readonly listening: () => boolean
  /**
   * Hand an accepted relayed connection to the Host's listen handler, in a
   * child scope of the current one; returns when the connection has ended
   * (the current scope closing ends it too). `NotRunning` when nothing listens.
   */
  readonly accept: (raw: Transport.RawConnection) => Effect.Effect<void, RelayError, Scope.Scope>
}>()("effect-libp2p/CircuitTransport") {}

/** `/p2p-circuit`: the address the relay client listens on. */
export const LISTEN_ADDR: Multiaddr.Multiaddr = Result.getOrThrow(Multiaddr.fromString("/p2p-circuit"))

/** True for an address that goes through a relay and names its target (`…/p2p-circuit/p2p/<id>`). */
export const canDial = (addr: Multiaddr.Multiaddr): boolean => {
  const cs = Multiaddr.components(addr)
  const at = cs.findIndex((c) => c.code === Multiaddr.codes["p2p-circuit"])
  return at >= 0 && cs.length === at + 2 && cs[at + 1]!.code === Multiaddr.codes.p2p
}

export const make = (): CircuitTransport["Service"] => {
  let dialer: CircuitDial | undefined
  let handler: Transport.Handler | undefined
  const transport: Transport.Transport = {
    name: "p2p-circuit",
    canDial,
    canListen: (addr) => Multiaddr.equals(addr, LISTEN_ADDR),
    dial: (addr, options) =>
      Effect.suspend(() =>
        dialer === undefined
          ? Effect.fail(
            new Transport.TransportError({
              reason: "Unsupported",
              address: Multiaddr.toString(addr),
              message: "no relay client is running",
              cause: relayError("NotRunning", "no relay client is running")
            })
          )
          : dialer(addr, options)
      ),
    listen: (_addr, h) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          handler = h
          return { addrs: [] }
        }),
        () => Effect.sync(() => void (handler === h && (handler = undefined)))
      )
  }
  return CircuitTransport.of({
    transport,
    bind: (dial) =>
      Effect.asVoid(Effect.acquireRelease(
        Effect.sync(() => void (dialer = dial)),
        () => Effect.sync(() => void (dialer === dial && (dialer = undefined)))
      )),
    listening: () => handler !== undefined,
    accept: (raw) =>
      Effect.gen(function*() {
        const h = handler
        if (h === undefined) return yield* relayError("NotRunning", "nothing listens on /p2p-circuit")
        const scope = yield* Scope.fork(yield* Effect.scope)
        const ended = Deferred.makeUnsafe<void>()
        yield* Scope.addFinalizer(scope, Deferred.done(ended, Exit.void))
        const result = yield* Scope.provide(h(raw, scope), scope)
        if (result !== Transport.KeepOpen) return yield* Scope.close(scope, Exit.void)
        yield* Deferred.await(ended)
      })
  })
}

/** The circuit transport of one node (made per build). */
export const layer: Layer.Layer<CircuitTransport> = Layer.sync(CircuitTransport, make)

/** `Transports`: the circuit transport first, then `transports`. */
export const layerTransports = (
  transports: ReadonlyArray<Transport.Transport>
): Layer.Layer<Transport.Transports, never, CircuitTransport> =>
  Layer.effect(Transport.Transports, Effect.map(CircuitTransport, (c) => [c.transport, ...transports]))

/** A dial's failure as the transport's: the `RelayError` kept as the cause. */
export const transportError = (addr: Multiaddr.Multiaddr, e: RelayError): Transport.TransportError =>
  new Transport.TransportError({
    reason: e.reason === "Refused"
      ? "Refused"
      : e.reason === "Timeout"
      ? "Timeout"
      : e.reason === "Stream"
      ? "Unreachable"
      : e.reason === "BadAddress" || e.reason === "NotRunning"
      ? "Unsupported"
      : "Io",
    address: Multiaddr.toString(addr),
    message: e.message,
    cause: e
  })

/** Goes through a relay (has a `/p2p-circuit` component). */
export const isRelayed = Circuit.isRelayed
