module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // test/integration runs real servers: `npm run test:integration`.
  testPathIgnorePatterns: ['/node_modules/', '/test/integration/'],
  transform: {
    '^.+\\.tsx?$': ['@swc/jest'],
    // GitHub's workflow parser ships as ES modules: compile it for jest too.
    '^.+/node_modules/@actions/.+\\.js$': ['@swc/jest'],
  },
  transformIgnorePatterns: ['/node_modules/(?!@actions/)'],
  // ...and it declares only an "import" export condition.
  moduleNameMapper: {
    '^@actions/(workflow-parser|expressions)$': '<rootDir>/node_modules/@actions/$1/dist/index.js',
    '^@actions/(workflow-parser|expressions)/(.+?)(\\.js)?$': '<rootDir>/node_modules/@actions/$1/dist/$2.js',
  },
  setupFilesAfterEnv: ['aws-cdk-lib/testhelpers/jest-autoclean'],
};
