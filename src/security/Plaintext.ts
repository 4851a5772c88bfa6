/**
 * `/plaintext/2.0.0` (libp2p specs `plaintext/README.md`): NO encryption and
 * NO authentication beyond taking the remote's word for its key. Each side
 * writes one varint-length-prefixed `Exchange { id, pubkey }` and reads the
 * other's; the connection then carries the bytes as they are.
 *
 * For tests only (the libp2p daemon interop tests select it): it is never in
 * a default preference list; a node gets it only when asked by name
 * (`--security plaintext`).
 *
 * Checks on the remote's Exchange (spec §Protocol): `id` must be the peer id
 * of `pubkey` (else `InvalidPayload`), and an outbound connection to a known
 * peer must get that peer (else `PeerIdMismatch`). An Exchange over
 * {@link MAX_EXCHANGE_SIZE} is `MessageTooLarge`.
 *
 * @since 0.2.0
 */
import { Effect, Result } from "effect"
import * as Duplex from "../core/Duplex.ts"
import * as Keys from "../core/Keys.ts"
import * as LengthPrefixed from "../core/LengthPrefixed.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Protobuf from "../core/Protobuf.ts"
import * as Reader from "../core/Reader.ts"
import type * as SecureChannel from "./SecureChannel.ts"
import { SecurityError } from "./SecureChannel.ts"

/** The multistream-select protocol id. */
export const PROTOCOL = "/plaintext/2.0.0"

/** Largest Exchange accepted (an RSA-4096 key is ~550 bytes; go allows 4 KiB messages here too). */
export const MAX_EXCHANGE_SIZE = 4096

// `pubkey` is the peer-ids spec's PublicKey message; as a length-delimited field it is carried as
// its encoded bytes (the same wire bytes as an embedded message).
const proto = Protobuf.define(`
syntax = "proto2";
message Exchange {
  optional bytes id = 1;
  optional bytes pubkey = 2;
}`)

interface Exchange {
  readonly id?: Uint8Array
  readonly pubkey?: Uint8Array
}

const ExchangeCodec = proto.codec<Exchange>("Exchange")

const invalid = (message: string, cause?: unknown) =>
  new SecurityError({ reason: "InvalidPayload", message: `plaintext: ${message}`, ...(cause ? { cause } : {}) })

/** The remote's key and peer id from its Exchange, checked against each other. */
const verify = (bytes: Uint8Array) =>
  Effect.gen(function*() {
    const exchange = yield* Effect.mapError(
      Effect.fromResult(ExchangeCodec.decode(bytes)),
      (e) => invalid("the Exchange message does not decode", e)
    )
    if (exchange.id === undefined || exchange.pubkey === undefined) {
      return yield* invalid("the Exchange message lacks id or pubkey")
    }
    const key = Keys.publicKeyFromProtobuf(exchange.pubkey)
    if (Result.isFailure(key)) return yield* invalid(`bad public key: ${key.failure.message}`, key.failure)
    const id = PeerId.fromBytes(exchange.id)
    if (Result.isFailure(id)) return yield* invalid(`bad peer id: ${id.failure.message}`, id.failure)
    if (!PeerId.matchesPublicKey(id.success, key.success)) {
      return yield* invalid(`peer id ${PeerId.toString(id.success)} is not the id of the key sent`)
    }
    return { peerId: id.success, publicKey: key.success }
  })

const handshake = (
  raw: Duplex.Duplex,
  opts: SecureChannel.SecureOptions
): Effect.Effect<SecureChannel.SecuredConnection, SecurityError> => {
  const run = Effect.gen(function*() {
    const ours = ExchangeCodec.encode({
      id: PeerId.toBytes(PeerId.fromPrivateKey(opts.localKey)),
      pubkey: Keys.publicKeyToProtobuf(opts.localKey.publicKey)
    })
    const reader = Reader.make(raw)
    // Both sides write first, then read (the spec's exchange is symmetric).
    yield* Effect.mapError(
      LengthPrefixed.write(raw, ours),
      (e) => new SecurityError({ reason: "Closed", message: `plaintext: writing the Exchange: ${e.message}`, cause: e })
    )
    const bytes = yield* Effect.mapError(
      LengthPrefixed.readOne(reader, MAX_EXCHANGE_SIZE),
      (e) =>
        e._tag === "ReaderError" && e.reason === "TooLarge"
          ? new SecurityError({ reason: "MessageTooLarge", message: `plaintext: ${e.message}`, cause: e })
          : new SecurityError({ reason: "Closed", message: `plaintext: reading the Exchange: ${e.message}`, cause: e })
    )
    const remote = yield* verify(bytes)
    if (opts.remotePeer !== undefined && !PeerId.equals(opts.remotePeer, remote.peerId)) {
      return yield* new SecurityError({
        reason: "PeerIdMismatch",
        message: `plaintext: expected ${PeerId.toString(opts.remotePeer)}, the remote is ${
          PeerId.toString(remote.peerId)
        }`
      })
    }
    const connection: SecureChannel.SecuredConnection = {
      duplex: Duplex.prepend(raw, reader.rest()),
      remotePeer: remote.peerId,
      remotePublicKey: remote.publicKey
    }
    return connection
  })
  const timed = opts.timeout === undefined ? run : Effect.timeoutOrElse(run, {
    duration: opts.timeout,
    orElse: () =>
      Effect.fail(new SecurityError({ reason: "Timeout", message: "plaintext: the exchange ran past its deadline" }))
  })
  return Effect.onError(timed, () => raw.reset)
}

/** The `/plaintext/2.0.0` channel (stateless: one value serves every connection). */
export const plaintext: SecureChannel.SecureChannel = {
  protocol: PROTOCOL,
  secureOutbound: handshake,
  secureInbound: handshake
}
