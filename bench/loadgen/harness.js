// What bench/loadgen's generators share: options, the latency histogram, the ramp, and the
// one JSON line bench/fanout.py reads (counts, p50/p99, the sparse histogram {"<ms>": count},
// so that several processes can be merged exactly). Only Node's built-in modules.
'use strict';

const fs = require('fs');
const { performance } = require('perf_hooks');

const MAX_MS = 60000;   // last histogram bucket: >= 60 s

const NAMES = { '--host': 'host', '--port': 'port', '--path': 'path', '--clients': 'clients',
                '--duration': 'duration', '--ramp-batch': 'rampBatch',
                '--ramp-inflight': 'rampInflight', '--ready-file': 'readyFile',
                '--connect-timeout': 'connectTimeout' };

// `extra`: more options, {'--flag': ['key', default]}; numbers stay numbers.
function parseArgs(argv, extra = {}) {
  const opts = { host: '127.0.0.1', port: 0, path: '/', clients: 100, duration: 30,
                 rampBatch: 100, rampInflight: 200, readyFile: '', connectTimeout: 30 };
  const names = { ...NAMES };
  for (const [flag, [key, value]] of Object.entries(extra)) { names[flag] = key; opts[key] = value; }
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

// One run: its counters, open connections and histogram. `drop(conn)` ends a connection at
// the end of the run (ws.terminate(), socket.destroy()).
function createRun(opts, drop) {
  const histogram = new Float64Array(MAX_MS + 1);
  const run = {
    opts,
    stats: { clients: opts.clients, attempted: 0, connected: 0, open: 0, received: 0,
             errors: 0, bad_status: 0, disconnects: 0, parse_errors: 0, negative: 0 },
    sockets: new Set(),
    stopping: false,
    now: () => performance.timeOrigin + performance.now(),   // ms, sub-ms resolution

    record(latencyMs) {
      if (latencyMs < 0) { run.stats.negative++; latencyMs = 0; }
      histogram[latencyMs >= MAX_MS ? MAX_MS : Math.floor(latencyMs)]++;
    },

    percentile(p) {
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
    },

    finish(reason) {
      if (run.stopping) return;
      run.stopping = true;
      const sparse = {};
      let maxBucket = -1;
      for (let i = 0; i <= MAX_MS; i++) if (histogram[i]) { sparse[i] = histogram[i]; maxBucket = i; }
      const usage = process.cpuUsage();
      const result = { ...run.stats, stopped_by: reason, p50_ms: run.percentile(0.5),
                       p99_ms: run.percentile(0.99), max_bucket_ms: maxBucket,
                       cpu_s: Math.round((usage.user + usage.system) / 1e4) / 100,
                       histogram_ms: sparse };
      for (const conn of run.sockets) drop(conn);
      process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
    },
  };
  return run;
}

// Open `opts.clients` connections with `openOne(done)` (done() once its handshake settled):
// at most `rampInflight` in flight, `rampBatch` per 5 ms tick, so the server's accept queue
// is never flooded. Stops after --duration or on SIGTERM/SIGINT; writes --ready-file once
// every connection settled.
function start(run, openOne) {
  const opts = run.opts;
  process.on('SIGTERM', () => run.finish('signal'));
  process.on('SIGINT', () => run.finish('signal'));
  setTimeout(() => run.finish('duration'), opts.duration * 1000);   // also keeps it alive
  let opened = 0;
  let inflight = 0;
  const tick = () => {
    if (run.stopping) return;
    let batch = 0;
    while (opened < opts.clients && inflight < opts.rampInflight && batch < opts.rampBatch) {
      opened++; batch++; inflight++;
      openOne(() => { inflight--; });
    }
    if (opened < opts.clients || inflight > 0) setTimeout(tick, 5);
    else if (opts.readyFile) {
      fs.writeFileSync(opts.readyFile, JSON.stringify({ connected: run.stats.connected,
                                                       errors: run.stats.errors }));
    }
  };
  tick();
}

module.exports = { MAX_MS, parseArgs, createRun, start };
