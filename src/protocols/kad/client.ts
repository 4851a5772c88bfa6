/**
 * Kad-DHT's requester (kad-dht spec §RPC messages): one request on a new
 * outbound stream, its answer read back (none for `ADD_PROVIDER`), then the
 * stream closed. A pure function of a stream, testable on `Duplex.pair`.
 *
 * The answer must be a message of the request's type, at most
 * `MAX_MESSAGE_SIZE` long; anything else is `KadError` `Malformed`, a stream
 * that fails or ends early `Unreachable`. The caller bounds the time.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as Duplex from "../../core/Duplex.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import type * as PeerId from "../../core/PeerId.ts"
import { fail, type KadError, Malformed } from "./errors.ts"
import { KadMessage, MAX_MESSAGE_SIZE, MessageType } from "./messages.ts"
import { decode, streamError } from "./server.ts"

/** Send `req` to `peer` on `stream`; its answer, or `undefined` for a type that has none. */
export const request = (
  stream: Duplex.Duplex,
  peer: PeerId.PeerId,
  req: KadMessage
): Effect.Effect<KadMessage | undefined, KadError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
    yield* Effect.mapError(msgs.write(KadMessage.encode(req)), (e) => streamError(peer, "writing a request", e))
    if (req.type === MessageType.ADD_PROVIDER) {
      yield* msgs.closeWrite
      // wait for the remote to close its side, so that closing the stream does not reset it under the request
      yield* Effect.ignore(msgs.read)
      return undefined
    }
    const bytes = yield* Effect.mapError(msgs.readOne, (e) => streamError(peer, "reading the answer", e))
    yield* msgs.closeWrite
    const res = yield* decode(bytes)
    if (res.type !== req.type) {
      return yield* Effect.fail(
        fail(new Malformed({ message: `answer of type ${res.type} to a request of type ${req.type}` }))
      )
    }
    return res
  })
