/**
 * `perf <multiaddr-with-/p2p> --upload-bytes N --download-bytes N`: throughput
 * on `/perf/1.0.0`, one line (ARCHITECTURE.md §7, docs/CLI.md). At least one
 * of the two sizes must be given and above 0 (a run of 0 bytes measures
 * nothing): a usage error otherwise. While it runs, progress (bytes each way
 * and the rate) is redrawn on stderr when stderr is a terminal (`progress.ts`).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as PeerId from "../../core/PeerId.ts"
import { nonNegative } from "../flags.ts"
import { emit, usageAsHelp, UsageError } from "../output.ts"
import { withProgress } from "../progress.ts"
import { clientFlags, clientTarget, withClient } from "./client.ts"

/** Bits per second in Gbit/s, 3 decimals; 0 when no time elapsed. */
const gbitPerSecond = (bytes: number, seconds: number) =>
  seconds > 0 ? Math.round((bytes * 8) / seconds / 1e6) / 1000 : 0

const size = (name: string, description: string) =>
  Flag.Int(name).pipe(
    nonNegative,
    Flag.withDescription(description),
    Flag.withDefault(0)
  )

export const command = Command.make(
  "perf",
  {
    ...clientFlags,
    uploadBytes: size("upload-bytes", "bytes to send (default 0; give this, --download-bytes or both)"),
    downloadBytes: size("download-bytes", "bytes to ask back (default 0; give this, --upload-bytes or both)")
  },
  (flags) =>
    Effect.gen(function*() {
      const { preset, addr, peer } = yield* clientTarget(flags)
      if (flags.uploadBytes === 0 && flags.downloadBytes === 0) {
        return yield* new UsageError({
          message: "perf: give --upload-bytes N and/or --download-bytes N (0 bytes each way measures nothing)"
        })
      }
      const peerId = PeerId.toString(peer)
      yield* withClient(preset, ({ host, perf }) =>
        Effect.gen(function*() {
          // progress on stderr when it is a terminal (never on stdout)
          const r = yield* withProgress(
            { tty: process.stderr.isTTY === true, label: "perf", counts: host.bytes },
            perf.perf(addr, { uploadBytes: flags.uploadBytes, downloadBytes: flags.downloadBytes })
          )
          const event = {
            event: "perf",
            peerId,
            uploadBytes: r.uploadBytes,
            downloadBytes: r.downloadBytes,
            seconds: r.seconds,
            uploadSeconds: r.uploadSeconds,
            downloadSeconds: r.downloadSeconds,
            gbitPerSecond: gbitPerSecond(r.uploadBytes + r.downloadBytes, r.seconds),
            uploadGbitPerSecond: gbitPerSecond(r.uploadBytes, r.uploadSeconds),
            downloadGbitPerSecond: gbitPerSecond(r.downloadBytes, r.downloadSeconds)
          }
          yield* emit(
            flags.json,
            event,
            `perf ${peerId}: ${r.uploadBytes} bytes up, ${r.downloadBytes} bytes down in ${r.seconds.toFixed(3)} s ` +
              `(${event.gbitPerSecond} Gbit/s)`
          )
        }))
    }).pipe(usageAsHelp(["effect-libp2p", "perf"]))
).pipe(Command.withDescription("measure throughput with a peer (/perf/1.0.0)"))
