/**
 * Kad-DHT's responder (kad-dht spec §RPC messages): requests on one inbound
 * stream, each a varint length-prefixed `Message` of at most
 * `MAX_MESSAGE_SIZE`, each answered on the same stream (several requests per
 * stream are handled, as the spec requires) until the remote closes its side.
 * Pure functions of a stream and a {@link Handlers} value, testable on
 * `Duplex.pair` without a node.
 *
 * Per type:
 * - `FIND_NODE`: the k closest peers we know to `sha256(key)` (ourselves alone when the key is our id);
 * - `GET_VALUE`: the stored record, if any (for `/pk/<id>` the public key when we know it), and the k closest peers;
 * - `PUT_VALUE`: the record is validated (its key must be the message's key), compared with the stored
 *   one by the namespace's `select`, stored if better; the request is echoed back (as go and js do);
 * - `ADD_PROVIDER`: every provider entry whose id is the sender's is stored with its addresses; no
 *   answer is sent (go and js send none);
 * - `GET_PROVIDERS`: the stored providers and the k closest peers; a provider whose signed peer
 *   record we hold (its `certified` addresses) is answered with those addresses, the others with
 *   the addresses their `ADD_PROVIDER` gave (kad-dht spec §Content provider advertisement; go
 *   answers from its peerstore, whose certified book identify fills the same way);
 * - `PING`: echoed (spec: nodes should respond).
 * A bad message fails with `KadError` (`Malformed` or `InvalidRecord`), which resets the stream.
 * The requester and we are never among the closer peers.
 *
 * @internal
 */
import { Bytes, Duration, Effect, Result } from "effect"
import type * as Duplex from "../../core/Duplex.ts"
import * as Keys from "../../core/Keys.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import * as PeerId from "../../core/PeerId.ts"
import type * as Reader from "../../core/Reader.ts"
import { fail, type KadError, Malformed, PeerTimeout, Unreachable } from "./errors.ts"
import {
  type ConnectionType,
  fromKadPeer,
  KadMessage,
  type KadPeer,
  MAX_MESSAGE_SIZE,
  message,
  MessageType,
  type PeerInfo,
  toKadPeer
} from "./messages.ts"
import type { RecordStore } from "./store.ts"
import * as Validator from "./Validator.ts"

export interface Handlers {
  readonly self: PeerId.PeerId
  /** The public key of a peer, when known (ours, or one the Peerstore holds), for `/pk/` keys. */
  readonly publicKeyOf: (peer: PeerId.PeerId) => Keys.PublicKey | undefined
  /** Our addresses, for a `FIND_NODE` of our own id. */
  readonly selfAddrs: () => PeerInfo["addrs"]
  /** The k closest peers we know to a key (the raw key, hashed by the callee), without `exclude`. */
  readonly closer: (key: Uint8Array, exclude: PeerId.PeerId) => ReadonlyArray<PeerInfo>
  /** How we are connected to a peer, for the `connection` field. */
  readonly connectionOf: (peer: PeerId.PeerId) => ConnectionType
  /** The addresses of a peer's signed peer record we accepted (none when we hold no record). */
  readonly certifiedAddrs?: (peer: PeerId.PeerId) => PeerInfo["addrs"]
  readonly store: RecordStore
  readonly validators: Validator.Validators
  /** Told the type of each request read (metrics). */
  readonly onRequest?: (type: number) => void
}

const malformed = (message: string, cause?: unknown) =>
  fail(new Malformed(cause === undefined ? { message } : { message, cause }))

/**
 * A failure to read or write a message: `Malformed` when the peer sent bytes
 * that are not a length-prefixed message under the limit, `Unreachable` when
 * the stream itself failed or ended early.
 */
export const streamError = (
  peer: PeerId.PeerId,
  doing: string,
  e: Reader.ReaderError | Duplex.DuplexError
): KadError =>
  e._tag === "ReaderError" && e.reason !== "UnexpectedEOF"
    ? malformed(`${doing}: ${e.message}`, e)
    : fail(new Unreachable({ peer: peer.toString(), message: `${doing}: ${e.message}`, cause: e }))

/** Decode a request or response body. */
export const decode = (bytes: Uint8Array): Effect.Effect<KadMessage, KadError> => {
  const msg = KadMessage.decode(bytes)
  return Result.isSuccess(msg)
    ? Effect.succeed(msg.success)
    : Effect.fail(malformed(`not a Kad message: ${msg.failure.message}`, msg.failure))
}

const peers = (h: Handlers, infos: ReadonlyArray<PeerInfo>): ReadonlyArray<KadPeer> =>
  infos.map((i) => toKadPeer(i, h.connectionOf(i.peerId)))

/** A provider with the addresses of its signed peer record, when we hold one. */
const withCertified = (h: Handlers, provider: PeerInfo): PeerInfo => {
  const certified = h.certifiedAddrs?.(provider.peerId) ?? []
  return certified.length > 0 ? { peerId: provider.peerId, addrs: certified } : provider
}

