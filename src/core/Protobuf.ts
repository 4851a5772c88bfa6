/**
 * A thin typed wrapper over protobufjs, used for every protobuf message in the
 * project (peer-ids spec §Keys `PublicKey`/`PrivateKey`, RFC 0002 `Envelope`,
 * RFC 0003 `PeerRecord`, Noise, Identify; the coming Kad and Gossipsub messages too).
 * Wire format: https://protobuf.dev/programming-guides/encoding/.
 *
 * A module declares its messages from `.proto` source text once, at module
 * load, and gets a {@link Codec} per message:
 *
 * ```ts
 * const proto = Protobuf.define(`syntax = "proto3"; message Ping { bytes data = 1; uint64 seq = 2; }`)
 * interface Ping { readonly data: Uint8Array; readonly seq: bigint }
 * const PingCodec = proto.codec<Ping>("Ping")
 * PingCodec.encode({ data, seq: 1n }) // Uint8Array
 * PingCodec.decode(bytes)             // Result<Ping, ProtobufError>
 * ```
 *
 * Value mapping (the TS type you declare must follow it):
 * - field names are exactly as written in the `.proto` text (`keepCase`);
 * - `bytes` → `Uint8Array` (never a Node `Buffer`). Decoded bytes are
 *   zero-copy views into the input buffer: copy them if you later mutate the input;
 * - all 64-bit integers (`uint64`, `int64`, `sint64`, `fixed64`, `sfixed64`) →
 *   `bigint`, always, on decode and on encode (a `number` is also accepted on
 *   encode). No `Long` objects ever leave this module;
 * - other scalars → `number` / `boolean` / `string`; enums → their `number`;
 * - singular fields without presence (proto3 implicit) decode to their default
 *   (`0`, `0n`, `""`, `false`, empty bytes) when absent, and are omitted on
 *   encode when they hold the default (canonical proto3);
 * - singular fields with presence (proto2 `optional`, proto3 `optional`, and
 *   message-typed fields) have no property when absent: type them `field?: T`;
 * - repeated fields decode to an array (empty when absent).
 *   Map fields are not supported (no libp2p protocol uses them).
 *
 * Decoding never throws: every failure of protobufjs is a {@link ProtobufError}.
 * Unknown fields are skipped on decode, as the protobuf spec says, unless the
 * codec is `canonical`: a canonical codec accepts only the exact bytes its own
 * encoder produces (minimal varints, fields in tag order, no unknown or
 * duplicate fields), which is what the peer-ids spec §Keys requires of
 * `PublicKey`/`PrivateKey` ("encoding must be deterministic").
 *
 * The encode/decode functions are the ones protobufjs generates for each Type;
 * the only extra work is converting 64-bit fields and filling absent fields,
 * planned once per message type at definition time.
 *
 * @since 0.1.0
 */
import { Bytes, Result, Schema } from "effect"
import protobuf from "protobufjs"
import * as Strings from "../internal/strings.ts"

/**
 * Why bytes could not be decoded as a message.
 * - `Malformed`: not valid protobuf wire format for the message (truncated,
 *   bad wire type, length past the end, nesting deeper than 100, invalid UTF-8 in a proto3 string).
 * - `MissingRequired`: a proto2 `required` field is absent (this includes a
 *   closed proto2 enum field holding an unknown value).
 * - `NonCanonical`: a `canonical` codec got bytes that differ from the
 *   deterministic encoding of the decoded value.
 */
export const ProtobufErrorReason = Schema.Literals(["Malformed", "MissingRequired", "NonCanonical"])
export type ProtobufErrorReason = typeof ProtobufErrorReason.Type

export class ProtobufError extends Schema.TaggedError<ProtobufError>()("ProtobufError", {
  reason: ProtobufErrorReason,
  message: Schema.String
}) {}

/** Encoder and decoder of one message type. */
export interface Codec<A> {
  /** Fully qualified message name, e.g. `record.pb.Envelope`. */
  readonly name: string
  readonly encode: (value: A) => Uint8Array
  readonly decode: (bytes: Uint8Array) => Result.Result<A, ProtobufError>
}

