// ethers.js (v6) as a client of the node's Ethereum JSON-RPC; prints what it saw as JSON.
// Usage: node ethers_client.mjs HTTP_URL WS_URL PRIVATE_KEY EMITTER REVERTER PING_TOPIC
import { JsonRpcProvider, WebSocketProvider, Wallet } from "ethers";

const [httpUrl, wsUrl, key, emitter, reverter, pingTopic] = process.argv.slice(2);
const provider = new JsonRpcProvider(httpUrl);
const out = {};

const network = await provider.getNetwork();
out.chainId = network.chainId.toString();
out.blockNumber = await provider.getBlockNumber();
const latest = await provider.getBlock("latest", true);
out.latest = { number: latest.number, hash: latest.hash, parentHash: latest.parentHash,
               txCount: latest.prefetchedTransactions.length, baseFee: String(latest.baseFeePerGas) };
const genesis = await provider.getBlock(0);
out.genesisHash = genesis.hash;
const wallet = new Wallet(key, provider);
out.balance = (await provider.getBalance(wallet.address)).toString();
const logs = await provider.getLogs({ address: emitter, topics: [pingTopic], fromBlock: 0,
                                      toBlock: "latest" });
out.logs = logs.map((l) => ({ block: l.blockNumber, data: l.data, index: l.index,
                              tx: l.transactionHash }));

// A transaction as a dapp sends it: nonce, chain id, gas estimate and fee data from the node.
const sent = await wallet.sendTransaction({ to: emitter, value: 5n, data: "0x1234" });
const receipt = await sent.wait(1, 20000);
out.sent = { hash: sent.hash, type: sent.type, status: receipt.status,
             block: receipt.blockNumber, logs: receipt.logs.length };
const fetched = await provider.getTransaction(sent.hash);
out.fetched = { from: fetched.from, to: fetched.to, value: fetched.value.toString(),
                data: fetched.data };

try {
  await provider.call({ to: reverter, data: "0x" });
  out.revert = "no error";
} catch (err) {
  out.revert = { code: err.code, reason: err.reason };
}
try {
  await wallet.sendTransaction({ to: emitter, value: 1n, nonce: 0, gasLimit: 50000 });
  out.stale = "no error";
} catch (err) {
  out.stale = { code: err.code };
}

// Subscriptions over the WebSocket: newHeads ("block") and logs (a filter).
const ws = new WebSocketProvider(wsUrl);
const seen = { block: null, log: null };
const both = new Promise((resolve) => {
  const check = () => { if (seen.block !== null && seen.log !== null) resolve(); };
  ws.on("block", (n) => { seen.block ??= n; check(); });
  ws.on({ address: emitter, topics: [pingTopic] }, (log) => {
    seen.log ??= { block: log.blockNumber, data: log.data }; check();
  });
});
let ticks = 0;
const nudger = setInterval(() => {  // keep committing blocks until both subscriptions fired
  ticks += 1;
  wallet.sendTransaction({ to: emitter, value: 7n, data: "0xbeef" }).catch(() => {});
}, 300);
const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("no events")), 20000));
await Promise.race([both, timeout]);
clearInterval(nudger);
out.subscriptions = seen;
await ws.destroy();
provider.destroy();
console.log(JSON.stringify(out));
process.exit(0);
