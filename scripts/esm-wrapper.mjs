// Writes dist/index.mjs and dist/index.d.mts: a thin ESM face over the one CommonJS
// implementation, so `import` and `require` share the same module state.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const names = Object.keys(require('../dist/index.js')).sort();

writeFileSync(
  new URL('../dist/index.mjs', import.meta.url),
  // A static import (not createRequire) so that bundlers follow it to the implementation.
  // The default export is the whole API too: `import fragstat from 'fragstat'`.
  `import cjs from './index.js';\n\n` +
    `export const { ${names.join(', ')} } = cjs;\n\nexport default cjs;\n`,
);
writeFileSync(
  new URL('../dist/index.d.mts', import.meta.url),
  `import * as fragstat from './index.js';\n\nexport * from './index.js';\nexport default fragstat;\n`,
);
