#!/usr/bin/env node
// SSE load generator for bench/fanout.py: N raw HTTP/1.1 connections (one socket each, no
// keep-alive agent) on loopback, each reading an SSE stream whose `data:` lines start with the
// producer's send timestamp ({"ts": <seconds since the epoch>}). Why Node and raw `net`: a
// Python/gevent client pays ~tens of microseconds per read, so with one TCP segment per message
// (the SSE fast path) the client, not the server, became the bottleneck (docs/benchmarks.md).
//
//   node bench/loadgen/sse_clients.js --port 8082 --path /fan --clients 2500 --duration 60 \
//       [--host 127.0.0.1] [--ramp-batch 100] [--ramp-inflight 200] [--ready-file F]
//
// Latency = receive time - send time, in a histogram of 1 ms buckets up to 60 s (bounded
// memory whatever the delivery count). Stops after --duration seconds or on SIGTERM/SIGINT and
// prints one JSON line: counts, p50/p99 and the sparse histogram {"<ms>": count} so that
// several processes can be merged exactly. Only Node's built-in modules.
'use strict';

const net = require('net');
const fs = require('fs');
const { performance } = require('perf_hooks');

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 0, path: '/', clients: 100, duration: 30,
                 rampBatch: 100, rampInflight: 200, readyFile: '', connectTimeout: 30 };
  const names = { '--host': 'host', '--port': 'port', '--path': 'path', '--clients': 'clients',
                  '--duration': 'duration', '--ramp-batch': 'rampBatch',
                  '--ramp-inflight': 'rampInflight', '--ready-file': 'readyFile',
                  '--connect-timeout': 'connectTimeout' };
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
const MARKER = Buffer.from('data: {"ts":');
const NL = 10;
const request = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n` +
                            'Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n');
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

// Scan complete lines in `buf` for the marker; return the unfinished tail (after the last LF).
function scan(buf, receivedAt) {
  let pos = 0;
  for (;;) {
    const at = buf.indexOf(MARKER, pos);
    if (at < 0) break;
    const end = buf.indexOf(NL, at);
    if (end < 0) return buf.subarray(at);          // the line is not complete yet
    let stop = at + MARKER.length;
    while (stop < end && buf[stop] !== 0x2c && buf[stop] !== 0x7d) stop++;   // ',' or '}'
    const ts = parseFloat(buf.latin1Slice(at + MARKER.length, stop));
    if (Number.isFinite(ts)) {
      stats.received++;
      record(receivedAt - ts * 1000);
    } else {
      stats.parse_errors++;
    }
    pos = end + 1;
  }
  // Keep only a tail that may hold the start of a marker split across reads.
  const keep = Math.min(buf.length - pos, MARKER.length - 1);
  return keep > 0 ? buf.subarray(buf.length - keep) : null;
}

function openOne(done) {
  stats.attempted++;
  const sock = net.connect({ host: opts.host, port: opts.port });
  let tail = null;
  let headerSeen = false;
  let connected = false;
  let finished = false;
  const settle = () => { if (!connected) { connected = true; done(); } };
  sock.setTimeout(opts.connectTimeout * 1000);
  sock.on('connect', () => { sock.write(request); });
  sock.on('timeout', () => {                      // only until the response starts
    if (!headerSeen) { stats.errors++; finished = true; settle(); sock.destroy(); }
  });
  sock.on('data', (chunk) => {
    const receivedAt = now();
    if (!headerSeen) {
      headerSeen = true;
      sock.setTimeout(0);
      if (chunk.length < 12 || chunk.latin1Slice(0, 12) !== 'HTTP/1.1 200') {
        stats.bad_status++;
        stats.errors++;
        finished = true;
        settle();
        sock.destroy();
        return;
      }
      stats.connected++;
      stats.open++;
      sockets.add(sock);
      settle();
    }
    tail = scan(tail === null ? chunk : Buffer.concat([tail, chunk]), receivedAt);
  });
  sock.on('error', () => {
    if (!finished && !stopping) { stats.errors++; }
    finished = true;
  });
  sock.on('close', () => {
    if (sockets.delete(sock)) {
      stats.open--;
      if (!stopping) stats.disconnects++;
    } else if (!finished && !stopping) {
      stats.errors++;                              // closed before a response
    }
    finished = true;
    settle();
  });
}

// Ramp: at most `rampInflight` connections waiting for their response headers, opened in
// batches of `rampBatch` per tick, so the server's accept queue is never flooded.
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
  for (const sock of sockets) sock.destroy();
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
