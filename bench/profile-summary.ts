/**
 * Summarises a V8 .cpuprofile (from `BENCH_PROFILE=1 npm run bench`): where the server's CPU time
 * goes, by package/file (self time) and by function (self and inclusive time).
 *
 *   npx node bench/profile-summary.ts bench/profiles/<file>.cpuprofile [top=25]
 */
import fs from 'node:fs';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, topRaw = '25'] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: npx node bench/profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const top = Number(topRaw);
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

/** A readable "where": the npm package, the project file, or Node/V8 internals. */
function area(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('/node_modules/');
  if (nm !== -1) {
    const rest = u.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? u);
  }
  if (u.startsWith('node:')) return 'node:' + (u.slice(5).split('/')[0] ?? '');
  if (u.startsWith(root)) return path.relative(root, u);
  return u;
}

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0);

const fnKey = (n: ProfileNode): string => `${n.callFrame.functionName || '(anonymous)'} ${area(n.callFrame.url, n.callFrame.functionName)}:${n.callFrame.lineNumber + 1}`;

const selfByArea = new Map<string, number>();
const selfByFn = new Map<string, number>();
const inclByFn = new Map<string, number>();
const inclByArea = new Map<string, number>();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  if (n === undefined) continue;
  const a = area(n.callFrame.url, n.callFrame.functionName);
  selfByArea.set(a, (selfByArea.get(a) ?? 0) + us);
  selfByFn.set(fnKey(n), (selfByFn.get(fnKey(n)) ?? 0) + us);
  // Inclusive: every distinct function / area on the stack gets the sample once.
  const seenFn = new Set<string>();
  const seenArea = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur);
    if (node === undefined) break;
    const k = fnKey(node);
    if (!seenFn.has(k)) {
      seenFn.add(k);
      inclByFn.set(k, (inclByFn.get(k) ?? 0) + us);
    }
    const ar = area(node.callFrame.url, node.callFrame.functionName);
    if (!seenArea.has(ar)) {
      seenArea.add(ar);
      inclByArea.set(ar, (inclByArea.get(ar) ?? 0) + us);
    }
  }
}

const pct = (us: number): string => `${((100 * us) / totalUs).toFixed(1).padStart(5)} %`;
const print = (title: string, m: Map<string, number>, n: number): void => {
  console.log(`\n${title}`);
  for (const [k, us] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log(`  ${pct(us)}  ${k}`);
};
console.log(`profile: ${file}\nsampled time ${(totalUs / 1e6).toFixed(2)} s (wall ${((profile.endTime - profile.startTime) / 1e6).toFixed(2)} s)`);
print('Self time by package / file', selfByArea, top);
print('Inclusive time by package / file (time with it anywhere on the stack)', inclByArea, top);
print('Self time by function', selfByFn, top);
print('Inclusive time by function', inclByFn, top);
