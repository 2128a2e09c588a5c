// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @dev An ERC-20 that, once told to fail, returns false from `transfer` and `transferFrom` instead of
/// reverting, and moves nothing (as some old tokens do). Until then it behaves as a plain ERC-20.
contract FalseReturnToken is ERC20 {
    bool public failing;

    constructor() ERC20("False Return Token", "FRT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setFailing(bool failing_) external {
        failing = failing_;
    }

    function transfer(address to, uint256 amount) public override returns (bool) {
        if (failing) return false;
        return super.transfer(to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        if (failing) return false;
        return super.transferFrom(from, to, amount);
    }
}
