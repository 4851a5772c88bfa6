/**
 * IPNS records (github.com/ipfs/specs `src/ipns/ipns-record.md`) for the DHT's
 * `/ipns/` namespace: the `IpnsEntry` protobuf, record creation (§Record
 * Creation, V2 signature only) and the `Validator` (§Record Verification and
 * a selector per §Overview: higher `Sequence` wins, then the later EOL).
 *
 * Verification follows the spec's steps and fails on the first error:
 * 1. the serialized record is at most 10 KiB (§Record Size Limit);
 * 2. `signatureV2` and `data` are present and not empty — so a V1-only record
 *    is invalid (spec test vector 1);
 * 3. the public key is `pubKey` if present, else inlined in the name (identity
 *    multihash); either way it must be the key of the name `/ipns/<multihash>`;
 * 4. `data` is a strict DAG-CBOR map (`dagCbor.ts`) with `Value`, `Validity`,
 *    `ValidityType`, `Sequence`, `TTL` (other fields ignored);
 * 5–6. `signatureV2` verifies over `"ipns-signature:" + data`;
 * 7. when `signatureV1` or `value` is present, the V1 protobuf fields equal
 *    those in `data`. `signatureV1` itself is never verified nor used: the spec
 *    says it "MUST never be used for signature verification", so a V1+V2
 *    record is valid exactly when its V2 part is valid and its V1 copies agree;
 * 8. `ValidityType` 0 (EOL): `Validity` is an RFC 3339 time later than now
 *    (the Effect `Clock`, read through the `now` given to `validator`).
 *
 * A failure is `InvalidRecord` whose `cause` is an `IpnsError` with a `reason`.
 *
 * @since 0.2.0
 */
import { Bytes, Option, Result, Schema } from "effect"
import * as Keys from "../../core/Keys.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"
import * as DagCbor from "./dagCbor.ts"
import { InvalidRecord } from "./errors.ts"
import { splitKey, type Validator } from "./Validator.ts"

/** The largest serialized `IpnsEntry` accepted (§Record Size Limit). */
export const MAX_RECORD_SIZE = 10 * 1024

const proto = Protobuf.define(`
syntax = "proto2";
message IpnsEntry {
 enum ValidityType {
  // setting an EOL says "this record is valid until..."
  EOL = 0;
 }

 // legacy V1 copy of data[Value]
 optional bytes value = 1;

 // legacy V1 field, verify 'signatureV2' instead
 optional bytes signatureV1 = 2;

 // legacy V1 copies of data[ValidityType] and data[Validity]
 optional ValidityType validityType = 3;
 optional bytes validity = 4;

 // legacy V1 copy of data[Sequence]
 optional uint64 sequence = 5;

 // legacy V1 copy copy of data[TTL]
 optional uint64 ttl = 6;

 // Optional Public Key to be used for signature verification.
 // Used for big keys such as old RSA keys. Including the public key as part of
 // the record itself makes it verifiable in offline mode, without any additional lookup.
 // For newer Ed25519 keys, the public key is small enough that it can be embedded in the
 // IPNS Name itself, making this field unnecessary.
 optional bytes pubKey = 7;

 // (mandatory V2) signature of the IPNS record
 optional bytes signatureV2 = 8;

 // (mandatory V2) extensible record data in DAG-CBOR format
 optional bytes data = 9;
}
`)

/** The `IpnsEntry` message; absent optional fields are `undefined`. */
export interface IpnsEntry {
  readonly value?: Uint8Array | undefined
  readonly signatureV1?: Uint8Array | undefined
  readonly validityType?: number | undefined
  readonly validity?: Uint8Array | undefined
  readonly sequence?: bigint | undefined
  readonly ttl?: bigint | undefined
  readonly pubKey?: Uint8Array | undefined
  readonly signatureV2?: Uint8Array | undefined
  readonly data?: Uint8Array | undefined
}

