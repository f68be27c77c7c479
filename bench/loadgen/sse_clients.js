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
const { parseArgs, createRun, start } = require('./harness');


const opts = parseArgs(process.argv);
const run = createRun(opts, (sock) => sock.destroy());
const { stats, sockets, record, now } = run;
const MARKER = Buffer.from('data: {"ts":');
const NL = 10;
const request = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nHost: ${opts.host}:${opts.port}\r\n` +
                            'Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n');


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
    if (!finished && !run.stopping) { stats.errors++; }
    finished = true;
  });
  sock.on('close', () => {
    if (sockets.delete(sock)) {
      stats.open--;
      if (!run.stopping) stats.disconnects++;
    } else if (!finished && !run.stopping) {
      stats.errors++;                              // closed before a response
    }
    finished = true;
    settle();
  });
}

start(run, openOne);
