/**
 * The rendezvous point's responder (rendezvous spec §The Protocol,
 * §Registration Lifetime, §Interaction): requests on one inbound stream, each
 * a varint length-prefixed `Message` of at most `MAX_REQUEST_SIZE`, until the
 * remote closes its side. A pure function of a stream and a {@link Handlers}
 * value, testable on `Duplex.pair`.
 *
 * - `REGISTER`: the namespace must be 1…`maxNamespaceLength` bytes
 *   (`E_INVALID_NAMESPACE`); the signed peer record must verify
 *   (`E_INVALID_SIGNED_PEER_RECORD`) and be the connection's peer's own
 *   (`E_NOT_AUTHORIZED`: "only the peer initiating the registration can
 *   register itself"); the TTL (default 2 h) must lie in [`minTtl`, `maxTtl`]
 *   (`E_INVALID_TTL`). A peer over its registration limit gets
 *   `E_NOT_AUTHORIZED`, a full namespace or point `E_UNAVAILABLE`, a datastore
 *   failure `E_INTERNAL_ERROR`. The answer carries the granted TTL.
 * - `UNREGISTER`: drops the sender's registration in the namespace; no answer.
 * - `DISCOVER`: live registrations of the namespace (all when it is absent),
 *   at most `limit` (default and cap `maxDiscoverLimit`) and at most
 *   `MAX_MESSAGE_SIZE` bytes, after the cookie's position; a cookie that is
 *   not ours for that namespace is `E_INVALID_COOKIE`.
 * - Anything else (a response type, an unknown type, a request without its
 *   body) fails with `RendezvousError` `Malformed`, which resets the stream.
 *
 * @internal
 */
import { Duration, Effect, Result } from "effect"
import type * as Duplex from "../../core/Duplex.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as PeerRecord from "../../core/PeerRecord.ts"
import type * as Reader from "../../core/Reader.ts"
import { fail, Malformed, type RendezvousError, Timeout, Unreachable } from "./errors.ts"
import {
  type Discover,
  MAX_MESSAGE_SIZE,
  MAX_REQUEST_SIZE,
  MAX_SIGNED_RECORD_SIZE,
  MessageType,
  type Register,
  registrationSize,
  RendezvousMessage,
  ResponseStatus
} from "./messages.ts"
import * as Records from "./records.ts"
import type { RegistrationStore } from "./store.ts"

export interface ServerLimits {
  /** Seconds. */
  readonly defaultTtl: number
  readonly minTtl: number
  readonly maxTtl: number
  readonly maxNamespaceLength: number
  readonly maxDiscoverLimit: number
}

export interface Handlers {
  readonly store: RegistrationStore
  readonly limits: ServerLimits
  readonly now: Effect.Effect<number>
  /** Told each request's type (its name, or "other") and, for those answered, the status. */
  readonly onRequest?: (type: number, status: number | undefined, ns: string | undefined) => void
}

const malformed = (message: string, cause?: unknown) =>
  fail(new Malformed(cause === undefined ? { message } : { message, cause }))

/** A failure to read or write a message: `Malformed` for bad framing, `Unreachable` for a failed stream. */
export const streamError = (
  peer: PeerId.PeerId,
  doing: string,
  e: Reader.ReaderError | Duplex.DuplexError
): RendezvousError =>
  e._tag === "ReaderError" && e.reason !== "UnexpectedEOF"
    ? malformed(`${doing}: ${e.message}`, e)
    : fail(new Unreachable({ peer: peer.toString(), message: `${doing}: ${e.message}`, cause: e }))

/** Decode a message body. */
export const decode = (bytes: Uint8Array): Effect.Effect<RendezvousMessage, RendezvousError> => {
  const msg = RendezvousMessage.decode(bytes)
  return Result.isSuccess(msg)
    ? Effect.succeed(msg.success)
    : Effect.fail(malformed(`not a rendezvous message: ${msg.failure.message}`, msg.failure))
}

const utf8Length = (s: string) => Buffer.byteLength(s, "utf8")

