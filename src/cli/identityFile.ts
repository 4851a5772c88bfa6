/**
 * The `--identity <file>` of `node` (ARCHITECTURE.md §7): the private key as
 * the peer-ids spec's protobuf `PrivateKey` message, raw bytes (the bytes
 * js-libp2p's `privateKeyToProtobuf` writes). A missing file is created with a
 * new Ed25519 key, mode 0600, its folder created if needed.
 *
 * @since 0.1.0
 */
import { Effect, FileSystem, Path, Schema } from "effect"
import * as Keys from "../core/Keys.ts"

/** The identity file cannot be read, parsed or written (a runtime failure: exit code 1). */
export class IdentityFileError extends Schema.TaggedError<IdentityFileError>()("IdentityFileError", {
  file: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** Read the identity file, creating an Ed25519 one if it does not exist. */
export const load = (file: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const fail = (what: string) => (cause: { readonly message: string }) =>
      new IdentityFileError({ file, message: `${what} ${file}: ${cause.message}`, cause })
    if (yield* Effect.mapError(fs.exists(file), fail("cannot read identity file"))) {
      const bytes = yield* Effect.mapError(fs.readFile(file), fail("cannot read identity file"))
      return yield* Effect.mapError(Effect.fromResult(Keys.privateKeyFromProtobuf(bytes)), fail("identity file"))
    }
    const key = yield* Keys.generate("Ed25519")
    yield* fs.makeDirectory(path.dirname(path.resolve(file)), { recursive: true }).pipe(
      Effect.andThen(fs.writeFile(file, Keys.privateKeyToProtobuf(key), { mode: 0o600 })),
      Effect.mapError(fail("cannot write identity file"))
    )
    return key
  })
