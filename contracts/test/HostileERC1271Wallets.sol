// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev Test-only contract wallets that answer ERC-1271 `isValidSignature` in every way but the right one: a
/// relayed batch must skip each of them as an invalid signature and still apply the honest items beside it.
/// Each accepts ETH, so it can be a paid party.

/// @dev Reverts with a reason string.
contract RevertingERC1271Wallet {
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        revert("wallet says no");
    }

    receive() external payable {}
}

/// @dev Answers a fixed word instead of the magic value: 0 for "false", or any wrong value.
contract WrongMagicERC1271Wallet {
    bytes32 private immutable _answer;

    constructor(bytes32 answer) {
        _answer = answer;
    }

    function isValidSignature(bytes32, bytes calldata) external view returns (bytes32) {
        return _answer;
    }

    receive() external payable {}
}

/// @dev Burns every unit of gas it is given.
contract GasBurningERC1271Wallet {
    function isValidSignature(bytes32, bytes calldata) external pure returns (bytes4) {
        assembly {
            for {} 1 {} {}
        }
        return 0x1626ba7e;
    }

    receive() external payable {}
}

/// @dev Answers the magic value in an answer of `size` bytes: with a huge size, a return-data bomb for a caller
/// that copies it all (1 MB costs the caller millions of gas in memory); with fewer than 32, a short answer that
/// is not a valid ABI `bytes4`.
contract SizedAnswerERC1271Wallet {
    uint256 private immutable _size;

    constructor(uint256 size) {
        _size = size;
    }

    function isValidSignature(bytes32, bytes calldata) external view returns (bytes4) {
        uint256 size = _size;
        assembly {
            mstore(0x00, shl(224, 0x1626ba7e))
            return(0x00, size)
        }
    }

    receive() external payable {}
}
