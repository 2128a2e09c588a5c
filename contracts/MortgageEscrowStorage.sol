// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMortgageEscrow as I} from "./IMortgageEscrow.sol";
import {CaseState} from "./libraries/CaseState.sol";
import {StageRuleWord} from "./libraries/StageRuleWord.sol";
import {AmendmentWord} from "./libraries/AmendmentWord.sol";
import {CaseExtraState} from "./libraries/CaseExtraState.sol";

/// @title MortgageEscrowStorage
/// @notice The escrow's state, in one place, for the two contracts that run on it: `MortgageEscrow` and the
/// module it delegates its rarer functions to (`MortgageEscrowModule`: registering templates, proposing,
/// relaying and withdrawing amendment consents). Both list this contract first among their bases, so that its
/// variables take the same slots in both, and the module, called by DELEGATECALL, reads and writes the escrow's.
/// @dev Why a module: with amendments the escrow's code would pass the 24,576 bytes a chain accepts (EIP-170).
/// The hot paths (sign-offs, completion, deposits, the direct consent that moves a deadline) stay in the escrow.
abstract contract MortgageEscrowStorage {
    /// @dev The contract's limits: stages per template, times kept per case.
    uint256 internal constant STAGE_LIMIT = 16;
    uint256 internal constant CLOCK_LIMIT = 12;
    uint256 internal constant ROLE_COUNT = 4;
    uint256 internal constant ALL_ROLES = 0xF;
    uint256 internal constant CLOCKS_IN_CASE = 4;
    /// @dev The largest time a packed 32-bit field holds (early 2106).
    uint256 internal constant MAX_TIME = type(uint32).max;
    /// @dev The selector by which the module asks the escrow, calling itself, to complete stages.
    bytes4 internal constant COMPLETE_SELECTOR = bytes4(keccak256("completeReadyStages(uint256,uint256)"));
    bytes32 internal constant CONSENT_TYPEHASH =
        keccak256("Consent(uint256 caseId,uint32 amendment,uint8 kind,uint16 version,uint8 role,uint8 epoch)");

    /// @dev One slot: looked up by id when a case opens.
    struct Template {
        uint16 index;
        uint8 stageCount;
        uint16 bindingStages;
        /// @dev The stages that wait for the escrow to be funded (RequireFunding and Release).
        uint16 fundingStages;
        uint64 requiredRoles;
        uint8 deadlineConsent;
        uint8 termsConsent;
        uint8 partyConsent;
        uint16 reopenedByTerms;
    }

    /// @dev Five slots, all written when the case opens. Clocks 2-4 ride in the lawyer's slot.
    struct Case {
        CaseState state;
        address bank;
        uint96 loan;
        address lawyer;
        uint32 clock2;
        uint32 clock3;
        uint32 clock4;
        address buyer;
        uint96 deposit;
        address seller;
        uint96 price;
    }

    struct Funding {
        uint128 paidByBank;
        uint128 paidByBuyer;
    }

    /// @dev One amendment: the packed record, a terms change's two shares (deposit, then loan, 96 bits each) and
    /// the hash of the terms version it amends, all written when it is proposed.
    struct AmendmentRecord {
        AmendmentWord word;
        uint256 shares;
        bytes32 replacedTermsHash;
    }

    bool internal _paused;
    uint64 internal _caseCount;
    uint16 internal _templateCount;

    mapping(bytes32 templateId => Template) internal _templates;
    mapping(uint256 templateIndex => bytes32) internal _templateIds;
    mapping(uint256 templateIndex => mapping(uint256 stage => StageRuleWord)) internal _rules;

    mapping(uint256 caseId => Case) internal _cases;
    mapping(uint256 caseId => address) internal _assets;
    mapping(uint256 caseId => Funding) internal _funding;
    /// @dev Completion times of clocks 5-12, eight 32-bit times to the slot.
    mapping(uint256 caseId => uint256) internal _extraClocks;
    /// @dev 8-bit revocation counters, one per (stage, role); stages 0-7 in word 0, 8-15 in word 1.
    mapping(uint256 caseId => mapping(uint256 word => uint256)) internal _epochs;
    mapping(uint256 caseId => mapping(address payee => uint256)) internal _credits;
    mapping(uint256 caseId => CaseExtraState) internal _extras;
    mapping(uint256 caseId => mapping(uint256 amendment => AmendmentRecord)) internal _amendments;

    // --------------------------------------------- reads both contracts make of the state

    /// @dev The time kept in clock `clock` of the case (1 lives in `state`). Each contract reads the others
    /// its own way: the escrow by field, the module (which must stay under EIP-170 too) from the raw slot.
    function _clock(uint256 caseId, Case storage c, CaseState state, uint256 clock) internal view virtual returns (uint256);

    function _partyOf(Case storage c, I.Role role) internal view returns (address) {
        if (role == I.Role.Bank) return c.bank;
        if (role == I.Role.Lawyer) return c.lawyer;
        if (role == I.Role.Buyer) return c.buyer;
        return c.seller;
    }

    function _requireParty(uint256 caseId, Case storage c, I.Role role, address account) internal view {
        if (_partyOf(c, role) != account) revert I.MortgageEscrowUnauthorizedParty(caseId, account, role);
    }

    /// @dev A stage's long-stop (it has one): moved, or counted from the opening.
    function _longStopOf(
        CaseState state,
        StageRuleWord rule,
        CaseExtraState extras
    ) internal pure returns (bool, uint256) {
        uint256 moved = extras.movedDeadline(rule.longStopSlot());
        return (true, moved != 0 ? moved : state.openedAt() + rule.longStopSeconds());
    }

    /// @dev A stage's own deadline (it has one): moved (an agreed time, running from then on), or counted from
    /// its anchor once the anchor has happened.
    function _ownDeadlineOf(
        uint256 caseId,
        Case storage c,
        CaseState state,
        StageRuleWord rule,
        CaseExtraState extras
    ) internal view returns (bool, uint256) {
        uint256 moved = extras.movedDeadline(rule.deadlineSlot());
        if (moved != 0) return (true, moved);
        uint256 anchor = rule.deadlineAnchor();
        if (anchor == 0) return (true, state.openedAt() + rule.deadlineSeconds());
        if (!state.isCompleted(anchor - 1)) return (false, 0);
        return (true, _clock(caseId, c, state, rule.anchorClock()) + rule.deadlineSeconds());
    }
}
