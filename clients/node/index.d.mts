// ESM types: the same declarations as index.d.ts (the CommonJS entry's).
export * from './index.js';
