"""Ethereum contract tooling: compile, deploy, call, send (ADR 0023, docs/contracts.md).

::

    from consortia.sdk import evm
    token = evm.compile_file(Path("Token.sol")).artifacts[0]      # solc-js from npm
    account = evm.load_key(Path("key.json"), password)             # encrypted keystore
    with evm.EvmClient("http://127.0.0.1:8545") as chain:           # any Ethereum JSON-RPC
        deployed = chain.deploy(token, ["Token", "TOK", "1000"], account)
        chain.send(deployed.contract_address, token.abi, "transfer", [to, "10"], account)
        chain.call(deployed.contract_address, token.abi, "balanceOf", [to])
        chain.deploy(token, [...], account, private_for=[org2_key])  # a private tx (quorum)

Modules: ``tools`` (the pinned npm tool set and its installer), ``compiler`` (Solidity and
Vyper), ``artifact`` (the JSON artifact), ``keys`` (key files), ``abi`` (text to ABI values),
``client`` (JSON-RPC with web3.py), ``devnodes`` (Hardhat's node and ganache as children).
"""

from consortia.sdk.evm._errors import (
    BadArgument,
    CompileError,
    Diagnostic,
    EvmError,
    KeyFileError,
    RpcError,
    ToolError,
    TransactionReverted,
)
from consortia.sdk.evm.artifact import Artifact, load_abi
from consortia.sdk.evm.client import DecodedLog, EvmClient, Outcome, private_keys
from consortia.sdk.evm.compiler import DEFAULT_EVM_VERSION, Compiled, compile_file
from consortia.sdk.evm.keys import (
    KeyFile,
    accounts_dir,
    import_key,
    list_keys,
    load_key,
    new_key,
    read_password,
    resolve_key,
)
from consortia.sdk.evm.tools import Tools, ensure_tools

__all__ = [
    "DEFAULT_EVM_VERSION", "Artifact", "BadArgument", "CompileError", "Compiled",
    "DecodedLog", "Diagnostic", "EvmClient", "EvmError", "KeyFile", "KeyFileError",
    "Outcome", "RpcError", "ToolError", "Tools", "TransactionReverted", "accounts_dir",
    "compile_file", "ensure_tools", "import_key", "list_keys", "load_abi", "load_key",
    "new_key", "private_keys", "read_password", "resolve_key",
]
