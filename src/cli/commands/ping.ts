/**
 * `ping <multiaddr-with-/p2p>`: round trips on `/ipfs/ping/1.0.0`, one line each
 * (ARCHITECTURE.md §7, docs/CLI.md).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as PeerId from "../../core/PeerId.ts"
import { emit, usageAsHelp } from "../output.ts"
import { clientFlags, clientTarget, withClient } from "./client.ts"

export const command = Command.make(
  "ping",
  {
    ...clientFlags,
    count: Flag.Int("count").pipe(
      Flag.filter((n) => n >= 1, () => "an integer >= 1"),
      Flag.withDescription("round trips, all on one stream (at least 1; default 1)"),
      Flag.withDefault(1)
    )
  },
  (flags) =>
    Effect.gen(function*() {
      const { preset, addr, peer } = yield* clientTarget(flags)
      const peerId = PeerId.toString(peer)
      yield* withClient(preset, ({ ping }) =>
        Effect.gen(function*() {
          const rtts = yield* ping.ping(addr, { count: flags.count })
          for (const rttMs of rtts) {
            const rounded = Math.round(rttMs * 1000) / 1000
            yield* emit(flags.json, { event: "ping", peerId, rttMs: rounded }, `ping ${peerId}: ${rounded} ms`)
          }
        }))
    }).pipe(usageAsHelp(["effect-libp2p", "ping"]))
).pipe(Command.withDescription("ping a peer (/ipfs/ping/1.0.0)"))
