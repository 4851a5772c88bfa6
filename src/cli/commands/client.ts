/**
 * What `ping`, `identify` and `perf` share: the target address argument, the
 * stack flags, and a short-lived client node built from them.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import { Host } from "../../host/Host.ts"
import { Identify } from "../../protocols/identify/Identify.ts"
import { Perf } from "../../protocols/perf/Perf.ts"
import { Ping } from "../../protocols/ping/Ping.ts"
import { json, parseMultiaddr, peerAddress, type StackFlags, stackFlags, stackOptions, targetPeer } from "../flags.ts"

/** The flags and argument of a client command. */
export const clientFlags = { addr: peerAddress, json, ...stackFlags }

/** The stack options, the target address and its peer id (usage errors first, before any node is built). */
export const clientTarget = (flags: StackFlags & { readonly addr: string }) =>
  Effect.gen(function*() {
    const preset = yield* stackOptions(flags)
    const addr = yield* parseMultiaddr(flags.addr)
    const peer = yield* targetPeer(addr)
    return { preset, addr, peer }
  })

/** Run `body` with a short-lived client node (closed when `body` ends). */
export const withClient = <A, E, R>(
  preset: Nodes.PresetOptions,
  body: (services: {
    readonly host: Host["Service"]
    readonly ping: Ping["Service"]
    readonly identify: Identify["Service"]
    readonly perf: Perf["Service"]
    /** Every service of the node (to build more protocols on it). */
    readonly context: Context.Context<Layer.Success<ReturnType<typeof Nodes.Default>>>
  }) => Effect.Effect<A, E, R>
) =>
  Effect.scoped(Effect.gen(function*() {
    const ctx = yield* Layer.build(Nodes.Default(preset))
    return yield* body({
      host: Context.get(ctx, Host),
      ping: Context.get(ctx, Ping),
      identify: Context.get(ctx, Identify),
      perf: Context.get(ctx, Perf),
      context: ctx
    })
  }))
