'use strict';
/**
 * Node.js client for sessionrec ONNX models (onnxruntime-node, CPU). Contract: ../README.md.
 *
 *   const { SessionRecommender } = require('./sessionrec_client');
 *   const rec = await SessionRecommender.load('model.onnx', { threads: 1 });
 *   const { items, fallback, unknownClicks } = await rec.nextItems([1001, 1002], { k: 10 });
 *   // items: [{ itemId: 1017, score: ... }, ...]; fallback: false; unknownClicks: 0
 *
 * Item ids: the model's kind ("int" or "str"). Integer ids (int64) go in as JS numbers
 * (safe integers) or BigInts, exactly (never through a float); ids beyond
 * Number.MAX_SAFE_INTEGER come back as BigInt, the others as numbers.
 *
 * Reads contracts sessionrec.onnx/1 and /2. A large model's item table may sit in a data
 * file beside the .onnx (model.onnx.data; onnxruntime loads it), verified with the model
 * against manifest.json. This client scores exactly (the two-stage files of a large
 * export are for Python's SessionRecommender).
 */
const crypto = require('crypto');
const fs = require('fs');
const nodePath = require('path');
const ort = require('onnxruntime-node');

const PAD = { int: -1n, str: '' };
const CONTRACTS = ['sessionrec.onnx/1', 'sessionrec.onnx/2']; // the contracts read
const DATA_FORMAT = 'sessionrec.onnx-data/1'; // the data file beside a large model
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// added in sessionrec 0.2.0: files exported before lack it (unknownClicks is then null)
const OUTPUT_UNKNOWN = 'unknown_clicks';

