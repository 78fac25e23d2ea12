#!/usr/bin/env node
// The `mooring` command. npm puts the project's pinned Node (22) first on PATH for npx and scripts.
import { clearInterval, setInterval } from 'node:timers';

const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(`mooring needs Node.js 22 or later (this is ${process.version}). Run it through npx or npm scripts, which use the pinned Node 22.`);
  process.exit(1);
}

// `npx mooring …` runs this file under `sh -c`, and npm forwards SIGTERM and SIGINT to that shell
// only: the shell dies and would leave this process running with nobody to stop it. So, when npm
// launched us, losing our parent is treated as the signal the shell could not pass on.
const PARENT_CHECK_INTERVAL_MS = 200;
if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    process.kill(process.pid, 'SIGTERM');
  }, PARENT_CHECK_INTERVAL_MS);
  watch.unref();
}

await import('../src/main.ts');
