/**
 * Spawning the command-line program (src/cli/main.ts) as a separate process, the
 * way `npm start` runs it: `process.execPath src/cli/main.ts …` from the
 * repository root (the test's own Node 24 runs TypeScript directly). Every
 * stdout line is parsed as JSON (ARCHITECTURE.md §7: nothing else may be there).
 */
import { Deferred, Duration, Effect, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const MAIN = "src/cli/main.ts"

export class CliError extends Schema.TaggedError<CliError>()("CliError", {
  reason: Schema.Literals(["Spawn", "Timeout", "BadOutput"]),
  message: Schema.String
}) {}

export interface Exit {
  readonly code: number | null
  readonly signal: string | null
}

export interface Cli {
  readonly pid: number
  /** Every stdout line parsed as JSON (a non-JSON line is a contract violation, recorded in `bad`). */
  readonly lines: Array<Record<string, unknown>>
  readonly bad: Array<string>
  readonly stderr: () => string
  readonly awaitLine: (
    predicate: (line: Record<string, unknown>) => boolean,
    timeout?: Duration.Input
  ) => Effect.Effect<Record<string, unknown>, CliError>
  readonly exit: Effect.Effect<Exit>
  readonly signal: (sig: NodeJS.Signals) => Effect.Effect<void>
}

/** Spawn the CLI in the current scope; the process is SIGKILLed (by pid) if it still runs when the scope closes. */
export const spawnCli = (args: ReadonlyArray<string>, options: { readonly env?: Record<string, string> } = {}) =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<Exit>()
    const state = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const child = ChildProcess.spawn(process.execPath, [MAIN, ...args], {
            cwd: ROOT,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1", ...options.env }
          })
          const s = {
            child,
            lines: [] as Array<Record<string, unknown>>,
            bad: [] as Array<string>,
            stderr: "",
            waiters: new Set<() => void>(),
            done: false
          }
          child.stderr.setEncoding("utf8")
          child.stderr.on("data", (chunk: string) => void (s.stderr = (s.stderr + chunk).slice(-16_000)))
          Readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line) => {
            try {
              const v: unknown = JSON.parse(line)
              if (typeof v === "object" && v !== null && !Array.isArray(v)) s.lines.push(v as Record<string, unknown>)
              else s.bad.push(line)
            } catch {
              s.bad.push(line)
            }
            for (const wake of s.waiters) wake()
          })
          child.on("close", (code, signal) => {
            s.done = true
            Deferred.doneUnsafe(exited, Effect.succeed({ code, signal }))
            for (const wake of s.waiters) wake()
          })
          child.on("error", () => {})
          return s
        },
        catch: (e) => new CliError({ reason: "Spawn", message: String(e) })
      }),
      (s) =>
        Effect.gen(function*() {
          if (s.done) return
          s.child.kill("SIGKILL")
          yield* Effect.timeoutOption(Deferred.await(exited), "5 seconds")
        })
    )
    const cli: Cli = {
      pid: state.child.pid ?? -1,
      lines: state.lines,
      bad: state.bad,
      stderr: () => state.stderr,
      awaitLine: (predicate, timeout = "30 seconds") =>
        Effect.callback<Record<string, unknown>, CliError>((resume) => {
          const check = () => {
            const found = state.lines.find(predicate)
            if (found !== undefined) {
              state.waiters.delete(check)
              resume(Effect.succeed(found))
            } else if (state.done) {
              state.waiters.delete(check)
              resume(
                Effect.fail(
                  new CliError({
                    reason: "BadOutput",
                    message: `exited without the line; stdout ${JSON.stringify(state.lines)} stderr ${state.stderr}`
                  })
                )
              )
            }
          }
          state.waiters.add(check)
          check()
          return Effect.sync(() => void state.waiters.delete(check))
        }).pipe(
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () =>
              Effect.fail(
                new CliError({
                  reason: "Timeout",
                  message: `no matching line; stdout ${JSON.stringify(state.lines)} stderr ${state.stderr}`
                })
              )
          })
        ),
      exit: Deferred.await(exited),
      signal: (sig) => Effect.sync(() => void state.child.kill(sig))
    }
    return cli
  })

/** Run a short-lived CLI command to completion. */
export const runCli = (
  args: ReadonlyArray<string>,
  timeout: Duration.Input = "40 seconds",
  options: { readonly env?: Record<string, string> } = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const cli = yield* spawnCli(args, options)
    const exit = yield* cli.exit.pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(
            new CliError({ reason: "Timeout", message: `${args.join(" ")}: still running; stderr ${cli.stderr()}` })
          )
      })
    )
    return { exit, lines: [...cli.lines], bad: [...cli.bad], stderr: cli.stderr() }
  }))

/** SIGTERM, then the exit (§7: a node closes everything and exits 0). */
export const stop = (cli: Cli) => Effect.andThen(cli.signal("SIGTERM"), cli.exit)
