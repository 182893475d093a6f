"""Execution: applies ordered transactions deterministically and reports a result each.

``notary`` executes the ant profile's notary records and configuration updates;
chaincode and EVM executors join it in later issues.
"""
