/**
 * AutoNAT's server side as functions of a stream: v2's dial request
 * (autonat-v2.md §AutoNAT V2 Protocol, §Amplification Attack Prevention,
 * §Requirements for ResponseStatus/DialStatus) and v1's dial (autonat-v1.md
 * §AutoNAT Protocol), plus the rate limiter. The dial back itself is a
 * dependency ({@link ServerDeps}), so these run on any stream.
 *
 * @internal
 */
import { Duration, Effect, Result } from "effect"
import type * as Connection from "../../connection/Connection.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import * as PeerId from "../../core/PeerId.ts"
import { type AutoNatError, DialDataMissing, fail, Malformed, Timeout } from "./errors.ts"
import {
  DialStatus,
  kindOf,
  MAX_MESSAGE_SIZE,
  Message,
  parseAddrs,
  ResponseStatus,
  V1Message,
  V1Status,
  V1Type
} from "./messages.ts"

/** Why a request was refused (a metric label). */
export type RefuseReason =
  | "rate_limit_peer"
  | "rate_limit_global"
  | "busy"
  | "relayed"
  | "no_observed_ip"
  | "no_dialable_addr"
  | "malformed"
  | "data_missing"
  | "timeout"

export type Outcome = "ok" | "dial_error" | "dial_back_error" | RefuseReason

export interface ServerDeps {
  /** May the requester (by peer id text) be served now? Undefined when it may; call `done` after. */
  readonly admit: (peer: string) => Effect.Effect<RefuseReason | undefined>
  readonly done: Effect.Effect<void>
  /** Would we dial this address for a requester at `observedIp`? (policy: class, transport, shape) */
  readonly willDial: (addr: Multiaddr.Multiaddr, requester: PeerId.PeerId) => boolean
  /** Dial back `addr` on a separate connection and deliver the nonce: a `DialStatus`. */
  readonly dialBack: (addr: Multiaddr.Multiaddr, requester: PeerId.PeerId, nonce: bigint) => Effect.Effect<number>
  /** v1: dial `addrs` (any one) on a separate connection: the address reached, or undefined. */
  readonly dialAny: (
    addrs: ReadonlyArray<Multiaddr.Multiaddr>,
    requester: PeerId.PeerId
  ) => Effect.Effect<Multiaddr.Multiaddr | undefined>
  /** Bytes to ask for before dialing another IP than the requester's (§Amplification: 30k–100k). */
  readonly dialDataBytes: Effect.Effect<number>
  readonly timeout: Duration.Duration
  readonly onOutcome: (version: "v1" | "v2", outcome: Outcome) => void
}

/** Fixed-window-free rate limiter: request times within the last `windowMillis`, per peer and overall. */
export class RateLimiter {
  readonly perPeer = new Map<string, Array<number>>()
  global: Array<number> = []
  inFlight = 0
  readonly windowMillis: number
  readonly perPeerLimit: number
  readonly globalLimit: number
  readonly maxConcurrent: number
  /** Peers tracked at most (each holds ≤ perPeerLimit times); beyond, new peers are refused as global. */
  readonly maxPeers: number
  constructor(windowMillis: number, perPeerLimit: number, globalLimit: number, maxConcurrent: number) {
    this.windowMillis = windowMillis
    this.perPeerLimit = perPeerLimit
    this.globalLimit = globalLimit
    this.maxConcurrent = maxConcurrent
    this.maxPeers = Math.max(globalLimit, 1)
  }
  prune(now: number): void {
    const cut = now - this.windowMillis
    this.global = this.global.filter((t) => t > cut)
    for (const [peer, times] of this.perPeer) {
      const kept = times.filter((t) => t > cut)
      if (kept.length === 0) this.perPeer.delete(peer)
      else this.perPeer.set(peer, kept)
    }
  }
  admit(peer: string, now: number): RefuseReason | undefined {
    this.prune(now)
    if (this.inFlight >= this.maxConcurrent) return "busy"
    const times = this.perPeer.get(peer) ?? []
    if (times.length >= this.perPeerLimit) return "rate_limit_peer"
    if (this.global.length >= this.globalLimit || (times.length === 0 && this.perPeer.size >= this.maxPeers)) {
      return "rate_limit_global"
    }
    times.push(now)
    this.perPeer.set(peer, times)
    this.global.push(now)
    this.inFlight++
    return undefined
  }
  done(): void {
    this.inFlight = Math.max(0, this.inFlight - 1)
  }
}

const malformed = (message: string, cause?: unknown) =>
  fail(new Malformed({ message, ...(cause !== undefined ? { cause } : {}) }))