/** `value` as shown in an error message: exact for BigInts, quoted for strings. */
function shown(value) {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** SHA-256 (hex) of a file, read in 1 MiB chunks (data files can be many GB). */
function fileSha256(file) {
  const hash = crypto.createHash('sha256');
  const buffer = Buffer.alloc(1 << 20);
  const fd = fs.openSync(file, 'r');
  try {
    let n;
    while ((n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0) {
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** `file` or its `.NAME.pending` twin, whichever has the manifest entry's SHA-256. */
function matching(file, entry, manifestPath) {
  const twin = nodePath.join(nodePath.dirname(file), `.${nodePath.basename(file)}.pending`);
  for (const candidate of [file, twin]) {
    if (fs.existsSync(candidate) && fileSha256(candidate) === entry.sha256) return candidate;
  }
  throw new Error(`${file}: SHA-256 differs from ${manifestPath}: modified or corrupted`);
}

/**
 * `path` checked against the manifest.json beside it, when there is one (../README.md):
 * the file's SHA-256 and contract must match, and so must its data file's (NAME.data)
 * when the manifest lists one. Returns the file to load (its `.NAME.pending` twin while an
 * export is committing).
 */
function verifiedPath(path) {
  const manifestPath = nodePath.join(nodePath.dirname(path), 'manifest.json');
  if (!fs.existsSync(manifestPath)) return path;
  const name = nodePath.basename(path);
  const files = JSON.parse(fs.readFileSync(manifestPath, 'utf8')).files || {};
  const entry = files[name];
  if (!entry) throw new Error(`${manifestPath} does not list ${name}`);
  if (!CONTRACTS.includes(entry.format)) {
    throw new Error(`${path}: contract ${entry.format}, this client reads ${CONTRACTS.join(' and ')}`);
  }
  const model = matching(path, entry, manifestPath);
  const dataEntry = files[`${name}.data`];
  if (dataEntry) {
    const data = `${path}.data`;
    if (dataEntry.format !== DATA_FORMAT) {
      throw new Error(`${data}: format ${dataEntry.format}, expected ${DATA_FORMAT}`);
    }
    if (matching(data, dataEntry, manifestPath) !== data) {
      throw new Error(
        `${data}: an export was interrupted after its commit point (the data file is still `
        + 'under a temporary name): export again',
      );
    }
  }
  return model;
}

class SessionRecommender {
  constructor(session, idKind) {
    this.session = session;
    this.idKind = idKind; // "int" | "str"
  }

  /** Load an exported model; `threads` = onnxruntime intra-op threads (default 1). */
  static async load(path, { threads = 1 } = {}) {
    const session = await ort.InferenceSession.create(verifiedPath(path), {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all', // the file holds standard ops; CPU fusions happen here
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    const names = session.inputNames.join(',');
    if (names !== 'item_ids,k,exclude_seen') {
      throw new Error(`${path}: not a sessionrec model (inputs: ${names})`);
    }
    const meta = (session.inputMetadata || []).find((m) => m.name === 'item_ids');
    const idKind = meta && meta.type === 'string' ? 'str' : meta ? 'int' : null;
    return new SessionRecommender(session, idKind);
  }

  _kindOf(sessions) {
    if (this.idKind) return this.idKind;
    // onnxruntime-node without inputMetadata: the kind of the first id given
    for (const s of sessions) if (s.length) return typeof s[0] === 'string' ? 'str' : 'int';
    return 'int';
  }

  _toId(value, kind) {
    if (kind === 'str') {
      if (typeof value !== 'string') {
        throw new TypeError(`item ids of this model are strings, got ${shown(value)}`);
      }
      return value;
    }
    let id = null;
    if (typeof value === 'bigint') id = value;
    else if (typeof value === 'number' && Number.isSafeInteger(value)) id = BigInt(value);
    if (id === null) {
      throw new TypeError(
        `item ids of this model are integers (JSON numbers, exact at any size; in JS, safe-`
        + `integer numbers or BigInts), got ${shown(value)}`,
      );
    }
    if (id < INT64_MIN || id > INT64_MAX) {
      throw new RangeError(`item id ${id} does not fit in int64 (the model's id type)`);
    }
    return id;
  }

  /**
   * Top-k of every session, same order: [{ items: [{ itemId, score }], fallback,
   * unknownClicks }]. unknownClicks: how many of the session's ids the model does not know
   * (ignored), or null for a file exported before sessionrec 0.2.0.
   * `k`: an integer >= 1 (number or BigInt); `excludeSeen`: true or false.
   */
  async nextItemsBatch(sessions, { k = 20, excludeSeen = true } = {}) {
    if (!Array.isArray(sessions) || !sessions.every(Array.isArray)) {
      throw new TypeError('sessions must be an array of arrays of item ids');
    }
    if (!(Number.isSafeInteger(k) || typeof k === 'bigint') || k < 1) {
      throw new RangeError(`k must be an integer >= 1, got ${shown(k)}`);
    }
    if (typeof excludeSeen !== 'boolean') {
      throw new TypeError(`excludeSeen must be true or false, got ${shown(excludeSeen)}`);
    }
    const kInt64 = BigInt(k) > INT64_MAX ? INT64_MAX : BigInt(k);
    if (sessions.length === 0) return [];
    const kind = this._kindOf(sessions);
    // padded to the longest session (at least one column) with the contract's padding id
    const width = Math.max(1, ...sessions.map((s) => s.length));
    const flat = kind === 'str' ? new Array(sessions.length * width).fill(PAD.str)
      : new BigInt64Array(sessions.length * width).fill(PAD.int);
    sessions.forEach((s, b) => s.forEach((v, j) => { flat[b * width + j] = this._toId(v, kind); }));
    const feeds = {
      item_ids: new ort.Tensor(kind === 'str' ? 'string' : 'int64', flat, [sessions.length, width]),
      k: new ort.Tensor('int64', BigInt64Array.from([kInt64]), [1]),
      exclude_seen: new ort.Tensor('bool', Uint8Array.from([excludeSeen ? 1 : 0]), [1]),
    };
    const out = await this.session.run(feeds);
    const ids = out.top_ids.data;
    const scores = out.top_scores.data;
    const topK = out.top_ids.dims[1];
    const unknown = out[OUTPUT_UNKNOWN] ? out[OUTPUT_UNKNOWN].data : null;
    return sessions.map((_, b) => {
      const items = [];
      for (let j = 0; j < topK; j += 1) {
        const score = scores[b * topK + j];
        if (score === -Infinity) continue; // excluded (seen) items past the unseen ones
        let itemId = ids[b * topK + j];
        if (typeof itemId === 'bigint' && itemId >= BigInt(Number.MIN_SAFE_INTEGER)
            && itemId <= BigInt(Number.MAX_SAFE_INTEGER)) itemId = Number(itemId);
        items.push({ itemId, score });
      }
      return {
        items,
        fallback: Boolean(out.fallback.data[b]),
        unknownClicks: unknown ? Number(unknown[b]) : null,
      };
    });
  }

  /** Top-k next items of one session (oldest click first). */
  async nextItems(clicks, options = {}) {
    return (await this.nextItemsBatch([clicks], options))[0];
  }
}

module.exports = { SessionRecommender };
