'use strict';
/**
 * Node.js client for sessionrec ONNX models (onnxruntime-node, CPU). Contract: ../README.md.
 *
 *   const { SessionRecommender } = require('./sessionrec_client');
 *   const rec = await SessionRecommender.load('model.onnx', { threads: 1 });
 *   const { items, fallback } = await rec.nextItems([1001, 1002], { k: 10 });
 *   // items: [{ itemId: 1017, score: ... }, ...]; fallback: false
 *
 * Item ids: the model's kind ("int" or "str"). Integer ids are JS numbers (safe integers)
 * or BigInts; ids beyond Number.MAX_SAFE_INTEGER come back as BigInt.
 */
const crypto = require('crypto');
const fs = require('fs');
const nodePath = require('path');
const ort = require('onnxruntime-node');

const PAD = { int: -1n, str: '' };
const CONTRACT = 'sessionrec.onnx/1';

/**
 * `path` checked against the manifest.json beside it, when there is one (../README.md):
 * the file's SHA-256 and contract must match. Returns the file to load (its
 * `.NAME.pending` twin while an export is committing).
 */
function verifiedPath(path) {
  const manifestPath = nodePath.join(nodePath.dirname(path), 'manifest.json');
  if (!fs.existsSync(manifestPath)) return path;
  const name = nodePath.basename(path);
  const entry = (JSON.parse(fs.readFileSync(manifestPath, 'utf8')).files || {})[name];
  if (!entry) throw new Error(`${manifestPath} does not list ${name}`);
  if (entry.format !== CONTRACT) {
    throw new Error(`${path}: contract ${entry.format}, this client reads ${CONTRACT}`);
  }
  for (const candidate of [path, nodePath.join(nodePath.dirname(path), `.${name}.pending`)]) {
    if (!fs.existsSync(candidate)) continue;
    const digest = crypto.createHash('sha256').update(fs.readFileSync(candidate)).digest('hex');
    if (digest === entry.sha256) return candidate;
  }
  throw new Error(`${path}: SHA-256 differs from ${manifestPath}: modified or corrupted`);
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
      if (typeof value !== 'string') throw new TypeError(`item ids of this model are strings, got ${value}`);
      return value;
    }
    if (typeof value === 'bigint') return value;
    if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
    throw new TypeError(`item ids of this model are integers (safe integers or BigInt), got ${value}`);
  }

  /** Top-k of every session: [{ items: [{ itemId, score }], fallback }], same order. */
  async nextItemsBatch(sessions, { k = 20, excludeSeen = true } = {}) {
    if (!Array.isArray(sessions) || !sessions.every(Array.isArray)) {
      throw new TypeError('sessions must be an array of arrays of item ids');
    }
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1, got ${k}`);
    if (sessions.length === 0) return [];
    const kind = this._kindOf(sessions);
    // padded to the longest session (at least one column) with the contract's padding id
    const width = Math.max(1, ...sessions.map((s) => s.length));
    const flat = kind === 'str' ? new Array(sessions.length * width).fill(PAD.str)
      : new BigInt64Array(sessions.length * width).fill(PAD.int);
    sessions.forEach((s, b) => s.forEach((v, j) => { flat[b * width + j] = this._toId(v, kind); }));
    const feeds = {
      item_ids: new ort.Tensor(kind === 'str' ? 'string' : 'int64', flat, [sessions.length, width]),
      k: new ort.Tensor('int64', BigInt64Array.from([BigInt(k)]), [1]),
      exclude_seen: new ort.Tensor('bool', Uint8Array.from([excludeSeen ? 1 : 0]), [1]),
    };
    const out = await this.session.run(feeds);
    const ids = out.top_ids.data;
    const scores = out.top_scores.data;
    const topK = out.top_ids.dims[1];
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
      return { items, fallback: Boolean(out.fallback.data[b]) };
    });
  }

  /** Top-k next items of one session (oldest click first). */
  async nextItems(clicks, options = {}) {
    return (await this.nextItemsBatch([clicks], options))[0];
  }
}

module.exports = { SessionRecommender };
