/**
 * The crash tests' writer process: a script that prints a first line once it
 * is ready, then one line per acknowledged write, until it is SIGKILLed.
 * Stdout to a pipe is synchronous on Linux and a write of a few bytes is
 * atomic, so every complete line was acknowledged before the kill.
 */
import { Effect, type Scope } from "effect"
import { spawn } from "node:child_process"

export interface Writer {
  /** SIGKILL, then the first line and the acknowledged lines (every complete line after the first). */
  readonly kill: Effect.Effect<
    { readonly signal: NodeJS.Signals | null; readonly first: string; readonly acked: ReadonlyArray<string> }
  >
}

/**
 * Start `script args…` with this test's Node (process.execPath: `npx node` is
 * the same binary behind a wrapper process, which a SIGKILL would hit instead)
 * and wait until it has acknowledged `lines` writes. Killed with the scope.
 */
export const startWriter = (
  script: string,
  args: ReadonlyArray<string>,
  lines: number
): Effect.Effect<Writer, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
    let out = ""
    let err = ""
    child.stderr.on("data", (d: Buffer) => (err += d.toString()))
    // read stdout to the end, so the writer never blocks on a full pipe and is killed mid-write
    const closed = new Promise<void>((resolve) => child.stdout.on("close", resolve))
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)))
    yield* Effect.callback<void, Error>((resume) => {
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString()
        if (out.split("\n").length > 1 + lines) resume(Effect.void)
      })
      child.on("exit", (code) => resume(Effect.fail(new Error(`writer exited ${code}: ${err}`))))
    }).pipe(Effect.timeout("60 seconds"))
    return {
      kill: Effect.promise(async () => {
        child.kill("SIGKILL")
        const signal = await exited
        await closed
        const all = out.split("\n")
        return { signal, first: all[0]!, acked: all.slice(1, -1) }
      })
    }
  })