export interface CodecOptions {
  /** Accept only the deterministic encoding (see the module doc). Default `false`. */
  readonly canonical?: boolean
}

/** The messages of one `.proto` source text. */
export interface Definitions {
  /** The codec of message `name` (fully qualified, or relative to the root: `Outer.Inner`). */
  readonly codec: <A>(name: string, options?: CodecOptions) => Codec<A>
}

/**
 * Parse `.proto` source text (proto2 or proto3). Call this at module load with a
 * constant text: a syntax error or an unknown message name is a bug in this
 * project and surfaces as a defect when the module is imported (every module is
 * imported by the test suite).
 */
export const define = (source: string): Definitions => {
  const root = protobuf.parse(source, { keepCase: true }).root
  root.resolveAll()
  return {
    codec: <A>(name: string, options?: CodecOptions): Codec<A> =>
      makeCodec<A>(root.lookupType(name), options?.canonical ?? false)
  }
}

// ---------------------------------------------------------------------------
// internals

type Obj = Record<string, unknown>

const LONG_TYPES = new Set(["uint64", "int64", "sint64", "fixed64", "sfixed64"])
const EMPTY_BYTES = new Uint8Array(0)

interface LongLike {
  readonly low: number
  readonly high: number
  readonly unsigned: boolean
}

const longToBigInt = (value: unknown): bigint => {
  if (typeof value === "bigint") return value
  if (typeof value === "number") return BigInt(value)
  const l = value as LongLike
  const v = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0)
  return l.unsigned ? v : BigInt.asIntN(64, v)
}

