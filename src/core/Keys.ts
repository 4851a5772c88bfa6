/**
 * libp2p keys, per the peer-ids spec §Keys
 * (https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md#keys):
 * the `PublicKey`/`PrivateKey` protobuf messages (`KeyType` RSA = 0,
 * Ed25519 = 1, Secp256k1 = 2, ECDSA = 3), the `Data` encoding of each key type
 * (§Key Types) and how each type signs and verifies.
 *
 * | type      | public `raw`                   | private `raw`                         | signature                               |
 * |-----------|--------------------------------|---------------------------------------|-----------------------------------------|
 * | Ed25519   | 32 bytes                       | 64 bytes seed‖public (96-byte legacy seed‖public‖public accepted) | RFC 8032            |
 * | Secp256k1 | 33-byte compressed point (65-byte uncompressed accepted, stored compressed) | 32-byte scalar | ECDSA over SHA-256(msg), DER, low-S |
 * | ECDSA     | DER SubjectPublicKeyInfo (P-256; P-384/P-521 accepted) | DER SEC1 `ECPrivateKey` (RFC 5915), as go-libp2p writes | ECDSA over SHA-256(msg), DER |
 * | RSA       | DER SubjectPublicKeyInfo (PKIX) | PKCS#1 DER `RSAPrivateKey`           | RSASSA-PKCS1-v1_5 with SHA-256          |
 *
 * `raw` is always the canonical form we marshal (the form go-libp2p re-marshals
 * to): decoding a key and encoding it again yields the spec's deterministic bytes.
 * DER keys (ECDSA, RSA) must already be in that canonical DER form (strict DER,
 * uncompressed EC point, RSA parameters NULL), as go-libp2p's x509 parsing requires;
 * OpenSSL alone would read some BER variants, which would give one key several encodings.
 *
 * Policies, where the spec leaves room:
 * - Protobuf: `PublicKey`/`PrivateKey` bytes must be the deterministic encoding
 *   (§Keys: minimal varints, tag order, all fields, no extra fields); others are
 *   rejected (`InvalidProtobuf`).
 * - Secp256k1 verification requires low-S signatures (s ≤ n/2), as BIP 62 (which
 *   the spec cites) requires and as js-libp2p does (@noble/curves `verify` with
 *   its default `lowS: true`); go-libp2p (btcec) also accepts high-S. Our
 *   signatures are always low-S (RFC 6979 deterministic nonces).
 * - RSA keys must be 2048 to 8192 bits (go-libp2p's bounds; js-libp2p has the
 *   same upper bound). Smaller keys are `InvalidPublicKey`/`InvalidPrivateKey`.
 * - An Ed25519 private key whose public half does not match its seed is rejected
 *   (the spec: implementations SHOULD check that the private key produces the public key).
 *
 * Crypto: node:crypto for Ed25519, ECDSA and RSA, with each key's KeyObject made
 * once (a public Ed25519 key keeps one from its second `verify` on: most verify
 * once, see `Ed25519PublicKey`); @noble/curves for
 * secp256k1. `verify` never fails: a malformed signature is simply `false`.
 *
 * @since 0.1.0
 */
import { secp256k1 } from "@noble/curves/secp256k1.js"
import { Bytes, Effect, Result, Schema } from "effect"
import * as crypto from "node:crypto"
import * as Strings from "../internal/strings.ts"
import * as Protobuf from "./Protobuf.ts"

// ---------------------------------------------------------------------------
// types

export type KeyType = "RSA" | "Ed25519" | "Secp256k1" | "ECDSA"

/** The `KeyType` enum of the spec's protobuf. */
export const KeyTypeCode = { RSA: 0, Ed25519: 1, Secp256k1: 2, ECDSA: 3 } as const satisfies Record<KeyType, number>

export const keyTypes: ReadonlyArray<KeyType> = ["RSA", "Ed25519", "Secp256k1", "ECDSA"]

const keyTypeOfCode = (code: number): KeyType | undefined => keyTypes[code]

