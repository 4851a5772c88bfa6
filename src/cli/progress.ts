/**
 * Progress of long work on stderr (issue 16 item 5): while `perf` (and later
 * long DHT and pubsub commands) runs, one line on stderr redrawn in place
 * every {@link INTERVAL} — bytes moved each way and the rate — and erased
 * when the work ends. Only when stderr is a terminal: a pipe or a file gets
 * nothing, and stdout (the `--json` lines) is never touched.
 *
 * The bytes come from the node's connections (`Host.bytes()`, the sockets'
 * own counters), read at each redraw: nothing is counted on the data path.
 *
 * @since 0.1.0
 */
import { Clock, type Duration, Effect, Schedule, Stdio, Stream } from "effect"

export const INTERVAL: Duration.Input = "250 millis"

const units = ["B", "KiB", "MiB", "GiB", "TiB"]

/** `n` bytes for a person: `1.5 MiB`. */
export const formatBytes = (n: number): string => {
  let i = 0
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024
    i++
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`
}

/** Bits per second for a person: `940 Mbit/s`, `1.23 Gbit/s`. */
export const formatRate = (bytesPerSecond: number): string => {
  const bits = bytesPerSecond * 8
  return bits >= 1e9 ? `${(bits / 1e9).toFixed(2)} Gbit/s` : `${(bits / 1e6).toFixed(1)} Mbit/s`
}

export interface Counts {
  readonly read: number
  readonly written: number
}

/** One progress line: what moved since `start`, at the rate since the previous sample. */
export const line = (label: string, start: Counts, prev: Counts, now: Counts, seconds: number): string => {
  const sent = now.written - start.written
  const received = now.read - start.read
  const moved = now.written + now.read - prev.written - prev.read
  return `${label}: ${formatBytes(sent)} sent, ${formatBytes(received)} received, ${
    formatRate(seconds > 0 ? moved / seconds : 0)
  }`
}

/**
 * Run `work`, drawing its progress on stderr when `tty` is true (the caller
 * passes `process.stderr.isTTY`); `counts` reads the bytes moved so far.
 */
export const withProgress = <A, E, R>(
  options: { readonly tty: boolean; readonly label: string; readonly counts: () => Counts },
  work: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R | Stdio.Stdio> => {
  if (!options.tty) return work
  return Effect.gen(function*() {
    const stdio = yield* Stdio.Stdio
    const write = (text: string) => Effect.ignore(Stream.run(Stream.make(text), stdio.stderr()))
    const start = options.counts()
    let prev = start
    let prevMillis = yield* Clock.currentTimeMillis
    const draw = Effect.gen(function*() {
      const now = options.counts()
      const millis = yield* Clock.currentTimeMillis
      // \r: back to the line's start; ESC[K: erase what a longer line left
      yield* write(`\r${line(options.label, start, prev, now, (millis - prevMillis) / 1000)}\u001b[K`)
      prev = now
      prevMillis = millis
    })
    return yield* Effect.scoped(Effect.gen(function*() {
      yield* Effect.forkScoped(Effect.repeat(Effect.andThen(Effect.sleep(INTERVAL), draw), Schedule.forever))
      return yield* work
    })).pipe(Effect.ensuring(write("\r\u001b[K")))
  })
}
