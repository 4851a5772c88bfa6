/**
 * `node`'s NAT traversal output and flags (ARCHITECTURE.md §7): hole punching
 * (DCUtR, on by default: TCP listens with SO_REUSEPORT and dials leave from
 * the listening port), `hole-punch` lines from the peer that received the
 * relayed connection, `connection:open`/`connection:close` with `direct`,
 * and `--public-cidr` (networks whose addresses count as public, for test
 * networks on documentation or private ranges). Also `perf <circuit address>`'s
 * wait for the hole-punched direct connection.
 */
import { Duration, Effect, Option, Result, Schema, type Scope, Stream } from "effect"
import type { Connection } from "../../connection/Connection.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import * as PeerId from "../../core/PeerId.ts"
import type { Host } from "../../host/Host.ts"
import * as Dcutr from "../../protocols/dcutr/Dcutr.ts"
import type * as Tcp from "../../transport/Tcp.ts"
import { emit, type Output, UsageError } from "../output.ts"

/** TCP settings for hole punching: SO_REUSEPORT listeners, dials from the listening port. */
export const tcpOptions: Tcp.TcpOptions = { reusePort: true, dialFromListenPort: true }

/** DCUtR's settings in `node`: 5 s per direct dial, so 3 failed rounds end well within §7's 30 s. */
export const dcutrOptions = (publicCidrs: ReadonlyArray<MultiaddrNet.Cidr>): Dcutr.DcutrOptions => ({
  publicCidrs,
  dialTimeout: Duration.seconds(5)
})

/** `--public-cidr` values, parsed; a bad one is a usage error. */
export const parsePublicCidrs = (texts: ReadonlyArray<string>) =>
  Effect.forEach(texts, (text) => {
    const cidr = MultiaddrNet.parseCidr(text)
    return Result.isSuccess(cidr)
      ? Effect.succeed(cidr.success)
      : Effect.fail(new UsageError({ message: `--public-cidr ${text}: ${cidr.failure.message}` }))
  })

/** `connection:open` / `connection:close`: one line per connection, `direct` false when relayed; a close says why. */
export const printConnection = (
  json: boolean,
  event: "connection:open" | "connection:close",
  conn: Connection,
  reason?: string
): Effect.Effect<void, never, Output> => {
  const peerId = PeerId.toString(conn.remotePeer)
  const addr = Multiaddr.toString(conn.remoteAddr)
  const direct = !MultiaddrNet.isRelayed(conn.remoteAddr)
  return emit(
    json,
    { event, peerId, addr, direction: conn.direction, direct, ...(reason !== undefined ? { reason } : {}) },
    `${event === "connection:open" ? "opened" : "closed"} ${
      direct ? "direct" : "relayed"
    } ${conn.direction} connection ${peerId} at ${addr}${reason !== undefined ? ` (${reason})` : ""}`
  )
}

/**
 * `hole-punch` lines: each series once, on the side that received the relayed
 * connection (DCUtR's `B`, our `initiator` side), with the direct
 * connection's remote address on success.
 */
export const printHolePunches = (
  dcutr: Dcutr.Dcutr["Service"],
  json: boolean
): Effect.Effect<void, never, Output | Scope.Scope> =>
  Effect.gen(function*() {
    const outcomes = yield* dcutr.subscribe
    yield* Effect.forkScoped(Stream.runForEach(outcomes, (e) => {
      if (e.side !== "initiator") return Effect.void
      const peerId = PeerId.toString(e.peer)
      return e._tag === "Upgraded"
        ? emit(json, {
          event: "hole-punch",
          peerId,
          outcome: "success",
          addr: Multiaddr.toString(e.direct.remoteAddr),
          attempts: Math.max(1, e.attempt)
        }, `hole punch to ${peerId}: direct at ${Multiaddr.toString(e.direct.remoteAddr)}`)
        : emit(json, {
          event: "hole-punch",
          peerId,
          outcome: "failure",
          addr: null,
          attempts: e.attempts,
          error: { _tag: e.error._tag, reason: e.error.reason, message: e.error.message }
        }, `hole punch to ${peerId} failed after ${e.attempts} attempts: ${e.error.message}`)
    }))
  })

/** How long `perf <circuit address>` waits for a hole-punched direct connection (ARCHITECTURE.md §7). */
export const DIRECT_WAIT = Duration.seconds(15)

/** No direct connection to the peer came within the wait (the hole punch failed or never started). */
export class NoDirectConnection extends Schema.TaggedError<NoDirectConnection>()("NoDirectConnection", {
  message: Schema.String
}) {}

const isDirect = (conn: Connection) => !MultiaddrNet.isRelayed(conn.remoteAddr) && !conn.isClosed()

/**
 * Dial `target` (a circuit address: the relayed connection; the peer that
 * receives it starts DCUtR, our side answers as `A`) and wait up to `wait`
 * (Clock time) for a direct connection to `peer`; it is returned, open.
 */
export const dialForDirect = (
  host: Host["Service"],
  target: Multiaddr.Multiaddr,
  peer: PeerId.PeerId,
  wait: Duration.Input = DIRECT_WAIT
) =>
  Effect.scoped(Effect.gen(function*() {
    // subscribed before the dial, so a direct connection that opens meanwhile is seen
    const events = yield* host.subscribe
    yield* host.dial(target)
    const present = host.connections(peer).find(isDirect)
    if (present !== undefined) return present
    const opened = yield* events.pipe(
      Stream.filterMap((e) =>
        e._tag === "ConnectionOpen" && PeerId.equals(e.connection.remotePeer, peer) && isDirect(e.connection)
          ? Result.succeed(e.connection)
          : Result.failVoid
      ),
      Stream.runHead,
      Effect.timeoutOrElse({ duration: wait, orElse: () => Effect.succeed(Option.none()) })
    )
    if (Option.isSome(opened)) return opened.value
    return yield* new NoDirectConnection({
      message: `no direct connection to ${PeerId.toString(peer)} within ${
        Duration.format(Duration.fromInputUnsafe(wait))
      } of the relayed one (${Multiaddr.toString(target)}): the hole punch failed or did not start`
    })
  }))
