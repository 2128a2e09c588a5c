// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @dev A case's cold state: what the hot word (`CaseState`) has no room for and no sign-off needs. Read
/// after the release by `expire` (overdue stages), and by amendments: how many were proposed, which one
/// applied last (the head of the terms' hash chain), and up to six moved deadlines. The template numbers its
/// deadlines 1 to 6 (`StageRuleWord.deadlineSlot`, `longStopSlot`); a moved one is kept here as an absolute
/// time, 0 while it has not moved. One word, so that the consent that moves a deadline writes nothing new.
///
/// bits        field
/// [0, 16)     overdueStages    1 bit per stage: deadline missed after the release
/// [16, 32)    amendmentCount   amendments proposed; their ids run from 1
/// [32, 48)    lastApplied      the id of the amendment that made the current terms version (0: none)
/// [48, 240)   deadlines        slot k (1 to 6) at 48 + 32 (k - 1): the moved deadline, 0 if unmoved
type CaseExtraState is uint256;

using CaseExtraStateLib for CaseExtraState global;

library CaseExtraStateLib {
    uint256 private constant MASK_16 = 0xFFFF;
    uint256 private constant MASK_32 = 0xFFFFFFFF;

    uint256 private constant OVERDUE = 0;
    uint256 private constant AMENDMENT_COUNT = 16;
    uint256 private constant LAST_APPLIED = 32;
    uint256 private constant DEADLINES = 48;

    /// @dev The most deadlines of a template that amendments can move.
    uint256 internal constant DEADLINE_SLOTS = 6;

    function overdueStages(CaseExtraState s) internal pure returns (uint256) {
        return (CaseExtraState.unwrap(s) >> OVERDUE) & MASK_16;
    }

    function amendmentCount(CaseExtraState s) internal pure returns (uint256) {
        return (CaseExtraState.unwrap(s) >> AMENDMENT_COUNT) & MASK_16;
    }

    function lastApplied(CaseExtraState s) internal pure returns (uint256) {
        return (CaseExtraState.unwrap(s) >> LAST_APPLIED) & MASK_16;
    }

    /// @dev The moved deadline in `slot`, 0 if it has not moved (or `slot` is 0: a deadline with no slot).
    function movedDeadline(CaseExtraState s, uint256 slot) internal pure returns (uint256) {
        if (slot == 0) return 0;
        return (CaseExtraState.unwrap(s) >> (DEADLINES + (slot - 1) * 32)) & MASK_32;
    }

    function withOverdueStages(CaseExtraState s, uint256 value) internal pure returns (CaseExtraState) {
        return _set(s, OVERDUE, MASK_16, value);
    }

    function withAmendmentCount(CaseExtraState s, uint256 value) internal pure returns (CaseExtraState) {
        return _set(s, AMENDMENT_COUNT, MASK_16, value);
    }

    function withLastApplied(CaseExtraState s, uint256 value) internal pure returns (CaseExtraState) {
        return _set(s, LAST_APPLIED, MASK_16, value);
    }

    function withMovedDeadline(CaseExtraState s, uint256 slot, uint256 time) internal pure returns (CaseExtraState) {
        return _set(s, DEADLINES + (slot - 1) * 32, MASK_32, time);
    }

    function _set(CaseExtraState s, uint256 offset, uint256 mask, uint256 value) private pure returns (CaseExtraState) {
        return CaseExtraState.wrap((CaseExtraState.unwrap(s) & ~(mask << offset)) | ((value & mask) << offset));
    }
}
