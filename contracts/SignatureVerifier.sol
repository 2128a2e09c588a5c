// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title SignatureVerifier
/// @notice Checks that a signature is a party's, as an EOA (ECDSA) or a contract wallet (ERC-1271), without
/// letting a hostile wallet spend more than a fixed amount of the caller's gas or memory: a batch of relayed
/// sign-offs skips such an item instead of failing for everyone in it.
/// @dev Kept apart from the escrow (as EAS keeps its EIP1271Verifier) so that the bounded call is read and
/// tested on its own. OpenZeppelin's `SignatureChecker.isValidERC1271SignatureNow` forwards all the gas left
/// and copies all the return data, so one wallet that burns gas or returns a huge blob sinks the transaction.
abstract contract SignatureVerifier {
    /// @dev The gas an ERC-1271 wallet is given to answer `isValidSignature`. Not a public getter: every
    /// selector more in the dispatcher costs each sign-off gas, and a relayer budgets by eth_estimateGas. Enough for a Safe with several owners. A Safe answers through four nested calls (proxy ->
    /// DELEGATECALL singleton -> CALL fallback handler -> calls back for the domain separator and for
    /// `checkSignatures`), with cold reads of the singleton, handler, threshold and each owner's slot, and an
    /// ecrecover per owner. A wallet of that shape (contracts/test/SafeLikeWallet.sol) needs about 15,000 gas
    /// plus 7,300 per owner signature, measured with the 1/64 that each nested call keeps back: 88,000 for ten
    /// owners. 150,000 leaves ten owners a margin of 40% and verifies up to about eighteen; it is also the most
    /// a hostile wallet can burn per relayed item (a batch of fifty such items stays under 8 million gas).
    uint256 internal constant ERC1271_GAS_STIPEND = 150_000;

    /// @dev `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`, the ERC-1271 selector and magic value.
    bytes4 private constant ERC1271_MAGIC_VALUE = 0x1626ba7e;

    /// @dev ECDSA first: for an EOA that settles it with no EXTCODESIZE or call. Only when recovery does not
    /// give `signer` and `signer` has code is it asked as an ERC-1271 wallet. A wrong ECDSA signature from an
    /// EOA is then a plain `false`, and so is anything a wallet does except answering the magic value.
    function _isValidSignature(address signer, bytes32 digest, bytes calldata signature) internal view returns (bool) {
        if (signature.length == 65) {
            // Read straight from calldata: r, s, then v in the last byte (OpenZeppelin's layout).
            (address recovered, ECDSA.RecoverError err, ) = ECDSA.tryRecover(
                digest,
                uint8(signature[64]),
                bytes32(signature[0:32]),
                bytes32(signature[32:64])
            );
            if (err == ECDSA.RecoverError.NoError && recovered == signer) return true;
        }
        if (signer.code.length == 0) return false;
        return _isValidERC1271Signature(signer, digest, signature);
    }

    /// @dev `isValidSignature(digest, signature)` by STATICCALL with `ERC1271_GAS_STIPEND` gas, of whose answer
    /// only the first 32 bytes are copied (into the scratch space): the wallet pays for whatever else it
    /// returns, the caller does not. Valid only if the call succeeded, returned at least 32 bytes, and the first
    /// word is exactly the magic value (left-aligned, the rest zero, as `bytes4` is ABI-encoded).
    function _isValidERC1271Signature(
        address signer,
        bytes32 digest,
        bytes calldata signature
    ) private view returns (bool valid) {
        bytes4 magic = ERC1271_MAGIC_VALUE;
        uint256 stipend = ERC1271_GAS_STIPEND;
        assembly ("memory-safe") {
            // The call data is built past the free memory pointer, which is not moved: nothing else uses it.
            let ptr := mload(0x40)
            mstore(ptr, magic)
            mstore(add(ptr, 0x04), digest)
            mstore(add(ptr, 0x24), 0x40)
            mstore(add(ptr, 0x44), signature.length)
            // Zero the word that holds the signature's last bytes first, so that the ABI padding is clean.
            mstore(add(add(ptr, 0x64), and(signature.length, not(0x1f))), 0)
            calldatacopy(add(ptr, 0x64), signature.offset, signature.length)
            let padded := and(add(signature.length, 0x1f), not(0x1f))
            let success := staticcall(stipend, signer, ptr, add(0x64, padded), 0x00, 0x20)
            valid := and(success, and(gt(returndatasize(), 0x1f), eq(mload(0x00), magic)))
        }
    }
}