export interface PublicKey {
  readonly type: KeyType
  /** The `Data` field of the `PublicKey` message (canonical form). */
  readonly raw: Uint8Array
  /** Whether `signature` is a valid signature of `data` by this key. Malformed input is `false`. */
  readonly verify: (data: Uint8Array, signature: Uint8Array) => boolean
}

export interface PrivateKey {
  readonly type: KeyType
  /** The `Data` field of the `PrivateKey` message (canonical form). */
  readonly raw: Uint8Array
  readonly publicKey: PublicKey
  readonly sign: (data: Uint8Array) => Result.Result<Uint8Array, KeyError>
}

/**
 * Why a key could not be used.
 * - `InvalidProtobuf`: not a (deterministically encoded) `PublicKey`/`PrivateKey` message.
 * - `UnsupportedKeyType`: a `KeyType` value we do not know, or an unsupported curve.
 * - `InvalidPublicKey` / `InvalidPrivateKey`: the `Data` bytes are not a valid key of the type.
 * - `SignFailed`: the crypto library refused to sign.
 * - `GenerateFailed`: key generation failed, or bad generation parameters.
 */
export const KeyErrorReason = Schema.Literals([
  "InvalidProtobuf",
  "UnsupportedKeyType",
  "InvalidPublicKey",
  "InvalidPrivateKey",
  "SignFailed",
  "GenerateFailed"
])
export type KeyErrorReason = typeof KeyErrorReason.Type

export class KeyError extends Schema.TaggedError<KeyError>()("KeyError", {
  reason: KeyErrorReason,
  message: Schema.String
}) {}

const fail = (reason: KeyErrorReason, message: string): Result.Result<never, KeyError> =>
  Result.fail(new KeyError({ reason, message }))

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

// ---------------------------------------------------------------------------
// protobuf (§Keys)

const proto = Protobuf.define(`
syntax = "proto2";
enum KeyType { RSA = 0; Ed25519 = 1; Secp256k1 = 2; ECDSA = 3; }
message PublicKey { required KeyType Type = 1; required bytes Data = 2; }
message PrivateKey { required KeyType Type = 1; required bytes Data = 2; }
`)

interface KeyMessage {
  readonly Type: number
  readonly Data: Uint8Array
}

const PublicKeyMessage = proto.codec<KeyMessage>("PublicKey", { canonical: true })
const PrivateKeyMessage = proto.codec<KeyMessage>("PrivateKey", { canonical: true })

/** A proto2 closed enum drops unknown values, which then reads as a missing field: tell the two apart. */
const unknownTypeCode = (bytes: Uint8Array): number | undefined => {
  if (bytes[0] !== 0x08) return undefined
  let value = 0
  for (let i = 1, scale = 1; i < Math.min(bytes.length, 6); i++, scale *= 128) {
    const b = bytes[i]!
    value += (b & 0x7f) * scale
    if ((b & 0x80) === 0) return value > 3 ? value : undefined
  }
  return undefined
}

const decodeMessage = (
  codec: Protobuf.Codec<KeyMessage>,
  bytes: Uint8Array
): Result.Result<{ readonly type: KeyType; readonly data: Uint8Array }, KeyError> => {
  const decoded = codec.decode(bytes)
  if (Result.isFailure(decoded)) {
    const code = unknownTypeCode(bytes)
    return code !== undefined
      ? fail("UnsupportedKeyType", `unknown key type ${code}`)
      : fail("InvalidProtobuf", decoded.failure.message)
  }
  const type = keyTypeOfCode(decoded.success.Type)
  if (type === undefined) return fail("UnsupportedKeyType", `unknown key type ${decoded.success.Type}`)
  return Result.succeed({ type, data: decoded.success.Data })
}

/** The spec's `PublicKey` message of `key` (deterministic encoding). Peer ids are derived from these bytes. */
export const publicKeyToProtobuf = (key: PublicKey): Uint8Array =>
  PublicKeyMessage.encode({ Type: KeyTypeCode[key.type], Data: key.raw })