/** Read one `Message` (EOF, oversize, bad protobuf → Malformed). */
export const readMessage = (msgs: LengthPrefixed.Messages): Effect.Effect<Message, AutoNatError> =>
  msgs.readOne.pipe(
    Effect.mapError((e) => malformed(`reading a message: ${e.message}`, e)),
    Effect.flatMap((bytes) =>
      Effect.mapError(Effect.fromResult(Message.decode(bytes)), (e) => malformed(`decoding a message: ${e.message}`, e))
    )
  )

/** The requester's IP (its connection's remote address), as text; undefined when not an IP. */
const ipOf = (addr: Multiaddr.Multiaddr): string | undefined => Multiaddr.ipBytes(addr)?.join(",")

const respond = (msgs: LengthPrefixed.Messages, status: number, addrIdx = 0, dialStatus: number = DialStatus.UNUSED) =>
  Effect.andThen(
    msgs.write(Message.encode({ dialResponse: { status, addrIdx, dialStatus } })),
    msgs.closeWrite
  ).pipe(Effect.ignore)

/**
 * §AutoNAT V2 Protocol, server side: admit, read the `DialRequest`, pick the
 * first address we will dial, ask for dial data when its IP is not the
 * requester's (never dialing before it all arrived), dial back on a separate
 * connection with the nonce, answer, close.
 */
export const serve = (
  stream: Connection.Stream,
  conn: Connection.Connection,
  deps: ServerDeps
): Effect.Effect<void, AutoNatError> => {
  const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
  const outcome = (o: Outcome) => Effect.sync(() => deps.onOutcome("v2", o))
  const refuse = (status: number, reason: RefuseReason) => Effect.andThen(respond(msgs, status), outcome(reason))
  const exchange = Effect.gen(function*() {
    // the request comes first, whatever happens next (so a refusal is read as an answer to it)
    const msg = yield* readMessage(msgs)
    const request = msg.dialRequest
    if (request === undefined || kindOf(msg) !== "dialRequest") {
      return yield* malformed(`expected a DialRequest, got ${kindOf(msg)}`)
    }
    // a relayed requester's IP is the relay's: nothing can be checked through it (v1 §Protocol says the same)
    if (MultiaddrNet.isRelayed(conn.remoteAddr)) return yield* refuse(ResponseStatus.E_REQUEST_REJECTED, "relayed")
    const observedIp = ipOf(conn.remoteAddr)
    if (observedIp === undefined) return yield* refuse(ResponseStatus.E_REQUEST_REJECTED, "no_observed_ip")
    const addrs = parseAddrs(request.addrs)
    const idx = addrs.findIndex((a) => a !== undefined && deps.willDial(a, conn.remotePeer))
    if (idx < 0) return yield* refuse(ResponseStatus.E_DIAL_REFUSED, "no_dialable_addr")
    const addr = addrs[idx]!
    if (ipOf(addr) !== observedIp) {
      // §Amplification Attack Prevention: the requester pays in bytes before we dial another IP
      const numBytes = yield* deps.dialDataBytes
      yield* msgs.write(Message.encode({ dialDataRequest: { addrIdx: idx, numBytes: BigInt(numBytes) } })).pipe(
        Effect.mapError((e) => malformed(`writing the DialDataRequest: ${e.message}`, e))
      )
      let received = 0
      while (received < numBytes) {
        const bytes = yield* msgs.read.pipe(
          Effect.mapError((e) => fail(new DialDataMissing({ message: `reading dial data: ${e.message}`, cause: e })))
        )
        if (bytes === undefined) {
          return yield* fail(new DialDataMissing({ message: `stream ended after ${received} of ${numBytes} bytes` }))
        }
        const data = Message.decode(bytes)
        if (Result.isFailure(data) || data.success.dialDataResponse === undefined) {
          return yield* malformed("expected a DialDataResponse")
        }
        received += data.success.dialDataResponse.data.byteLength
      }
    }
    const dialStatus = yield* deps.dialBack(addr, conn.remotePeer, request.nonce)
    yield* respond(msgs, ResponseStatus.OK, idx, dialStatus)
    yield* outcome(
      dialStatus === DialStatus.OK ? "ok" : dialStatus === DialStatus.E_DIAL_ERROR ? "dial_error" : "dial_back_error"
    )
  })
  // a refused request is read first (bounded) so the answer is read as its answer;
  // answered and closed cleanly: a refusal is not a failure of the exchange
  const refused = (reason: RefuseReason) =>
    Effect.andThen(
      readMessage(msgs).pipe(Effect.timeoutOption(Duration.seconds(1)), Effect.ignore),
      refuse(ResponseStatus.E_REQUEST_REJECTED, reason)
    )
  return guarded(stream, conn, deps, "v2", refused, exchange)
}

