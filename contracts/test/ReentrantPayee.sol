// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @dev A malicious contract party. It acts in the escrow as itself through `call` (so it can sign off, vote
/// and deposit as its role), and when it is paid ETH, or a token calls it back before moving its tokens
/// (`tokensToSend`, as ERC-777 does), it re-enters the target once with the armed call.
/// In `bubble` mode a failed re-entry reverts the payment; otherwise its outcome is recorded and emitted.
contract ReentrantPayee {
    event Reentered(bool success, bytes returnData);

    address public immutable owner;
    address public reentryTarget;
    bytes public reentryData;
    uint256 public reentryValue;
    bool public bubble;
    bool public armed;
    uint256 public reentries;
    uint256 public received;

    constructor() payable {
        owner = msg.sender;
    }

    function call(address target, bytes calldata data) external payable returns (bytes memory) {
        require(msg.sender == owner, "owner");
        return Address.functionCallWithValue(target, data, msg.value);
    }

    /// @dev Arms one re-entry: the next payment (or token callback) calls `target` with `data` and `value` wei.
    function arm(address target, bytes calldata data, uint256 value, bool bubble_) external {
        require(msg.sender == owner, "owner");
        reentryTarget = target;
        reentryData = data;
        reentryValue = value;
        bubble = bubble_;
        armed = true;
    }

    function disarm() external {
        require(msg.sender == owner, "owner");
        armed = false;
    }

    receive() external payable {
        received += msg.value;
        _reenter();
    }

    /// @dev The ERC-777 sender hook, called by a hooked token before it moves this contract's tokens.
    function tokensToSend(address, address, address, uint256, bytes calldata, bytes calldata) external {
        _reenter();
    }

    function _reenter() private {
        if (!armed) return;
        armed = false;
        ++reentries;
        (bool success, bytes memory returnData) = reentryTarget.call{value: reentryValue}(reentryData);
        if (!success && bubble) {
            assembly ("memory-safe") {
                revert(add(returnData, 0x20), mload(returnData))
            }
        }
        emit Reentered(success, returnData);
    }
}
