// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IMortgageEscrow as I} from "./IMortgageEscrow.sol";
import {MortgageEscrowStorage} from "./MortgageEscrowStorage.sol";
import {SignatureVerifier} from "./SignatureVerifier.sol";
import {CaseState, CaseStateLib} from "./libraries/CaseState.sol";
import {StageRuleWord, StageRuleWordLib} from "./libraries/StageRuleWord.sol";
import {AmendmentWord, AmendmentWordLib} from "./libraries/AmendmentWord.sol";
import {CaseExtraState, CaseExtraStateLib} from "./libraries/CaseExtraState.sol";

/// @title MortgageEscrowModule
/// @notice The part of {MortgageEscrow} that runs by DELEGATECALL on the escrow's own storage (see
/// {MortgageEscrowStorage}): registering templates, and amendments (proposing one, relaying signed consents,
/// withdrawing a consent, and applying a change of terms or of a party). The escrow deploys it in its
/// constructor and forwards those calls to it; each function is documented in {IMortgageEscrow}.
/// @dev Called directly, it runs on its own empty storage and changes nothing of any case. Where an amendment
/// lets stages complete, it asks the escrow to run its completion code (`COMPLETE_SELECTOR`, which the escrow
/// accepts only from itself), so that the cascade and the release exist once.
contract MortgageEscrowModule is MortgageEscrowStorage, EIP712, ReentrancyGuardTransient, SignatureVerifier {
    /// @dev `_consentRefusal`'s answer when nothing stands in the way of a consent.
    uint256 private constant NO_REFUSAL = type(uint256).max;

    constructor() EIP712("MortgageEscrow", "1") {}

    /// @notice Applies a fully consented change of terms or of a party, for the escrow's direct consent (which
    /// has recorded the consents and holds the re-entrancy guard).
    function applyAmendment(uint256 caseId, uint32 amendment) external {
        Case storage c = _cases[caseId];
        _applyAmendment(caseId, c, c.state, amendment, _amendments[caseId][amendment].word.withApplied());
    }

    /// @dev Completes `candidates` (and the cascade) with the escrow's own code, by a call to itself.
    function _completeInEscrow(uint256 caseId, uint256 candidates) private {
        bytes memory data = abi.encodeWithSelector(COMPLETE_SELECTOR, caseId, candidates);
        assembly ("memory-safe") {
            if iszero(call(gas(), address(), 0, add(data, 0x20), mload(data), 0, 0)) {
                returndatacopy(0, 0, returndatasize())
                revert(0, returndatasize())
            }
        }
    }

    /// @notice `IMortgageEscrow.registerTemplate`; the escrow checks the caller is its admin.
    function registerTemplate(
        bytes32 definitionHash,
        I.StageRule[] calldata stages,
        I.AmendmentRules calldata amendments
    ) external returns (bytes32 templateId) {
        templateId = keccak256(abi.encode(definitionHash, stages, amendments));
        if (_templates[templateId].stageCount != 0) return templateId;

        uint256 count = stages.length;
        if (count == 0 || count > STAGE_LIMIT) revert I.MortgageEscrowInvalidStageCount(count, STAGE_LIMIT);
        _checkAmendmentRules(stages, amendments);
        uint16 index = ++_templateCount;
        (uint64 requiredRoles, uint16 bindingStages, uint16 fundingStages) = _storeRules(index, stages);
        _templates[templateId] = Template(
            index,
            uint8(count),
            bindingStages,
            fundingStages,
            requiredRoles,
            amendments.deadlineConsent,
            amendments.termsConsent,
            amendments.partyConsent,
            amendments.reopenedByTerms
        );
        _templateIds[index] = templateId;
        emit I.TemplateRegistered(templateId, definitionHash, index, uint8(count));
    }

    /// @dev Checks the stages and writes their rule words, with what registration derives from the whole list:
    /// clocks, dependents, and the deadlines' numbers.
    function _storeRules(
        uint16 index,
        I.StageRule[] calldata stages
    ) private returns (uint64 requiredRoles, uint16 bindingStages, uint16 fundingStages) {
        (uint8[STAGE_LIMIT] memory completionClock, uint8[STAGE_LIMIT] memory unlockClock) = _assignClocks(stages);
        uint256 count = stages.length;
        uint256[STAGE_LIMIT] memory dependents;
        uint256[STAGE_LIMIT] memory waitingDependents;
        for (uint256 i; i < count; ++i) {
            for (uint256 p; p < i; ++p) {
                if (stages[i].prerequisites & (1 << p) == 0) continue;
                dependents[p] |= 1 << i;
                if (stages[i].waitSeconds != 0) waitingDependents[p] |= 1 << i;
            }
        }
        uint256 deadlineSlots;
        for (uint256 i; i < count; ++i) {
            I.StageRule calldata s = stages[i];
            uint256 anchorClock = s.deadlineAnchor == 0 ? 0 : completionClock[s.deadlineAnchor - 1];
            // Deadlines are numbered in stage order, each stage's own before its long-stop; past the sixth
            // they get none, and cannot be moved.
            uint256 slots = deadlineSlots < CaseExtraStateLib.DEADLINE_SLOTS && s.deadlineSeconds != 0
                ? ++deadlineSlots
                : 0;
            if (s.longStopSeconds != 0 && deadlineSlots < CaseExtraStateLib.DEADLINE_SLOTS) {
                slots |= ++deadlineSlots << 8;
            }
            _rules[index][i] = StageRuleWordLib.create(
                s,
                anchorClock,
                completionClock[i],
                unlockClock[i],
                waitingDependents[i],
                dependents[i],
                slots & 0xFF,
                slots >> 8
            );
            requiredRoles |= uint64(uint256(s.roles) << (i * ROLE_COUNT));
            if (s.binding) bindingStages |= uint16(1 << i);
            if (s.action != I.Action.None) fundingStages |= uint16(1 << i);
        }
    }

    /// @dev Checks every rule and numbers, from 1, the times that later rules need: the completion time of
    /// each deadline anchor, and the unlock time (its last prerequisite's completion) of each stage that waits.
    function _assignClocks(
        I.StageRule[] calldata stages
    ) private pure returns (uint8[STAGE_LIMIT] memory completionClock, uint8[STAGE_LIMIT] memory unlockClock) {
        uint256 count = stages.length;
        uint256 releases;
        uint256 releaseStage;
        uint256 anchors;
        for (uint256 i; i < count; ++i) {
            I.StageRule calldata s = stages[i];
            if (s.roles > ALL_ROLES) revert I.MortgageEscrowInvalidStageRule(i, "unknown role");
            // Prerequisites come earlier in the list: no cycles, and one forward pass completes a cascade.
            if (uint256(s.prerequisites) >> i != 0) revert I.MortgageEscrowInvalidStageRule(i, "prerequisite not earlier");
            if (s.roles == 0 && s.prerequisites == 0) revert I.MortgageEscrowInvalidStageRule(i, "nothing to wait for");
            if (s.deadlineAnchor > i) revert I.MortgageEscrowInvalidStageRule(i, "anchor not earlier");
            if (s.deadlineAnchor != 0 && s.deadlineSeconds == 0) {
                revert I.MortgageEscrowInvalidStageRule(i, "anchor without deadline");
            }
            if (s.action == I.Action.Release) (releases, releaseStage) = (releases + 1, i);
            if (s.deadlineAnchor != 0) anchors |= 1 << (s.deadlineAnchor - 1);
        }
        if (releases != 1) revert I.MortgageEscrowInvalidReleaseStageCount(releases);
        // A deadline counted from the opening runs from the start, so a case that is not released can always
        // be expired: nothing can hold its deposits for ever.
        I.StageRule calldata release = stages[releaseStage];
        if (release.longStopSeconds == 0 && (release.deadlineSeconds == 0 || release.deadlineAnchor != 0)) {
            revert I.MortgageEscrowNoLongStop(releaseStage);
        }
        uint8 clocks;
        for (uint256 i; i < count; ++i) {
            if (anchors & (1 << i) != 0) completionClock[i] = ++clocks;
            // A stage that waits from the opening (no prerequisites) needs no clock: openedAt is its start.
            if (stages[i].waitSeconds != 0 && stages[i].prerequisites != 0) unlockClock[i] = ++clocks;
        }
        if (clocks > CLOCK_LIMIT) revert I.MortgageEscrowTooManyClockStages(clocks, CLOCK_LIMIT);
    }

    /// @dev Each kind needs someone's consent, of known roles; a terms amendment may re-open only stages that
    /// exist, that someone signs (so that they can complete again), and that neither move money nor bind.
    function _checkAmendmentRules(I.StageRule[] calldata stages, I.AmendmentRules calldata rules) private pure {
        for (uint256 k; k < 3; ++k) {
            uint256 mask = k == 0 ? rules.deadlineConsent : k == 1 ? rules.termsConsent : rules.partyConsent;
            if (mask == 0 || mask > ALL_ROLES) revert I.MortgageEscrowInvalidAmendmentRules("consent roles");
        }
        uint256 reopen = rules.reopenedByTerms;
        if (reopen >> stages.length != 0) revert I.MortgageEscrowInvalidAmendmentRules("reopened stage unknown");
        for (uint256 i; reopen >> i != 0; ++i) {
            if (reopen & (1 << i) == 0) continue;
            I.StageRule calldata s = stages[i];
            if (s.roles == 0 || s.binding || s.action != I.Action.None) {
                revert I.MortgageEscrowInvalidAmendmentRules("stage cannot reopen");
            }
        }
    }

    /// @notice `IMortgageEscrow.proposeAmendment`.
    function proposeAmendment(
        uint256 caseId,
        I.Role role,
        I.AmendmentProposal calldata p
    ) external nonReentrant returns (uint32 amendment) {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        _requireParty(caseId, c, role, msg.sender);
        if (p.expiresAt <= _now()) revert I.MortgageEscrowInvalidAmendment(caseId, "expiry not in the future");
        CaseExtraState extras = _extras[caseId];
        uint256 id = extras.amendmentCount() + 1;
        if (id > type(uint16).max) revert I.MortgageEscrowTooManyAmendments(caseId);
        amendment = uint32(id);

        Template memory t = _templates[_templateIds[state.templateIndex()]];
        AmendmentRecord storage r = _amendments[caseId][id];
        AmendmentWord a = AmendmentWordLib.create(p.kind, state.termsVersion(), p.expiresAt);
        uint256 required;
        if (p.kind == I.AmendmentKind.Deadline) {
            if (p.price != 0 || p.deposit != 0 || p.loan != 0 || p.party != I.Role.Bank || p.account != address(0)) {
                revert I.MortgageEscrowInvalidAmendment(caseId, "unused field set");
            }
            (a, required) = _proposedDeadline(caseId, c, state, p, a);
            required |= t.deadlineConsent;
        } else if (p.kind == I.AmendmentKind.Terms) {
            if (p.stage != 0 || p.longStop || p.deadline != 0 || p.party != I.Role.Bank || p.account != address(0)) {
                revert I.MortgageEscrowInvalidAmendment(caseId, "unused field set");
            }
            if (state.released()) revert I.MortgageEscrowAlreadyReleased(caseId);
            if (uint256(p.price) > uint256(p.deposit) + p.loan) {
                revert I.MortgageEscrowPriceExceedsShares(p.price, p.deposit, p.loan);
            }
            (uint256 price, uint256 deposit, uint256 loan) = (c.price, c.deposit, c.loan);
            // No one's money moves away without its consent: the bank pays a larger loan, the seller is paid a
            // smaller price, and the buyer pays a larger deposit or, in the end, a larger price less the loan.
            if (p.loan > loan) required |= 1 << uint8(I.Role.Bank);
            if (p.price < price) required |= 1 << uint8(I.Role.Seller);
            if (p.deposit > deposit || uint256(p.price) + loan > price + p.loan) required |= 1 << uint8(I.Role.Buyer);
            required |= t.termsConsent;
            a = a.withPrice(p.price);
            r.shares = uint256(p.deposit) | (uint256(p.loan) << 96);
        } else {
            if (p.stage != 0 || p.longStop || p.deadline != 0 || p.price != 0 || p.deposit != 0 || p.loan != 0) {
                revert I.MortgageEscrowInvalidAmendment(caseId, "unused field set");
            }
            if (p.account == address(0)) revert I.MortgageEscrowZeroParty(p.party);
            if (p.account == _partyOf(c, p.party)) revert I.MortgageEscrowInvalidAmendment(caseId, "already the party");
            // No one is replaced without its own consent.
            required = (1 << uint8(p.party)) | t.partyConsent;
            a = a.withParty(p.party, p.account);
        }
        uint256 own = 1 << uint8(role);
        a = a.withRequired(required).withConsents(required & own);
        r.word = a;
        r.replacedTermsHash = _termsHash(caseId, c, state, extras);
        _extras[caseId] = extras.withAmendmentCount(id);
        emit I.AmendmentProposed(caseId, amendment, role, uint16(state.termsVersion()), uint8(required), p);
        if (required & own != 0) {
            emit I.AmendmentConsented(caseId, amendment, role);
            if (required == own) _applyAmendment(caseId, c, state, amendment, a.withApplied());
        }
    }

    /// @dev Checks a Deadline proposal, and returns it with its content and the roles it must have (the buyer's,
    /// for a move earlier before the release).
    function _proposedDeadline(
        uint256 caseId,
        Case storage c,
        CaseState state,
        I.AmendmentProposal calldata p,
        AmendmentWord a
    ) private view returns (AmendmentWord, uint256 required) {
        if (p.stage >= state.stageCount()) revert I.MortgageEscrowUnknownStage(caseId, p.stage);
        if (state.isCompleted(p.stage)) revert I.MortgageEscrowStageAlreadyCompleted(caseId, p.stage);
        if (p.deadline == 0) revert I.MortgageEscrowInvalidAmendment(caseId, "zero deadline");
        StageRuleWord rule = _rules[state.templateIndex()][p.stage];
        uint256 slot = p.longStop ? rule.longStopSlot() : rule.deadlineSlot();
        if (slot == 0) revert I.MortgageEscrowInvalidAmendment(caseId, "no movable deadline");
        CaseExtraState extras = _extras[caseId];
        (bool running, uint256 current) = p.longStop
            ? _longStopOf(state, rule, extras)
            : _ownDeadlineOf(caseId, c, state, rule, extras);
        if (!state.released() && (!running || p.deadline < current)) required = 1 << uint8(I.Role.Buyer);
        return (a.withDeadline(p.stage, p.longStop, p.deadline, slot), required);
    }

    /// @notice `IMortgageEscrow.consentToAmendmentsWithSignatures`.
    function consentToAmendmentsWithSignatures(I.SignedConsent[] calldata items) external nonReentrant {
        for (uint256 i; i < items.length; ++i) {
            I.SignedConsent calldata item = items[i];
            (uint256 caseId, uint32 amendment, I.Role role) = (item.caseId, item.amendment, item.role);
            Case storage c = _cases[caseId];
            CaseState state = c.state;
            AmendmentRecord storage r = _amendments[caseId][amendment];
            AmendmentWord a = r.word;
            uint256 refusal = _consentRefusal(state, a, role);
            if (refusal == NO_REFUSAL) {
                if (item.epoch != a.epochOf(uint8(role))) {
                    refusal = uint256(I.ConsentSkipReason.StaleEpoch);
                } else {
                    bytes32 digest = _consentDigest(caseId, amendment, a.kind(), a.version(), role, item.epoch);
                    if (_isValidSignature(_partyOf(c, role), digest, item.signature)) {
                        _recordConsent(caseId, c, state, r, amendment, a, role);
                        continue;
                    }
                    refusal = uint256(I.ConsentSkipReason.InvalidSignature);
                }
            }
            emit I.AmendmentConsentSkipped(caseId, amendment, role, i, I.ConsentSkipReason(refusal));
        }
    }

    /// @notice `IMortgageEscrow.withdrawAmendmentConsent`.
    function withdrawAmendmentConsent(uint256 caseId, uint32 amendment, I.Role role) external nonReentrant {
        Case storage c = _cases[caseId];
        _requireOpen(caseId, c);
        _requireParty(caseId, c, role, msg.sender);
        AmendmentRecord storage r = _amendments[caseId][amendment];
        AmendmentWord a = r.word;
        if (!a.proposed()) {
            revert I.MortgageEscrowConsentRefused(caseId, amendment, role, I.ConsentSkipReason.UnknownAmendment);
        }
        if (a.applied()) revert I.MortgageEscrowConsentRefused(caseId, amendment, role, I.ConsentSkipReason.AlreadyApplied);
        uint256 bit = 1 << uint8(role);
        if (a.consents() & bit == 0) revert I.MortgageEscrowNotConsented(caseId, amendment, role);
        uint256 epoch = a.epochOf(uint8(role)) + 1;
        if (epoch > 0xF) revert I.MortgageEscrowTooManyWithdrawals(caseId, amendment, role);
        r.word = a.withConsents(a.consents() & ~bit).withEpoch(uint8(role), epoch);
        emit I.AmendmentConsentWithdrawn(caseId, amendment, role, uint8(epoch));
    }

    /// @dev Why a consent of `role` cannot count now, as a `ConsentSkipReason`; `NO_REFUSAL` if it can (the
    /// epoch and the signature of a relayed one aside).
    function _consentRefusal(CaseState state, AmendmentWord a, I.Role role) private view returns (uint256) {
        if (state.status() != I.CaseStatus.Open) return uint256(I.ConsentSkipReason.CaseNotOpen);
        if (!a.proposed()) return uint256(I.ConsentSkipReason.UnknownAmendment);
        if (a.applied()) return uint256(I.ConsentSkipReason.AlreadyApplied);
        if (a.version() != state.termsVersion()) return uint256(I.ConsentSkipReason.Superseded);
        if (_now() > a.expiresAt()) return uint256(I.ConsentSkipReason.Expired);
        if (a.kind() == I.AmendmentKind.Terms && state.released()) return uint256(I.ConsentSkipReason.AlreadyReleased);
        uint256 bit = 1 << uint8(role);
        if (a.required() & bit == 0) return uint256(I.ConsentSkipReason.RoleNotRequired);
        if (a.consents() & bit != 0) return uint256(I.ConsentSkipReason.AlreadyConsented);
        return NO_REFUSAL;
    }

    function _recordConsent(
        uint256 caseId,
        Case storage c,
        CaseState state,
        AmendmentRecord storage r,
        uint32 amendment,
        AmendmentWord a,
        I.Role role
    ) private {
        uint256 consents = a.consents() | (1 << uint8(role));
        a = a.withConsents(consents);
        emit I.AmendmentConsented(caseId, amendment, role);
        if (consents != a.required()) {
            r.word = a;
            return;
        }
        _applyAmendment(caseId, c, state, amendment, a.withApplied());
    }

    /// @dev Applies a fully consented amendment (`a`, already marked applied): raises the terms version, which
    /// supersedes every other proposal, and makes the change.
    function _applyAmendment(uint256 caseId, Case storage c, CaseState state, uint32 amendment, AmendmentWord a) private {
        AmendmentRecord storage r = _amendments[caseId][amendment];
        r.word = a;
        uint256 version = state.termsVersion() + 1;
        state = state.withTermsVersion(version);
        CaseExtraState extras = _extras[caseId].withLastApplied(amendment);
        emit I.AmendmentApplied(caseId, amendment, uint16(version), r.replacedTermsHash);
        I.AmendmentKind kind = a.kind();
        if (kind == I.AmendmentKind.Deadline) {
            _extras[caseId] = extras.withMovedDeadline(a.deadlineSlot(), a.deadline());
            c.state = state;
            // Only the moved deadline changed: its stage is the one that may now be able to complete.
            uint8 stage = a.stage();
            if (!state.isCompleted(stage) && state.isFullySigned(stage)) _completeInEscrow(caseId, 1 << stage);
        } else if (kind == I.AmendmentKind.Party) {
            _extras[caseId] = extras;
            c.state = state;
            I.Role party = a.party();
            address previous = _partyOf(c, party);
            address account = a.account();
            if (party == I.Role.Bank) c.bank = account;
            else if (party == I.Role.Lawyer) c.lawyer = account;
            else if (party == I.Role.Buyer) c.buyer = account;
            else c.seller = account;
            emit I.PartyReplaced(caseId, party, previous, account);
        } else {
            _extras[caseId] = extras;
            _applyTerms(caseId, c, state, a.price(), r.shares);
        }
    }

    /// @dev A terms change: re-opens the template's stages for it, sets the amounts, credits each payer what it
    /// has paid beyond its new share, and marks the escrow funded or not by the new shares (completing the
    /// funding stages that were waiting, if it is now funded).
    function _applyTerms(uint256 caseId, Case storage c, CaseState state, uint256 price, uint256 shares) private {
        state = _reopenStages(caseId, state);
        uint256 deposit = uint96(shares);
        uint256 loan = shares >> 96;
        c.price = uint96(price);
        c.deposit = uint96(deposit);
        c.loan = uint96(loan);
        Funding memory f = _funding[caseId];
        if (f.paidByBank > loan) {
            _credit(caseId, c.bank, f.paidByBank - loan);
            f.paidByBank = uint128(loan);
        }
        if (f.paidByBuyer > deposit) {
            _credit(caseId, c.buyer, f.paidByBuyer - deposit);
            f.paidByBuyer = uint128(deposit);
        }
        _funding[caseId] = f;
        bool funded = f.paidByBank == loan && f.paidByBuyer == deposit;
        if (funded == state.funded()) {
            c.state = state;
            return;
        }
        if (!funded) {
            c.state = state.withoutFunded();
            emit I.EscrowNoLongerFunded(caseId);
            return;
        }
        state = state.withFunded();
        c.state = state;
        emit I.EscrowFunded(caseId);
        uint256 fundingStages = _templates[_templateIds[state.templateIndex()]].fundingStages;
        _completeInEscrow(caseId, state.fullySignedStages() & ~state.completedStages() & fundingStages);
    }

    /// @dev Re-opens each stage of the template's `reopenedByTerms` that has completed while no stage after it
    /// has: its sign-offs are cleared and its roles' epochs raised, so that no earlier signature signs it again.
    function _reopenStages(uint256 caseId, CaseState state) private returns (CaseState) {
        uint256 index = state.templateIndex();
        uint256 completed = state.completedStages();
        uint256 reopen = _templates[_templateIds[index]].reopenedByTerms & completed;
        for (uint256 s; reopen >> s != 0; ++s) {
            if (reopen & (1 << s) == 0) continue;
            StageRuleWord rule = _rules[index][s];
            if (rule.dependents() & completed != 0) continue;
            completed &= ~(1 << s);
            uint256 roles = rule.roles();
            state = state
                .withCompletedStages(completed)
                .withSignedOffRoles(state.signedOffRoles() & ~(roles << (s * ROLE_COUNT)))
                .withEverRevoked();
            for (uint256 role; role < ROLE_COUNT; ++role) {
                if (roles & (1 << role) != 0) _bumpEpoch(caseId, uint8(s), I.Role(role));
            }
            emit I.StageReopened(caseId, uint8(s));
        }
        return state;
    }

    /// @dev The hash of the case's current terms version (see `AmendmentApplied`).
    function _termsHash(uint256 caseId, Case storage c, CaseState state, CaseExtraState extras) private view returns (bytes32) {
        if (state.termsVersion() == 0) {
            I.CaseTerms memory terms = I.CaseTerms(
                _templateIds[state.templateIndex()],
                c.bank,
                c.lawyer,
                c.buyer,
                c.seller,
                _assets[caseId],
                c.price,
                c.deposit,
                c.loan
            );
            return keccak256(abi.encode(caseId, terms));
        }
        uint256 last = extras.lastApplied();
        AmendmentRecord storage r = _amendments[caseId][last];
        return keccak256(abi.encode(r.replacedTermsHash, caseId, uint32(last), r.word.toProposal(r.shares)));
    }


    function _consentDigest(
        uint256 caseId,
        uint32 amendment,
        I.AmendmentKind kind,
        uint256 version,
        I.Role role,
        uint256 epoch
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, caseId, amendment, kind, version, role, epoch)));
    }

    /// @dev The contract's clock; a test harness may override it.
    function _now() internal view virtual returns (uint256) {
        return block.timestamp;
    }

    function _requireExists(uint256 caseId, Case storage c) private view returns (CaseState state) {
        state = c.state;
        if (state.status() == I.CaseStatus.None) revert I.MortgageEscrowUnknownCase(caseId);
    }

    /// @dev The one status guard: the case must exist and be open.
    function _requireOpen(uint256 caseId, Case storage c) private view returns (CaseState state) {
        state = _requireExists(caseId, c);
        I.CaseStatus status = state.status();
        if (status != I.CaseStatus.Open) {
            revert I.MortgageEscrowUnexpectedCaseStatus(caseId, status, 1 << uint8(I.CaseStatus.Open));
        }
    }

    /// @dev A kept time (see `MortgageEscrow._clock`): clock 1 in the hot word, 2-4 after the lawyer's address
    /// in the case's third slot, 5-12 in the extra word.
    function _clock(uint256 caseId, Case storage c, CaseState state, uint256 clock) internal view override returns (uint256) {
        if (clock == 1) return state.clock1();
        (uint256 word, uint256 shift) = clock <= CLOCKS_IN_CASE
            ? (_lawyerSlot(c), 160 + (clock - 2) * 32)
            : (_extraClocks[caseId], (clock - CLOCKS_IN_CASE - 1) * 32);
        return uint32(word >> shift);
    }

    function _lawyerSlot(Case storage c) private view returns (uint256 word) {
        assembly ("memory-safe") {
            word := sload(add(c.slot, 2))
        }
    }

    function _epochOf(uint256 caseId, uint8 stage, I.Role role) private view returns (uint8) {
        return uint8(_epochs[caseId][stage / 8] >> _epochShift(stage, role));
    }

    function _bumpEpoch(uint256 caseId, uint8 stage, I.Role role) private returns (uint8 epoch) {
        epoch = _epochOf(caseId, stage, role);
        if (epoch == type(uint8).max) revert I.MortgageEscrowTooManyRevocations(caseId, stage, role);
        ++epoch;
        uint256 shift = _epochShift(stage, role);
        uint256 word = _epochs[caseId][stage / 8];
        _epochs[caseId][stage / 8] = (word & ~(uint256(0xFF) << shift)) | (uint256(epoch) << shift);
    }

    function _epochShift(uint8 stage, I.Role role) private pure returns (uint256) {
        return ((uint256(stage) % 8) * ROLE_COUNT + uint8(role)) * 8;
    }

    function _credit(uint256 caseId, address payee, uint256 amount) private {
        _credits[caseId][payee] += amount;
        emit I.Credited(caseId, payee, amount);
    }
}
