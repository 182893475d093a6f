"""ERC-20 transfer throughput and latency over Ethereum JSON-RPC, against several nodes.

The workload (issue 5, item 7): compile and deploy ``examples/contracts/Token.sol``, give
tokens to K sender accounts, **pre-sign** N ``transfer`` transactions (eth-account, legacy
EIP-155, before the clock starts), then send them with ``eth_sendRawTransaction`` over HTTP
from C concurrent connections spread over P client processes (``--clients``; one Python
process tops out near 400 requests/s), as clients would. A transaction's latency is from its
submission to the moment the client sees it in a block (blocks followed by polling every
20 ms); throughput is N / (first submission → last inclusion seen). At the end, the
recipients' token balances must add up to N (every transfer executed, none reverted).

Targets: ``--launch NAME`` starts a built-in node (``consortia.sdk.evm.devnodes.LAUNCHERS``:
``hardhat`` with interval mining every 1 s, ``ganache`` instamine, ``ganache-1s``) and
funds the accounts over its RPC, or a Consortia quorum network (``consortia_nodes.py``:
``consortia-1`` one solo validator, ``consortia-4`` four pbft validators), whose accounts
are bound to an organization instead of funded (gas is free there); ``--target NAME=URL``
uses a running node, funded from ``--key KEYFILE`` (password in $CONSORTIA_KEY_PASSWORD).
Ratios are against ``--baseline``.

    .venv/bin/python bench/evm.py --launch hardhat --launch ganache --transfers 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from consortia.sdk import evm
from consortia.sdk.evm.devnodes import LAUNCHERS

sys.path.insert(0, str(Path(__file__).parent))
from common import free_port, free_port_block, pct
from consortia_nodes import LAUNCHERS as CONSORTIA

ROOT = Path(__file__).resolve().parent.parent
TOKEN = ROOT / "examples" / "contracts" / "Token.sol"
TRANSFER_GAS = 60_000
RECIPIENTS = 16
STALL_S = 15.0
"""Stop following blocks when nothing new was included this long after the last send."""


class Launched(Protocol):
    """A node the bench started: a dev node (``DevNode``) or a Consortia network."""

    url: str

    def fund(self, addresses: list[str], wei: int = ...) -> None: ...
    def pid(self) -> int: ...
    def stop(self) -> None: ...


@dataclass
class Target:
    name: str
    url: str
    node: Launched | None  # a launched node (we fund over its RPC and read its memory)


def rpc(http: httpx.Client, url: str, method: str, params: list[Any]) -> Any:
    reply = http.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method,
                                 "params": params}).json()
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def prepare(target: Target, token: evm.Artifact, funder: LocalAccount, senders:
            list[LocalAccount], per_sender: int) -> tuple[str, int, int]:
    """Deploy the token, give every sender ``per_sender`` tokens (and ether on a launched
    node); return the token address, the chain id and the gas price to sign with."""
    with evm.EvmClient(target.url, timeout=60) as chain:
        if target.node is not None:
            target.node.fund([funder.address, *(s.address for s in senders)])
        supply = str(per_sender * len(senders) * 2)
        token_addr = chain.deploy(token, ["Bench Token", "BT", supply], funder).contract_address
        assert token_addr
        gas_price = max(int(chain.w3.eth.gas_price) * 20, 0)
        chain_id = chain.chain_id
        contract = chain.w3.eth.contract(address=token_addr, abi=token.abi)  # type: ignore[arg-type]
        nonce = chain.w3.eth.get_transaction_count(funder.address, "pending")
        raw = []
        for i, s in enumerate(senders):  # token funding: pre-signed, sent in one burst
            tx = contract.functions.transfer(s.address, per_sender).build_transaction(
                {"from": funder.address, "nonce": nonce + i, "gas": TRANSFER_GAS,
                 "gasPrice": gas_price, "chainId": chain_id})
            raw.append(funder.sign_transaction(tx).raw_transaction)
            if target.node is None and gas_price:
                pass  # an external node with a gas price: fund ether too (not needed yet)
        hashes = [chain.w3.eth.send_raw_transaction(r) for r in raw]
        for h in hashes:
            chain.w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.1)
    return token_addr, chain_id, gas_price


def presign(token: evm.Artifact, token_addr: str, chain_id: int, gas_price: int,
            senders: list[LocalAccount], n: int, recipients: list[str]) -> list[str]:
    """N signed transfers, round-robin over the senders (nonces 0, 1, … each)."""
    from web3 import Web3
    contract = Web3().eth.contract(address=token_addr, abi=token.abi)  # type: ignore[arg-type]
    data_by_to = {r: contract.encode_abi("transfer", [r, 1]) for r in recipients}
    out = []
    for i in range(n):
        s = senders[i % len(senders)]
        tx = {"to": token_addr, "data": data_by_to[recipients[i % len(recipients)]],
              "nonce": i // len(senders), "gas": TRANSFER_GAS, "gasPrice": gas_price,
              "chainId": chain_id, "value": 0}
        out.append("0x" + s.sign_transaction(tx).raw_transaction.hex())
    return out


async def _send_all(url: str, raws: list[str], concurrency: int
                    ) -> tuple[dict[str, float], list[str]]:
    """Send ``raws`` from ``concurrency`` connections; (tx hash → send time, errors)."""
    sent_at: dict[str, float] = {}
    errors: list[str] = []
    queue = list(reversed(raws))
    limits = httpx.Limits(max_connections=concurrency + 1)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def sender() -> None:
            while queue:
                raw = queue.pop()
                t = time.perf_counter()
                try:
                    r = (await http.post(url, json={"jsonrpc": "2.0", "id": 1, "method":
                                                    "eth_sendRawTransaction", "params": [raw]})
                         ).json()
                except httpx.HTTPError as exc:  # counted, not fatal: the node is overloaded
                    errors.append(f"{exc.__class__.__name__}")
                    continue
                if "error" in r:
                    errors.append(str(r["error"])[:200])
                else:
                    sent_at[r["result"]] = t

        await asyncio.gather(*(sender() for _ in range(concurrency)))
    return sent_at, errors


def _client_process(url: str, raws: list[str], concurrency: int, go: Any, out: Any) -> None:
    """One client process: wait for the start signal, send, report (perf_counter is
    CLOCK_MONOTONIC, comparable across processes)."""
    go.wait()
    out.put(asyncio.run(_send_all(url, raws, concurrency)))


async def run_load(url: str, raws: list[str], concurrency: int, clients: int
                   ) -> dict[str, Any]:
    """Send from ``clients`` processes (each ``concurrency // clients`` connections; one
    Python client process tops out near 400 requests/s here) while following blocks."""
    seen_at: dict[str, float] = {}
    done_sending = asyncio.Event()
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    # a sender's transactions stay in one process, in nonce order (presign is round-robin)
    slices = [raws[k::clients] for k in range(clients)]
    procs = [ctx.Process(target=_client_process, daemon=True,
                         args=(url, sl, max(1, concurrency // clients), go, out))
             for sl in slices if sl]
    for pr in procs:
        pr.start()
    async with httpx.AsyncClient(timeout=60) as http:
        start_block = int((await http.post(url, json={"jsonrpc": "2.0", "id": 0, "method":
                                                      "eth_blockNumber", "params": []})
                           ).json()["result"], 16)
        sent_at: dict[str, float] = {}

        async def follower() -> None:
            nxt = start_block + 1
            progress_at = time.perf_counter()
            while True:
                head = int((await http.post(url, json={
                    "jsonrpc": "2.0", "id": 0, "method": "eth_blockNumber", "params": []})
                    ).json()["result"], 16)
                if head >= nxt:
                    batch = [{"jsonrpc": "2.0", "id": b, "method": "eth_getBlockByNumber",
                              "params": [hex(b), False]} for b in range(nxt, head + 1)]
                    now = time.perf_counter()
                    for blk in (await http.post(url, json=batch)).json():
                        for h in blk["result"]["transactions"]:
                            seen_at.setdefault(h, now)
                    nxt = head + 1
                    progress_at = now
                if done_sending.is_set() and all(h in seen_at for h in sent_at):
                    return
                if done_sending.is_set() and time.perf_counter() - progress_at > STALL_S:
                    return  # e.g. a nonce gap left by a failed send: report what is missing
                await asyncio.sleep(0.02)

        errors: list[str] = []
        follow = asyncio.create_task(follower())
        t0 = time.perf_counter()
        go.set()
        try:
            for _ in procs:
                got, errs = await asyncio.to_thread(out.get, True, 900)
                sent_at.update(got)
                errors += errs
            t_sent = time.perf_counter()
            done_sending.set()
            await asyncio.wait_for(follow, timeout=600)
        finally:
            follow.cancel()
            for pr in procs:
                pr.join(timeout=10)
    included = [h for h in sent_at if h in seen_at]
    lat = [(seen_at[h] - sent_at[h]) * 1000 for h in included]
    last = max(seen_at[h] for h in included)
    return {"sent": len(sent_at), "rejected": len(errors), "first_errors": errors[:3],
            "not_included": len(sent_at) - len(included),
            "throughput_tx_s": round(len(included) / (last - t0), 1),
            "submit_rate_tx_s": round(len(sent_at) / (t_sent - t0), 1),
            "latency_ms_p50": round(pct(lat, 0.50), 1), "latency_ms_p99": round(pct(lat, 0.99),
                                                                                 1),
            "duration_s": round(last - t0, 2)}


def bench_target(target: Target, token: evm.Artifact, funder: LocalAccount, args:
                 argparse.Namespace) -> dict[str, Any]:
    senders = [Account.create() for _ in range(args.accounts)]
    recipients = [Account.create().address for _ in range(RECIPIENTS)]
    per_sender = args.transfers // args.accounts + 1
    token_addr, chain_id, gas_price = prepare(target, token, funder, senders, per_sender)
    t = time.perf_counter()
    raws = presign(token, token_addr, chain_id, gas_price, senders, args.transfers,
                   recipients)
    presign_s = time.perf_counter() - t
    result = asyncio.run(run_load(target.url, raws, args.concurrency, args.clients))
    with evm.EvmClient(target.url) as chain:  # every transfer executed: balances add up
        c = chain.w3.eth.contract(address=token_addr, abi=token.abi)  # type: ignore[arg-type]
        moved = sum(c.functions.balanceOf(r).call() for r in recipients)
    result.update({"transfers_executed": moved, "presign_s": round(presign_s, 2),
                   "node_peak_rss_mb": peak_rss_mb(target.node.pid()) if target.node else None,
                   "url": target.url})
    if moved != args.transfers:
        result["error"] = f"only {moved} of {args.transfers} transfers executed"
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.
                                RawDescriptionHelpFormatter)
    p.add_argument("--launch", action="append", default=[],
                   choices=sorted({*LAUNCHERS, *CONSORTIA}),
                   help="start a built-in node (repeatable)")
    p.add_argument("--target", action="append", default=[], metavar="NAME=URL",
                   help="a running node's JSON-RPC URL (repeatable)")
    p.add_argument("--key", type=Path, help="funder key file for --target nodes")
    p.add_argument("--transfers", type=int, default=5000)
    p.add_argument("--accounts", type=int, default=50, help="sender accounts K")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP senders")
    p.add_argument("--clients", type=int, default=2,
                   help="client processes the senders are spread over")
    p.add_argument("--baseline", help="target the ratios are against (default: the first)")
    args = p.parse_args()
    if not args.launch and not args.target:
        p.error("give at least one --launch NAME or --target NAME=URL")
    token = evm.compile_file(TOKEN).artifacts[0]
    results: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-evm-"))
    for name in args.launch:
        node: Launched = (CONSORTIA[name](free_port_block(104), workdir) if name in CONSORTIA
                     else LAUNCHERS[name](free_port(), workdir))
        try:
            print(f"== {name} at {node.url}", file=sys.stderr)
            results[name] = bench_target(Target(name, node.url, node), token,
                                         Account.create(), args)
        except Exception as exc:  # one target failing must not lose the others' figures
            results[name] = {"error": f"{exc.__class__.__name__}: {exc}"}
        finally:
            node.stop()
        print(json.dumps({name: results[name]}), file=sys.stderr)
    for spec in args.target:  # a running node (the lead's Consortia targets go here)
        name, _, url = spec.partition("=")
        if args.key is None:
            p.error("--target needs --key (a funded key file)")
        funder = evm.load_key(args.key, os.environ.get(evm.keys.PASSWORD_ENV, ""))
        print(f"== {name} at {url}", file=sys.stderr)
        results[name] = bench_target(Target(name, url, None), token, funder, args)
    ok = {n: r for n, r in results.items() if "throughput_tx_s" in r}
    base = args.baseline or next(iter(ok), "")
    b = ok.get(base, {})
    ratios = {n: {k: round(r[f] / b[f], 2) for k, f in (
        ("throughput", "throughput_tx_s"), ("latency_p50", "latency_ms_p50"),
        ("latency_p99", "latency_ms_p99"))} for n, r in ok.items()} if b else {}
    print(json.dumps({"bench": "evm-erc20-transfer", "transfers": args.transfers,
                      "accounts": args.accounts, "concurrency": args.concurrency,
                      "clients": args.clients,
                      "baseline": base, "targets": results, "ratios": ratios,
                      "date": time.strftime("%Y-%m-%d")}, indent=2))


if __name__ == "__main__":
    main()
