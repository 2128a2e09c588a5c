// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMortgageEscrow} from "../IMortgageEscrow.sol";

/// @dev A case's hot state, packed by hand into the one slot that every sign-off reads and writes (as Uniswap
/// v4 packs `Slot0`): a sign-off then costs one cold read and one write of it, whatever it touches.
///
/// bits       field
/// [0, 64)    requiredRoles    4 bits per stage: the roles that must sign off stage s, at bit 4s + role
/// [64, 128)  signedOffRoles   4 bits per stage: the roles that have signed off
/// [128, 144) completedStages  1 bit per stage
/// [144, 160) termsVersion     raised by each amendment that applies (overdue stages are in CaseExtraState)
/// [160, 176) templateIndex
/// [176, 208) openedAt         seconds since the epoch
/// [208, 213) stageCount       1 to 16
/// [213, 216) status           IMortgageEscrow.CaseStatus
/// 216        released
/// 217        funded           both shares are in the escrow in full
/// [218, 222) cancelVotes      1 bit per role
/// [222, 254) clock 1          completion time of the template's first clock stage
/// 254        tokenAsset       the case holds an ERC-20, not ETH
/// 255        everRevoked      a sign-off of the case has been revoked: until then every epoch is 0
type CaseState is uint256;

using CaseStateLib for CaseState global;

