/**
 * Reservation vouchers (libp2p specs relay/circuit-v2.md §Reservation
 * Vouchers): a signed envelope (RFC 0002, `core/Envelope.ts`) in the domain
 * `libp2p-relay-rsvp` with payload type `0x0302` (the multicodec
 * `libp2p-relay-rsvp`; see {@link PAYLOAD_TYPE}), whose payload is the
 * canonical protobuf `Voucher { relay, peer, expiration }`.
 *
 * `seal` makes one (the relay signs with its identity key); `open` checks the
 * envelope's signature and payload type, that the signer is the relay the
 * voucher names, and decodes the payload canonically (fields in order, no
 * unknown fields). What the reserving client checks beyond that (the relay
 * and the peer are who it expects, the expiration matches the reservation)
 * is `RelayClient`'s business.
 *
 * @since 0.3.0
 */
import { Result, Schema } from "effect"
import * as Envelope from "../../core/Envelope.ts"
import type * as Keys from "../../core/Keys.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"

/** §Reservation Vouchers: the envelope domain. */
export const DOMAIN = "libp2p-relay-rsvp"
/**
 * The multicodec `0x0302` as the envelope's payload type. Written as the two
 * big-endian bytes `03 02`, not as the code's unsigned varint (`82 06`):
 * that is what go-libp2p (`circuitv2/proto` `RecordCodec`) and js-libp2p
 * (`reservation-voucher.js` `codec`) sign and expect.
 */
export const PAYLOAD_TYPE: Uint8Array = Uint8Array.of(0x03, 0x02)

const proto = Protobuf.define(`
syntax = "proto3";
message Voucher {
  // These fields are marked optional for backwards compatibility with proto2.
  // Users should make sure to always set these.
  optional bytes relay = 1;
  optional bytes peer = 2;
  optional uint64 expiration = 3;
}`)

interface VoucherMessage {
  readonly relay?: Uint8Array
  readonly peer?: Uint8Array
  readonly expiration?: bigint
}

const VoucherMessage = proto.codec<VoucherMessage>("Voucher", { canonical: true })

export interface Voucher {
  readonly relay: PeerId.PeerId
  readonly peer: PeerId.PeerId
  /** UNIX UTC seconds. */
  readonly expiration: bigint
}

export class VoucherError extends Schema.TaggedError<VoucherError>()("VoucherError", {
  reason: Schema.Literals(["Envelope", "Payload", "WrongSigner", "SignFailed"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** The canonical payload bytes of a voucher. */
export const encodePayload = (voucher: Voucher): Uint8Array =>
  VoucherMessage.encode({
    relay: PeerId.toBytes(voucher.relay),
    peer: PeerId.toBytes(voucher.peer),
    expiration: voucher.expiration
  })

/** Decode a voucher payload (canonical form only; every field present). */
export const decodePayload = (bytes: Uint8Array): Result.Result<Voucher, VoucherError> => {
  const decoded = VoucherMessage.decode(bytes)
  if (Result.isFailure(decoded)) {
    return Result.fail(
      new VoucherError({ reason: "Payload", message: `voucher: ${decoded.failure.message}`, cause: decoded.failure })
    )
  }
  const m = decoded.success
  if (m.relay === undefined || m.peer === undefined || m.expiration === undefined) {
    return Result.fail(new VoucherError({ reason: "Payload", message: "voucher: a field is missing" }))
  }
  const relay = PeerId.fromBytes(m.relay)
  const peer = PeerId.fromBytes(m.peer)
  if (Result.isFailure(relay) || Result.isFailure(peer)) {
    return Result.fail(new VoucherError({ reason: "Payload", message: "voucher: not a peer id" }))
  }
  return Result.succeed({ relay: relay.success, peer: peer.success, expiration: m.expiration })
}

/** Sign a voucher with the relay's key; the envelope's wire bytes. */
export const seal = (relayKey: Keys.PrivateKey, voucher: Voucher): Result.Result<Uint8Array, VoucherError> =>
  Result.mapBoth(Envelope.seal(relayKey, DOMAIN, PAYLOAD_TYPE, encodePayload(voucher)), {
    onFailure: (e) => new VoucherError({ reason: "SignFailed", message: e.message, cause: e }),
    onSuccess: Envelope.encode
  })

/**
 * Open a voucher: the envelope verifies in {@link DOMAIN} with
 * {@link PAYLOAD_TYPE}, the payload is canonical, and its `relay` is the
 * envelope's signer.
 */
export const open = (bytes: Uint8Array): Result.Result<Voucher, VoucherError> => {
  const envelope = Envelope.open(bytes, DOMAIN, PAYLOAD_TYPE)
  if (Result.isFailure(envelope)) {
    return Result.fail(
      new VoucherError({ reason: "Envelope", message: envelope.failure.message, cause: envelope.failure })
    )
  }
  return Result.flatMap(
    decodePayload(envelope.success.payload),
    (voucher) =>
      PeerId.equals(voucher.relay, Envelope.peerId(envelope.success))
        ? Result.succeed(voucher)
        : Result.fail(new VoucherError({ reason: "WrongSigner", message: "voucher: not signed by the relay it names" }))
  )
}
