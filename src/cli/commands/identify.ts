/**
 * `identify <multiaddr-with-/p2p>`: the peer's identify answer, one line
 * (ARCHITECTURE.md §7, docs/CLI.md).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Command } from "effect/cli"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { emit, usageAsHelp } from "../output.ts"
import { clientFlags, clientTarget, withClient } from "./client.ts"

export const command = Command.make(
  "identify",
  clientFlags,
  (flags) =>
    Effect.gen(function*() {
      const { preset, addr } = yield* clientTarget(flags)
      yield* withClient(preset, ({ host, identify }) =>
        Effect.gen(function*() {
          const conn = yield* host.dial(addr)
          const r = yield* identify.identify(conn)
          const event = {
            event: "identify",
            peerId: PeerId.toString(r.peerId),
            agentVersion: r.agentVersion ?? null,
            protocolVersion: r.protocolVersion ?? null,
            protocols: r.protocols,
            listenAddrs: r.listenAddrs.map(Multiaddr.toString),
            observedAddr: r.observedAddr !== undefined ? Multiaddr.toString(r.observedAddr) : null,
            signedPeerRecord: r.signedPeerRecord !== undefined
              ? { seq: r.signedPeerRecord.seq.toString(), addrs: r.signedPeerRecord.addrs.map(Multiaddr.toString) }
              : null
          }
          yield* emit(flags.json, event, JSON.stringify(event, null, 2))
        }))
    }).pipe(usageAsHelp(["effect-libp2p", "identify"]))
).pipe(Command.withDescription("identify a peer (/ipfs/id/1.0.0)"))
