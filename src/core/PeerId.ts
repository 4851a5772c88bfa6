/**
 * Peer ids, per the peer-ids spec §Peer Ids
 * (https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md#peer-ids):
 * the multihash of the protobuf-encoded public key — the `identity` multihash
 * when that encoding is at most 42 bytes, `sha2-256` otherwise.
 *
 * §String representation: `toString` gives the legacy form (bare base58btc
 * multihash, `12D3Koo…`/`Qm…`, which the spec says to display by default);
 * `toCidString` the CIDv1 form (codec `libp2p-key` 0x72, base32 by default).
 * `fromString` follows §Decoding: a string starting with `1` or `Qm` is a bare
 * base58btc multihash; anything else must be a multibase-encoded CIDv1 whose
 * codec is `libp2p-key` (any multibase the `Multibase` module supports).
 *
 * What `fromBytes` accepts (the multihash): `sha2-256` with a 32-byte digest, or
 * `identity` whose digest is a canonical `PublicKey` message of at most 42 bytes
 * holding a valid key (so the key of an identity peer id is always available).
 * Other hash functions are rejected: the spec derives peer ids with these two only.
 *
 * A `PeerId` is opaque and immutable; it implements Effect's `Equal` and `Hash`
 * (byte equality), so it works as a key of `HashMap`/`HashSet` and in `Equal.equals`.
 *
 * @since 0.1.0
 */
import { Equal, Hash, Option, Pipeable, Result, Schema } from "effect"
import { NodeInspectSymbol } from "effect/Inspectable"
import { CID } from "multiformats/cid"
import * as Digest from "multiformats/hashes/digest"
import * as Strings from "../internal/strings.ts"
import * as Keys from "./Keys.ts"
import * as Multibase from "./Multibase.ts"
import * as Multihash from "./Multihash.ts"

/** Encoded public keys up to this many bytes are inlined (identity multihash). */
export const MAX_INLINE_KEY_LENGTH = 42

/** The multicodec of peer ids in CIDs. */
export const LIBP2P_KEY_CODEC = 0x72

export const TypeId: unique symbol = Symbol.for("effect-libp2p/PeerId")
export type TypeId = typeof TypeId

export interface PeerId extends Equal.Equal, Pipeable.Pipeable {
  readonly [TypeId]: TypeId
  /** The legacy string form (base58btc multihash). */
  toString(): string
}

/**
 * Why a peer id could not be decoded.
 * - `InvalidString`: empty, or neither a legacy base58btc peer id nor a multibase string we know.
 * - `InvalidEncoding`: the base58btc or multibase text does not decode.
 * - `InvalidCid`: not a CID, not CIDv1, or its codec is not `libp2p-key`.
 * - `InvalidMultihash`: malformed multihash, a hash function other than
 *   identity/sha2-256, or a wrong digest length.
 * - `InvalidPublicKey`: an identity multihash whose content is not a valid public key.
 */
export const PeerIdErrorReason = Schema.Literals([
  "InvalidString",
  "InvalidEncoding",
  "InvalidCid",
  "InvalidMultihash",
  "InvalidPublicKey"
])
export type PeerIdErrorReason = typeof PeerIdErrorReason.Type

export class PeerIdError extends Schema.TaggedError<PeerIdError>()("PeerIdError", {
  reason: PeerIdErrorReason,
  message: Schema.String
}) {}

const fail = (reason: PeerIdErrorReason, message: string): Result.Result<never, PeerIdError> =>
  Result.fail(new PeerIdError({ reason, message }))

// ---------------------------------------------------------------------------
// representation

class PeerIdImpl extends Pipeable.Class implements PeerId {
  declare readonly [TypeId]: TypeId
  /**
   * The multihash as a binary string (one Latin-1 character per byte, see
   * `internal/strings.ts`): a peer id lives as long as its connections, and a
   * string is a fraction of a `Uint8Array`'s heap. Never handed out: `toBytes` makes bytes.
   */
  readonly b: string
  readonly key: Keys.PublicKey | undefined
  /** The base58btc form once asked for (it is also the Peerstore's key, so it is kept). */
  private str: string | undefined
  constructor(b: string, key: Keys.PublicKey | undefined) {
    super()
    this.b = b
    this.key = key
    this.str = undefined
  }
  get bytes(): Uint8Array {
    return Strings.toBytes(this.b)
  }
  override toString(): string {
    this.str ??= Multibase.baseEncode("base58btc", this.bytes)
    return this.str
  }
  toJSON(): string {
    return this.toString()
  }
  [NodeInspectSymbol](): string {
    return `PeerId(${this.toString()})`
  }
  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof PeerIdImpl && this.b === that.b
  }
  [Hash.symbol](): number {
    let h = 0x811c9dc5 // FNV-1a
    for (let i = 0; i < this.b.length; i++) h = Math.imul(h ^ this.b.charCodeAt(i), 0x01000193)
    return Hash.optimize(h)
  }
}
Object.defineProperty(PeerIdImpl.prototype, TypeId, { value: TypeId })

const impl = (id: PeerId): PeerIdImpl => id as PeerIdImpl

export const isPeerId = (u: unknown): u is PeerId => u instanceof PeerIdImpl

// ---------------------------------------------------------------------------
// from keys (§Peer Ids)

