/**
 * Entry point of `npm start` and the `effect-libp2p` bin. SIGINT/SIGTERM
 * interrupt the program; finalizers close every listener and connection and
 * the process exits 0 (a failure exits 1, after printing the §7 error line).
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Logger, Runtime } from "effect"
import * as Cli from "./Cli.ts"

// Logs go to stderr: with --json, stdout carries only the §7 JSON lines.
const StderrLogger = Logger.layer([Logger.withConsoleError(Logger.formatLogFmt)])

const program = Cli.run.pipe(Effect.provide([NodeServices.layer, StderrLogger]))

NodeRuntime.runMain(program, {
  teardown: (exit, onExit) => {
    // An interrupt (SIGINT/SIGTERM) is the normal way to stop a node: exit 0.
    if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return onExit(process.exitCode === 1 ? 1 : 0)
    if (Exit.isSuccess(exit)) return onExit(typeof process.exitCode === "number" ? process.exitCode : 0)
    return Runtime.defaultTeardown(exit, onExit)
  }
})