/**
 * autonat-v1.md §AutoNAT Protocol, server side: read a `DIAL`, dial back only
 * addresses on the requester's observed IP (the spec's MUST NOT; relayed
 * requesters are refused), answer `OK` with the address reached, or
 * `E_DIAL_ERROR`, `E_DIAL_REFUSED`, `E_BAD_REQUEST`.
 */
export const serveV1 = (
  stream: Connection.Stream,
  conn: Connection.Connection,
  deps: ServerDeps
): Effect.Effect<void, AutoNatError> => {
  const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
  const outcome = (o: Outcome) => Effect.sync(() => deps.onOutcome("v1", o))
  const answer = (status: number, statusText: string, addr?: Multiaddr.Multiaddr) =>
    Effect.andThen(
      msgs.write(V1Message.encode({
        type: V1Type.DIAL_RESPONSE,
        dialResponse: { status, statusText, ...(addr !== undefined ? { addr: Multiaddr.toBytes(addr) } : {}) }
      })),
      msgs.closeWrite
    ).pipe(Effect.ignore)
  const exchange = Effect.gen(function*() {
    const bytes = yield* msgs.readOne.pipe(Effect.mapError((e) => malformed(`reading a message: ${e.message}`, e)))
    const decoded = V1Message.decode(bytes)
    if (Result.isFailure(decoded)) {
      yield* answer(V1Status.E_BAD_REQUEST, "malformed message")
      return yield* malformed(`decoding a v1 message: ${decoded.failure.message}`, decoded.failure)
    }
    const peer = decoded.success.dial?.peer
    if (decoded.success.type !== V1Type.DIAL || peer === undefined) {
      yield* answer(V1Status.E_BAD_REQUEST, "expected a DIAL")
      return yield* malformed("expected a DIAL message")
    }
    if (peer.id !== undefined) {
      const id = PeerId.fromBytes(peer.id)
      if (Result.isFailure(id) || !PeerId.equals(id.success, conn.remotePeer)) {
        yield* answer(V1Status.E_BAD_REQUEST, "peer id mismatch")
        return yield* malformed("the DIAL names another peer")
      }
    }
    if (MultiaddrNet.isRelayed(conn.remoteAddr)) {
      yield* answer(V1Status.E_DIAL_REFUSED, "relayed connection")
      return yield* outcome("relayed")
    }
    const observedIp = ipOf(conn.remoteAddr)
    // only addresses on the observed IP (v1 §AutoNAT Protocol MUST NOT), that we would dial at all
    const addrs = parseAddrs(peer.addrs).filter((a): a is Multiaddr.Multiaddr =>
      a !== undefined && observedIp !== undefined && ipOf(a) === observedIp && deps.willDial(a, conn.remotePeer)
    )
    if (addrs.length === 0) {
      yield* answer(V1Status.E_DIAL_REFUSED, "no dialable addresses")
      return yield* outcome("no_dialable_addr")
    }
    const reached = yield* deps.dialAny(addrs, conn.remotePeer)
    if (reached === undefined) {
      yield* answer(V1Status.E_DIAL_ERROR, "dial failed")
      return yield* outcome("dial_error")
    }
    yield* answer(V1Status.OK, "OK", reached)
    yield* outcome("ok")
  })
  const refused = (reason: RefuseReason) =>
    Effect.andThen(answer(V1Status.E_DIAL_REFUSED, "rate limited"), outcome(reason))
  return guarded(stream, conn, deps, "v1", refused, exchange)
}

/** Admit (else `refused`), run `exchange` within the timeout; a failure resets the stream; the slot is released. */
const guarded = (
  stream: Connection.Stream,
  conn: Connection.Connection,
  deps: ServerDeps,
  version: "v1" | "v2",
  refused: (reason: RefuseReason) => Effect.Effect<void>,
  exchange: Effect.Effect<void, AutoNatError>
): Effect.Effect<void, AutoNatError> =>
  Effect.gen(function*() {
    const refusal = yield* deps.admit(conn.remotePeer.toString())
    if (refusal !== undefined) return yield* refused(refusal)
    const outcome = (o: Outcome) => Effect.sync(() => deps.onOutcome(version, o))
    yield* exchange.pipe(
      Effect.timeoutOrElse({
        duration: deps.timeout,
        orElse: () =>
          Effect.andThen(
            outcome("timeout"),
            Effect.fail(fail(new Timeout({ millis: Duration.toMillis(deps.timeout) })))
          )
      }),
      Effect.tapError((e) =>
        e.reason._tag === "Malformed"
          ? outcome("malformed")
          : e.reason._tag === "DialDataMissing"
          ? outcome("data_missing")
          : Effect.void
      ),
      Effect.tapError(() => stream.reset),
      Effect.ensuring(deps.done)
    )
  })
