/**
 * Limits: the vocabulary shared by the connection contract and the resource
 * manager (which scope, which resource, and the error when a limit is hit),
 * so that `Connection.ts` does not depend on the ResourceManager
 * implementation. See docs/ARCHITECTURE.md, "Which limit fires first".
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** The scopes limits apply to. */
export const ScopeKind = Schema.Literals(["system", "transient", "peer", "protocol", "connection", "stream"])
export type ScopeKind = typeof ScopeKind.Type

/** The resources a scope can limit. `connections` and `streams` bound inbound + outbound together. */
export const Resource = Schema.Literals([
  "connectionsInbound",
  "connectionsOutbound",
  "connections",
  "streamsInbound",
  "streamsOutbound",
  "streams",
  "memory"
])
export type Resource = typeof Resource.Type

/** A reservation would take `scope` past its limit on `resource`. */
export class LimitExceeded extends Schema.TaggedError<LimitExceeded>()("LimitExceeded", {
  scope: ScopeKind,
  resource: Resource,
  limit: Schema.Number,
  message: Schema.String,
  /**
   * Set when a fairness share of a transient pool was hit rather than the
   * scope's own limit: the remote's peer, source IP or source subnet already
   * holds its share (see `Fairness.ts`).
   */
  share: Schema.optional(Schema.Literals(["peer", "ip", "subnet"]))
}) {}
