// Hardhat's node as Consortia's tests and bench/evm.py start it (consortia.sdk.evm.devnodes):
// interval mining (CONSORTIA_HARDHAT_INTERVAL_MS, default 1000 ms; 0 = automine), the
// chain id from CONSORTIA_HARDHAT_CHAIN_ID. Accounts are funded over JSON-RPC after start
// (hardhat_setBalance), so no private key passes through the environment.
"use strict";
const interval = Number(process.env.CONSORTIA_HARDHAT_INTERVAL_MS ?? "1000");
module.exports = {
  networks: {
    hardhat: {
      chainId: Number(process.env.CONSORTIA_HARDHAT_CHAIN_ID ?? "31337"),
      mining: interval > 0 ? { auto: false, interval } : { auto: true },
      hardfork: "shanghai",
      accounts: { count: 1 },
    },
  },
};