/** The peer id of a public key. */
export const fromPublicKey = (key: Keys.PublicKey): PeerId => {
  const encoded = Keys.publicKeyToProtobuf(key)
  const mh = encoded.length <= MAX_INLINE_KEY_LENGTH ? Multihash.identity(encoded) : Multihash.sha256(encoded)
  return new PeerIdImpl(Strings.fromBytes(mh.bytes), key)
}

/** The peer id of a private key's public key. */
export const fromPrivateKey = (key: Keys.PrivateKey): PeerId => fromPublicKey(key.publicKey)

/**
 * The public key of a peer id, when known: always for `identity` peer ids (the
 * key is inlined), and for any peer id made by `fromPublicKey`/`fromPrivateKey`.
 */
export const publicKey = (id: PeerId): Option.Option<Keys.PublicKey> => Option.fromUndefinedOr(impl(id).key)

/** Whether `key` is the key of `id` (its peer id is `id`). */
export const matchesPublicKey = (id: PeerId, key: Keys.PublicKey): boolean => equals(id, fromPublicKey(key))

// ---------------------------------------------------------------------------
// bytes (the multihash)

/** The peer id's binary form: its multihash (a copy). */
export const toBytes = (id: PeerId): Uint8Array => impl(id).bytes

/** A peer id from its binary form (a multihash); see the module doc for what is accepted. */
export const fromBytes = (bytes: Uint8Array): Result.Result<PeerId, PeerIdError> => {
  const mh = Multihash.decode(bytes)
  if (Result.isFailure(mh)) return fail("InvalidMultihash", `peer id: ${mh.failure.message}`)
  const { code, digest } = mh.success
  const own = Strings.fromBytes(bytes)
  if (code === Multihash.codes["sha2-256"]) {
    return digest.length === 32
      ? Result.succeed(new PeerIdImpl(own, undefined))
      : fail("InvalidMultihash", `peer id: sha2-256 digest must be 32 bytes, got ${digest.length}`)
  }
  if (code === Multihash.codes.identity) {
    if (digest.length > MAX_INLINE_KEY_LENGTH) {
      return fail("InvalidMultihash", `peer id: identity multihash longer than ${MAX_INLINE_KEY_LENGTH} bytes`)
    }
    const key = Keys.publicKeyFromProtobuf(digest)
    return Result.isSuccess(key)
      ? Result.succeed(new PeerIdImpl(own, key.success))
      : fail("InvalidPublicKey", `peer id: inlined public key: ${key.failure.message}`)
  }
  return fail("InvalidMultihash", `peer id: unsupported multihash code 0x${code.toString(16)}`)
}

// ---------------------------------------------------------------------------
// strings and CIDs (§String representation)

/** The legacy string form (bare base58btc multihash), the spec's default for display. */
export const toString = (id: PeerId): string => id.toString()

/** The binary CIDv1 of the peer id (`0x01`, `libp2p-key`, multihash). */
export const toCidBytes = (id: PeerId): Uint8Array =>
  CID.createV1(LIBP2P_KEY_CODEC, Digest.decode(impl(id).bytes)).bytes

/** The CIDv1 string form, base32 unless another multibase encoding is asked for. */
export const toCidString = (id: PeerId, encoding: Multibase.Encoding = "base32"): string =>
  Multibase.encode(encoding, toCidBytes(id))

/** A peer id from a binary CID (CIDv1, codec `libp2p-key`). */
export const fromCidBytes = (bytes: Uint8Array): Result.Result<PeerId, PeerIdError> => {
  let cid: CID
  try {
    cid = CID.decode(bytes)
  } catch (e) {
    return fail("InvalidCid", `peer id: not a CID: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (cid.version !== 1) return fail("InvalidCid", `peer id: CID version ${cid.version}, expected 1`)
  if (cid.code !== LIBP2P_KEY_CODEC) {
    return fail("InvalidCid", `peer id: CID codec 0x${cid.code.toString(16)}, expected libp2p-key (0x72)`)
  }
  return fromBytes(cid.multihash.bytes)
}

/** Parse either string form (§Decoding). */
export const fromString = (text: string): Result.Result<PeerId, PeerIdError> => {
  if (text.startsWith("1") || text.startsWith("Qm")) {
    const bytes = Multibase.baseDecode("base58btc", text)
    return Result.isFailure(bytes)
      ? fail("InvalidEncoding", `peer id: ${bytes.failure.message}`)
      : fromBytes(bytes.success)
  }
  const decoded = Multibase.decode(text)
  if (Result.isFailure(decoded)) {
    return fail(
      decoded.failure.reason === "InvalidEncoding" ? "InvalidEncoding" : "InvalidString",
      `peer id: ${decoded.failure.message}`
    )
  }
  return fromCidBytes(decoded.success.bytes)
}

// ---------------------------------------------------------------------------
// comparison

export const equals = (a: PeerId, b: PeerId): boolean => impl(a).b === impl(b).b

/**
 * A string unique to the peer id (its multihash, one character per byte) for `Map` keys: no
 * base58 encoding, so much cheaper than `toString` for a peer id just decoded from the wire
 * (a Kad lookup keys every closer peer of every answer). Not for display or storage.
 */
export const mapKey = (id: PeerId): string => impl(id).b

/**
 * The `mapKey` of the peer id whose binary form (multihash) is `bytes`, without
 * decoding it (no public key parsed): to look a peer up by the `/p2p/` bytes of
 * an address. Equal to `mapKey(fromBytes(bytes))` whenever that succeeds.
 */
export const mapKeyOfBytes = (bytes: Uint8Array): string => Strings.fromBytes(bytes)