/** Validate a record for `key` and store it unless the stored one is better. */
export const putValue = (h: Handlers, key: Uint8Array, value: Uint8Array): Effect.Effect<void, KadError> =>
  Effect.gen(function*() {
    const validator = yield* Effect.mapError(
      Effect.fromResult(Validator.validate(h.validators, key, value)),
      (e) => fail(e)
    )
    const stored = yield* h.store.getRecord(key)
    if (stored !== undefined && !Bytes.Equivalence(stored.value, value)) {
      const valid = Result.isSuccess(validator.validate(key, stored.value))
      if (valid && validator.select(key, [stored.value, value]) === 0) return
    }
    yield* h.store.putRecord(key, value)
  })

/** The answer to one request; `undefined` when the type has none (`ADD_PROVIDER`). */
export const handle = (
  h: Handlers,
  req: KadMessage,
  from: PeerId.PeerId
): Effect.Effect<KadMessage | undefined, KadError> =>
  Effect.gen(function*() {
    const closer = () => peers(h, h.closer(req.key, from))
    switch (req.type) {
      case MessageType.FIND_NODE: {
        const self = PeerId.fromBytes(req.key)
        if (Result.isSuccess(self) && PeerId.equals(self.success, h.self)) {
          return message(MessageType.FIND_NODE, {
            key: req.key,
            closerPeers: peers(h, [{ peerId: h.self, addrs: h.selfAddrs() }])
          })
        }
        return message(MessageType.FIND_NODE, { key: req.key, closerPeers: closer() })
      }
      case MessageType.GET_VALUE: {
        let record = yield* h.store.getRecord(req.key)
        // spec: for a /pk/ key whose key is known, the record is that key
        const pkPeer = record === undefined ? Validator.pkPeer(req.key) : undefined
        const known = pkPeer !== undefined ? h.publicKeyOf(pkPeer) : undefined
        if (known !== undefined) record = { key: req.key, value: Keys.marshalPublicKey(known), timeReceived: "" }
        return message(MessageType.GET_VALUE, {
          key: req.key,
          ...(record !== undefined ? { record } : {}),
          closerPeers: closer()
        })
      }
      case MessageType.PUT_VALUE: {
        const record = req.record
        if (record === undefined) return yield* malformed("PUT_VALUE without a record")
        if (!Bytes.Equivalence(record.key, req.key)) return yield* malformed("PUT_VALUE record key is not the key")
        yield* putValue(h, req.key, record.value)
        return req
      }
      case MessageType.ADD_PROVIDER: {
        if (req.key.length === 0) return yield* malformed("ADD_PROVIDER without a key")
        for (const p of req.providerPeers) {
          const info = fromKadPeer(p)
          // spec §Content routing: only the sender itself may be recorded as a provider
          if (info !== undefined && PeerId.equals(info.peerId, from)) yield* h.store.addProvider(req.key, info)
        }
        return undefined
      }
      case MessageType.GET_PROVIDERS: {
        const providers = yield* h.store.getProviders(req.key)
        return message(MessageType.GET_PROVIDERS, {
          key: req.key,
          providerPeers: peers(h, providers.map((p) => withCertified(h, p))),
          closerPeers: closer()
        })
      }
      case MessageType.PING:
        return message(MessageType.PING)
      default:
        return yield* malformed(`unknown message type ${req.type}`)
    }
  })

/** How long an inbound stream may wait for its next request (js-libp2p's `incomingMessageTimeout`). */
export const IDLE_TIMEOUT = Duration.seconds(10)

/**
 * Answer every request on an inbound stream until the remote closes its side, then close ours.
 * A stream that sends no request for `idleTimeout` fails with `PeerTimeout` (the stream is reset).
 */
export const serve = (
  stream: Duplex.Duplex,
  from: PeerId.PeerId,
  h: Handlers,
  options: { readonly maxMessageSize?: number; readonly idleTimeout?: Duration.Duration } = {}
): Effect.Effect<void, KadError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: options.maxMessageSize ?? MAX_MESSAGE_SIZE })
    const idle = options.idleTimeout ?? IDLE_TIMEOUT
    const read = Effect.mapError(msgs.read, (e) => streamError(from, "reading a request", e)).pipe(
      Effect.timeoutOrElse({
        duration: idle,
        orElse: () => Effect.fail(fail(new PeerTimeout({ peer: from.toString(), millis: Duration.toMillis(idle) })))
      })
    )
    while (true) {
      const bytes = yield* read
      if (bytes === undefined) break
      const req = yield* decode(bytes)
      h.onRequest?.(req.type)
      const res = yield* handle(h, req, from)
      if (res !== undefined) {
        yield* Effect.mapError(msgs.write(KadMessage.encode(res)), (e) => streamError(from, "writing an answer", e))
      }
    }
    yield* msgs.closeWrite
  })
