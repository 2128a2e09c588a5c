// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev Test-only: a multi-owner wallet with the shape and costs of a Safe (1.3/1.4) answering ERC-1271, to
/// measure the gas stipend the escrow gives a wallet against (the Safe's own code is not a dependency here).
/// The call goes as a Safe's does: proxy -> DELEGATECALL to the singleton -> its fallback CALLs the fallback
/// handler (the original caller appended) -> the handler hashes the message with the Safe's domain separator
/// (a call back) and calls back `checkSignatures`, which reads the threshold and, per signature, ecrecovers
/// and reads the owner's slot (cold), owners in ascending order as a Safe requires.

/// @dev The wallet's storage, shared by the proxy and the singleton it delegates to.
abstract contract SafeLikeStorage {
    address internal _singleton;
    address internal _fallbackHandler;
    uint256 internal _threshold;
    mapping(address owner => address next) internal _owners;
}

contract SafeLikeProxy is SafeLikeStorage {
    constructor(address singleton) {
        _singleton = singleton;
    }

    fallback() external payable {
        address singleton = _singleton;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let success := delegatecall(gas(), singleton, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(success) {
                revert(0, returndatasize())
            }
            return(0, returndatasize())
        }
    }
}

contract SafeLikeSingleton is SafeLikeStorage {
    bytes32 private constant DOMAIN_SEPARATOR_TYPEHASH = keccak256("EIP712Domain(uint256 chainId,address verifyingContract)");

    /// @dev Owners must be given in ascending order; the proxy calls this once, as a Safe's `setup`.
    function setup(address[] calldata owners, uint256 threshold, address fallbackHandler) external {
        require(_threshold == 0, "already set up");
        for (uint256 i; i < owners.length; ++i) _owners[owners[i]] = address(1);
        _threshold = threshold;
        _fallbackHandler = fallbackHandler;
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_SEPARATOR_TYPEHASH, block.chainid, address(this)));
    }

    function checkSignatures(bytes32 dataHash, bytes calldata signatures) external view {
        uint256 threshold = _threshold;
        require(threshold != 0 && signatures.length >= threshold * 65, "signatures too short");
        address last;
        for (uint256 i; i < threshold; ++i) {
            bytes32 r = bytes32(signatures[i * 65:i * 65 + 32]);
            bytes32 s = bytes32(signatures[i * 65 + 32:i * 65 + 64]);
            uint8 v = uint8(signatures[i * 65 + 64]);
            address owner = ecrecover(dataHash, v, r, s);
            require(owner > last && _owners[owner] != address(0), "invalid owner");
            last = owner;
        }
    }

    fallback() external {
        address handler = _fallbackHandler;
        assembly {
            calldatacopy(0, 0, calldatasize())
            mstore(calldatasize(), shl(96, caller()))
            let success := call(gas(), handler, 0, 0, add(calldatasize(), 20), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(success) {
                revert(0, returndatasize())
            }
            return(0, returndatasize())
        }
    }
}

interface ISafeLike {
    function domainSeparator() external view returns (bytes32);

    function checkSignatures(bytes32 dataHash, bytes calldata signatures) external view;
}

contract SafeLikeFallbackHandler {
    bytes32 private constant SAFE_MSG_TYPEHASH = keccak256("SafeMessage(bytes message)");

    /// @dev The message hash the owners sign for `hash` in the wallet `safe`.
    function messageHash(address safe, bytes32 hash) public view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(SAFE_MSG_TYPEHASH, keccak256(abi.encode(hash))));
        return keccak256(abi.encodePacked(bytes1(0x19), bytes1(0x01), ISafeLike(safe).domainSeparator(), structHash));
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        ISafeLike safe = ISafeLike(msg.sender);
        safe.checkSignatures(messageHash(msg.sender, hash), signature);
        return 0x1626ba7e;
    }
}
