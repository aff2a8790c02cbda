// ESLint for Keel's TypeScript: typescript-eslint's recommended rules, the layering rule
// (runtime code never imports the builder or the CLI) and 120-character lines.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const RUNTIME = ['init', 'units', 'cloud-config', 'update', 'containers', 'slots', 'native', 'lib'];

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'out/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-control-regex': 'off',
      // `let x = ''; try { x = read(); } catch { continue; }` is the pattern here, not a mistake.
      'no-useless-assignment': 'off',
    },
  },
  {
    // Foreign JSON documents (image definitions, OCI configs and archive manifests) are checked field by field.
    files: ['builder/image-def.ts', 'containers/archive.ts', 'containers/store.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Tests read JSON replies and fake system calls: `any` is how they say "whatever came back".
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: RUNTIME.map((d) => `${d}/**/*.ts`),
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['**/builder/*', '**/cli/*'], message: 'runtime code must not import builder/ or cli/' }],
        },
      ],
    },
  },
  {
    files: ['units/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'units/ is pure: take the environment as an argument' },
      ],
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['../*', '!../lib/*'], message: 'lib/ imports nothing of ours' }],
        },
      ],
    },
  },
);
