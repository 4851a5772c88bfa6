/**
 * AutoNAT v2's client side as functions of a stream: the dial request
 * (autonat-v2.md §AutoNAT V2 Protocol, §Amplification Attack Prevention) and
 * the answer to a dial back (the nonce check: §"The client MUST check that
 * the nonce received in the DialBack is the same as the nonce it sent").
 *
 * @internal
 */
import { Effect, Result } from "effect"
import type * as Connection from "../../connection/Connection.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import { type AutoNatError, DialDataRefused, fail, Malformed, Refused, Rejected, ServerError } from "./errors.ts"
import {
  DIAL_DATA_CHUNK,
  DialBack,
  DialBackResponse,
  DialStatus,
  kindOf,
  MAX_MESSAGE_SIZE,
  Message,
  ResponseStatus
} from "./messages.ts"
import { readMessage } from "./server.ts"

const malformed = (message: string, cause?: unknown) =>
  fail(new Malformed({ message, ...(cause !== undefined ? { cause } : {}) }))

/** What the server said about the address it chose. */
export interface DialResult {
  readonly addrIdx: number
  /** `DialStatus.OK`, `E_DIAL_ERROR` or `E_DIAL_BACK_ERROR`. */
  readonly dialStatus: number
}

/** One chunk of dial data, made once (§Amplification: "serialize their DialDataResponse message once"). */
const chunk = Message.encode({ dialDataResponse: { data: new Uint8Array(DIAL_DATA_CHUNK) } })

/**
 * Send a `DialRequest` for `addrs` with `nonce`; pay dial data when asked (up
 * to `maxDialDataBytes`, else refuse by failing — the caller resets the
 * stream); return the `DialResponse` of an `OK` status, or fail with the
 * status's reason.
 */
export const request = (
  stream: Connection.Stream,
  addrs: ReadonlyArray<Uint8Array>,
  nonce: bigint,
  maxDialDataBytes: number
): Effect.Effect<DialResult, AutoNatError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
    const write = (bytes: ReadonlyArray<Uint8Array>) =>
      Effect.mapError(msgs.write(...bytes), (e) => malformed(`writing: ${e.message}`, e))
    yield* write([Message.encode({ dialRequest: { addrs, nonce } })])
    let paid = false
    while (true) {
      const msg = yield* readMessage(msgs)
      const kind = kindOf(msg)
      if (kind === "dialDataRequest" && !paid) {
        const { addrIdx, numBytes } = msg.dialDataRequest!
        if (addrIdx >= addrs.length) {
          return yield* fail(new DialDataRefused({ message: `dial data asked for address ${addrIdx} we did not send` }))
        }
        if (numBytes > BigInt(maxDialDataBytes)) {
          return yield* fail(
            new DialDataRefused({ message: `the server asked ${numBytes} bytes, more than ${maxDialDataBytes}` })
          )
        }
        const chunks = Math.ceil(Number(numBytes) / DIAL_DATA_CHUNK)
        // in batches of 16 chunks (64 KiB), so the muxer's window paces us
        for (let sent = 0; sent < chunks; sent += 16) {
          yield* write(Array.from({ length: Math.min(16, chunks - sent) }, () => chunk))
        }
        paid = true
        continue
      }
      if (kind !== "dialResponse") return yield* malformed(`expected a DialResponse, got ${kind}`)
      const response = msg.dialResponse!
      yield* msgs.closeWrite
      switch (response.status) {
        case ResponseStatus.OK:
          break
        case ResponseStatus.E_REQUEST_REJECTED:
          return yield* fail(new Rejected({ message: "the server rejected the request (E_REQUEST_REJECTED)" }))
        case ResponseStatus.E_DIAL_REFUSED:
          return yield* fail(new Refused({ message: "the server would dial none of the addresses (E_DIAL_REFUSED)" }))
        default:
          return yield* fail(new ServerError({ status: response.status }))
      }
      if (response.addrIdx >= addrs.length) {
        return yield* malformed(`the server dialed address ${response.addrIdx}, we sent ${addrs.length}`)
      }
      if (
        response.dialStatus !== DialStatus.OK && response.dialStatus !== DialStatus.E_DIAL_ERROR
        && response.dialStatus !== DialStatus.E_DIAL_BACK_ERROR
      ) {
        return yield* malformed(`unknown dial status ${response.dialStatus}`)
      }
      return { addrIdx: response.addrIdx, dialStatus: response.dialStatus }
    }
  })

/**
 * Answer a dial back: read the `DialBack`; if `accept(nonce)` (a nonce we are
 * waiting for) answer `OK` and close; else fail `Malformed` (the caller resets).
 */
export const answerDialBack = (
  stream: Connection.Stream,
  accept: (nonce: bigint) => Effect.Effect<boolean>
): Effect.Effect<void, AutoNatError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
    const bytes = yield* msgs.readOne.pipe(Effect.mapError((e) => malformed(`reading the DialBack: ${e.message}`, e)))
    const decoded = DialBack.decode(bytes)
    if (Result.isFailure(decoded)) return yield* malformed(`decoding the DialBack: ${decoded.failure.message}`)
    if (!(yield* accept(decoded.success.nonce))) return yield* malformed("a DialBack with a nonce we did not send")
    yield* msgs.write(DialBackResponse.encode({ status: 0 })).pipe(Effect.ignore)
    yield* msgs.closeWrite
  })

/** Server side of the dial back: send the nonce, read the `DialBackResponse`; `true` when it says OK. */
export const sendDialBack = (stream: Connection.Stream, nonce: bigint): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
    yield* msgs.write(DialBack.encode({ nonce }))
    const bytes = yield* msgs.readOne
    const decoded = DialBackResponse.decode(bytes)
    yield* msgs.closeWrite
    return Result.isSuccess(decoded) && decoded.success.status === 0
  }).pipe(Effect.orElseSucceed(() => false))