/** The spec's `PrivateKey` message of `key`: the file format of libp2p identities. */
export const privateKeyToProtobuf = (key: PrivateKey): Uint8Array =>
  PrivateKeyMessage.encode({ Type: KeyTypeCode[key.type], Data: key.raw })

export const publicKeyFromProtobuf = (bytes: Uint8Array): Result.Result<PublicKey, KeyError> =>
  Result.flatMap(decodeMessage(PublicKeyMessage, bytes), ({ data, type }) => publicKeyFromRaw(type, data))

export const privateKeyFromProtobuf = (bytes: Uint8Array): Result.Result<PrivateKey, KeyError> =>
  Result.flatMap(decodeMessage(PrivateKeyMessage, bytes), ({ data, type }) => privateKeyFromRaw(type, data))

/** Alias of {@link publicKeyToProtobuf} (the name go-libp2p uses). */
export const marshalPublicKey = publicKeyToProtobuf
/** Alias of {@link publicKeyFromProtobuf} (the name go-libp2p uses). */
export const unmarshalPublicKey = publicKeyFromProtobuf
/** Alias of {@link privateKeyToProtobuf} (the name go-libp2p uses). */
export const marshalPrivateKey = privateKeyToProtobuf
/** Alias of {@link privateKeyFromProtobuf} (the name go-libp2p uses). */
export const unmarshalPrivateKey = privateKeyFromProtobuf

// ---------------------------------------------------------------------------
// raw key data (§Key Types)

/** A public key from its `Data` bytes. */
export const publicKeyFromRaw = (type: KeyType, raw: Uint8Array): Result.Result<PublicKey, KeyError> => {
  switch (type) {
    case "Ed25519":
      return ed25519Public(raw)
    case "Secp256k1":
      return secp256k1Public(raw)
    case "ECDSA":
      return ecdsaPublic(raw)
    case "RSA":
      return rsaPublic(raw)
  }
}

/** A private key from its `Data` bytes. */
export const privateKeyFromRaw = (type: KeyType, raw: Uint8Array): Result.Result<PrivateKey, KeyError> => {
  switch (type) {
    case "Ed25519":
      return ed25519Private(raw)
    case "Secp256k1":
      return secp256k1Private(raw)
    case "ECDSA":
      return ecdsaPrivate(raw)
    case "RSA":
      return rsaPrivate(raw)
  }
}

/** Same type and same canonical bytes. */
export const equals = (a: PublicKey | PrivateKey, b: PublicKey | PrivateKey): boolean =>
  a.type === b.type && Bytes.Equivalence(a.raw, b.raw)

export interface GenerateOptions {
  /** RSA modulus size in bits (2048 to 8192, default 2048). Ignored for other types. */
  readonly bits?: number
}

/** A fresh random key pair. ECDSA keys are P-256. RSA generation runs off the main thread. */
export const generate = (type: KeyType, options?: GenerateOptions): Effect.Effect<PrivateKey, KeyError> => {
  switch (type) {
    case "Ed25519":
      return Effect.suspend(() => fromResult(ed25519FromSeed(crypto.randomBytes(32))))
    case "Secp256k1":
      return Effect.suspend(() => fromResult(secp256k1Private(secp256k1.utils.randomSecretKey())))
    case "ECDSA":
      return Effect.suspend(() => {
        const pair = trying(() => crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }))
        return fromResult(
          Result.isFailure(pair)
            ? fail("GenerateFailed", pair.failure)
            : ecdsaPrivateFromKeyObject(pair.success.privateKey)
        )
      })
    case "RSA": {
      const bits = options?.bits ?? 2048
      if (!Number.isSafeInteger(bits) || bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
        return Effect.fail(
          new KeyError({
            reason: "GenerateFailed",
            message: `RSA key size must be ${RSA_MIN_BITS}..${RSA_MAX_BITS} bits`
          })
        )
      }
      return Effect.callback<PrivateKey, KeyError>((resume) => {
        crypto.generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) => {
          resume(
            err !== null
              ? Effect.fail(new KeyError({ reason: "GenerateFailed", message: describe(err) }))
              : fromResult(rsaPrivateFromKeyObject(priv))
          )
        })
      })
    }
  }
}

