import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addons have crashed vitest's thread pool: each test file runs in its own process.
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', ['json', { outputFile: '.vitest/results.json' }]],
  },
});
