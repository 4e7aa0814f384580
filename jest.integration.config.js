// Integration tests: real nginx, Redis, pebble (`npm run test:integration`). They start servers
// on 127.0.0.1 and take minutes, so they are not part of `npm test` (see jest.config.js).
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test/integration'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': ['@swc/jest'],
  },
  // Certificates are issued during handshakes against pebble, Redis is stopped and started:
  // single tests take tens of seconds on a busy machine.
  testTimeout: 180000,
  // The suites share ports picked at run time and sockproc's fixed /tmp paths: one at a time
  // (the npm script also passes --runInBand).
  maxWorkers: 1,
};