/** The Ed25519 key of a 32-byte seed (RFC 8032 §5.1.5 private key). */
export const ed25519FromSeed = (seed: Uint8Array): Result.Result<PrivateKey, KeyError> => {
  if (seed.length !== 32) return fail("InvalidPrivateKey", `Ed25519 seed must be 32 bytes, got ${seed.length}`)
  const keyObject = trying(() =>
    crypto.createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" })
  )
  if (Result.isFailure(keyObject)) return fail("InvalidPrivateKey", keyObject.failure)
  const spki = crypto.createPublicKey(keyObject.success).export({ format: "der", type: "spki" })
  const publicRaw = spki.subarray(spki.length - 32)
  const raw = new Uint8Array(64)
  raw.set(seed, 0)
  raw.set(publicRaw, 32)
  return Result.succeed(new Ed25519PrivateKey(raw, keyObject.success, new Ed25519PublicKey(publicRaw)))
}

// ---------------------------------------------------------------------------
// helpers

const copy = (bytes: Uint8Array): Uint8Array => Uint8Array.from(bytes)

const trying = <A>(f: () => A): Result.Result<A, string> => {
  try {
    return Result.succeed(f())
  } catch (e) {
    return Result.fail(describe(e))
  }
}

const fromResult = <A>(r: Result.Result<A, KeyError>): Effect.Effect<A, KeyError> =>
  Result.isSuccess(r) ? Effect.succeed(r.success) : Effect.fail(r.failure)

const signWith = (f: () => Uint8Array, type: KeyType): Result.Result<Uint8Array, KeyError> => {
  const r = trying(f)
  return Result.isSuccess(r) ? Result.succeed(r.success) : fail("SignFailed", `${type}: ${r.failure}`)
}

const verifyWith = (f: () => boolean): boolean => {
  try {
    return f()
  } catch {
    return false
  }
}

const sha256 = (data: Uint8Array): Uint8Array => crypto.createHash("sha256").update(data).digest()

// ---------------------------------------------------------------------------
// Ed25519

const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex")
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex")

/**
 * A raw Ed25519 public key as a PEM SubjectPublicKeyInfo **string**: node:crypto
 * imports a string without first probing it as a KeyObject/CryptoKey (probes
 * that throw and catch internally for a Buffer or a `{ key, format }` object),
 * which makes the import about 3x faster (measured on Node 24: ~15 µs against ~50 µs).
 */
const ed25519Pem = (raw: Uint8Array): string => {
  const der = Buffer.allocUnsafe(ED25519_SPKI_PREFIX.length + 32)
  ED25519_SPKI_PREFIX.copy(der, 0)
  der.set(raw, ED25519_SPKI_PREFIX.length)
  return `-----BEGIN PUBLIC KEY-----\n${der.toString("base64")}\n-----END PUBLIC KEY-----\n`
}

/**
 * The remote peer's key of every connection is one of these, kept for the
 * connection's lifetime: the 32 bytes are held as a binary string (see
 * `internal/strings.ts`; about 50 bytes of heap instead of about 240 for a
 * `Uint8Array` and its `ArrayBuffer`), and `raw` hands out a fresh copy.
 */
class Ed25519PublicKey implements PublicKey {
  readonly type = "Ed25519"
  private readonly bytes: string
  /**
   * The node:crypto key, kept from the second `verify` on. A remote peer's key
   * verifies once (the handshake signature; an envelope's key is a new object
   * each time) and then lives as long as the connection: a kept KeyObject
   * would cost about 0.35 KiB per connection for nothing.
   */
  private keyObject: crypto.KeyObject | "verified once" | undefined
  constructor(raw: Uint8Array) {
    this.bytes = Strings.fromBytes(raw)
    this.keyObject = undefined
  }
  get raw(): Uint8Array {
    return Strings.toBytes(this.bytes)
  }
  verify(data: Uint8Array, signature: Uint8Array): boolean {
    return verifyWith(() => {
      if (signature.length !== 64) return false
      let key = this.keyObject
      if (key === undefined || key === "verified once") {
        const made = crypto.createPublicKey(ed25519Pem(this.raw))
        this.keyObject = key === undefined ? "verified once" : made
        key = made
      }
      return crypto.verify(null, data, key, signature)
    })
  }
}

