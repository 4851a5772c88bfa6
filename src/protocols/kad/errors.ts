/**
 * Kad-DHT's one public error, `KadError`, whose `reason` is one of the classes
 * below; each keeps the lower error it came from as `cause` (a dial failure's
 * `DialError`, a stream's `DuplexError`, a decoder's `ProtobufError`…).
 * Re-exported by `Kad.ts`.
 *
 * @internal
 */
import { Schema } from "effect"

/** A peer sent bytes that are not a Kad message (bad varint, over the size limit, bad protobuf, unknown type). */
export class Malformed extends Schema.TaggedError<Malformed>()("Malformed", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** Reaching a peer failed: the dial, the stream, or the protocol negotiation. */
export class Unreachable extends Schema.TaggedError<Unreachable>()("Unreachable", {
  peer: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** A peer did not answer within the per-peer timeout. */
export class PeerTimeout extends Schema.TaggedError<PeerTimeout>()("PeerTimeout", {
  peer: Schema.String,
  millis: Schema.Number
}) {
  override readonly message = `peer ${this.peer} did not answer within ${this.millis} ms`
}

/** The whole query ran out of time before any useful answer. */
export class QueryTimeout extends Schema.TaggedError<QueryTimeout>()("QueryTimeout", {
  millis: Schema.Number
}) {
  override readonly message = `the query did not complete within ${this.millis} ms`
}

/** A record failed its namespace's validator, or its namespace has none. */
export class InvalidRecord extends Schema.TaggedError<InvalidRecord>()("InvalidRecord", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** Nothing found: no record, no provider, no peer with that id. */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", {
  message: Schema.String
}) {}

/** No peer to ask: the routing table is empty. */
export class NoPeers extends Schema.TaggedError<NoPeers>()("NoPeers", {}) {
  override readonly message = "the routing table is empty: no peer to ask"
}

/** The datastore failed (the `DatastoreError` is the cause). */
export class StoreFailed extends Schema.TaggedError<StoreFailed>()("StoreFailed", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export const KadErrorReason = Schema.Union([
  Malformed,
  Unreachable,
  PeerTimeout,
  QueryTimeout,
  InvalidRecord,
  NotFound,
  NoPeers,
  StoreFailed
])
export type KadErrorReason = typeof KadErrorReason.Type

export class KadError extends Schema.TaggedError<KadError>()("KadError", {
  reason: KadErrorReason
}) {
  override readonly message = `${this.reason._tag}: ${this.reason.message}`
}

export const fail = (reason: KadErrorReason): KadError => new KadError({ reason })