export const IpnsEntry: Protobuf.Codec<IpnsEntry> = proto.codec<IpnsEntry>("IpnsEntry")

/** The signed fields of a record (the `data` document). `validity` is the EOL in nanoseconds since the epoch. */
export interface IpnsData {
  readonly value: Uint8Array
  readonly validityType: bigint
  readonly validity: Uint8Array
  readonly sequence: bigint
  readonly ttl: bigint
}

export const IpnsErrorReason = Schema.Literals([
  "TooLarge",
  "Malformed",
  "MissingSignatureV2",
  "NoPublicKey",
  "KeyMismatch",
  "BadData",
  "BadSignature",
  "V1Mismatch",
  "BadValidity",
  "Expired",
  "SignFailed"
])
export type IpnsErrorReason = typeof IpnsErrorReason.Type

/** Why an IPNS record is invalid (or could not be made). */
export class IpnsError extends Schema.TaggedError<IpnsError>()("IpnsError", {
  reason: IpnsErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

const ipnsError = (reason: IpnsErrorReason, message: string, cause?: unknown) =>
  new IpnsError(cause === undefined ? { reason, message } : { reason, message, cause })

const SIGNATURE_PREFIX = new TextEncoder().encode("ipns-signature:")
const IPNS_PREFIX = new TextEncoder().encode("/ipns/")
const ascii = new TextDecoder("ascii")

/** The `/ipns/` key of a name: `/ipns/` + the peer id's bytes (its multihash). */
export const ipnsKey = (peer: PeerId.PeerId): Uint8Array => Bytes.concat([IPNS_PREFIX, PeerId.toBytes(peer)])

// ---------------------------------------------------------------------------
// RFC 3339 with nanoseconds

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/

/** Nanoseconds since the epoch of an RFC 3339 time; undefined when it is not one. */
export const parseRfc3339 = (text: string): bigint | undefined => {
  const m = RFC3339.exec(text)
  if (m === null) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number
  ]
  if (hour > 23 || minute > 59 || second > 60) return undefined
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0–99 as 1900–1999
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return undefined
  const ms = date.getTime() + ((hour * 60 + minute) * 60 + second) * 1000
  const offsetMinutes = m[8] !== undefined ? 0 : (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]))
  const fraction = BigInt((m[7] ?? "").padEnd(9, "0"))
  return (BigInt(ms) - BigInt(offsetMinutes) * 60_000n) * 1_000_000n + fraction
}

/** The RFC 3339 text (UTC, nine fraction digits) of nanoseconds since the epoch, as go-ipns writes it. */
export const formatRfc3339 = (nanos: bigint): string => {
  const seconds = nanos / 1_000_000_000n
  const fraction = (nanos % 1_000_000_000n).toString().padStart(9, "0")
  return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, `.${fraction}Z`)
}

// ---------------------------------------------------------------------------
// creation

export interface CreateOptions {
  /** The record's sequence number (uint64). */
  readonly sequence: bigint
  /** End of life, nanoseconds since the epoch. */
  readonly eolNanos: bigint
  /** The TTL in nanoseconds (uint64). Default 1 hour, as go and js use. */
  readonly ttlNanos?: bigint
  /** Also set the V1 fields and `signatureV1` (§Record Creation with Legacy SignatureV1). Default false. */
  readonly v1?: boolean
}

const UINT64_MAX = (1n << 64n) - 1n

/** The DAG-CBOR `data` document of a record (§Record Creation step 2). */
export const encodeData = (d: IpnsData): Uint8Array =>
  DagCbor.encodeMap({
    Value: d.value,
    Validity: d.validity,
    ValidityType: d.validityType,
    Sequence: d.sequence,
    TTL: d.ttl
  })

/**
 * A signed record for `value` by `key` (§Record Creation). The public key goes in
 * `pubKey` unless the key's peer id inlines it (Ed25519).
 */