/** protobufjs's writer takes `{ low, high }` for 64-bit values (two's complement halves). */
const bigIntToLong = (value: unknown): unknown => {
  if (typeof value !== "bigint") return value
  const v = BigInt.asUintN(64, value)
  return { low: Number(v & 0xffffffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true }
}

/** Decoded bytes fields are views of the input; make them plain `Uint8Array`s even for a `Buffer` input. */
const asPlainUint8Array = (bytes: Uint8Array): Uint8Array =>
  bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** How one field is fixed up after decode and before encode. */
interface FieldPlan {
  readonly name: string
  readonly repeated: boolean
  readonly presence: boolean
  readonly long: boolean
  readonly bytes: boolean
  readonly string: boolean
  readonly message: TypePlan | undefined
}

interface TypePlan {
  fields: ReadonlyArray<FieldPlan>
  /** Whether this message itself has 64-bit fields (see `computeHasLong` for nested ones). */
  hasLong: boolean
}

const plans = new WeakMap<protobuf.Type, TypePlan>()

const planOf = (type: protobuf.Type): TypePlan => {
  const existing = plans.get(type)
  if (existing !== undefined) return existing
  const plan: TypePlan = { fields: [], hasLong: false }
  plans.set(type, plan) // before recursing: recursive message types
  const fields: Array<FieldPlan> = []
  for (const field of type.fieldsArray) {
    field.resolve()
    const nested = field.resolvedType instanceof protobuf.Type ? planOf(field.resolvedType) : undefined
    fields.push({
      name: field.name,
      repeated: field.repeated,
      presence: field.hasPresence || nested !== undefined,
      long: LONG_TYPES.has(field.type),
      bytes: field.type === "bytes",
      string: field.type === "string",
      message: nested
    })
  }
  plan.fields = fields
  plan.hasLong = fields.some((f) => f.long)
  return plan
}

/** Whether any message reachable from `plan` has 64-bit fields (fixpoint over recursive types). */
const computeHasLong = (plan: TypePlan, seen: Set<TypePlan>): boolean => {
  if (plan.hasLong) return true
  if (seen.has(plan)) return false
  seen.add(plan)
  for (const f of plan.fields) {
    if (f.message !== undefined && computeHasLong(f.message, seen)) return true
  }
  return false
}

/**
 * The decoded protobufjs message as a plain object in our representation
 * (protobufjs returns class instances whose absent fields read through to
 * prototype defaults such as `[]` for bytes and `Long` zero for 64-bit fields).
 */
const toPlain = (m: Obj, plan: TypePlan): Obj => {
  const out: Obj = {}
  for (const f of plan.fields) {
    const v = m[f.name]
    const own = v !== null && v !== undefined && Object.hasOwn(m, f.name)
    if (f.repeated) {
      if (!own) out[f.name] = []
      else if (f.long) out[f.name] = (v as Array<unknown>).map(longToBigInt)
      else if (f.message !== undefined) {
        const sub = f.message
        out[f.name] = (v as Array<Obj>).map((item) => toPlain(item, sub))
      } else if (f.string) out[f.name] = (v as Array<string>).map(Strings.flat)
      else out[f.name] = v
    } else if (!own) {
      if (f.presence) continue // absent: no property (type it `field?: T`)
      if (f.bytes) out[f.name] = EMPTY_BYTES
      else if (f.long) out[f.name] = 0n
      else out[f.name] = v // the prototype's scalar default (0, "", false, first enum value)
    } else if (f.long) out[f.name] = longToBigInt(v)
    else if (f.message !== undefined) out[f.name] = toPlain(v as Obj, f.message)
    else if (f.string) out[f.name] = Strings.flat(v as string)
    else out[f.name] = v
  }
  return out
}

/** A copy of `value` where 64-bit fields are in the form protobufjs's writer takes. */
const prepare = (value: Obj, plan: TypePlan, longBelow: ReadonlyMap<TypePlan, boolean>): Obj => {
  const out: Obj = { ...value }
  for (const f of plan.fields) {
    const v = out[f.name]
    if (v === undefined || v === null) continue
    if (f.long) {
      out[f.name] = f.repeated ? (v as ReadonlyArray<unknown>).map(bigIntToLong) : bigIntToLong(v)
    } else if (f.message !== undefined && longBelow.get(f.message) === true) {
      const sub = f.message
      out[f.name] = f.repeated
        ? (v as ReadonlyArray<Obj>).map((item) => prepare(item, sub, longBelow))
        : prepare(v as Obj, sub, longBelow)
    }
  }
  return out
}

const collectPlans = (plan: TypePlan, acc: Set<TypePlan>): Set<TypePlan> => {
  if (acc.has(plan)) return acc
  acc.add(plan)
  for (const f of plan.fields) if (f.message !== undefined) collectPlans(f.message, acc)
  return acc
}

const errorOf = (e: unknown, typeName: string): ProtobufError => {
  const message = e instanceof Error ? e.message : String(e)
  const reason: ProtobufErrorReason = e instanceof Error && e.name === "ProtocolError" ? "MissingRequired" : "Malformed"
  return new ProtobufError({ reason, message: `${typeName}: ${message}` })
}

const makeCodec = <A>(type: protobuf.Type, canonical: boolean): Codec<A> => {
  const name = type.fullName.replace(/^\./, "")
  const plan = planOf(type)
  const longBelow = new Map<TypePlan, boolean>()
  for (const p of collectPlans(plan, new Set())) longBelow.set(p, computeHasLong(p, new Set()))
  const needsPrepare = longBelow.get(plan) === true

  const encode = (value: A): Uint8Array => {
    const message = needsPrepare ? prepare(value as Obj, plan, longBelow) : value
    return type.encode(message as protobuf.Message, new protobuf.Writer()).finish()
  }

  const decode = (bytes: Uint8Array): Result.Result<A, ProtobufError> => {
    const input = asPlainUint8Array(bytes)
    let decoded: Obj
    try {
      const reader = new protobuf.Reader(input)
      reader.discardUnknown = true
      decoded = toPlain(type.decode(reader) as unknown as Obj, plan)
    } catch (e) {
      return Result.fail(errorOf(e, name))
    }
    if (canonical) {
      const again = encode(decoded as A)
      if (!Bytes.Equivalence(again, input)) {
        return Result.fail(
          new ProtobufError({ reason: "NonCanonical", message: `${name}: not the deterministic encoding of its value` })
        )
      }
    }
    return Result.succeed(decoded as A)
  }

  return { name, encode, decode }
}
