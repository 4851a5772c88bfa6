/**
 * Rendezvous's requester (rendezvous spec §Interaction): one request on a new
 * outbound stream, its answer read back (none for `UNREGISTER`), then the
 * stream closed. A pure function of a stream, testable on `Duplex.pair`.
 *
 * The answer must be the response type of the request (`REGISTER_RESPONSE` to
 * `REGISTER`, `DISCOVER_RESPONSE` to `DISCOVER`) with its body, at most
 * `MAX_MESSAGE_SIZE` long; anything else is `RendezvousError` `Malformed`, a
 * stream that fails or ends early `Unreachable`. The caller bounds the time.
 *
 * @internal
 */
import { Effect } from "effect"
import type * as Duplex from "../../core/Duplex.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import type * as PeerId from "../../core/PeerId.ts"
import { fail, Malformed, type RendezvousError } from "./errors.ts"
import { MAX_MESSAGE_SIZE, MessageType, RendezvousMessage } from "./messages.ts"
import { decode, streamError } from "./server.ts"

const answerType: Record<number, number> = {
  [MessageType.REGISTER]: MessageType.REGISTER_RESPONSE,
  [MessageType.DISCOVER]: MessageType.DISCOVER_RESPONSE
}

/** Send `req` to `peer` on `stream`; its answer, or `undefined` for `UNREGISTER`. */
export const request = (
  stream: Duplex.Duplex,
  peer: PeerId.PeerId,
  req: RendezvousMessage
): Effect.Effect<RendezvousMessage | undefined, RendezvousError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE_SIZE })
    yield* Effect.mapError(msgs.write(RendezvousMessage.encode(req)), (e) => streamError(peer, "writing a request", e))
    const expected = answerType[req.type ?? -1]
    if (expected === undefined) {
      yield* msgs.closeWrite
      // wait for the remote to close its side, so that closing the stream does not reset it under the request
      yield* Effect.ignore(msgs.read)
      return undefined
    }
    const bytes = yield* Effect.mapError(msgs.readOne, (e) => streamError(peer, "reading the answer", e))
    yield* msgs.closeWrite
    const res = yield* decode(bytes)
    const body = expected === MessageType.REGISTER_RESPONSE ? res.registerResponse : res.discoverResponse
    if (res.type !== expected || body === undefined) {
      return yield* Effect.fail(
        fail(new Malformed({ message: `answer of type ${res.type ?? "(none)"} to a request of type ${req.type}` }))
      )
    }
    return res
  })