export const create = (
  key: Keys.PrivateKey,
  value: Uint8Array,
  options: CreateOptions
): Result.Result<Uint8Array, IpnsError> => {
  const ttl = options.ttlNanos ?? 3_600_000_000_000n
  for (const [name, n] of [["sequence", options.sequence], ["ttl", ttl], ["eol", options.eolNanos]] as const) {
    if (n < 0n || n > UINT64_MAX) return Result.fail(ipnsError("BadData", `${name} is not a uint64`))
  }
  const fields: IpnsData = {
    value,
    validity: new TextEncoder().encode(formatRfc3339(options.eolNanos)),
    validityType: 0n,
    sequence: options.sequence,
    ttl
  }
  const data = encodeData(fields)
  const sign = (bytes: Uint8Array) =>
    Result.mapError(key.sign(bytes), (e) => ipnsError("SignFailed", "the key refused to sign", e))
  return Result.gen(function*() {
    const signatureV2 = yield* sign(Bytes.concat([SIGNATURE_PREFIX, data]))
    const marshalled = Keys.marshalPublicKey(key.publicKey)
    const inlined = marshalled.length <= PeerId.MAX_INLINE_KEY_LENGTH
    const v1 = options.v1 === true
      ? {
        value,
        validity: fields.validity,
        validityType: 0,
        sequence: fields.sequence,
        ttl,
        signatureV1: yield* sign(Bytes.concat([value, fields.validity, new TextEncoder().encode("EOL")]))
      }
      : {}
    const entry: IpnsEntry = {
      ...v1,
      ...(inlined ? {} : { pubKey: marshalled }),
      signatureV2,
      data
    }
    const bytes = IpnsEntry.encode(entry)
    if (bytes.length > MAX_RECORD_SIZE) {
      return yield* Result.fail(ipnsError("TooLarge", `the record is ${bytes.length} bytes, over ${MAX_RECORD_SIZE}`))
    }
    return bytes
  })
}

// ---------------------------------------------------------------------------
// verification

/** A verified record: its signed fields and EOL. */
export interface Verified extends IpnsData {
  readonly eolNanos: bigint
}

const dataOf = (bytes: Uint8Array): Result.Result<IpnsData, IpnsError> => {
  const decoded = DagCbor.decode(bytes)
  if (Result.isFailure(decoded)) return Result.fail(ipnsError("BadData", `data is not DAG-CBOR: ${decoded.failure}`))
  const map = decoded.success
  if (!(map instanceof Map)) return Result.fail(ipnsError("BadData", "data is not a map"))
  const bytesField = (name: string) => {
    const v = map.get(name)
    return v instanceof Uint8Array ? v : undefined
  }
  const uintField = (name: string) => {
    const v = map.get(name)
    return typeof v === "bigint" && v >= 0n ? v : undefined
  }
  const value = bytesField("Value")
  const validity = bytesField("Validity")
  const validityType = uintField("ValidityType")
  const sequence = uintField("Sequence")
  const ttl = uintField("TTL")
  if (
    value === undefined || validity === undefined || validityType === undefined || sequence === undefined ||
    ttl === undefined
  ) {
    return Result.fail(ipnsError("BadData", "data lacks Value, Validity, ValidityType, Sequence or TTL"))
  }
  return Result.succeed({ value, validity, validityType, sequence, ttl })
}

