#!/usr/bin/env node
'use strict';
/**
 * Top-k next items of sessions given as JSON, printed as JSON: for the same input, the
 * same bytes as export/python/sessionrec_client.py prints (json_io.js):
 *
 *   echo '{"sessions": [[1001, 1002], []], "k": 5}' | node recommend.js model.onnx
 *   -> {"results": [{"items": [{"item_id": 1017, "score": ...}, ...], "fallback": false,
 *       "unknown_clicks": 0}, ...]}
 *
 * Integer ids are read and printed exactly, beyond 2^53 too (as JSON numbers).
 * Options: --k N (overrides the input's k, default 20), --include-seen, --threads N,
 * --input FILE (instead of stdin). The input may also be a bare list of sessions.
 */
const fs = require('fs');
const { SessionRecommender } = require('./sessionrec_client');
const { formatResults, parseRequest } = require('./json_io');

/** A command-line integer, exact (a BigInt beyond the safe integers). */
function integerArg(text, flag) {
  if (!/^[+-]?[0-9]+$/.test(text || '')) throw new Error(`${flag}: not an integer: ${text}`);
  const value = BigInt(text);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
    ? Number(value) : value;
}

function parseArgs(argv) {
  const args = { model: null, k: null, includeSeen: false, threads: 1, input: null };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--k') args.k = integerArg(argv[++i], '--k');
    else if (a === '--threads') args.threads = Number(integerArg(argv[++i], '--threads'));
    else if (a === '--input') args.input = argv[++i];
    else if (a === '--include-seen') args.includeSeen = true;
    else if (a === '-h' || a === '--help') args.help = true;
    else if (!args.model) args.model = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.help || !args.model) {
    process.stderr.write('usage: node recommend.js MODEL.onnx [--k N] [--include-seen] [--threads N] [--input FILE] < sessions.json\n');
    return args.help ? 0 : 2;
  }
  let request = parseRequest(fs.readFileSync(args.input || 0, 'utf8'));
  if (Array.isArray(request)) request = { sessions: request };
  if (request === null || typeof request !== 'object' || !('sessions' in request)) {
    throw new TypeError('the input must be a list of sessions or {"sessions": [...], ...}');
  }
  const k = args.k !== null ? args.k : (request.k ?? 20);
  const excludeSeen = args.includeSeen ? false : (request.exclude_seen ?? true);
  const rec = await SessionRecommender.load(args.model, { threads: args.threads });
  const results = await rec.nextItemsBatch(request.sessions, { k, excludeSeen });
  process.stdout.write(`${formatResults(results)}\n`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exitCode = 1;
});