class Ed25519PrivateKey implements PrivateKey {
  readonly type = "Ed25519"
  readonly raw: Uint8Array
  readonly publicKey: PublicKey
  private readonly keyObject: crypto.KeyObject
  constructor(raw: Uint8Array, keyObject: crypto.KeyObject, publicKey: PublicKey) {
    this.raw = raw
    this.keyObject = keyObject
    this.publicKey = publicKey
  }
  sign(data: Uint8Array): Result.Result<Uint8Array, KeyError> {
    return signWith(() => copy(crypto.sign(null, data, this.keyObject)), this.type)
  }
}

const ed25519Public = (raw: Uint8Array): Result.Result<PublicKey, KeyError> =>
  raw.length === 32
    ? Result.succeed(new Ed25519PublicKey(raw))
    : fail("InvalidPublicKey", `Ed25519 public key must be 32 bytes, got ${raw.length}`)

const ed25519Private = (raw: Uint8Array): Result.Result<PrivateKey, KeyError> => {
  if (raw.length === 96 && !Bytes.Equivalence(raw.subarray(32, 64), raw.subarray(64, 96))) {
    return fail("InvalidPrivateKey", "legacy 96-byte Ed25519 private key: the two public key copies differ")
  }
  if (raw.length !== 64 && raw.length !== 96) {
    return fail("InvalidPrivateKey", `Ed25519 private key must be 64 bytes (or legacy 96), got ${raw.length}`)
  }
  const key = ed25519FromSeed(raw.subarray(0, 32))
  if (Result.isFailure(key)) return key
  if (!Bytes.Equivalence(key.success.publicKey.raw, raw.subarray(32, 64))) {
    return fail("InvalidPrivateKey", "Ed25519 private key: the public half does not match the seed")
  }
  return key
}

// ---------------------------------------------------------------------------
// Secp256k1 (@noble/curves)

class Secp256k1PublicKey implements PublicKey {
  readonly type = "Secp256k1"
  readonly raw: Uint8Array
  /** Uncompressed point: noble parses it without a square root on every verify. */
  private readonly uncompressed: Uint8Array
  constructor(raw: Uint8Array, uncompressed: Uint8Array) {
    this.raw = raw
    this.uncompressed = uncompressed
  }
  verify(data: Uint8Array, signature: Uint8Array): boolean {
    return verifyWith(() =>
      secp256k1.verify(signature, sha256(data), this.uncompressed, { prehash: false, format: "der", lowS: true })
    )
  }
}

class Secp256k1PrivateKey implements PrivateKey {
  readonly type = "Secp256k1"
  readonly raw: Uint8Array
  readonly publicKey: PublicKey
  constructor(raw: Uint8Array, publicKey: PublicKey) {
    this.raw = raw
    this.publicKey = publicKey
  }
  sign(data: Uint8Array): Result.Result<Uint8Array, KeyError> {
    return signWith(
      () => secp256k1.sign(sha256(data), this.raw, { prehash: false, format: "der", lowS: true }),
      this.type
    )
  }
}

const secp256k1Public = (raw: Uint8Array): Result.Result<PublicKey, KeyError> => {
  if (raw.length !== 33 && raw.length !== 65) {
    return fail("InvalidPublicKey", `secp256k1 public key must be 33 (or 65) bytes, got ${raw.length}`)
  }
  const point = trying(() => secp256k1.Point.fromBytes(raw))
  if (Result.isFailure(point)) return fail("InvalidPublicKey", `secp256k1: ${point.failure}`)
  return Result.succeed(new Secp256k1PublicKey(point.success.toBytes(true), point.success.toBytes(false)))
}

