/**
 * AutoNAT's one public error, `AutoNatError`, whose `reason` is one of the
 * classes below; a reason that wraps a lower failure keeps it as `cause`.
 * Re-exported by `AutoNat.ts`.
 *
 * @internal
 */
import { Schema } from "effect"

/** A peer sent bytes that are not the expected AutoNAT message (bad varint, too large, bad protobuf, wrong type). */
export class Malformed extends Schema.TaggedError<Malformed>()("Malformed", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** The server could not be reached: the dial, the stream or the protocol negotiation failed. */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  peer: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** The exchange did not finish in time. */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", { millis: Schema.Number }) {
  override readonly message = `the AutoNAT exchange did not finish within ${this.millis} ms`
}

/** The server answered `E_REQUEST_REJECTED` (rate limit, resources) — or, on our server, why we refused. */
export class Rejected extends Schema.TaggedError<Rejected>()("Rejected", { message: Schema.String }) {}

/** The server answered `E_DIAL_REFUSED`: it would dial none of the addresses. */
export class Refused extends Schema.TaggedError<Refused>()("Refused", { message: Schema.String }) {}

/** The server answered `E_INTERNAL_ERROR`, or a status this implementation does not know (spec: discard it). */
export class ServerError extends Schema.TaggedError<ServerError>()("ServerError", { status: Schema.Number }) {
  override readonly message = `the server answered status ${this.status}`
}

/** The server asked for more dial data than we send (`maxDialDataBytes`), or for an address we did not send. */
export class DialDataRefused extends Schema.TaggedError<DialDataRefused>()("DialDataRefused", {
  message: Schema.String
}) {}

/** The server said it dialed us back, but no dial-back with our nonce arrived (a wrong nonce is discarded). */
export class NoDialBack extends Schema.TaggedError<NoDialBack>()("NoDialBack", { message: Schema.String }) {}

/** The requester stopped before sending the dial data the server asked for (nothing was dialed). */
export class DialDataMissing extends Schema.TaggedError<DialDataMissing>()("DialDataMissing", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export const AutoNatErrorReason = Schema.Union([
  Malformed,
  Unreachable,
  Timeout,
  Rejected,
  Refused,
  ServerError,
  DialDataRefused,
  NoDialBack,
  DialDataMissing
])
export type AutoNatErrorReason = typeof AutoNatErrorReason.Type

export class AutoNatError extends Schema.TaggedError<AutoNatError>()("AutoNatError", {
  reason: AutoNatErrorReason
}) {
  override readonly message = `${this.reason._tag}: ${this.reason.message}`
}

export const fail = (reason: AutoNatErrorReason): AutoNatError => new AutoNatError({ reason })
