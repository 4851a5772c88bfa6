/**
 * CPU profile of a piece of this process (`npm run bench -- --profile` for the
 * scenarios that run in the bench process itself: store, crypto, mix): the
 * V8 profiler through node:inspector, started before `body` and stopped after
 * it, written as a `.cpuprofile` like `node --cpu-prof` writes.
 */
import * as Fs from "node:fs"
import * as Inspector from "node:inspector/promises"

export const record = async (file: string, body: () => Promise<void> | void): Promise<void> => {
  const session = new Inspector.Session()
  session.connect()
  try {
    await session.post("Profiler.enable")
    await session.post("Profiler.setSamplingInterval", { interval: 1000 })
    await session.post("Profiler.start")
    try {
      await body()
    } finally {
      const { profile } = await session.post("Profiler.stop")
      Fs.writeFileSync(file, JSON.stringify(profile))
    }
  } finally {
    session.disconnect()
  }
}
