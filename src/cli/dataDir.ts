/**
 * The node's data directory (docs/CLI.md): `identity.key` (the private key,
 * mode 0600, created on the first start), `datastore.sqlite` (the peer store,
 * later the DHT's records) and `config.json`.
 *
 * Default location: `$XDG_DATA_HOME/effect-libp2p` when `XDG_DATA_HOME` is set
 * (and absolute), else `$HOME/.local/share/effect-libp2p` (the XDG Base
 * Directory default, on every platform).
 *
 * Opening it: the directory is created (mode 0700) if missing, then the
 * datastore is opened — which takes its lock, so a second node on the same
 * directory stops there, before anything is read or written, with a
 * `DataDirError` of reason `Locked`. A corrupt or foreign `datastore.sqlite`
 * is refused (reason `Corrupt`/`Foreign`) and left as it is.
 *
 * @since 0.2.0
 */
import { Config, Effect, FileSystem, Option, Path, Schema, type Scope } from "effect"
import * as Os from "node:os"
import type * as Datastore from "../datastore/Datastore.ts"
import * as Sqlite from "../datastore/Sqlite.ts"

export const APP_NAME = "effect-libp2p"
export const IDENTITY_FILE = "identity.key"
export const DATASTORE_FILE = "datastore.sqlite"
export const CONFIG_FILE = "config.json"

/** The data directory cannot be used (exit code 1); `path` is the file or directory at fault. */
export class DataDirError extends Schema.TaggedError<DataDirError>()("DataDirError", {
  reason: Schema.Literals(["Unusable", "Locked", "Corrupt", "Foreign", "Io"]),
  path: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** `$XDG_DATA_HOME/effect-libp2p`, else `$HOME/.local/share/effect-libp2p`. */
export const defaultLocation: Effect.Effect<string, never, Path.Path> = Effect.gen(function*() {
  const path = yield* Path.Path
  const env = (name: string) =>
    Effect.map(
      Effect.orElseSucceed(Config.option(Config.String(name)), () => Option.none<string>()),
      (o) => Option.getOrElse(o, () => "")
    )
  const xdg = (yield* env("XDG_DATA_HOME")).trim()
  if (xdg !== "" && path.isAbsolute(xdg)) return path.join(xdg, APP_NAME)
  const home = (yield* env("HOME")).trim() || Os.homedir()
  return path.join(home, ".local", "share", APP_NAME)
})

export interface DataDir extends Files {
  /** The open datastore, closed (and unlocked) with the scope. */
  readonly datastore: Datastore.Datastore["Service"]
}

export interface Files {
  readonly dir: string
  readonly identityFile: string
  readonly configFile: string
  readonly datastoreFile: string
}

/** The files of `dir`, without opening anything. */
export const files = (path: Path.Path, dir: string): Files => ({
  dir,
  identityFile: path.join(dir, IDENTITY_FILE),
  configFile: path.join(dir, CONFIG_FILE),
  datastoreFile: path.join(dir, DATASTORE_FILE)
})

/** Create `dir` if needed and check it is a directory we can read and write. */
export const prepare = (dir: string): Effect.Effect<void, DataDirError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const unusable = (what: string) => (cause: { readonly message: string }) =>
      new DataDirError({
        reason: "Unusable",
        path: dir,
        message: `data directory ${dir} ${what}: ${cause.message}`,
        cause
      })
    yield* Effect.mapError(fs.makeDirectory(dir, { recursive: true, mode: 0o700 }), unusable("cannot be created"))
    const info = yield* Effect.mapError(fs.stat(dir), unusable("cannot be read"))
    if (info.type !== "Directory") {
      return yield* new DataDirError({
        reason: "Unusable",
        path: dir,
        message: `data directory ${dir} is not a directory (it is a ${info.type})`
      })
    }
    yield* Effect.mapError(fs.access(dir, { readable: true, writable: true }), unusable("cannot be read or written"))
  })

/** Prepare `dir` and open its datastore (taking its lock) in the current scope. */
export const open = (
  dir: string
): Effect.Effect<DataDir, DataDirError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const names = files(path, path.resolve(dir))
    yield* prepare(names.dir)
    const datastore = yield* Sqlite.make({ filename: names.datastoreFile }).pipe(
      Effect.mapError((e) =>
        new DataDirError({
          reason: e.reason === "Locked" || e.reason === "Corrupt" || e.reason === "Foreign" ? e.reason : "Io",
          path: names.datastoreFile,
          message: e.reason === "Locked"
            ? `data directory ${names.dir} is in use by another node (${e.message}); ` +
              "stop it, or give this one another --data-dir (or --ephemeral)"
            : e.message,
          cause: e
        })
      )
    )
    return { ...names, datastore }
  })
