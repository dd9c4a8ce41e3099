import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Starts the real registries (anonymous, htpasswd, token) once per run; see test/setup/registries.ts.
    globalSetup: ['test/setup/registries.ts'],
  },
});
