// A small deterministic PRNG (an LCG), shared by the load generators and the services, so every
// configuration sees the same request mix and the same data.
'use strict';

/** A generator of numbers in [0, 1) from `seed`. */
exports.prng = function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
};

/** A buffer of `bytes` pseudo-random bytes from `seed`. */
exports.pattern = function pattern(bytes, seed) {
  const rand = exports.prng(seed);
  const buf = Buffer.allocUnsafe(bytes);
  for (let i = 0; i + 4 <= bytes; i += 4) buf.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  return buf;
};
