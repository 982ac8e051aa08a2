import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addons have crashed vitest's thread pool: each test file runs in its own process.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    // A turn of the event loop before each test (test/setup.ts).
    setupFiles: ['test/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: '.vitest/results.json' }]],
  },
});
