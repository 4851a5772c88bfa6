/**
 * Record validators (kad-dht spec §Entry validation): a `Validator` per key
 * namespace (the text between the first two `/` of a key), `validate` before a
 * record is stored or accepted from a `GET_VALUE`, `select` to pick the best
 * of several. A key whose namespace has no validator is rejected (as go and
 * js do by default). Users add their own through `KadOptions.validators`.
 *
 * `/pk/` (spec §Value routing): the key is `/pk/` followed by the peer id's
 * bytes (its multihash), the value the public key protobuf (peer-ids spec
 * §Keys); valid when the key's peer id is the id of that public key.
 *
 * `/ipns/` is `ipns.ts` (it needs the clock, so Kad adds it with its `Clock`).
 *
 * @since 0.2.0
 */
import { Bytes, Result } from "effect"
import * as Keys from "../../core/Keys.ts"
import * as PeerId from "../../core/PeerId.ts"
import { InvalidRecord } from "./errors.ts"

export interface Validator {
  /** Whether `value` is a valid record for `key`. */
  readonly validate: (key: Uint8Array, value: Uint8Array) => Result.Result<void, InvalidRecord>
  /** The index of the best of `values` (all valid, at least one). Must be stable. */
  readonly select: (key: Uint8Array, values: ReadonlyArray<Uint8Array>) => number
}

/** Validators by namespace (`"pk"`, `"ipns"`, …). */
export type Validators = Readonly<Record<string, Validator>>

const SLASH = 0x2f
const utf8 = new TextDecoder("utf-8", { fatal: false })

/** A key's namespace and the bytes after it: `/ns/rest` → `["ns", rest]`; undefined when it has none. */
export const splitKey = (key: Uint8Array): readonly [string, Uint8Array] | undefined => {
  if (key[0] !== SLASH) return undefined
  const end = key.indexOf(SLASH, 1)
  if (end <= 1) return undefined
  return [utf8.decode(key.subarray(1, end)), key.subarray(end + 1)]
}

const PK_PREFIX = new TextEncoder().encode("/pk/")

/** The `/pk/` key of a peer: `/pk/` + its id's bytes. */
export const pkKey = (peer: PeerId.PeerId): Uint8Array => Bytes.concat([PK_PREFIX, PeerId.toBytes(peer)])

/** The peer id of a `/pk/` key; undefined for any other key. */
export const pkPeer = (key: Uint8Array): PeerId.PeerId | undefined => {
  const split = splitKey(key)
  if (split === undefined || split[0] !== "pk") return undefined
  const id = PeerId.fromBytes(split[1])
  return Result.isSuccess(id) ? id.success : undefined
}

const invalid = (message: string, cause?: unknown) =>
  Result.fail(new InvalidRecord(cause === undefined ? { message } : { message, cause }))

/** The `/pk/` validator (spec §Value routing). */
export const pk: Validator = {
  validate: (key, value) => {
    const split = splitKey(key)
    if (split === undefined || split[0] !== "pk") return invalid("not a /pk/ key")
    const id = PeerId.fromBytes(split[1])
    if (Result.isFailure(id)) return invalid("the /pk/ key does not hold a peer id", id.failure)
    const publicKey = Keys.unmarshalPublicKey(value)
    if (Result.isFailure(publicKey)) return invalid("the /pk/ value is not a public key", publicKey.failure)
    if (!PeerId.matchesPublicKey(id.success, publicKey.success)) {
      return invalid("the public key does not hash to the key's peer id")
    }
    return Result.void
  },
  // every valid value is the same key
  select: () => 0
}

export const defaults: Validators = { pk }

/** Validate `value` for `key` with the validator of its namespace; no validator is a failure. */
export const validate = (
  validators: Validators,
  key: Uint8Array,
  value: Uint8Array
): Result.Result<Validator, InvalidRecord> => {
  const split = splitKey(key)
  const validator = split !== undefined && Object.hasOwn(validators, split[0]) ? validators[split[0]] : undefined
  if (validator === undefined) {
    return Result.fail(
      new InvalidRecord({ message: `no validator for the key's namespace (${split?.[0] ?? "none"})` })
    )
  }
  return Result.map(validator.validate(key, value), () => validator)
}
