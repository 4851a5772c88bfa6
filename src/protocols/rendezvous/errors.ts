/**
 * Rendezvous's one public error, `RendezvousError`, whose `reason` is one of
 * the classes below; each keeps the lower error it came from as `cause`.
 * Re-exported by `Rendezvous.ts`.
 *
 * @internal
 */
import { Schema } from "effect"

/** A peer sent bytes that are not a rendezvous message (bad varint, over the size limit, bad protobuf, a wrong type). */
export class Malformed extends Schema.TaggedError<Malformed>()("Malformed", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** Reaching the rendezvous point failed: the dial, the stream, or the protocol negotiation. */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  peer: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** The peer did not answer (or, server side, send a request) in time. */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", {
  peer: Schema.String,
  millis: Schema.Number
}) {
  override readonly message = `peer ${this.peer} did not answer within ${this.millis} ms`
}

/**
 * The rendezvous point answered with a status other than `OK` (spec §Protobuf
 * `ResponseStatus`): `status` is the number, `statusName` its spec name
 * (`E_INVALID_TTL`, `E_INVALID_COOKIE`, `E_NOT_AUTHORIZED`…).
 */
export class Refused extends Schema.TaggedError<Refused>()("Refused", {
  status: Schema.Number,
  statusName: Schema.String,
  message: Schema.String
}) {}

/** Our own signed peer record could not be made. */
export class RecordFailed extends Schema.TaggedError<RecordFailed>()("RecordFailed", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** The datastore failed (the `DatastoreError` is the cause). */
export class StoreFailed extends Schema.TaggedError<StoreFailed>()("StoreFailed", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export const RendezvousErrorReason = Schema.Union([Malformed, Unreachable, Timeout, Refused, RecordFailed, StoreFailed])
export type RendezvousErrorReason = typeof RendezvousErrorReason.Type

export class RendezvousError extends Schema.TaggedError<RendezvousError>()("RendezvousError", {
  reason: RendezvousErrorReason
}) {
  override readonly message = `${this.reason._tag}: ${this.reason.message}`
}

export const fail = (reason: RendezvousErrorReason): RendezvousError => new RendezvousError({ reason })
