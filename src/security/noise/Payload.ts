/**
 * The libp2p Noise handshake payload (noise-libp2p spec §The libp2p Handshake
 * Payload and §Noise Extensions):
 *
 * ```protobuf
 * syntax = "proto2";
 * message NoiseExtensions {
 *   repeated bytes webtransport_certhashes = 1;
 *   repeated string stream_muxers = 2;
 * }
 * message NoiseHandshakePayload {
 *   optional bytes identity_key = 1;
 *   optional bytes identity_sig = 2;
 *   optional NoiseExtensions extensions = 4;
 * }
 * ```
 *
 * `identity_key` is the peer-ids spec `PublicKey` message; `identity_sig` is
 * the identity key's signature of `"noise-libp2p-static-key:" ‖ s` where `s` is
 * the sender's static X25519 public key (RFC 7748 §5 bytes).
 *
 * {@link verify} checks, in this order: the key decodes, it belongs to the
 * expected peer (when one is expected), the signature verifies.
 *
 * @since 0.1.0
 */
import { Result } from "effect"
import * as Keys from "../../core/Keys.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"
import { SecurityError } from "../SecureChannel.ts"

export interface NoiseExtensions {
  readonly webtransport_certhashes: ReadonlyArray<Uint8Array>
  readonly stream_muxers: ReadonlyArray<string>
}

export interface NoiseHandshakePayload {
  readonly identity_key?: Uint8Array
  readonly identity_sig?: Uint8Array
  readonly extensions?: NoiseExtensions
}

const proto = Protobuf.define(`
syntax = "proto2";
message NoiseExtensions {
  repeated bytes webtransport_certhashes = 1;
  repeated string stream_muxers = 2;
}
message NoiseHandshakePayload {
  optional bytes identity_key = 1;
  optional bytes identity_sig = 2;
  optional NoiseExtensions extensions = 4;
}
`)

export const codec = proto.codec<NoiseHandshakePayload>("NoiseHandshakePayload")

/** The prefix of the signed data (§The libp2p Handshake Payload). */
export const SIGNATURE_PREFIX = new TextEncoder().encode("noise-libp2p-static-key:")

/** `"noise-libp2p-static-key:" ‖ staticKey`. */
export const signedData = (staticKey: Uint8Array): Uint8Array => {
  const out = new Uint8Array(SIGNATURE_PREFIX.byteLength + staticKey.byteLength)
  out.set(SIGNATURE_PREFIX, 0)
  out.set(staticKey, SIGNATURE_PREFIX.byteLength)
  return out
}

/** The signature of our static key by our identity key. */
export const sign = (identity: Keys.PrivateKey, staticKey: Uint8Array): Result.Result<Uint8Array, SecurityError> =>
  Result.mapError(
    identity.sign(signedData(staticKey)),
    (e) => new SecurityError({ reason: "InvalidPayload", message: `noise: could not sign the static key: ${e.message}` })
  )

/** What a verified payload tells about the remote. */
export interface Verified {
  readonly publicKey: Keys.PublicKey
  readonly peerId: PeerId.PeerId
  readonly extensions: NoiseExtensions | undefined
}

/**
 * Decode and check a remote payload against the remote static key `rs`
 * received in the same handshake. `expected`: the peer we dialed, if known.
 */
export const verify = (
  bytes: Uint8Array,
  rs: Uint8Array,
  expected: PeerId.PeerId | undefined
): Result.Result<Verified, SecurityError> => {
  const decoded = codec.decode(bytes)
  if (Result.isFailure(decoded)) {
    return Result.fail(
      new SecurityError({ reason: "InvalidPayload", message: `noise: bad handshake payload: ${decoded.failure.message}` })
    )
  }
  const payload = decoded.success
  if (payload.identity_key === undefined) {
    return Result.fail(new SecurityError({ reason: "InvalidPayload", message: "noise: the handshake payload has no identity key" }))
  }
  const key = Keys.publicKeyFromProtobuf(payload.identity_key)
  if (Result.isFailure(key)) {
    return Result.fail(
      new SecurityError({ reason: "InvalidPayload", message: `noise: bad identity key: ${key.failure.message}` })
    )
  }
  const publicKey = key.success
  const peerId = PeerId.fromPublicKey(publicKey)
  if (expected !== undefined && !PeerId.equals(expected, peerId)) {
    return Result.fail(
      new SecurityError({
        reason: "PeerIdMismatch",
        message: `noise: expected peer ${expected.toString()}, the remote authenticated as ${peerId.toString()}`
      })
    )
  }
  if (payload.identity_sig === undefined || !publicKey.verify(signedData(rs), payload.identity_sig)) {
    return Result.fail(
      new SecurityError({ reason: "InvalidSignature", message: "noise: the identity signature over the static key does not verify" })
    )
  }
  return Result.succeed({ publicKey, peerId, extensions: payload.extensions })
}
