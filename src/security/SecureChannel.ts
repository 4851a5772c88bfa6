/**
 * The SecureChannel contract (libp2p connections spec §Upgrading connections):
 * turn a raw Duplex into an encrypted, authenticated one whose remote peer id
 * is known. Implementations: Noise (`/noise`) and TLS (`/tls/1.0.0`).
 *
 * When the dialer knows the peer it dials (`remotePeer`), a handshake that
 * authenticates any other peer fails with `SecurityError { reason: "PeerIdMismatch" }`.
 *
 * Early muxer negotiation: the channel may carry the list of stream muxers each
 * side supports inside its handshake (Noise extensions, TLS ALPN); when both
 * sides offered lists, `muxer` is the first of the initiator's that the
 * responder supports, and the upgrader skips multistream-select for the muxer.
 * When both offered lists and none matches, the handshake fails with
 * `SecurityError { reason: "NoCommonMuxer" }` (inlined-muxer-negotiation spec
 * §Multiplexer Negotiation over Noise: "the handshake MUST fail").
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Scope } from "effect"
import { Schema } from "effect"
import type * as Duplex from "../core/Duplex.ts"
import type * as Keys from "../core/Keys.ts"
import type * as PeerId from "../core/PeerId.ts"

export const SecurityErrorReason = Schema.Literals([
  "PeerIdMismatch", // the remote authenticated as another peer than expected
  "InvalidSignature", // the identity signature over the static key does not verify
  "InvalidPayload", // the handshake payload could not be decoded / bad public key
  "Decrypt", // an AEAD tag failed
  "MessageTooLarge", // a message over the protocol's limit
  "NonceExhausted", // the nonce space of a cipher state is spent
  "Timeout", // the handshake ran past its deadline
  "Closed", // the stream ended during the handshake
  "NoCommonMuxer" // both sides offered stream muxers early and none matched (inlined-muxer-negotiation spec: MUST fail)
])
export type SecurityErrorReason = typeof SecurityErrorReason.Type

export class SecurityError extends Schema.TaggedError<SecurityError>()("SecurityError", {
  reason: SecurityErrorReason,
  message: Schema.String,
  /** The lower failure this one reports (the stream's `DuplexError`, a TLS socket error, a key error), if any. */
  cause: Schema.optional(Schema.Defect())
}) {}

export interface SecureOptions {
  /** Our identity key (signs the handshake). */
  readonly localKey: Keys.PrivateKey
  /** Outbound: the peer we expect; a different one fails with PeerIdMismatch. */
  readonly remotePeer?: PeerId.PeerId
  /** Stream muxer protocol ids we support, in preference order (for early negotiation). */
  readonly muxers?: ReadonlyArray<string>
  /** Handshake deadline. */
  readonly timeout?: Duration.Input
}

export interface SecuredConnection {
  /** The encrypted byte stream (plaintext in, plaintext out). */
  readonly duplex: Duplex.Duplex
  readonly remotePeer: PeerId.PeerId
  readonly remotePublicKey: Keys.PublicKey
  /** The muxer agreed during the handshake, when both sides offered a list and one matched. */
  readonly muxer?: string
}

export interface SecureChannel {
  /** The multistream-select protocol id, e.g. "/noise". */
  readonly protocol: string
  readonly secureOutbound: (
    raw: Duplex.Duplex,
    options: SecureOptions
  ) => Effect.Effect<SecuredConnection, SecurityError, Scope.Scope>
  readonly secureInbound: (
    raw: Duplex.Duplex,
    options: SecureOptions
  ) => Effect.Effect<SecuredConnection, SecurityError, Scope.Scope>
}
