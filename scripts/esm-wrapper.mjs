// Writes dist/index.mjs and dist/index.d.mts: a thin ESM face over the one CommonJS
// implementation, so `import` and `require` share the same module state.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const names = Object.keys(require('../dist/index.js')).sort();

writeFileSync(
  new URL('../dist/index.mjs', import.meta.url),
  // A static import (not createRequire) so that bundlers follow it to the implementation. The
  // names are read from the namespace, whose default is module.exports: `import fragstat from`.
  `import * as cjs from './index.js';\n\n` +
    `export const { ${names.join(', ')} } = cjs;\n\nexport default cjs.default;\n`,
);
writeFileSync(
  new URL('../dist/index.d.mts', import.meta.url),
  `import * as fragstat from './index.js';\n\nexport * from './index.js';\nexport default fragstat;\n`,
);
