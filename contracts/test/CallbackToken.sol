// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

interface ITokensSender {
    function tokensToSend(
        address operator,
        address from,
        address to,
        uint256 amount,
        bytes calldata userData,
        bytes calldata operatorData
    ) external;
}

/// @dev An ERC-20 with an ERC-777-style sender hook: a holder that registered itself is called back
/// (`tokensToSend`) before its tokens move. Real ERC-777 tokens look the hook up in the ERC-1820 registry;
/// a mapping stands in for it here.
contract CallbackToken is ERC20 {
    mapping(address holder => bool) public hasSenderHook;

    constructor() ERC20("Callback Token", "CBT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function registerSenderHook() external {
        hasSenderHook[msg.sender] = true;
    }

    function _update(address from, address to, uint256 amount) internal override {
        if (from != address(0) && hasSenderHook[from]) {
            ITokensSender(from).tokensToSend(msg.sender, from, to, amount, "", "");
        }
        super._update(from, to, amount);
    }
}
