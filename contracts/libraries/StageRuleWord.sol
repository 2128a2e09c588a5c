// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMortgageEscrow} from "../IMortgageEscrow.sol";

/// @dev One stage of a registered template, packed into one word so that completing a stage reads one slot.
/// Besides the registered rule it holds what registration derived from the whole template: the stage's own
/// clock (where its completion time is kept, because a later deadline counts from it), its deadline anchor's
/// clock, its unlock clock (when its last prerequisite completed: the start of its waiting time), its waiting
/// dependents (whose unlock time its completion may set) and its dependents (where a cascade goes next).
/// Clocks are numbered from 1; 0 means none.
///
/// bits        field
/// [0, 4)      roles
/// [4, 20)     prerequisites
/// [20, 52)    waitSeconds
/// [52, 84)    deadlineSeconds
/// [84, 89)    deadlineAnchor   0: the opening; k + 1: stage k
/// [89, 93)    anchorClock
/// [93, 95)    action
/// 95          binding
/// [96, 100)   clock
/// [100, 104)  unlockClock
/// [104, 120)  waitingDependents  1 bit per stage: dependents that have a waiting time
/// [120, 136)  dependents       1 bit per stage
/// [136, 168)  longStopSeconds  a second deadline counted from the opening (0: none)
/// [168, 171)  deadlineSlot     where an amendment keeps this stage's moved deadline (CaseExtraState), 1-6; 0: none
/// [171, 174)  longStopSlot     the same for its long-stop
type StageRuleWord is uint256;

using StageRuleWordLib for StageRuleWord global;

library StageRuleWordLib {
    function create(
        IMortgageEscrow.StageRule calldata rule,
        uint256 anchorClock_,
        uint256 clock_,
        uint256 unlockClock_,
        uint256 waitingDependents_,
        uint256 dependents_,
        uint256 deadlineSlot_,
        uint256 longStopSlot_
    ) internal pure returns (StageRuleWord) {
        return StageRuleWord.wrap(
            uint256(rule.roles) |
                (uint256(rule.prerequisites) << 4) |
                (uint256(rule.waitSeconds) << 20) |
                (uint256(rule.deadlineSeconds) << 52) |
                (uint256(rule.deadlineAnchor) << 84) |
                (anchorClock_ << 89) |
                (uint256(rule.action) << 93) |
                (uint256(rule.binding ? 1 : 0) << 95) |
                (clock_ << 96) |
                (unlockClock_ << 100) |
                (waitingDependents_ << 104) |
                (dependents_ << 120) |
                (uint256(rule.longStopSeconds) << 136) |
                (deadlineSlot_ << 168) |
                (longStopSlot_ << 171)
        );
    }

    function roles(StageRuleWord r) internal pure returns (uint8) {
        return uint8(StageRuleWord.unwrap(r) & 0xF);
    }

    function prerequisites(StageRuleWord r) internal pure returns (uint16) {
        return uint16(StageRuleWord.unwrap(r) >> 4);
    }

    function waitSeconds(StageRuleWord r) internal pure returns (uint32) {
        return uint32(StageRuleWord.unwrap(r) >> 20);
    }

    function deadlineSeconds(StageRuleWord r) internal pure returns (uint32) {
        return uint32(StageRuleWord.unwrap(r) >> 52);
    }

    function deadlineAnchor(StageRuleWord r) internal pure returns (uint8) {
        return uint8((StageRuleWord.unwrap(r) >> 84) & 0x1F);
    }

    function anchorClock(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 89) & 0xF;
    }

    function action(StageRuleWord r) internal pure returns (IMortgageEscrow.Action) {
        return IMortgageEscrow.Action((StageRuleWord.unwrap(r) >> 93) & 0x3);
    }

    function binding(StageRuleWord r) internal pure returns (bool) {
        return (StageRuleWord.unwrap(r) >> 95) & 1 != 0;
    }

    function clock(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 96) & 0xF;
    }

    function unlockClock(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 100) & 0xF;
    }

    function waitingDependents(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 104) & 0xFFFF;
    }

    function dependents(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 120) & 0xFFFF;
    }

    function longStopSeconds(StageRuleWord r) internal pure returns (uint32) {
        return uint32(StageRuleWord.unwrap(r) >> 136);
    }

    function deadlineSlot(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 168) & 0x7;
    }

    function longStopSlot(StageRuleWord r) internal pure returns (uint256) {
        return (StageRuleWord.unwrap(r) >> 171) & 0x7;
    }

    function toStageRule(StageRuleWord r) internal pure returns (IMortgageEscrow.StageRule memory) {
        return IMortgageEscrow.StageRule(
            r.roles(),
            r.prerequisites(),
            r.waitSeconds(),
            r.deadlineSeconds(),
            r.deadlineAnchor(),
            r.action(),
            r.binding(),
            r.longStopSeconds()
        );
    }
}
