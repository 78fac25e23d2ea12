#!/usr/bin/env node
// The `mooring` command. npm puts the project's pinned Node (22) first on PATH for npx and scripts.
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(`mooring needs Node.js 22 or later (this is ${process.version}). Run it through npx or npm scripts, which use the pinned Node 22.`);
  process.exit(1);
}
await import('../src/main.ts');
