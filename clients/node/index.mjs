// ESM entry: the CommonJS implementation re-exported, so `import` and `require` share one CloudSDKError class.
import cjs from './lib/index.cjs';

export const { createCloud, CloudSDKError, METHODS, signingScope } = cjs;
