/**
 * The signed peer records a registration carries (rendezvous spec §The
 * Protocol: "a serialized signed peer record", RFC 0002 + RFC 0003), in the
 * two envelope formats in use:
 *
 * - `peer-record`: domain `libp2p-peer-record`, payload type `0x03 0x01` —
 *   what go-libp2p, js-libp2p, nim-libp2p and go-libp2p-rendezvous sign
 *   (`core/PeerRecord.ts`);
 * - `routing-state`: domain `libp2p-routing-state`, payload type
 *   `/libp2p/routing-state-record` (the RFC 0003 text's values) — what
 *   rust-libp2p's rendezvous signs and the only format it accepts
 *   (`PeerRecord::new`/`from_signed_envelope`, its "legacy" format; measured
 *   against rust-libp2p 0.57: a `peer-record` registration is refused with a
 *   reset stream, and its client's record fails `openSigned`).
 *
 * The point accepts both and hands the record back as it came; our client
 * signs `peer-record` unless told `routing-state` (for a rust-libp2p point).
 *
 * @internal
 */
import { Bytes, Result } from "effect"
import * as Envelope from "../../core/Envelope.ts"
import type * as Keys from "../../core/Keys.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as PeerRecord from "../../core/PeerRecord.ts"

export type RecordFormat = "peer-record" | "routing-state"

export const ROUTING_STATE_DOMAIN = "libp2p-routing-state"
export const ROUTING_STATE_PAYLOAD_TYPE = new TextEncoder().encode("/libp2p/routing-state-record")

const invalid = (message: string) => Result.fail(new PeerRecord.PeerRecordError({ reason: "InvalidEnvelope", message }))

/** Open a signed record in either format: the signature, the payload type and the signer are checked. */
export const open = (bytes: Uint8Array): Result.Result<PeerRecord.PeerRecord, PeerRecord.PeerRecordError> => {
  const envelope = Envelope.decode(bytes)
  if (Result.isFailure(envelope)) return invalid(`peer record: ${envelope.failure.message}`)
  if (!Bytes.Equivalence(envelope.success.payloadType, ROUTING_STATE_PAYLOAD_TYPE)) return PeerRecord.openSigned(bytes)
  if (!Envelope.verify(envelope.success, ROUTING_STATE_DOMAIN)) {
    return invalid("peer record: the signature does not verify for libp2p-routing-state")
  }
  return Result.flatMap(
    PeerRecord.decode(envelope.success.payload),
    (record) =>
      PeerId.matchesPublicKey(record.peerId, envelope.success.publicKey)
        ? Result.succeed(record)
        : Result.fail(
          new PeerRecord.PeerRecordError({
            reason: "PeerIdMismatch",
            message: "peer record: peer_id is not the envelope signer's"
          })
        )
  )
}

/** Sign `record` with `key` in `format`: the envelope's wire bytes. */
export const seal = (
  key: Keys.PrivateKey,
  record: PeerRecord.PeerRecord,
  format: RecordFormat
): Result.Result<Uint8Array, PeerRecord.PeerRecordError | Envelope.EnvelopeError> =>
  format === "peer-record"
    ? PeerRecord.seal(key, record)
    : Result.map(
      Envelope.seal(key, ROUTING_STATE_DOMAIN, ROUTING_STATE_PAYLOAD_TYPE, PeerRecord.encode(record)),
      Envelope.encode
    )
