/**
 * The padded application message m of LIP-99 §8.5.2 step 1, 3968 bytes, in
 * nim-libp2p-mix's layout (`fragmentation.nim`, `mix_message.nim`,
 * `serialization.nim`), which the spec allows ("any deterministic padding
 * scheme … that explicitly encodes the padding length and prepends zero bytes"):
 *
 *   m    = padding length (u16 BE) | 0 × padding | body | sequence number (u32 BE)
 *   body = varint(|codec|) (≤ 2 bytes, §8.5.2) | codec | content
 *   content (forward messages) = SURB count (1) | SURB × count | application message
 *   content (replies, codec "") = the reply
 *
 * The sequence number is nim's fragment counter; Mix itself ignores it (§8.3.3:
 * fragmentation and reassembly belong to the origin protocol).
 *
 * @internal
 */
import { Result } from "effect"
import * as Varint from "../../core/Varint.ts"
import { type MixError, mixError } from "./errors.ts"
import { decodeSurb, encodeSurb, MESSAGE_SIZE, type Surb, SURB_SIZE } from "./sphinx.ts"

const PAD_LEN = 2
const SEQ_LEN = 4
/** Room for the body (nim `DataSize`). */
export const DATA_SIZE = MESSAGE_SIZE - PAD_LEN - SEQ_LEN
/** SURBs one message may carry (nim: (MessageSize - 2) div SurbSize). */
export const MAX_SURBS = Math.floor((MESSAGE_SIZE - 2) / SURB_SIZE)
const MAX_CODEC = 0x3fff

const tooLarge = (message: string) => mixError("MessageTooLarge", `mix: ${message}`)
const badPayload = (message: string) => mixError("BadPayload", `mix: ${message}`)

/** The largest application message for `codec` with `surbs` SURBs (nim `getMaxMessageSizeForCodec`). */
export const maxMessageSize = (codec: string, surbs: number, reply = false): number => {
  const codecBytes = Buffer.byteLength(codec)
  return DATA_SIZE - Varint.encodingLength(codecBytes) - codecBytes - (reply ? 0 : 1 + surbs * SURB_SIZE)
}

/** body → m (pad and frame). */
const pad = (body: Uint8Array, seqNo: number): Result.Result<Uint8Array, MixError> => {
  if (body.byteLength > DATA_SIZE) return Result.fail(tooLarge(`${body.byteLength} bytes do not fit ${DATA_SIZE}`))
  const m = new Uint8Array(MESSAGE_SIZE)
  const padding = DATA_SIZE - body.byteLength
  const view = new DataView(m.buffer)
  view.setUint16(0, padding)
  m.set(body, PAD_LEN + padding)
  view.setUint32(PAD_LEN + DATA_SIZE, seqNo >>> 0)
  return Result.succeed(m)
}

const frameBody = (codec: string, content: ReadonlyArray<Uint8Array>): Result.Result<Uint8Array, MixError> => {
  const c = Buffer.from(codec)
  if (c.byteLength > MAX_CODEC) return Result.fail(tooLarge("a codec longer than a 2-byte varint can say"))
  return Result.succeed(new Uint8Array(Buffer.concat([Varint.encode(c.byteLength), c, ...content])))
}

/** A forward message: codec, SURBs and the application message, padded to m. */
export const encodeForward = (
  codec: string,
  surbs: ReadonlyArray<Surb>,
  message: Uint8Array,
  seqNo = 0
): Result.Result<Uint8Array, MixError> => {
  if (surbs.length > MAX_SURBS) return Result.fail(tooLarge(`at most ${MAX_SURBS} SURBs fit one message`))
  const body = frameBody(codec, [Uint8Array.of(surbs.length), ...surbs.map(encodeSurb), message])
  return Result.isFailure(body) ? Result.fail(body.failure) : pad(body.success, seqNo)
}

/** A reply: codec "" and the reply bytes (nim `reply`). */
export const encodeReply = (message: Uint8Array, seqNo = 0): Result.Result<Uint8Array, MixError> => {
  const body = frameBody("", [message])
  return Result.isFailure(body) ? Result.fail(body.failure) : pad(body.success, seqNo)
}

/** m → body, checking the padding (§8.6.4 step 3). */
const unpad = (m: Uint8Array): Result.Result<Uint8Array, MixError> => {
  if (m.byteLength !== MESSAGE_SIZE) return Result.fail(badPayload(`m has ${MESSAGE_SIZE} bytes`))
  const padding = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint16(0)
  if (padding > DATA_SIZE) return Result.fail(badPayload("a padding length beyond the message"))
  for (let i = PAD_LEN; i < PAD_LEN + padding; i++) {
    if (m[i] !== 0) return Result.fail(badPayload("non-zero padding"))
  }
  return Result.succeed(m.subarray(PAD_LEN + padding, PAD_LEN + DATA_SIZE))
}

const readCodec = (body: Uint8Array): Result.Result<{ codec: string; rest: Uint8Array }, MixError> => {
  const len = Varint.decode(body.subarray(0, 2))
  if (Result.isFailure(len)) return Result.fail(mixError("BadPayload", "mix: a bad codec length", len.failure))
  const start = len.success.bytes
  const end = start + len.success.value
  if (end > body.byteLength) return Result.fail(badPayload("the codec runs past the message"))
  return Result.succeed({ codec: Buffer.from(body.subarray(start, end)).toString("utf8"), rest: body.subarray(end) })
}

export interface Forward {
  readonly codec: string
  readonly surbs: ReadonlyArray<Surb>
  readonly message: Uint8Array
}

/** m → codec, SURBs, application message. */
export const decodeForward = (m: Uint8Array): Result.Result<Forward, MixError> => {
  const body = unpad(m)
  if (Result.isFailure(body)) return Result.fail(body.failure)
  const framed = readCodec(body.success)
  if (Result.isFailure(framed)) return Result.fail(framed.failure)
  const { codec, rest } = framed.success
  const count = rest[0]
  if (count === undefined) return Result.fail(badPayload("no SURB count"))
  if (count > MAX_SURBS || 1 + count * SURB_SIZE > rest.byteLength) return Result.fail(badPayload("too many SURBs"))
  const surbs: Array<Surb> = []
  for (let i = 0; i < count; i++) surbs.push(decodeSurb(rest.subarray(1 + i * SURB_SIZE, 1 + (i + 1) * SURB_SIZE)))
  return Result.succeed({ codec, surbs, message: rest.slice(1 + count * SURB_SIZE) })
}

/** m → the reply bytes. */
export const decodeReply = (m: Uint8Array): Result.Result<Uint8Array, MixError> => {
  const body = unpad(m)
  if (Result.isFailure(body)) return Result.fail(body.failure)
  const framed = readCodec(body.success)
  return Result.isFailure(framed) ? Result.fail(framed.failure) : Result.succeed(framed.success.rest.slice())
}
