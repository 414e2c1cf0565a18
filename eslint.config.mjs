// @ts-check
// Lint, including the layering of docs/architecture.md: dependencies point down
// (host -> runs -> engine -> shared; worker and cli -> runs; webview -> shared), `vscode` only in
// src/host, and no import cycles anywhere. Formatting is Prettier's (`npm run lint` checks both).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

const vscodeOnlyInHost = { name: 'vscode', message: 'only src/host/ may import vscode (docs/architecture.md).' };

/** Import patterns a layer may not use, with the reason. */
const forbid = (...layers) => layers.map(([group, message]) => ({ group, message: `${message} (docs/architecture.md)` }));

const UP_FROM_ENGINE = forbid(
  [['**/runs/**', '**/runs'], 'the engine knows no run folders: take plain values and an event sink instead'],
  [['**/host/**', '**/worker/**', '**/cli/**'], 'the engine is below the host, worker and CLI'],
);
const UP_FROM_RUNS = forbid([['**/host/**', '**/worker/**', '**/cli/**'], 'src/runs is below the host, worker and CLI']);
const OUT_OF_SHARED = forbid([['../*', '!./*'], 'src/shared is a leaf: wire types and pure functions that import nothing else from src/']);
const WEBVIEW_ONLY_SHARED = forbid([
  ['**/src/engine/**', '**/src/runs/**', '**/src/host/**', '**/src/worker/**', '**/src/cli/**'],
  'webview pages import only src/shared',
]);

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.cache/**',
      'test-results/**',
      '.nad/**',
      '.vscode-test/**',
      'src/engine/kernels/simd-binary.ts',
      'src/engine/triggers/embedded-masks.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Type-only imports count too: a cycle through types is still a tangle to read.
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    // A file longer than this is split by what its parts do (see src/engine/defenses/neural-cleanse/).
    files: ['src/**/*.ts', 'webview/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 400, skipBlankLines: false, skipComments: false }] },
  },
  {
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [vscodeOnlyInHost], patterns: UP_FROM_ENGINE }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/runs/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [vscodeOnlyInHost], patterns: UP_FROM_RUNS }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['src/worker/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [vscodeOnlyInHost], patterns: forbid([['**/host/**'], 'the worker and the CLI do not use the extension host']) },
      ],
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [vscodeOnlyInHost], patterns: OUT_OF_SHARED }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['webview/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [vscodeOnlyInHost], patterns: WEBVIEW_ONLY_SHARED }] },
  },
);
