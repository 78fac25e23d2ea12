import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', '.mooring/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/main.ts', 'src/cli/**', 'bin/**', 'bench/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['bin/**'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