/** Why a namespace is refused, or undefined. */
export const invalidNamespace = (ns: string | undefined, max: number, required: boolean): string | undefined =>
  ns === undefined || ns.length === 0
    ? required ? "the namespace is empty" : undefined
    : utf8Length(ns) > max
    ? `the namespace is longer than ${max} bytes`
    : undefined

const registerResponse = (status: number, statusText: string, ttl?: number): RendezvousMessage => ({
  type: MessageType.REGISTER_RESPONSE,
  registerResponse: { status, statusText, ...(ttl !== undefined ? { ttl: BigInt(ttl) } : {}) }
})

const discoverError = (status: number, statusText: string): RendezvousMessage => ({
  type: MessageType.DISCOVER_RESPONSE,
  discoverResponse: { registrations: [], status, statusText }
})

/** The answer to a `REGISTER` from `from`. */
export const register = (h: Handlers, req: Register, from: PeerId.PeerId): Effect.Effect<RendezvousMessage> =>
  Effect.gen(function*() {
    const badNs = invalidNamespace(req.ns, h.limits.maxNamespaceLength, true)
    if (badNs !== undefined) return registerResponse(ResponseStatus.E_INVALID_NAMESPACE, badNs)
    const ns = req.ns!
    const bytes = req.signedPeerRecord
    if (bytes === undefined || bytes.byteLength > MAX_SIGNED_RECORD_SIZE) {
      return registerResponse(
        ResponseStatus.E_INVALID_SIGNED_PEER_RECORD,
        bytes === undefined ? "no signed peer record" : `the signed peer record is over ${MAX_SIGNED_RECORD_SIZE} bytes`
      )
    }
    const record = Records.open(bytes)
    if (Result.isFailure(record)) {
      return registerResponse(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD, record.failure.message)
    }
    if (!PeerId.equals(record.success.peerId, from)) {
      return registerResponse(ResponseStatus.E_NOT_AUTHORIZED, "the signed peer record is not the sender's")
    }
    const addrs = PeerRecord.multiaddrs(record.success)
    if (Result.isFailure(addrs)) {
      return registerResponse(ResponseStatus.E_INVALID_SIGNED_PEER_RECORD, addrs.failure.message)
    }
    const ttl = req.ttl === undefined ? h.limits.defaultTtl : Number(req.ttl)
    if (ttl < h.limits.minTtl || ttl > h.limits.maxTtl) {
      return registerResponse(
        ResponseStatus.E_INVALID_TTL,
        `the TTL must be between ${h.limits.minTtl} and ${h.limits.maxTtl} seconds`
      )
    }
    const now = yield* h.now
    const refused = yield* Effect.result(h.store.add({
      ns,
      peerId: from,
      signedPeerRecord: bytes,
      addrs: addrs.success,
      ttl,
      expires: now + ttl * 1000
    }))
    if (Result.isFailure(refused)) {
      yield* Effect.logWarning(`rendezvous: registration not stored: ${refused.failure.message}`)
      return registerResponse(ResponseStatus.E_INTERNAL_ERROR, "the registration could not be stored")
    }
    switch (refused.success) {
      case "PeerLimit":
        return registerResponse(ResponseStatus.E_NOT_AUTHORIZED, "too many registrations of this peer")
      case "NamespaceLimit":
        return registerResponse(ResponseStatus.E_UNAVAILABLE, "too many registrations in this namespace")
      case "Full":
        return registerResponse(ResponseStatus.E_UNAVAILABLE, "the rendezvous point is full")
      default:
        return registerResponse(ResponseStatus.OK, "OK", ttl)
    }
  })

