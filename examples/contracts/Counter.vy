# pragma version ~=0.4.3
"""
@title Counter: the Vyper example of Consortia's docs
@notice A counter anyone may increment by a positive step; emits an event per change.
"""

event Incremented:
    by: indexed(address)
    step: uint256
    value: uint256

owner: public(address)
value: public(uint256)


@deploy
def __init__(start: uint256):
    self.owner = msg.sender
    self.value = start


@external
def increment(step: uint256) -> uint256:
    assert step > 0, "step must be positive"
    self.value += step
    log Incremented(by=msg.sender, step=step, value=self.value)
    return self.value