library CaseStateLib {
    uint256 private constant MASK_16 = 0xFFFF;
    uint256 private constant MASK_32 = 0xFFFFFFFF;
    uint256 private constant MASK_64 = 0xFFFFFFFFFFFFFFFF;

    uint256 private constant SIGNED_OFF = 64;
    uint256 private constant COMPLETED = 128;
    uint256 private constant TERMS_VERSION = 144;
    uint256 private constant TEMPLATE_INDEX = 160;
    uint256 private constant OPENED_AT = 176;
    uint256 private constant STAGE_COUNT = 208;
    uint256 private constant STATUS = 213;
    uint256 private constant RELEASED = 216;
    uint256 private constant FUNDED = 217;
    uint256 private constant CANCEL_VOTES = 218;
    uint256 private constant CLOCK_1 = 222;
    uint256 private constant TOKEN_ASSET = 254;
    uint256 private constant EVER_REVOKED = 255;

    function create(
        uint64 requiredRoles_,
        uint256 templateIndex_,
        uint256 openedAt_,
        uint256 stageCount_,
        bool funded_,
        bool tokenAsset_
    ) internal pure returns (CaseState) {
        return CaseState.wrap(
            uint256(requiredRoles_) |
                (templateIndex_ << TEMPLATE_INDEX) |
                (openedAt_ << OPENED_AT) |
                (stageCount_ << STAGE_COUNT) |
                (uint256(IMortgageEscrow.CaseStatus.Open) << STATUS) |
                (_bit(funded_) << FUNDED) |
                (_bit(tokenAsset_) << TOKEN_ASSET)
        );
    }

    function requiredRoles(CaseState s) internal pure returns (uint256) {
        return CaseState.unwrap(s) & MASK_64;
    }

    function signedOffRoles(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> SIGNED_OFF) & MASK_64;
    }

    function completedStages(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> COMPLETED) & MASK_16;
    }

    function termsVersion(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> TERMS_VERSION) & MASK_16;
    }

    function templateIndex(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> TEMPLATE_INDEX) & MASK_16;
    }

    function openedAt(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> OPENED_AT) & MASK_32;
    }

    function stageCount(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> STAGE_COUNT) & 0x1F;
    }

    function status(CaseState s) internal pure returns (IMortgageEscrow.CaseStatus) {
        return IMortgageEscrow.CaseStatus((CaseState.unwrap(s) >> STATUS) & 0x7);
    }

    function released(CaseState s) internal pure returns (bool) {
        return (CaseState.unwrap(s) >> RELEASED) & 1 != 0;
    }

    function funded(CaseState s) internal pure returns (bool) {
        return (CaseState.unwrap(s) >> FUNDED) & 1 != 0;
    }

    function cancelVotes(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> CANCEL_VOTES) & 0xF;
    }

    function clock1(CaseState s) internal pure returns (uint256) {
        return (CaseState.unwrap(s) >> CLOCK_1) & MASK_32;
    }

    function tokenAsset(CaseState s) internal pure returns (bool) {
        return (CaseState.unwrap(s) >> TOKEN_ASSET) & 1 != 0;
    }

    function everRevoked(CaseState s) internal pure returns (bool) {
        return (CaseState.unwrap(s) >> EVER_REVOKED) & 1 != 0;
    }

    /// @dev Whether every role that `stage` requires has signed it off.
    function isFullySigned(CaseState s, uint256 stage) internal pure returns (bool) {
        uint256 word = CaseState.unwrap(s);
        uint256 shift = stage * 4;
        return ((word >> shift) & ~(word >> (SIGNED_OFF + shift)) & 0xF) == 0;
    }

    /// @dev The stages whose required roles have all signed off, as a stage mask, computed for all 16 at once:
    /// mark each stage's nibble of missing roles that is not zero, then gather bit 4s of each nibble to bit s.
    function fullySignedStages(CaseState s) internal pure returns (uint256) {
        uint256 word = CaseState.unwrap(s);
        uint256 missing = word & ~(word >> SIGNED_OFF) & MASK_64;
        missing |= missing >> 1;
        missing |= missing >> 2;
        missing &= 0x1111111111111111;
        missing = (missing | (missing >> 3)) & 0x0303030303030303;
        missing = (missing | (missing >> 6)) & 0x000F000F000F000F;
        missing = (missing | (missing >> 12)) & 0x000000FF000000FF;
        missing = (missing | (missing >> 24)) & MASK_16;
        return ~missing & ((1 << ((word >> STAGE_COUNT) & 0x1F)) - 1);
    }

    function isCompleted(CaseState s, uint256 stage) internal pure returns (bool) {
        return (CaseState.unwrap(s) >> (COMPLETED + stage)) & 1 != 0;
    }

    function withSignedOffRoles(CaseState s, uint256 value) internal pure returns (CaseState) {
        return _set(s, SIGNED_OFF, MASK_64, value);
    }

    function withCompletedStages(CaseState s, uint256 value) internal pure returns (CaseState) {
        return _set(s, COMPLETED, MASK_16, value);
    }

    function withTermsVersion(CaseState s, uint256 value) internal pure returns (CaseState) {
        return _set(s, TERMS_VERSION, MASK_16, value);
    }

    function withStatus(CaseState s, IMortgageEscrow.CaseStatus value) internal pure returns (CaseState) {
        return _set(s, STATUS, 0x7, uint256(value));
    }

    function withReleased(CaseState s) internal pure returns (CaseState) {
        return CaseState.wrap(CaseState.unwrap(s) | (1 << RELEASED));
    }

    function withFunded(CaseState s) internal pure returns (CaseState) {
        return CaseState.wrap(CaseState.unwrap(s) | (1 << FUNDED));
    }

    /// @dev A terms amendment grew a share beyond what its payer has paid.
    function withoutFunded(CaseState s) internal pure returns (CaseState) {
        return CaseState.wrap(CaseState.unwrap(s) & ~uint256(1 << FUNDED));
    }

    function withEverRevoked(CaseState s) internal pure returns (CaseState) {
        return CaseState.wrap(CaseState.unwrap(s) | (1 << EVER_REVOKED));
    }

    function withCancelVotes(CaseState s, uint256 value) internal pure returns (CaseState) {
        return _set(s, CANCEL_VOTES, 0xF, value);
    }

    function withClock1(CaseState s, uint256 value) internal pure returns (CaseState) {
        return _set(s, CLOCK_1, MASK_32, value);
    }

    function _set(CaseState s, uint256 offset, uint256 mask, uint256 value) private pure returns (CaseState) {
        return CaseState.wrap((CaseState.unwrap(s) & ~(mask << offset)) | ((value & mask) << offset));
    }

    function _bit(bool value) private pure returns (uint256 bit) {
        assembly ("memory-safe") {
            bit := value
        }
    }
}