const secp256k1Private = (raw: Uint8Array): Result.Result<PrivateKey, KeyError> => {
  if (raw.length !== 32) return fail("InvalidPrivateKey", `secp256k1 private key must be 32 bytes, got ${raw.length}`)
  if (!secp256k1.utils.isValidSecretKey(raw)) {
    return fail("InvalidPrivateKey", "secp256k1 private key out of range [1, n-1]")
  }
  const point = trying(() => secp256k1.Point.fromBytes(secp256k1.getPublicKey(raw, false)))
  if (Result.isFailure(point)) return fail("InvalidPrivateKey", `secp256k1: ${point.failure}`)
  const publicKey = new Secp256k1PublicKey(point.success.toBytes(true), point.success.toBytes(false))
  return Result.succeed(new Secp256k1PrivateKey(copy(raw), publicKey))
}

// ---------------------------------------------------------------------------
// ECDSA and RSA (node:crypto KeyObjects)

const EC_CURVES = new Set(["prime256v1", "secp384r1", "secp521r1"])
const RSA_MIN_BITS = 2048
const RSA_MAX_BITS = 8192

class NodePublicKey implements PublicKey {
  readonly type: "ECDSA" | "RSA"
  readonly raw: Uint8Array
  private readonly keyObject: crypto.KeyObject
  constructor(type: "ECDSA" | "RSA", raw: Uint8Array, keyObject: crypto.KeyObject) {
    this.type = type
    this.raw = raw
    this.keyObject = keyObject
  }
  verify(data: Uint8Array, signature: Uint8Array): boolean {
    return verifyWith(() =>
      this.type === "ECDSA"
        ? crypto.verify("sha256", data, { key: this.keyObject, dsaEncoding: "der" }, signature)
        : crypto.verify("sha256", data, { key: this.keyObject, padding: crypto.constants.RSA_PKCS1_PADDING }, signature)
    )
  }
}

class NodePrivateKey implements PrivateKey {
  readonly type: "ECDSA" | "RSA"
  readonly raw: Uint8Array
  readonly publicKey: PublicKey
  private readonly keyObject: crypto.KeyObject
  constructor(type: "ECDSA" | "RSA", raw: Uint8Array, keyObject: crypto.KeyObject, publicKey: PublicKey) {
    this.type = type
    this.raw = raw
    this.keyObject = keyObject
    this.publicKey = publicKey
  }
  sign(data: Uint8Array): Result.Result<Uint8Array, KeyError> {
    return signWith(
      () =>
        copy(
          this.type === "ECDSA"
            ? crypto.sign("sha256", data, { key: this.keyObject, dsaEncoding: "der" })
            : crypto.sign("sha256", data, { key: this.keyObject, padding: crypto.constants.RSA_PKCS1_PADDING })
        ),
      this.type
    )
  }
}

/** Check a KeyObject is of the expected kind; returns an error message or undefined. */
const checkKeyObject = (type: "ECDSA" | "RSA", key: crypto.KeyObject): string | undefined => {
  if (type === "ECDSA") {
    if (key.asymmetricKeyType !== "ec") return `not an EC key (${key.asymmetricKeyType})`
    const curve = key.asymmetricKeyDetails?.namedCurve
    return curve !== undefined && EC_CURVES.has(curve) ? undefined : `unsupported curve ${curve}`
  }
  if (key.asymmetricKeyType !== "rsa") return `not an RSA key (${key.asymmetricKeyType})`
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
  return bits >= RSA_MIN_BITS && bits <= RSA_MAX_BITS
    ? undefined
    : `RSA key size ${bits} bits is outside ${RSA_MIN_BITS}..${RSA_MAX_BITS}`
}

/**
 * OpenSSL reads some non-canonical DER (e.g. RSA AlgorithmIdentifier parameters
 * other than NULL, compressed EC points) that go-libp2p refuses. We accept only
 * the canonical DER we would write ourselves, so a key has one encoding and a
 * changed byte never yields the same key.
 */
