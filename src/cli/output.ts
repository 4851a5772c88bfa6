/**
 * What the command-line program prints (ARCHITECTURE.md §7, docs/CLI.md).
 *
 * stdout carries the program's results only: with `--json` one JSON object
 * per line, otherwise short human lines. Logs, warnings, help and usage text
 * go to stderr. Every stdout line goes through one bounded queue drained by
 * one fiber (so lines from concurrent event streams never interleave and the
 * last line is written before the process exits: the queue is drained when
 * the `Output` layer's scope closes).
 *
 * Errors are printed once, as the error itself says them: `_tag` and
 * `message`, never re-wrapped (`{"event":"error","error":{"_tag":…,"message":…}}`).
 *
 * @since 0.1.0
 */
import { Cause, Console, Context, Effect, Fiber, Layer, Queue, Schema, Stdio, Stream } from "effect"
import { CliError, CliOutput } from "effect/cli"

/**
 * A usage error found after parsing (a bad multiaddr, an unknown `--muxer`
 * name, `--conn-low` above `--conn-high`, a bad `LIBP2P_LOG`): exit code 2
 * and the help text on stderr, like a parse error.
 */
export class UsageError extends Schema.TaggedError<UsageError>()("UsageError", {
  message: Schema.String
}) {}

/**
 * A flag value the program does not support (a transport, a router, a
 * security name, `daemon --relay` until relay exists): exit code 2 like a
 * usage error, but its own `_tag` (ARCHITECTURE.md §7, `daemon`).
 */
export class Unsupported extends Schema.TaggedError<Unsupported>()("Unsupported", {
  message: Schema.String
}) {}

/** Exit codes: 0 success (and SIGINT/SIGTERM), 1 runtime failure, 2 usage error. */
export const ExitCode = { Success: 0, Failure: 1, Usage: 2 } as const

/** The stdout writer. */
export class Output extends Context.Service<Output, {
  /** Write one line on stdout (waits while the bounded queue is full). */
  readonly line: (text: string) => Effect.Effect<void>
  /** Write one line on stderr. */
  readonly errorLine: (text: string) => Effect.Effect<void>
}>()("effect-libp2p/cli/Output") {}

/** Lines buffered before a writer waits (stdout blocked by a slow reader). */
const QUEUE_CAPACITY = 1024

/** `Output` on the `Stdio` service; the scope's close drains what is queued. */
export const layer = Layer.effect(
  Output,
  Effect.gen(function*() {
    const stdio = yield* Stdio.Stdio
    const queue = yield* Queue.bounded<string, Cause.Done>(QUEUE_CAPACITY)
    const writer = yield* Stream.fromQueue(queue).pipe(
      Stream.map((text) => text + "\n"),
      Stream.run(stdio.stdout()),
      Effect.ignore, // stdout closed by the reader (EPIPE): nothing left to tell it
      Effect.ensuring(Queue.shutdown(queue)), // and later lines are dropped, never wait
      Effect.forkScoped
    )
    yield* Effect.addFinalizer(() => Effect.andThen(Queue.end(queue), Fiber.join(writer)))
    return Output.of({
      line: (text) => Effect.asVoid(Queue.offer(queue, text)),
      errorLine: (text) => Effect.ignore(Stream.run(Stream.make(text + "\n"), stdio.stderr()))
    })
  })
)

/** Print an event: a JSON line with `--json`, a short human line otherwise. */
export const emit = (json: boolean, event: Record<string, unknown>, human: string) =>
  Effect.flatMap(Output, (out) => out.line(json ? JSON.stringify(event) : human))

/** Write a line on stderr (warnings the user must see; logs go through the logger). */
export const warn = (text: string) => Effect.flatMap(Output, (out) => out.errorLine(`warning: ${text}`))

/** What an error line says about a failure. */
export interface ErrorInfo {
  readonly _tag: string
  readonly message: string
  /** The error's `reason` (a string, or the `_tag` of a reason object), when it has one. */
  readonly reason?: string
}

const reasonOf = (e: object): string | undefined => {
  if (!("reason" in e)) return undefined
  const r = e.reason
  if (typeof r === "string") return r
  return typeof r === "object" && r !== null && "_tag" in r && typeof r._tag === "string" ? r._tag : undefined
}

/** `_tag`, `message` (and `reason`) of a failure, as the error states them: nothing prepended, nothing repeated. */
export const errorInfo = (e: unknown): ErrorInfo => {
  if (typeof e === "object" && e !== null) {
    const tag = "_tag" in e && typeof e._tag === "string" ? e._tag : "Error"
    const message = "message" in e && typeof e.message === "string" ? e.message : String(e)
    const reason = reasonOf(e)
    return reason === undefined ? { _tag: tag, message } : { _tag: tag, message, reason }
  }
  return { _tag: "Error", message: String(e) }
}

/** The §7 error line (`extra` adds fields, e.g. the `addr` of a failed `--dial`). */
export const printError = (json: boolean, error: ErrorInfo, extra = {}) =>
  Effect.flatMap(Output, (out) =>
    json
      ? out.line(JSON.stringify({ event: "error", ...extra, error: errorJson(error) }))
      : out.errorLine(`error: ${error._tag}: ${error.message}`))

const errorJson = (error: ErrorInfo) =>
  error.reason === undefined
    ? { _tag: error._tag, message: error.message }
    : { _tag: error._tag, message: error.message, reason: error.reason }

/**
 * A handler's usage errors become `ShowHelp`, so the CLI runner shows the
 * command's help and the message (on stderr, see `presenter`) exactly as for
 * a parse error, and the run ends with exit code 2.
 */
export const usageAsHelp = (commandPath: ReadonlyArray<string>) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.catchIf(
    self,
    (e): e is Extract<E, UsageError> => e instanceof UsageError,
    (e) =>
      Effect.fail(
        new CliError.ShowHelp({ commandPath, errors: [new CliError.ValidationError({ message: e.message })] })
      )
  )

/** The message of a usage error reported by the CLI runner (parse errors, `UsageError`s). */
export const usageMessage = (help: CliError.ShowHelp): string => help.errors.map((e) => e.message).join("; ")

/**
 * Help and usage errors on stderr (with or without `--json`, stdout keeps only
 * the result lines); `--help` and `--version`, which the user asked for, on stdout.
 */
export const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation" || (event._tag === "Help" && event.reason === "Implicit")
      ? Effect.gen(function*() {
        const formatter = yield* CliOutput.Formatter
        yield* Console.error(formatter.formatHelpDoc(event.helpDoc))
        if (event._tag === "InvalidInvocation") yield* Console.error(formatter.formatErrors(event.errors))
      })
      : CliOutput.defaultPresenter.present(event)
})

/** Whether the raw arguments ask for JSON output (known before, or without, a successful parse). */
export const jsonRequested = (args: ReadonlyArray<string>): boolean => {
  for (const arg of args) {
    if (arg === "--") return false
    if (arg === "--json" || arg === "--json=true") return true
  }
  return false
}
