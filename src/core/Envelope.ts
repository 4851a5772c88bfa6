/**
 * Signed envelopes, per RFC 0002
 * (https://github.com/libp2p/specs/blob/master/RFC/0002-signed-envelopes.md):
 * a payload, its type, and a signature by the enclosed public key over a
 * domain-separated buffer.
 *
 * §Wire Format: `Envelope { PublicKey public_key = 1; bytes payload_type = 2;
 * bytes payload = 3; bytes signature = 5; }` (proto3). The `public_key` is kept
 * as the embedded `PublicKey` message bytes and decoded with `Keys`.
 *
 * §Signature Production / Verification: the signed buffer is
 * `uvarint(len(domain)) ‖ domain (UTF-8) ‖ uvarint(len(payload_type)) ‖ payload_type ‖ uvarint(len(payload)) ‖ payload`,
 * signed with the rules of the peer-ids spec for the key's type. `open` checks
 * the signature against the domain the caller expects (§Domain Separation: a
 * signature made for one domain never verifies for another).
 *
 * @since 0.1.0
 */
import { Bytes, Result, Schema } from "effect"
import * as Keys from "./Keys.ts"
import * as PeerId from "./PeerId.ts"
import * as Protobuf from "./Protobuf.ts"
import * as Varint from "./Varint.ts"

export interface Envelope {
  readonly publicKey: Keys.PublicKey
  readonly payloadType: Uint8Array
  readonly payload: Uint8Array
  readonly signature: Uint8Array
}

/**
 * Why an envelope could not be made or opened.
 * - `Malformed`: the bytes are not an `Envelope` message, or it lacks a public key.
 * - `InvalidPublicKey`: the enclosed public key is not a valid key.
 * - `InvalidSignature`: the signature does not verify for the expected domain.
 * - `WrongPayloadType`: the payload type is not the one the caller expects.
 * - `SignFailed`: the private key could not sign.
 */
export const EnvelopeErrorReason = Schema.Literals([
  "Malformed",
  "InvalidPublicKey",
  "InvalidSignature",
  "WrongPayloadType",
  "SignFailed"
])
export type EnvelopeErrorReason = typeof EnvelopeErrorReason.Type

export class EnvelopeError extends Schema.TaggedError<EnvelopeError>()("EnvelopeError", {
  reason: EnvelopeErrorReason,
  message: Schema.String
}) {}

const fail = (reason: EnvelopeErrorReason, message: string): Result.Result<never, EnvelopeError> =>
  Result.fail(new EnvelopeError({ reason, message }))

const proto = Protobuf.define(`
syntax = "proto3";
package record.pb;
message Envelope {
  bytes public_key = 1;
  bytes payload_type = 2;
  bytes payload = 3;
  bytes signature = 5;
}
`)

interface EnvelopeMessage {
  readonly public_key: Uint8Array
  readonly payload_type: Uint8Array
  readonly payload: Uint8Array
  readonly signature: Uint8Array
}

const EnvelopeMessage = proto.codec<EnvelopeMessage>("record.pb.Envelope")

const utf8 = new TextEncoder()

/** The buffer that is signed (§Signature Production). */
export const signingBuffer = (domain: string, payloadType: Uint8Array, payload: Uint8Array): Uint8Array => {
  const domainBytes = utf8.encode(domain)
  const parts = [domainBytes, payloadType, payload]
  let size = 0
  for (const p of parts) size += Varint.encodingLength(p.length) + p.length
  const out = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    at += Varint.encodeInto(p.length, out, at)
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Sign `payload` with `privateKey` for `domain`. */
export const seal = (
  privateKey: Keys.PrivateKey,
  domain: string,
  payloadType: Uint8Array,
  payload: Uint8Array
): Result.Result<Envelope, EnvelopeError> => {
  const signature = privateKey.sign(signingBuffer(domain, payloadType, payload))
  return Result.isFailure(signature)
    ? fail("SignFailed", `envelope: ${signature.failure.message}`)
    : Result.succeed({ publicKey: privateKey.publicKey, payloadType, payload, signature: signature.success })
}

/** The wire form of an envelope. */
export const encode = (envelope: Envelope): Uint8Array =>
  EnvelopeMessage.encode({
    public_key: Keys.publicKeyToProtobuf(envelope.publicKey),
    payload_type: envelope.payloadType,
    payload: envelope.payload,
    signature: envelope.signature
  })

/** Decode an envelope WITHOUT checking its signature (use `open` for untrusted input). */
export const decode = (bytes: Uint8Array): Result.Result<Envelope, EnvelopeError> => {
  const message = EnvelopeMessage.decode(bytes)
  if (Result.isFailure(message)) return fail("Malformed", `envelope: ${message.failure.message}`)
  const m = message.success
  if (m.public_key.length === 0) return fail("Malformed", "envelope: no public key")
  const publicKey = Keys.publicKeyFromProtobuf(m.public_key)
  if (Result.isFailure(publicKey)) return fail("InvalidPublicKey", `envelope: ${publicKey.failure.message}`)
  return Result.succeed({
    publicKey: publicKey.success,
    payloadType: m.payload_type,
    payload: m.payload,
    signature: m.signature
  })
}

/** Whether the envelope's signature verifies for `domain`. */
export const verify = (envelope: Envelope, domain: string): boolean =>
  envelope.publicKey.verify(signingBuffer(domain, envelope.payloadType, envelope.payload), envelope.signature)

/**
 * Decode an envelope and verify its signature for `domain` (§Signature
 * Verification). When `payloadType` is given, the envelope must carry exactly that type.
 */
export const open = (
  bytes: Uint8Array,
  domain: string,
  payloadType?: Uint8Array
): Result.Result<Envelope, EnvelopeError> =>
  Result.flatMap(decode(bytes), (envelope) => {
    if (payloadType !== undefined && !Bytes.Equivalence(envelope.payloadType, payloadType)) {
      return fail("WrongPayloadType", "envelope: unexpected payload type")
    }
    return verify(envelope, domain)
      ? Result.succeed(envelope)
      : fail("InvalidSignature", `envelope: signature does not verify for domain ${JSON.stringify(domain)}`)
  })

/** The peer id of the envelope's signer. */
export const peerId = (envelope: Envelope): PeerId.PeerId => PeerId.fromPublicKey(envelope.publicKey)
