/**
 * Peer records, per RFC 0003
 * (https://github.com/libp2p/specs/blob/master/RFC/0003-routing-records.md):
 * a peer's id, a sequence number and its listen addresses, carried in a
 * signed envelope (RFC 0002) so that other peers can check they come from the peer itself.
 *
 * §Address Record Format: `PeerRecord { bytes peer_id = 1; uint64 seq = 2;
 * repeated AddressInfo addresses = 3; }` with `AddressInfo { bytes multiaddr = 1; }`.
 * `seq` is a `bigint` (real records use nanosecond timestamps above 2^53).
 * Addresses are kept as binary multiaddrs (`make` and `multiaddrs` convert).
 *
 * Domain and payload type: the RFC text says `libp2p-routing-state` and
 * `/libp2p/routing-state-record`, but go-libp2p, js-libp2p and rust-libp2p sign
 * with domain `libp2p-peer-record` and payload type `0x03 0x01` (the multicodec
 * `libp2p-peer-record` 0x0301 as two raw big-endian bytes, not as a uvarint). We
 * follow the implementations; a real go-libp2p record is among our test vectors.
 *
 * §Certification / Verification: `openSigned` verifies the envelope signature
 * before it decodes the record, and rejects a record whose `peer_id` is not the
 * peer id of the envelope's key.
 *
 * @since 0.1.0
 */
import { Bytes, Result, Schema } from "effect"
import * as Envelope from "./Envelope.ts"
import type * as Keys from "./Keys.ts"
import * as Multiaddr from "./Multiaddr.ts"
import * as PeerId from "./PeerId.ts"
import * as Protobuf from "./Protobuf.ts"

/** The envelope domain implementations use for peer records. */
export const DOMAIN = "libp2p-peer-record"

/** The envelope payload type implementations use for peer records (multicodec 0x0301, big-endian). */
export const PAYLOAD_TYPE: Uint8Array = Uint8Array.of(0x03, 0x01)

export interface PeerRecord {
  readonly peerId: PeerId.PeerId
  /** Increases with each new record of the peer (uint64). */
  readonly seq: bigint
  /** Binary multiaddrs. */
  readonly addrs: ReadonlyArray<Uint8Array>
}

/**
 * Why a record could not be made or opened.
 * - `Malformed`: the payload is not a `PeerRecord` message.
 * - `InvalidPeerId`: its `peer_id` is not a valid peer id.
 * - `InvalidSeq`: (seal) `seq` outside the uint64 range.
 * - `InvalidEnvelope`: the envelope is malformed, has a bad key, or its signature does not verify.
 * - `WrongPayloadType`: the envelope carries another payload type.
 * - `PeerIdMismatch`: the record's peer id is not the signer's.
 * - `SignFailed`: the private key could not sign.
 * - `InvalidAddress`: ({@link multiaddrs}) an address is not a valid binary multiaddr.
 */
export const PeerRecordErrorReason = Schema.Literals([
  "Malformed",
  "InvalidPeerId",
  "InvalidSeq",
  "InvalidEnvelope",
  "WrongPayloadType",
  "PeerIdMismatch",
  "SignFailed",
  "InvalidAddress"
])
export type PeerRecordErrorReason = typeof PeerRecordErrorReason.Type

export class PeerRecordError extends Schema.TaggedError<PeerRecordError>()("PeerRecordError", {
  reason: PeerRecordErrorReason,
  message: Schema.String
}) {}

const fail = (reason: PeerRecordErrorReason, message: string): Result.Result<never, PeerRecordError> =>
  Result.fail(new PeerRecordError({ reason, message }))

const proto = Protobuf.define(`
syntax = "proto3";
package peer.pb;
message PeerRecord {
  message AddressInfo { bytes multiaddr = 1; }
  bytes peer_id = 1;
  uint64 seq = 2;
  repeated AddressInfo addresses = 3;
}
`)

interface PeerRecordMessage {
  readonly peer_id: Uint8Array
  readonly seq: bigint
  readonly addresses: ReadonlyArray<{ readonly multiaddr: Uint8Array }>
}

const PeerRecordMessage = proto.codec<PeerRecordMessage>("peer.pb.PeerRecord")

