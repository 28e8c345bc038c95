'use strict';
/**
 * The JSON of the command-line clients (../README.md, "The clients' JSON"): requests read
 * without losing an int64 id, results written byte for byte as the Python client
 * (export/python/sessionrec_client.py, `json.dumps`) writes them.
 *
 * - Reading: JSON integers stay exact: a number when it is a safe integer, else a BigInt
 *   (lossless-json; JSON.parse would round 9007199254740993 to 9007199254740992). Other
 *   numbers (1.0, 1e3) stay `JsonFloat`s, which no id or `k` accepts, as in Python, where
 *   `json.loads` makes them floats.
 * - Writing: Python's `json.dumps` defaults: separators ", " and ": ", ids as JSON
 *   numbers (all digits, any size) or ASCII-escaped strings, scores as Python's
 *   `repr(float)` (the shortest digits that read back as the same double: 0.1234, 1e-05,
 *   3.0), booleans, null.
 */
const { LosslessNumber, isInteger, parse } = require('lossless-json');

/** A JSON number that is not an integer literal (`1.0`, `1e3`): `value` is its text. */
class JsonFloat extends LosslessNumber {}

function parseNumber(text) {
  if (!isInteger(text)) return new JsonFloat(text);
  const value = BigInt(text);
  const safe = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
  return safe ? Number(value) : value;
}

/** Parse a request: integers exact (number or BigInt), other numbers `JsonFloat`. */
function parseRequest(text) {
  return parse(text, null, parseNumber);
}

/**
 * `x` (a double) as Python's `repr(float)`: the shortest round-trip digits (those of
 * ECMAScript's Number.prototype.toString), in positional notation when the decimal
 * exponent is in [-5, 16), else `d.ddde+XX` (at least two exponent digits).
 */
function pythonFloat(x) {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  const sign = x < 0 || Object.is(x, -0) ? '-' : '';
  const [mantissa, exp = '0'] = String(Math.abs(x)).split('e');
  const [whole, frac = ''] = mantissa.split('.');
  let digits = whole + frac;
  let point = whole.length + Number(exp); // value = 0.DIGITS x 10^point
  const lead = digits.length - digits.replace(/^0+/, '').length;
  digits = digits.slice(lead).replace(/0+$/, '');
  point -= lead;
  if (digits === '') return `${sign}0.0`;
  if (point > 16 || point < -3) {
    const e = point - 1;
    const rest = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const expText = String(Math.abs(e)).padStart(2, '0');
    return `${sign}${digits[0]}${rest}e${e < 0 ? '-' : '+'}${expText}`;
  }
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** `s` as Python's `json.dumps(s)` (ensure_ascii): every char outside ' '..'~' escaped. */
function pythonString(s) {
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function pythonId(id) {
  if (typeof id === 'string') return pythonString(id);
  if (typeof id === 'bigint' || Number.isSafeInteger(id)) return BigInt(id).toString();
  throw new TypeError(`not an item id: ${id}`);
}

/**
 * `{"results": [...]}` of `nextItemsBatch` results, byte for byte as the Python client
 * prints it (one line, no trailing newline).
 */
function formatResults(results) {
  const rows = results.map((r) => {
    const items = r.items.map(
      (it) => `{"item_id": ${pythonId(it.itemId)}, "score": ${pythonFloat(it.score)}}`,
    );
    const unknown = r.unknownClicks === null ? 'null' : String(r.unknownClicks);
    return `{"items": [${items.join(', ')}], "fallback": ${r.fallback}, "unknown_clicks": ${unknown}}`;
  });
  return `{"results": [${rows.join(', ')}]}`;
}

module.exports = { JsonFloat, parseRequest, formatResults, pythonFloat, pythonString };
