/**
 * Entry point of `npm start` and the `effect-libp2p` bin (through
 * `bin/effect-libp2p.js`, which checks the Node version first). SIGINT/SIGTERM
 * interrupt the program; finalizers close every listener and connection and
 * the process exits 0. `Cli.main` prints the last line itself and succeeds
 * with the exit code: 1 for a runtime failure, 2 for a usage error.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Logger, Runtime } from "effect"
import * as Cli from "./Cli.ts"

// Logs go to stderr: with --json, stdout carries only the §7 JSON lines.
const StderrLogger = Logger.layer([Logger.withConsoleError(Logger.formatLogFmt)])

const program = Cli.main.pipe(Effect.provide([NodeServices.layer, StderrLogger]))

NodeRuntime.runMain(program, {
  teardown: (exit, onExit) => {
    // An interrupt (SIGINT/SIGTERM) is the normal way to stop a node: exit 0.
    if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
    if (Exit.isSuccess(exit)) return onExit(typeof exit.value === "number" ? exit.value : 0)
    return Runtime.defaultTeardown(exit, onExit)
  }
})
