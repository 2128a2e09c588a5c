// ESLint for the TypeScript of the engine, the server, the workflows, the tests and the Hardhat config, and for
// the page's browser JavaScript (server/ui/*.js): the recommended rules of ESLint and typescript-eslint, without
// type information, so that `npm test` lints the whole tree in seconds on two cores. Layout is Prettier's job.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import globals from "globals";
import tseslint from "typescript-eslint";

export default defineConfig(
  {
    // Built, generated or installed: not ours to lint.
    ignores: [
      "node_modules/",
      "artifacts/",
      "cache/",
      "typechain-types/",
      "dist/",
      "coverage/",
      ".data/",
      ".data-ext/",
    ],
  },
  {
    // A disable comment that no longer silences anything is an error, so none outlives its reason.
    linterOptions: { reportUnusedDisableDirectives: "error" },
  },
  {
    files: ["engine/**/*.ts", "server/**/*.ts", "workflows/**/*.ts", "test/**/*.ts", "hardhat.config.ts"],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: { globals: globals.node },
    rules: {
      // The code drops a field from a copy with `const { field: _field, ...rest } = value`: meant, not unused.
      "@typescript-eslint/no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      // Tests read JSON answers (HTTP bodies, the OpenAPI document, the event stream) and assert on their
      // shape; typing each one would restate server/schemas.ts in every test, where a wrong field fails the
      // assertion anyway. The engine, the server and the workflows keep the rule.
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  {
    // The page's scripts, served as ES modules to the browser.
    files: ["server/ui/**/*.js"],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: "module", globals: globals.browser },
  },
  {
    // Tool configs that run under Node: .solcover.js (CommonJS) and this file (an ES module).
    files: ["*.js", "*.cjs"],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: "commonjs", globals: globals.node },
  },
  {
    files: ["*.mjs"],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: "module", globals: globals.node },
  },
);
