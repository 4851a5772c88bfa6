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
 * A {@link SignatureCache} remembers signatures that verified: a peer's static
 * key lives as long as its Noise instance (js-libp2p and go-libp2p make one per
 * node, as we do), so every handshake with the same peer carries the same
 * (identity key, static key, signature), and an Ed25519 verification costs
 * about three times a signature. The check is a pure function of those bytes,
 * so a triple that verified once verifies again; only successes are kept, keyed
 * by the SHA-256 of the three byte strings.
 *
 * @since 0.1.0
 */
import { Result } from "effect"
import * as crypto from "node:crypto"
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
    (e) =>
      new SecurityError({
        reason: "InvalidPayload",
        message: `noise: could not sign the static key: ${e.message}`,
        cause: e
      })
  )

const badSignature = () =>
  new SecurityError({
    reason: "InvalidSignature",
    message: "noise: the identity signature over the static key does not verify"
  })

/** What a verified payload tells about the remote. */
export interface Verified {
  readonly publicKey: Keys.PublicKey
  readonly peerId: PeerId.PeerId
  readonly extensions: NoiseExtensions | undefined
}

/**
 * The most recent signature checks that passed, at most `capacity` of them
 * (least recently used dropped first); about 100 bytes each.
 */
export class SignatureCache {
  private readonly capacity: number
  private readonly entries = new Set<string>()
  constructor(capacity = 128) {
    this.capacity = capacity
  }
  /** The cache key of `(identityKey, staticKey, signature)`. */
  static key(identityKey: Uint8Array, staticKey: Uint8Array, signature: Uint8Array): string {
    // Lengths first, so that no two different triples give the same hashed bytes.
    const lengths = new Uint8Array(6)
    const view = new DataView(lengths.buffer)
    view.setUint16(0, identityKey.byteLength)
    view.setUint16(2, staticKey.byteLength)
    view.setUint16(4, signature.byteLength)
    return crypto.createHash("sha256").update(lengths).update(identityKey).update(staticKey).update(signature).digest(
      "base64"
    )
  }
  /** Whether the check with this key passed before (and marks it recently used). */
  has(key: string): boolean {
    if (!this.entries.delete(key)) return false
    this.entries.add(key)
    return true
  }
  /** Record a check that passed. */
  add(key: string): void {
    this.entries.delete(key)
    this.entries.add(key)
    if (this.entries.size > this.capacity) {
      for (const oldest of this.entries) {
        this.entries.delete(oldest)
        break
      }
    }
  }
  get size(): number {
    return this.entries.size
  }
}

/**
 * Decode and check a remote payload against the remote static key `rs`
 * received in the same handshake. `expected`: the peer we dialed, if known.
 * `cache`: signatures that verified before (see {@link SignatureCache}).
 */
export const verify = (
  bytes: Uint8Array,
  rs: Uint8Array,
  expected: PeerId.PeerId | undefined,
  cache?: SignatureCache
): Result.Result<Verified, SecurityError> => {
  const decoded = codec.decode(bytes)
  if (Result.isFailure(decoded)) {
    return Result.fail(
      new SecurityError({
        reason: "InvalidPayload",
        message: `noise: bad handshake payload: ${decoded.failure.message}`,
        cause: decoded.failure
      })
    )
  }
  const payload = decoded.success
  if (payload.identity_key === undefined) {
    return Result.fail(
      new SecurityError({ reason: "InvalidPayload", message: "noise: the handshake payload has no identity key" })
    )
  }
  const key = Keys.publicKeyFromProtobuf(payload.identity_key)
  if (Result.isFailure(key)) {
    return Result.fail(
      new SecurityError({
        reason: "InvalidPayload",
        message: `noise: bad identity key: ${key.failure.message}`,
        cause: key.failure
      })
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
  const sig = payload.identity_sig
  if (sig === undefined) return Result.fail(badSignature())
  const cacheKey = cache === undefined ? undefined : SignatureCache.key(payload.identity_key, rs, sig)
  if (cacheKey === undefined || !cache!.has(cacheKey)) {
    if (!publicKey.verify(signedData(rs), sig)) return Result.fail(badSignature())
    if (cacheKey !== undefined) cache!.add(cacheKey)
  }
  return Result.succeed({ publicKey, peerId, extensions: payload.extensions })
}
