/**
 * The relay room's one public error, `RelayError` (re-exported by
 * `RelayServer.ts`, `RelayClient.ts` and `RelayTransport.ts`). `reason` says
 * what went wrong; `status` is the spec's status name when a peer answered
 * with one (or the one we answered with); `cause` keeps the lower error (a
 * `DialError`, a `ConnectionError`, a `ReaderError`, a `ProtobufError`, a
 * `VoucherError`).
 *
 * @internal
 */
import { Schema } from "effect"

export const RelayErrorReason = Schema.Literals([
  "Malformed", // bytes that are not a hop/stop message: bad varint, over MAX_MESSAGE_SIZE, bad protobuf, missing fields
  "UnexpectedMessage", // a message of the wrong type for this step
  "Refused", // the relay (or the target) answered a status other than OK (`status` names it)
  "InvalidVoucher", // the reservation's voucher does not open, or names another relay, peer or expiration
  "Stream", // reaching the relay or the target failed: the dial, the stream, the negotiation
  "Timeout", // no answer within the stream timeout
  "NotRunning", // the circuit transport has no relay client bound to it
  "BadAddress" // not a /p2p-circuit address this transport can dial
])
export type RelayErrorReason = typeof RelayErrorReason.Type

export class RelayError extends Schema.TaggedError<RelayError>()("RelayError", {
  reason: RelayErrorReason,
  message: Schema.String,
  status: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect())
}) {}

export const relayError = (reason: RelayErrorReason, message: string, cause?: unknown, status?: string): RelayError =>
  new RelayError({
    reason,
    message,
    ...(cause !== undefined ? { cause } : {}),
    ...(status !== undefined ? { status } : {})
  })