/** The answer to a `DISCOVER`. */
export const discover = (h: Handlers, req: Discover): Effect.Effect<RendezvousMessage> =>
  Effect.gen(function*() {
    const badNs = invalidNamespace(req.ns, h.limits.maxNamespaceLength, false)
    if (badNs !== undefined) return discoverError(ResponseStatus.E_INVALID_NAMESPACE, badNs)
    const ns = req.ns === undefined || req.ns.length === 0 ? undefined : req.ns
    let after = 0
    if (req.cookie !== undefined && req.cookie.byteLength > 0) {
      const n = h.store.openCookie(ns, req.cookie)
      if (n === undefined) {
        return discoverError(ResponseStatus.E_INVALID_COOKIE, "not a cookie of this point for this namespace")
      }
      after = n
    }
    const max = h.limits.maxDiscoverLimit
    const limit = req.limit === undefined || req.limit === 0n || req.limit > BigInt(max) ? max : Number(req.limit)
    let size = 64 // type, cookie, status
    const regs = yield* h.store.discover(ns, after, limit, (reg) => {
      size += registrationSize(toRegister(reg))
      return size <= MAX_MESSAGE_SIZE
    })
    const last = regs.length > 0 ? regs[regs.length - 1]!.seq : after
    const now = yield* h.now
    return {
      type: MessageType.DISCOVER_RESPONSE,
      discoverResponse: {
        registrations: regs.map((r) => ({
          ...toRegister(r),
          ttl: BigInt(Math.max(0, Math.ceil((r.expires - now) / 1000)))
        })),
        cookie: h.store.cookie(ns, last),
        status: ResponseStatus.OK,
        statusText: "OK"
      }
    }
  })

const toRegister = (r: { readonly ns: string; readonly signedPeerRecord: Uint8Array; readonly ttl: number }) => ({
  ns: r.ns,
  signedPeerRecord: r.signedPeerRecord,
  ttl: BigInt(r.ttl)
})

/** The answer to one request (`undefined` for `UNREGISTER`, which has none). */
export const handle = (
  h: Handlers,
  req: RendezvousMessage,
  from: PeerId.PeerId
): Effect.Effect<RendezvousMessage | undefined, RendezvousError> =>
  Effect.gen(function*() {
    switch (req.type) {
      case MessageType.REGISTER: {
        if (req.register === undefined) return yield* malformed("REGISTER without its register field")
        const res = yield* register(h, req.register, from)
        h.onRequest?.(MessageType.REGISTER, res.registerResponse?.status, req.register.ns)
        return res
      }
      case MessageType.UNREGISTER: {
        const ns = req.unregister?.ns
        if (invalidNamespace(ns, h.limits.maxNamespaceLength, true) !== undefined) {
          return yield* malformed("UNREGISTER without a valid namespace")
        }
        yield* h.store.remove(ns!, from)
        h.onRequest?.(MessageType.UNREGISTER, undefined, ns)
        return undefined
      }
      case MessageType.DISCOVER: {
        const res = yield* discover(h, req.discover ?? {})
        h.onRequest?.(MessageType.DISCOVER, res.discoverResponse?.status, req.discover?.ns)
        return res
      }
      default:
        h.onRequest?.(req.type ?? -1, undefined, undefined)
        return yield* malformed(`a rendezvous point does not take messages of type ${req.type ?? "(none)"}`)
    }
  })

/** How long an inbound stream may wait for its next request. */
export const IDLE_TIMEOUT = Duration.seconds(10)

/** Answer every request on an inbound stream until the remote closes its side, then close ours. */
export const serve = (
  stream: Duplex.Duplex,
  from: PeerId.PeerId,
  h: Handlers,
  options: { readonly idleTimeout?: Duration.Duration } = {}
): Effect.Effect<void, RendezvousError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_REQUEST_SIZE })
    const idle = options.idleTimeout ?? IDLE_TIMEOUT
    const read = Effect.mapError(msgs.read, (e) => streamError(from, "reading a request", e)).pipe(
      Effect.timeoutOrElse({
        duration: idle,
        orElse: () => Effect.fail(fail(new Timeout({ peer: from.toString(), millis: Duration.toMillis(idle) })))
      })
    )
    while (true) {
      const bytes = yield* read
      if (bytes === undefined) break
      const req = yield* decode(bytes)
      const res = yield* handle(h, req, from)
      if (res !== undefined) {
        yield* Effect.mapError(
          msgs.write(RendezvousMessage.encode(res)),
          (e) => streamError(from, "writing an answer", e)
        )
      }
    }
    yield* msgs.closeWrite
  })
