import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Native addons belong in forked processes, not worker threads.
    pool: 'forks',
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'host', include: ['test/host/**/*.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'vm',
          include: ['test/vm/**/*.test.ts'],
          globalSetup: ['test/vm/global-setup.ts'],
        },
      },
      {
        extends: true,
        // systemd as PID 1 on the LUO kernel: its own project and global
        // setup, so it can run alone (`vitest run --project systemd`).
        test: {
          name: 'systemd',
          include: ['test/systemd/**/*.test.ts'],
          globalSetup: ['test/systemd/global-setup.ts'],
        },
      },
    ],
  },
});
