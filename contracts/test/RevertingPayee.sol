// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @dev A contract party (for example the seller) that rejects ETH until its owner lets it accept again.
/// It acts in the escrow as itself through `call`, so it can sign off and vote as its role.
contract RevertingPayee {
    error RevertingPayeeRejected(uint256 value);

    address public immutable owner;
    bool public accepting;

    constructor() {
        owner = msg.sender;
    }

    function call(address target, bytes calldata data) external payable returns (bytes memory) {
        require(msg.sender == owner, "owner");
        return Address.functionCallWithValue(target, data, msg.value);
    }

    function setAccepting(bool accepting_) external {
        require(msg.sender == owner, "owner");
        accepting = accepting_;
    }

    receive() external payable {
        if (!accepting) revert RevertingPayeeRejected(msg.value);
    }
}
