/**
 * The commands a running `node` reads on stdin, one JSON object per line
 * (ARCHITECTURE.md §7): `{"publish":{"topic":…,"data":…}}`. A line that does
 * not parse as a known command is an error line; the node keeps running.
 *
 * @since 0.2.0
 */
import { Effect, Schema, Stdio, Stream } from "effect"
import { errorInfo, printError } from "./output.ts"

/** `{"publish":{"topic":"t","data":"text"}}`: publish the UTF-8 bytes of `data` on `topic`. */
export const PublishCommand = Schema.Struct({
  publish: Schema.Struct({ topic: Schema.String, data: Schema.String })
})
export type StdinCommand = typeof PublishCommand.Type

/** A stdin line that is not a command (not JSON, or no known command). */
export class StdinError extends Schema.TaggedError<StdinError>()("StdinError", {
  reason: Schema.Literals(["Malformed"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

const decodeLine = Schema.decodeUnknownEffect(Schema.fromJsonString(PublishCommand))

/** Longest stdin line kept (longer lines are cut there and fail to parse): bounds what stdin can make us hold. */
const MAX_LINE = 4 * 1024 * 1024

/**
 * Read stdin until it ends, running `handle` on each command in order; each
 * malformed line (and each failure of `handle`) prints an error line. Ends
 * quietly with stdin.
 */
export const run = <E, R>(json: boolean, handle: (command: StdinCommand) => Effect.Effect<void, E, R>) =>
  Effect.gen(function*() {
    const stdio = yield* Stdio.Stdio
    yield* stdio.stdin.pipe(
      Stream.decodeText(),
      Stream.splitLines,
      Stream.filter((line) => line.trim() !== ""),
      Stream.runForEach((line) =>
        decodeLine(line.slice(0, MAX_LINE)).pipe(
          Effect.mapError((e) =>
            new StdinError({ reason: "Malformed", message: `stdin: not a command: ${e.message}`, cause: e })
          ),
          Effect.flatMap(handle),
          Effect.catch((e) => printError(json, errorInfo(e)))
        )
      ),
      Effect.catch((e) => Effect.logWarning(`stdin: ${e.message}`))
    )
  })
