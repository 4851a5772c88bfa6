/**
 * The Mix room's one error (docs/ARCHITECTURE.md §5): a literal `reason` and
 * the lower error, when there is one, as `cause`.
 *
 * @internal
 */
import { Schema } from "effect"

export const MixErrorReason = Schema.Literals([
  /** §8.6.1: the stream payload is not exactly one Sphinx packet (plus the spam proof, if any). */
  "WrongSize",
  /** §8.6.1 step 3: γ does not authenticate β. */
  "BadMac",
  /** §8.6.1 step 2: the tag H(s) was seen before. */
  "Replay",
  /** α (or a public key) is not a usable X25519 point (small order: all-zero shared secret). */
  "BadPoint",
  /** §8.6.4 step 2/3: the exit payload does not start with 0_κ or does not parse. */
  "BadPayload",
  /** §8.4: an address block that does not decode, or a peer id / multiaddr that does not fit. */
  "BadAddress",
  /** the next hop or destination cannot be reached (no address, dial failed, not a known mix node). */
  "UnknownNextHop",
  /** §8.5.1: L must be in [3, r] and the path must not repeat a node. */
  "PathLength",
  /** §10.3: a message for this node as its own exit, and no local handler for its codec. */
  "NoHandler",
  /** §8.5.2 step 2: discovery knows fewer usable mix nodes than the path needs. */
  "NotEnoughNodes",
  /** §8.3.3: the message does not fit one packet; fragmentation is the origin protocol's job. */
  "MessageTooLarge",
  /** a bounded queue is full: the packet was dropped. */
  "Overloaded",
  /** a reply (SURB) that nobody waits for, or the wait timed out. */
  "UnknownSurb",
  "Timeout",
  /** §9: the spam-protection proof did not verify. */
  "SpamProof",
  /** reading or writing a stream failed. */
  "Stream"
])
export type MixErrorReason = typeof MixErrorReason.Type

export class MixError extends Schema.TaggedError<MixError>()("MixError", {
  reason: MixErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export const mixError = (reason: MixErrorReason, message: string, cause?: unknown): MixError =>
  cause === undefined ? new MixError({ reason, message }) : new MixError({ reason, message, cause })
