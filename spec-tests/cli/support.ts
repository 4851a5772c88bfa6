/**
 * Spawning the command-line program (src/cli/main.ts) as a separate process, the
 * way `npm start` runs it: `process.execPath src/cli/main.ts …` from the
 * repository root (the test's own Node 24 runs TypeScript directly), on
 * `support/process.ts`. Every stdout line is parsed as JSON (ARCHITECTURE.md
 * §7: nothing else may be there; any other line is recorded in `bad`).
 */
import { type Duration, Effect, Schedule, Schema } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Process from "../support/process.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const MAIN = "src/cli/main.ts"

export class CliError extends Schema.TaggedError<CliError>()("CliError", {
  reason: Schema.Literals(["Timeout", "BadOutput"]),
  message: Schema.String
}) {}

export type Exit = Process.Exit
export type Line = Record<string, unknown>

export interface Cli {
  readonly pid: number
  /** Every complete stdout line parsed as JSON, so far. */
  readonly lines: ReadonlyArray<Line>
  /** The stdout lines that are not a JSON object (a §7 contract violation). */
  readonly bad: ReadonlyArray<string>
  readonly stderr: () => string
  /** The first line matching `predicate`, once printed; fails if the process exits without it. */
  readonly awaitLine: (predicate: (line: Line) => boolean, timeout?: Duration.Input) => Effect.Effect<Line, CliError>
  readonly exit: Effect.Effect<Exit>
  readonly signal: (sig: NodeJS.Signals) => Effect.Effect<void>
  /** Write to its stdin (spawned with `stdin: true`). */
  readonly write: (text: string) => Effect.Effect<void>
}

export interface CliOptions {
  readonly env?: Record<string, string>
  /** Keep its stdin open for `write` (default: closed). */
  readonly stdin?: boolean
  /** Run it in this network namespace (`ip netns exec <name>`, which execs: the pid is the node's). */
  readonly netns?: string
}

/** The complete lines of `stdout`, split into JSON objects and the rest. */
const parse = (stdout: string) => {
  const lines: Array<Line> = []
  const bad: Array<string> = []
  for (const text of stdout.split("\n").slice(0, -1)) {
    try {
      const v: unknown = JSON.parse(text)
      if (typeof v === "object" && v !== null && !Array.isArray(v)) lines.push(v as Line)
      else bad.push(text)
    } catch {
      bad.push(text)
    }
  }
  return { lines, bad }
}

/**
 * The environment of a spawned CLI: `XDG_DATA_HOME` is a fresh temporary
 * directory (removed when the scope closes) unless the test sets it, so a
 * `node` without `--data-dir` gets a data directory of its own (the default
 * location resolves under it) and nothing is written into the real home.
 */
const isolatedEnv = (env: Record<string, string> | undefined) =>
  env?.["XDG_DATA_HOME"] !== undefined
    ? Effect.succeed(env)
    : Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-libp2p-cli-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      ),
      (dir) => ({ ...env, XDG_DATA_HOME: dir })
    )

class NotYet extends Schema.TaggedError<NotYet>()("NotYet", {}) {}

/** Spawn the CLI in the current scope; the process is SIGKILLed (by pid) if it still runs when the scope closes. */
export const spawnCli = (args: ReadonlyArray<string>, options: CliOptions = {}) =>
  Effect.gen(function*() {
    const p = yield* Process.spawn(
      options.netns === undefined ? process.execPath : "ip",
      options.netns === undefined ? [MAIN, ...args] : ["netns", "exec", options.netns, process.execPath, MAIN, ...args],
      {
        cwd: ROOT,
        env: yield* isolatedEnv(options.env),
        ...(options.stdin === true ? { stdin: true } : {})
      }
    )
    let exited = false
    yield* Effect.forkScoped(Effect.andThen(p.exit, Effect.sync(() => void (exited = true))))
    const output = () => `stdout ${p.stdout()} stderr ${p.stderr()}`
    const cli: Cli = {
      pid: p.pid,
      get lines() {
        return parse(p.stdout()).lines
      },
      get bad() {
        return parse(p.stdout()).bad
      },
      stderr: p.stderr,
      awaitLine: (predicate, timeout = "30 seconds") =>
        Effect.suspend((): Effect.Effect<Line, CliError | NotYet> => {
          const done = exited // read first: all output is in once the process has exited
          const found = parse(p.stdout()).lines.find(predicate)
          if (found !== undefined) return Effect.succeed(found)
          return done
            ? Effect.fail(new CliError({ reason: "BadOutput", message: `exited without the line; ${output()}` }))
            : Effect.fail(new NotYet())
        }).pipe(
          Effect.retry({ schedule: Schedule.spaced("50 millis"), while: (e) => e._tag === "NotYet" }),
          Effect.catchTag("NotYet", () => Effect.die("unreachable: retried until not NotYet")),
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () => Effect.fail(new CliError({ reason: "Timeout", message: `no matching line; ${output()}` }))
          })
        ),
      exit: p.exit,
      signal: p.signal,
      write: p.write
    }
    return cli
  })

/** Run a short-lived CLI command to completion. */
export const runCli = (args: ReadonlyArray<string>, timeout: Duration.Input = "40 seconds", options: CliOptions = {}) =>
  Effect.scoped(Effect.flatMap(isolatedEnv(options.env), (env) =>
    Effect.map(
      Process.run(process.execPath, [MAIN, ...args], { cwd: ROOT, timeout, env }),
      (out) => ({ exit: { code: out.code, signal: out.signal }, ...parse(out.stdout), stderr: out.stderr })
    )))

/** SIGTERM, then the exit (§7: a node closes everything and exits 0). */
export const stop = (cli: Cli) => Effect.andThen(cli.signal("SIGTERM"), cli.exit)