/** A record of multiaddrs. */
export const make = (
  peerId: PeerId.PeerId,
  seq: bigint,
  addrs: ReadonlyArray<Multiaddr.Multiaddr>
): PeerRecord => ({ peerId, seq, addrs: addrs.map(Multiaddr.toBytes) })

/** The record's addresses as multiaddrs; fails on the first that does not decode. */
export const multiaddrs = (record: PeerRecord): Result.Result<ReadonlyArray<Multiaddr.Multiaddr>, PeerRecordError> => {
  const out: Array<Multiaddr.Multiaddr> = []
  for (const bytes of record.addrs) {
    const ma = Multiaddr.fromBytes(bytes)
    if (Result.isFailure(ma)) return fail("InvalidAddress", `peer record: ${ma.failure.message}`)
    out.push(ma.success)
  }
  return Result.succeed(out)
}

const UINT64_MAX = (1n << 64n) - 1n

/** The record's protobuf encoding (the envelope payload). `seq` must be within uint64. */
export const encode = (record: PeerRecord): Uint8Array =>
  PeerRecordMessage.encode({
    peer_id: PeerId.toBytes(record.peerId),
    seq: record.seq,
    addresses: record.addrs.map((multiaddr) => ({ multiaddr }))
  })

/** Decode a record payload (no signature involved: use `openSigned` for untrusted input). */
export const decode = (bytes: Uint8Array): Result.Result<PeerRecord, PeerRecordError> => {
  const message = PeerRecordMessage.decode(bytes)
  if (Result.isFailure(message)) return fail("Malformed", `peer record: ${message.failure.message}`)
  const peerId = PeerId.fromBytes(message.success.peer_id)
  if (Result.isFailure(peerId)) return fail("InvalidPeerId", `peer record: ${peerId.failure.message}`)
  return Result.succeed({
    peerId: peerId.success,
    seq: message.success.seq,
    addrs: message.success.addresses.map((a) => a.multiaddr)
  })
}

/** Sign `record` with `privateKey` into an envelope. The record must be the key's own. */
export const sealEnvelope = (
  privateKey: Keys.PrivateKey,
  record: PeerRecord
): Result.Result<Envelope.Envelope, PeerRecordError> => {
  if (record.seq < 0n || record.seq > UINT64_MAX) {
    return fail("InvalidSeq", `peer record: seq ${record.seq} is not a uint64`)
  }
  if (!PeerId.matchesPublicKey(record.peerId, privateKey.publicKey)) {
    return fail("PeerIdMismatch", "peer record: the record's peer id is not the signing key's")
  }
  return Result.mapError(
    Envelope.seal(privateKey, DOMAIN, PAYLOAD_TYPE, encode(record)),
    (e) => new PeerRecordError({ reason: "SignFailed", message: `peer record: ${e.message}` })
  )
}

/** Sign `record` with `privateKey`: the wire bytes of the signed envelope. */
export const seal = (privateKey: Keys.PrivateKey, record: PeerRecord): Result.Result<Uint8Array, PeerRecordError> =>
  Result.map(sealEnvelope(privateKey, record), Envelope.encode)

/** The record inside an envelope already verified for {@link DOMAIN}; checks the payload type and the signer. */
export const fromEnvelope = (envelope: Envelope.Envelope): Result.Result<PeerRecord, PeerRecordError> => {
  if (!Bytes.Equivalence(envelope.payloadType, PAYLOAD_TYPE)) {
    return fail("WrongPayloadType", "peer record: envelope payload type is not libp2p-peer-record")
  }
  return Result.flatMap(decode(envelope.payload), (record) =>
    PeerId.matchesPublicKey(record.peerId, envelope.publicKey)
      ? Result.succeed(record)
      : fail("PeerIdMismatch", "peer record: peer_id is not the envelope signer's"))
}

/** Open a signed peer record from the wire: verify the envelope, then decode and check the record. */
export const openSigned = (bytes: Uint8Array): Result.Result<PeerRecord, PeerRecordError> => {
  const envelope = Envelope.open(bytes, DOMAIN)
  if (Result.isFailure(envelope)) return fail("InvalidEnvelope", `peer record: ${envelope.failure.message}`)
  return fromEnvelope(envelope.success)
}
