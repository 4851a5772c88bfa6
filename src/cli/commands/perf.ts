/**
 * `perf <multiaddr-with-/p2p> --upload-bytes N --download-bytes N`: throughput
 * on `/perf/1.0.0`, one line (ARCHITECTURE.md §7, docs/CLI.md). At least one
 * of the two sizes must be given and above 0 (a run of 0 bytes measures
 * nothing): a usage error otherwise. While it runs, progress (bytes each way
 * and the rate) is redrawn on stderr when stderr is a terminal (`progress.ts`).
 *
 * To a circuit address (`…/p2p-circuit/p2p/<peer>`): the node listens on TCP
 * with SO_REUSEPORT (`--listen`, default `/ip4/0.0.0.0/tcp/0`) and runs
 * DCUtR (`--public-cidr` as for `node`), dials through the relay, waits up to
 * 15 s for a hole-punched direct connection and runs perf on that one; the
 * result line adds `"direct":true,"addr":<its remote address>`, and no direct
 * connection in time is a `NoDirectConnection` error (exit 1).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Nodes from "../../../layers/Node.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import * as PeerId from "../../core/PeerId.ts"
import { Host } from "../../host/Host.ts"
import * as Dcutr from "../../protocols/dcutr/Dcutr.ts"
import * as Perf from "../../protocols/perf/Perf.ts"
import { addressFlags, nonNegative, parseMultiaddr } from "../flags.ts"
import { emit, usageAsHelp, UsageError } from "../output.ts"
import { withProgress } from "../progress.ts"
import { clientFlags, clientTarget, withClient } from "./client.ts"
import * as Nat from "./nat.ts"

/** `perf <circuit address>`'s listen address when `--listen` is not given: every interface, a free port. */
export const CIRCUIT_LISTEN = "/ip4/0.0.0.0/tcp/0"

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
    downloadBytes: size("download-bytes", "bytes to ask back (default 0; give this, --upload-bytes or both)"),
    listen: Flag.String("listen").pipe(
      Flag.withDescription(
        `with a circuit address: the TCP multiaddr to listen on for the hole punch (default ${CIRCUIT_LISTEN})`
      ),
      Flag.optional
    ),
    publicCidr: addressFlags.publicCidr
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
      const sizes = { uploadBytes: flags.uploadBytes, downloadBytes: flags.downloadBytes }
      const report = (r: Perf.PerfResult, direct?: { readonly addr: string }) => {
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
          downloadGbitPerSecond: gbitPerSecond(r.downloadBytes, r.downloadSeconds),
          ...(direct !== undefined ? { direct: true, addr: direct.addr } : {})
        }
        return emit(
          flags.json,
          event,
          `perf ${peerId}: ${r.uploadBytes} bytes up, ${r.downloadBytes} bytes down in ${r.seconds.toFixed(3)} s ` +
            `(${event.gbitPerSecond} Gbit/s)${direct !== undefined ? ` over the direct connection ${direct.addr}` : ""}`
        )
      }
      // progress on stderr when it is a terminal (never on stdout)
      const progress = (counts: Host["Service"]["bytes"]) => ({
        tty: process.stderr.isTTY === true,
        label: "perf",
        counts
      })
      if (MultiaddrNet.isRelayed(addr)) {
        // §7: through the relay, then over the hole-punched direct connection
        const listen = yield* parseMultiaddr(Option.getOrElse(flags.listen, () => CIRCUIT_LISTEN))
        const publicCidrs = yield* Nat.parsePublicCidrs(flags.publicCidr)
        const node = Layer.provideMerge(
          Dcutr.layer(Nat.dcutrOptions(publicCidrs)),
          Nodes.Default({ ...preset, tcp: { ...preset.tcp, ...Nat.tcpOptions }, listen: [listen] })
        )
        return yield* Effect.scoped(Effect.gen(function*() {
          const host = Context.get(yield* Layer.build(node), Host)
          const direct = yield* Nat.dialForDirect(host, addr, peer)
          const r = yield* withProgress(progress(host.bytes), Perf.perfOn(direct, sizes))
          yield* report(r, { addr: Multiaddr.toString(direct.remoteAddr) })
        }))
      }
      yield* withClient(
        preset,
        ({ host, perf }) => Effect.flatMap(withProgress(progress(host.bytes), perf.perf(addr, sizes)), (r) => report(r))
      )
    }).pipe(usageAsHelp(["effect-libp2p", "perf"]))
).pipe(Command.withDescription("measure throughput with a peer (/perf/1.0.0)"))
