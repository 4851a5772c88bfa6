/**
 * Run a program as a separate process from a test: `spawn` keeps it in the
 * current scope (SIGKILLed by pid if it still runs when the scope closes) and
 * lets the test wait for a line of its output; `run` waits for it to exit.
 */
import { Deferred, type Duration, Effect, Schema, type Scope } from "effect"
import * as ChildProcess from "node:child_process"

export class ProcessError extends Schema.TaggedError<ProcessError>()("ProcessError", {
  reason: Schema.Literals(["Spawn", "Timeout", "NoMatch"]),
  message: Schema.String
}) {}

export interface Exit {
  readonly code: number | null
  readonly signal: string | null
}

export interface Output extends Exit {
  readonly stdout: string
  readonly stderr: string
}

export interface Process {
  readonly pid: number
  readonly stdout: () => string
  readonly stderr: () => string
  /** The first match of `pattern` in stdout, once it appears. */
  readonly awaitOutput: (pattern: RegExp, timeout?: Duration.Input) => Effect.Effect<RegExpExecArray, ProcessError>
  readonly exit: Effect.Effect<Exit>
  readonly signal: (sig: NodeJS.Signals) => Effect.Effect<void>
  /** Write to the process's stdin (spawned with `stdin: true`; otherwise stdin is closed and this does nothing). */
  readonly write: (text: string) => Effect.Effect<void>
}

export interface SpawnOptions {
  readonly cwd: string
  readonly env?: Record<string, string | undefined>
  /** Keep a pipe to the process's stdin open for `write` (default: stdin closed). */
  readonly stdin?: boolean
}

export const spawn = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions
): Effect.Effect<Process, ProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<Exit>()
    const state = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const child = ChildProcess.spawn(command, args, {
            cwd: options.cwd,
            stdio: ["pipe", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1", ...options.env }
          })
          if (options.stdin !== true) child.stdin.end() // stdin closed, as with "ignore"
          const s = { child, stdout: "", stderr: "", waiters: new Set<() => void>(), done: false }
          const wake = () => {
            for (const w of s.waiters) w()
          }
          child.stdout.setEncoding("utf8")
          child.stderr.setEncoding("utf8")
          child.stdout.on("data", (chunk: string) => {
            s.stdout += chunk
            wake()
          })
          child.stderr.on("data", (chunk: string) => void (s.stderr = (s.stderr + chunk).slice(-64_000)))
          child.on("close", (code, signal) => {
            s.done = true
            Deferred.doneUnsafe(exited, Effect.succeed({ code, signal }))
            wake()
          })
          child.on("error", (e) => void (s.stderr += String(e)))
          return s
        },
        catch: (e) => new ProcessError({ reason: "Spawn", message: `${command}: ${String(e)}` })
      }),
      (s) =>
        Effect.gen(function*() {
          if (s.done) return
          s.child.kill("SIGKILL")
          yield* Effect.timeoutOption(Deferred.await(exited), "5 seconds")
        })
    )
    const describe = () => `stdout:\n${state.stdout}\nstderr:\n${state.stderr}`
    return {
      pid: state.child.pid ?? -1,
      stdout: () => state.stdout,
      stderr: () => state.stderr,
      awaitOutput: (pattern, timeout = "60 seconds") =>
        Effect.callback<RegExpExecArray, ProcessError>((resume) => {
          const check = () => {
            const found = new RegExp(pattern.source, pattern.flags.replace("g", "")).exec(state.stdout)
            if (found === null && !state.done) return
            state.waiters.delete(check)
            resume(
              found !== null ? Effect.succeed(found) : Effect.fail(
                new ProcessError({ reason: "NoMatch", message: `exited without ${pattern}; ${describe()}` })
              )
            )
          }
          state.waiters.add(check)
          check()
          return Effect.sync(() => void state.waiters.delete(check))
        }).pipe(
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () => Effect.fail(new ProcessError({ reason: "Timeout", message: `no ${pattern}; ${describe()}` }))
          })
        ),
      exit: Deferred.await(exited),
      signal: (sig) => Effect.sync(() => void state.child.kill(sig)),
      write: (text) => Effect.sync(() => void state.child.stdin.write(text))
    } satisfies Process
  })

/** Run to completion (killed after `timeout`); the exit and everything it printed. */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly timeout?: Duration.Input }
): Effect.Effect<Output, ProcessError> =>
  Effect.scoped(Effect.gen(function*() {
    const p = yield* spawn(command, args, options)
    const exit = yield* p.exit.pipe(
      Effect.timeoutOrElse({
        duration: options.timeout ?? "120 seconds",
        orElse: () =>
          Effect.fail(
            new ProcessError({
              reason: "Timeout",
              message: `${command} ${args.join(" ")} did not exit; stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`
            })
          )
      })
    )
    return { ...exit, stdout: p.stdout(), stderr: p.stderr() }
  }))

/** `run`, failing the test (a defect) unless the program exits 0. */
export const runOk = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly timeout?: Duration.Input }
): Effect.Effect<Output, ProcessError> =>
  Effect.flatMap(run(command, args, options), (out) =>
    out.code === 0
      ? Effect.succeed(out)
      : Effect.die(
        new Error(
          `${command} ${args.join(" ")} exited ${
            out.code ?? out.signal
          }\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`
        )
      ))

/** Whether a process with this pid still exists (signal 0 probes without signalling). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