/** Verify `record` under `key` (`/ipns/<multihash>`) at `nowMillis` (§Record Verification). */
export const verify = (key: Uint8Array, record: Uint8Array, nowMillis: number): Result.Result<Verified, IpnsError> =>
  Result.gen(function*() {
    if (record.length > MAX_RECORD_SIZE) {
      return yield* Result.fail(ipnsError("TooLarge", `the record is ${record.length} bytes, over ${MAX_RECORD_SIZE}`))
    }
    const split = splitKey(key)
    if (split === undefined || split[0] !== "ipns") {
      return yield* Result.fail(ipnsError("KeyMismatch", "not a /ipns/ key"))
    }
    const name = yield* Result.mapError(
      PeerId.fromBytes(split[1]),
      (e) => ipnsError("KeyMismatch", "the /ipns/ key does not hold a peer id multihash", e)
    )
    const entry = yield* Result.mapError(
      IpnsEntry.decode(record),
      (e) => ipnsError("Malformed", "not an IpnsEntry", e)
    )
    if (
      entry.signatureV2 === undefined || entry.signatureV2.length === 0 || entry.data === undefined ||
      entry.data.length === 0
    ) {
      return yield* Result.fail(ipnsError("MissingSignatureV2", "signatureV2 or data is missing (a V1-only record)"))
    }
    let publicKey: Keys.PublicKey
    if (entry.pubKey !== undefined && entry.pubKey.length > 0) {
      publicKey = yield* Result.mapError(
        Keys.unmarshalPublicKey(entry.pubKey),
        (e) => ipnsError("NoPublicKey", "pubKey is not a public key", e)
      )
      if (!PeerId.matchesPublicKey(name, publicKey)) {
        return yield* Result.fail(ipnsError("KeyMismatch", "pubKey is not the key of the IPNS name"))
      }
    } else {
      const inlined = PeerId.publicKey(name)
      if (Option.isNone(inlined)) {
        return yield* Result.fail(ipnsError("NoPublicKey", "no pubKey and the name does not inline its key"))
      }
      publicKey = inlined.value
    }
    const data = yield* dataOf(entry.data)
    if (!publicKey.verify(Bytes.concat([SIGNATURE_PREFIX, entry.data]), entry.signatureV2)) {
      return yield* Result.fail(ipnsError("BadSignature", "signatureV2 does not verify"))
    }
    if (entry.signatureV1 !== undefined || entry.value !== undefined) {
      const same = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Bytes.Equivalence(a, b)
      if (
        !same(entry.value, data.value) || !same(entry.validity, data.validity) ||
        BigInt(entry.validityType ?? 0) !== data.validityType || entry.sequence !== data.sequence ||
        entry.ttl !== data.ttl
      ) {
        return yield* Result.fail(ipnsError("V1Mismatch", "the V1 protobuf fields differ from the signed data"))
      }
    }
    if (data.validityType !== 0n) {
      return yield* Result.fail(ipnsError("BadValidity", `unknown ValidityType ${data.validityType}`))
    }
    const eolNanos = parseRfc3339(ascii.decode(data.validity))
    if (eolNanos === undefined) return yield* Result.fail(ipnsError("BadValidity", "Validity is not RFC 3339"))
    if (eolNanos <= BigInt(Math.floor(nowMillis)) * 1_000_000n) {
      return yield* Result.fail(ipnsError("Expired", `the record expired at ${ascii.decode(data.validity)}`))
    }
    return { ...data, eolNanos }
  })

/**
 * The `/ipns/` validator; `now` is the current time in milliseconds (Kad passes
 * its `Clock`'s). Select: the highest `Sequence`, then the latest EOL, then the first.
 */
export const validator = (now: () => number): Validator => ({
  validate: (key, value) =>
    Result.mapBoth(verify(key, value, now()), {
      onSuccess: () => undefined,
      onFailure: (e) => new InvalidRecord({ message: `invalid IPNS record: ${e.message}`, cause: e })
    }),
  select: (key, values) => {
    let best = 0
    let bestRank: readonly [bigint, bigint] | undefined
    values.forEach((value, i) => {
      // `select` is given valid records; rank by the signed fields regardless of the clock
      const v = verify(key, value, 0)
      if (Result.isFailure(v)) return
      const rank = [v.success.sequence, v.success.eolNanos] as const
      if (bestRank === undefined || rank[0] > bestRank[0] || (rank[0] === bestRank[0] && rank[1] > bestRank[1])) {
        best = i
        bestRank = rank
      }
    })
    return best
  }
})
