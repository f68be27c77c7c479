#!/usr/bin/env node
// WebSocket load generator for bench/fanout.py (--protocol ws): N WebSocket clients on
// loopback, each reading raw frames whose payload starts with the producer's send timestamp
// ({"ts": <seconds since the epoch>}). The same options, histogram and JSON line as
// sse_clients.js, so that bench/fanout.py merges them the same way. Client: the `ws` package
// (bench/loadgen/package-lock.json; `npm ci --prefix bench/loadgen`): Node 20 has no built-in
// WebSocket client (Node >= 22 has one).
//
//   node bench/loadgen/ws_clients.js --port 8082 --path /fan --clients 2500 --duration 60 \
//       [--host 127.0.0.1] [--ramp-batch 100] [--ramp-inflight 200] [--ready-file F] \
//       [--deflate 0|1]
//
// --deflate 1 offers permessage-deflate as browsers do (the server then compresses every frame
// for each client); the default 0 measures uncompressed frames.
'use strict';

const fs = require('fs');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0, path: '/', clients: 100, duration: 30,
                 rampBatch: 100, rampInflight: 200, readyFile: '', connectTimeout: 30,
                 deflate: 0 };
  const names = { '--host': 'host', '--port': 'port', '--path': 'path', '--clients': 'clients',
                  '--duration': 'duration', '--ramp-batch': 'rampBatch',
                  '--ramp-inflight': 'rampInflight', '--ready-file': 'readyFile',
                  '--connect-timeout': 'connectTimeout', '--deflate': 'deflate' };
  for (let i = 2; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) {
      process.stderr.write(`unknown or incomplete option ${argv[i]}\n`);
      process.exit(2);
    }
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!/^(127\.|localhost$|::1$)/.test(opts.host)) {
    process.stderr.write(`loopback only, not ${opts.host}\n`);
    process.exit(2);
  }
  return opts;
}

const opts = parseArgs(process.argv);
const MAX_MS = 60000;
const histogram = new Float64Array(MAX_MS + 1);   // last bucket: >= 60 s
const MARKER = Buffer.from('{"ts":');
const url = `ws://${opts.host}:${opts.port}${opts.path}`;
const stats = { clients: opts.clients, attempted: 0, connected: 0, open: 0, received: 0,
                errors: 0, bad_status: 0, disconnects: 0, parse_errors: 0, negative: 0 };
const sockets = new Set();
let inflight = 0;
let stopping = false;
const now = () => performance.timeOrigin + performance.now();   // ms, sub-ms resolution

function record(latencyMs) {
  if (latencyMs < 0) { stats.negative++; latencyMs = 0; }
  const bucket = latencyMs >= MAX_MS ? MAX_MS : Math.floor(latencyMs);
  histogram[bucket]++;
}

function onMessage(data) {
  const receivedAt = now();
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
  if (buf.length < MARKER.length || buf.compare(MARKER, 0, MARKER.length, 0, MARKER.length)) {
    stats.parse_errors++;
    return;
  }
  let stop = MARKER.length;
  while (stop < buf.length && buf[stop] !== 0x2c && buf[stop] !== 0x7d) stop++;   // ',' or '}'
  const ts = parseFloat(buf.latin1Slice(MARKER.length, stop));
  if (Number.isFinite(ts)) {
    stats.received++;
    record(receivedAt - ts * 1000);
  } else {
    stats.parse_errors++;
  }
}

function openOne(done) {
  stats.attempted++;
  let connected = false;
  let finished = false;
  const settle = () => { if (!connected) { connected = true; done(); } };
  const ws = new WebSocket(url, { perMessageDeflate: opts.deflate === 1,
                                  handshakeTimeout: opts.connectTimeout * 1000 });
  ws.on('open', () => {
    stats.connected++;
    stats.open++;
    sockets.add(ws);
    settle();
  });
  ws.on('message', onMessage);
  ws.on('unexpected-response', (_req, res) => {
    stats.bad_status++;
    stats.errors++;
    finished = true;
    res.resume();
    ws.terminate();
    settle();
  });
  ws.on('error', () => {
    if (!finished && !stopping) { stats.errors++; }
    finished = true;
    settle();
  });
  ws.on('close', () => {
    if (sockets.delete(ws)) {
      stats.open--;
      if (!stopping) stats.disconnects++;
    }
    finished = true;
    settle();
  });
}

// Ramp: at most `rampInflight` handshakes in flight, opened in batches of `rampBatch` per tick.
function ramp(onRamped) {
  let opened = 0;
  const tick = () => {
    if (stopping) return;
    let batch = 0;
    while (opened < opts.clients && inflight < opts.rampInflight && batch < opts.rampBatch) {
      opened++; batch++; inflight++;
      openOne(() => { inflight--; });
    }
    if (opened < opts.clients || inflight > 0) setTimeout(tick, 5);
    else onRamped();
  };
  tick();
}

function percentile(p) {
  let total = 0;
  for (let i = 0; i <= MAX_MS; i++) total += histogram[i];
  if (total === 0) return -1;
  const rank = Math.ceil(p * total);
  let seen = 0;
  for (let i = 0; i <= MAX_MS; i++) {
    seen += histogram[i];
    if (seen >= rank) return i + 0.5;              // bucket midpoint, ms
  }
  return MAX_MS;
}

function finish(reason) {
  if (stopping) return;
  stopping = true;
  const sparse = {};
  let maxBucket = -1;
  for (let i = 0; i <= MAX_MS; i++) if (histogram[i]) { sparse[i] = histogram[i]; maxBucket = i; }
  const usage = process.cpuUsage();
  const result = { ...stats, stopped_by: reason, p50_ms: percentile(0.5),
                   p99_ms: percentile(0.99), max_bucket_ms: maxBucket,
                   cpu_s: Math.round((usage.user + usage.system) / 1e4) / 100,
                   histogram_ms: sparse };
  for (const ws of sockets) ws.terminate();
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

process.on('SIGTERM', () => finish('signal'));
process.on('SIGINT', () => finish('signal'));
setTimeout(() => finish('duration'), opts.duration * 1000);   // also keeps the process alive
ramp(() => {
  if (opts.readyFile) {
    fs.writeFileSync(opts.readyFile, JSON.stringify({ connected: stats.connected,
                                                     errors: stats.errors }));
  }
});
