/**
 * The command-line program (ARCHITECTURE.md §7, docs/CLI.md): `node`, `ping`,
 * `identify`, `perf`, `dht`, `pubsub publish`, `daemon`; no command runs a node with the defaults.
 *
 * With `--json` every command prints one JSON object per line on stdout and
 * nothing else there (logs, warnings and help go to stderr). Every failure
 * ends with one error line, `{"event":"error","error":{"_tag":…,"message":…}}`
 * (on stderr as `error: <tag>: <message>` without `--json`). Exit codes: 0 on
 * success and after SIGINT/SIGTERM, 1 on a runtime failure, 2 on a usage
 * error (unknown flag or command, missing argument, bad value, bad
 * `LIBP2P_LOG`), whose `_tag` is `UsageError`.
 *
 * Verbosity: `--log-level <level>` or the environment variable
 * `LIBP2P_LOG=<level>` (the flag wins); levels all, trace, debug, info,
 * warn, error, fatal, none; default info.
 *
 * @since 0.1.0
 */
import { Cause, Config, Effect, Exit, Layer, LogLevel, Option, References, Stdio } from "effect"
import { CliError, Command } from "effect/cli"
import * as Daemon from "./commands/daemon.ts"
import * as Dht from "./commands/dht.ts"
import * as Identify from "./commands/identify.ts"
import * as Node from "./commands/node.ts"
import * as Perf from "./commands/perf.ts"
import * as Ping from "./commands/ping.ts"
import * as Pubsub from "./commands/pubsub.ts"
import { json } from "./flags.ts"
import * as Output from "./output.ts"

export const VERSION = "0.1.0"

export const root = Command.make(
  "effect-libp2p",
  { json },
  (flags) => Node.main(Node.defaultFlags(flags.json)).pipe(Output.usageAsHelp(["effect-libp2p"]))
).pipe(
  Command.withDescription(
    "a libp2p node on Effect (no command: `node` with its defaults: the data directory " +
      "$XDG_DATA_HOME/effect-libp2p or ~/.local/share/effect-libp2p, /ip4/127.0.0.1/tcp/4001 or a free port if taken). " +
      "Verbosity: --log-level or LIBP2P_LOG=<level>"
  ),
  Command.withSubcommands([
    Node.command,
    Ping.command,
    Identify.command,
    Perf.command,
    Dht.command,
    Pubsub.command,
    Daemon.command
  ])
)

/** The environment's verbosity switch, named as in docs/CLI.md. */
export const LOG_ENV = "LIBP2P_LOG"

const LEVELS: Readonly<Record<string, LogLevel.LogLevel>> = {
  all: "All",
  trace: "Trace",
  debug: "Debug",
  info: "Info",
  warn: "Warn",
  warning: "Warn",
  error: "Error",
  fatal: "Fatal",
  none: "None"
}

/** `LIBP2P_LOG` as a log level (none when unset or empty); an unknown level is a usage error. */
const envLogLevel = Effect.gen(function*() {
  const value = yield* Effect.orDie(Config.option(Config.String(LOG_ENV)))
  if (Option.isNone(value) || value.value.trim() === "") return Option.none<LogLevel.LogLevel>()
  const level = LEVELS[value.value.trim().toLowerCase()]
  if (level === undefined) {
    return yield* new Output.UsageError({
      message: `${LOG_ENV}: unknown level "${value.value}" (known: ${Object.keys(LEVELS).join(", ")})`
    })
  }
  return Option.some(level)
})

/**
 * Run the program on the `Stdio` arguments and print its last line: the error
 * line of a failure, once, as the error states it. Succeeds with the exit code.
 */
export const main = Effect.gen(function*() {
  const json = Output.jsonRequested(yield* (yield* Stdio.Stdio).args)
  // LIBP2P_LOG is provided outside the runner, so its own --log-level wins
  const run = Effect.flatMap(envLogLevel, (level) => {
    const command = Command.run(root, { version: VERSION })
    return Option.isSome(level) ? Effect.provideService(command, References.MinimumLogLevel, level.value) : command
  })
  const exit = yield* Effect.exit(run)
  if (Exit.isSuccess(exit)) return Output.ExitCode.Success
  if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.failCause(exit.cause)
  const failure = Cause.findErrorOption(exit.cause)
  if (Option.isNone(failure)) {
    yield* Output.printError(json, { _tag: "Defect", message: Cause.pretty(exit.cause) })
    return Output.ExitCode.Failure
  }
  const error = failure.value
  if (CliError.isCliError(error) && error._tag === "ShowHelp") {
    if (error.errors.length === 0) return Output.ExitCode.Success // help shown
    if (json) yield* Output.printError(json, { _tag: "UsageError", message: Output.usageMessage(error) })
    return Output.ExitCode.Usage
  }
  if (error instanceof Output.Unsupported) {
    yield* Output.printError(json, Output.errorInfo(error))
    return Output.ExitCode.Usage
  }
  if (error instanceof Output.UsageError) {
    // raised before the CLI runner (LIBP2P_LOG): no help to show
    yield* Output.printError(json, error)
    return Output.ExitCode.Usage
  }
  yield* Output.printError(json, Output.errorInfo(error))
  return Output.ExitCode.Failure
}).pipe(Effect.provide(Layer.merge(Output.layer, Output.presenter)))
