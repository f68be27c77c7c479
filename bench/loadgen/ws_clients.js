#!/usr/bin/env node
// WebSocket load generator for bench/fanout.py (--protocol ws): N WebSocket clients on
// loopback, each reading raw frames whose payload starts with the producer's send timestamp
// ({"ts": <seconds since the epoch>}). The same options, histogram and JSON line as
// sse_clients.js (both from harness.js), so that bench/fanout.py merges them the same way.
// Client: the `ws` package (bench/loadgen/package-lock.json; `npm ci --prefix bench/loadgen`):
// Node 20 has no built-in WebSocket client (Node >= 22 has one).
//
//   node bench/loadgen/ws_clients.js --port 8082 --path /fan --clients 2500 --duration 60 \
//       [--host 127.0.0.1] [--ramp-batch 100] [--ramp-inflight 200] [--ready-file F] \
//       [--deflate 0|1]
//
// --deflate 1 offers permessage-deflate as browsers do (the server then compresses every frame
// for each client); the default 0 measures uncompressed frames.
'use strict';

const WebSocket = require('ws');
const { parseArgs, createRun, start } = require('./harness');


const opts = parseArgs(process.argv, { '--deflate': ['deflate', 0] });
const run = createRun(opts, (ws) => ws.terminate());
const { stats, sockets, record, now } = run;
const MARKER = Buffer.from('{"ts":');
const url = `ws://${opts.host}:${opts.port}${opts.path}`;


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
    if (!finished && !run.stopping) { stats.errors++; }
    finished = true;
    settle();
  });
  ws.on('close', () => {
    if (sockets.delete(ws)) {
      stats.open--;
      if (!run.stopping) stats.disconnects++;
    }
    finished = true;
    settle();
  });
}

start(run, openOne);
