// solc-js standard-JSON front end of consortia.sdk.evm: reads the standard-JSON input on
// stdin, writes only the standard-JSON output on stdout (solcjs --standard-json mixes log
// lines into stdout). Imports resolve against the directories given as arguments.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const bases = process.argv.slice(2).map((d) => path.resolve(d));

function findImports(name) {
  for (const base of bases) {
    const full = path.resolve(base, name);
    if (!full.startsWith(base + path.sep)) continue; // no escape from the base directories
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, "utf8") };
  }
  return { error: `file not found: ${name} (searched ${bases.join(", ")})` };
}

const input = fs.readFileSync(0, "utf8");
const output = solc.compile(input, { import: findImports });
process.stdout.write(JSON.stringify({ solcVersion: solc.version(), output: JSON.parse(output) }));
