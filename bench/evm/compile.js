const solc = require('solc');
const fs = require('fs');
const src = fs.readFileSync(process.argv[2], 'utf8');
const input = {language: 'Solidity', sources: {'Token.sol': {content: src}},
  settings: {evmVersion: process.argv[3] || 'cancun', optimizer: {enabled: true, runs: 200},
             outputSelection: {'*': {'*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object']}}}};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
if (out.errors) for (const e of out.errors) if (e.severity === 'error') { console.error(e.formattedMessage); process.exit(1); }
const c = out.contracts['Token.sol']['Token'];
process.stdout.write(JSON.stringify({compiler: 'solc-js ' + solc.version(), evmVersion: input.settings.evmVersion,
  optimizer_runs: 200, abi: c.abi, bytecode: '0x' + c.evm.bytecode.object}, null, 1) + '\n');
