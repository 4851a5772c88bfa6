/**
 * Folder rules for src/ and layers/ (docs/ARCHITECTURE.md "Layers and folders").
 * Run by `npm run lint` (part of `npm test`). Type-only imports count for the
 * folder rules (a contract that names an implementation's type still depends on
 * it) but not for cycles (they vanish at run time).
 */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A module cycle (type-only imports excepted).",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } }
    },
    {
      name: "core-is-the-bottom",
      severity: "error",
      comment: "core/ holds pure data and codecs: it imports nothing else of ours.",
      from: { path: "^src/core/" },
      to: { path: "^(src/(?!core/|internal/)|layers/)" }
    },
    {
      name: "connection-below-host",
      severity: "error",
      comment: "connection/ is below host/ (the host routes inbound streams, the upgrader does not know the host).",
      from: { path: "^src/connection/" },
      to: { path: "^src/(host|protocols|cli)/" }
    },
    {
      name: "contracts-below-implementations",
      severity: "error",
      comment: "The Connection contract does not depend on the ResourceManager implementation.",
      from: { path: "^src/connection/Connection\\.ts$" },
      to: { path: "^src/connection/(ResourceManager|ConnectionManager|Dialer|Upgrader)\\.ts$" }
    },
    {
      name: "lower-layers-do-not-import-upper",
      severity: "error",
      comment: "transport, security, muxer and multistream do not import connection, host, protocols or cli.",
      from: { path: "^src/(transport|security|muxer|multistream)/" },
      to: { path: "^src/(connection|host|protocols|cli)/" }
    },
    {
      name: "no-foreign-internal",
      severity: "error",
      comment: "A folder's internal/ is private to that folder (and its subfolders); src/internal/ is the library-wide one.",
      from: { path: "^(src/[^/]+)/" },
      to: { path: "^src/[^/]+/internal/|^src/[^/]+/[^/]+/internal/", pathNot: "^$1/" }
    },
    {
      name: "protocols-are-rooms",
      severity: "error",
      comment: "One protocol's room does not import another's internals (only its public module).",
      from: { path: "^src/protocols/([^/]+)/" },
      to: { path: "^src/protocols/(?!$1/)[^/]+/(internal/|[a-z][^/]*[.]ts$)" }
    },
    {
      name: "discovery-below-protocols",
      severity: "error",
      comment:
        "discovery/ (the PeerDiscovery hub and its sources) sits on host/: protocol rooms (rendezvous) feed it, it imports none of them.",
      from: { path: "^src/discovery/" },
      to: { path: "^(src/(protocols|cli)/|layers/)" }
    },
    {
      name: "src-does-not-import-tests",
      severity: "error",
      from: { path: "^(src|layers)/" },
      to: { path: "^(spec-tests|property-tests|bench|examples)/" }
    },
    {
      name: "library-does-not-import-the-cli",
      severity: "error",
      from: { path: "^(src/(?!cli/)|layers/)" },
      to: { path: "^src/cli/" }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".mjs", ".js"] }
  }
}