const canonical = <K extends { readonly raw: Uint8Array }>(
  given: Uint8Array,
  key: Result.Result<K, KeyError>,
  reason: "InvalidPublicKey" | "InvalidPrivateKey",
  type: "ECDSA" | "RSA"
): Result.Result<K, KeyError> =>
  Result.isSuccess(key) && !Bytes.Equivalence(key.success.raw, given)
    ? fail(reason, `${type}: not the canonical DER encoding of the key`)
    : key

const nodePublic = (type: "ECDSA" | "RSA", raw: Uint8Array): Result.Result<PublicKey, KeyError> => {
  const key = trying(() => crypto.createPublicKey({ key: Buffer.from(raw), format: "der", type: "spki" }))
  if (Result.isFailure(key)) return fail("InvalidPublicKey", `${type}: ${key.failure}`)
  return canonical(raw, nodePublicFromKeyObject(type, key.success), "InvalidPublicKey", type)
}

const nodePublicFromKeyObject = (type: "ECDSA" | "RSA", key: crypto.KeyObject): Result.Result<PublicKey, KeyError> => {
  const problem = checkKeyObject(type, key)
  if (problem !== undefined) {
    return fail(
      problem.startsWith("unsupported curve") ? "UnsupportedKeyType" : "InvalidPublicKey",
      `${type}: ${problem}`
    )
  }
  const spki = copy(uncompressed(type, key, crypto.createPublicKey).export({ format: "der", type: "spki" }))
  return Result.succeed(new NodePublicKey(type, spki, key))
}

/**
 * OpenSSL keeps the point format an EC key was read with; re-import through JWK
 * so that what we write always has the uncompressed point, as go-libp2p writes (and requires).
 */
const uncompressed = (
  type: "ECDSA" | "RSA",
  key: crypto.KeyObject,
  create: (options: crypto.JsonWebKeyInput) => crypto.KeyObject
): crypto.KeyObject => (type === "ECDSA" ? create({ key: key.export({ format: "jwk" }), format: "jwk" }) : key)

const nodePrivateFromKeyObject = (
  type: "ECDSA" | "RSA",
  key: crypto.KeyObject
): Result.Result<PrivateKey, KeyError> => {
  const problem = checkKeyObject(type, key)
  if (problem !== undefined) {
    return fail(
      problem.startsWith("unsupported curve") ? "UnsupportedKeyType" : "InvalidPrivateKey",
      `${type}: ${problem}`
    )
  }
  const raw = copy(
    uncompressed(type, key, crypto.createPrivateKey).export({
      format: "der",
      type: type === "ECDSA" ? "sec1" : "pkcs1"
    })
  )
  return Result.map(
    nodePublicFromKeyObject(type, crypto.createPublicKey(key)),
    (publicKey) => new NodePrivateKey(type, raw, key, publicKey)
  )
}

const nodePrivate = (type: "ECDSA" | "RSA", raw: Uint8Array): Result.Result<PrivateKey, KeyError> => {
  const key = trying(() =>
    crypto.createPrivateKey({ key: Buffer.from(raw), format: "der", type: type === "ECDSA" ? "sec1" : "pkcs1" })
  )
  if (Result.isFailure(key)) return fail("InvalidPrivateKey", `${type}: ${key.failure}`)
  return canonical(raw, nodePrivateFromKeyObject(type, key.success), "InvalidPrivateKey", type)
}

const ecdsaPublic = (raw: Uint8Array) => nodePublic("ECDSA", raw)
const ecdsaPrivate = (raw: Uint8Array) => nodePrivate("ECDSA", raw)
const ecdsaPrivateFromKeyObject = (key: crypto.KeyObject) => nodePrivateFromKeyObject("ECDSA", key)
const rsaPublic = (raw: Uint8Array) => nodePublic("RSA", raw)
const rsaPrivate = (raw: Uint8Array) => nodePrivate("RSA", raw)
const rsaPrivateFromKeyObject = (key: crypto.KeyObject) => nodePrivateFromKeyObject("RSA", key)
