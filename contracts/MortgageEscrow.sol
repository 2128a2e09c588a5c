// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IMortgageEscrow} from "./IMortgageEscrow.sol";
import {SignatureVerifier} from "./SignatureVerifier.sol";
import {MortgageEscrowStorage} from "./MortgageEscrowStorage.sol";
import {MortgageEscrowModule} from "./MortgageEscrowModule.sol";
import {CaseState, CaseStateLib} from "./libraries/CaseState.sol";
import {StageRuleWord, StageRuleWordLib} from "./libraries/StageRuleWord.sol";
import {AmendmentWord, AmendmentWordLib} from "./libraries/AmendmentWord.sol";
import {CaseExtraState, CaseExtraStateLib} from "./libraries/CaseExtraState.sol";

/// @title MortgageEscrow
/// @notice See {IMortgageEscrow}. One registry for every case.
/// @dev Gas layout. A case's hot state (which roles each stage needs, who signed, what completed, its status)
/// is one hand-packed word (`CaseState`), so a sign-off that completes nothing costs two cold reads (that word
/// and the signer's party slot), one write and one log. Each party slot packs the party's address with the
/// amount it stands for; the lawyer's slot and the hot word hold the first four completion times that the
/// template needs, so completing a stage writes no new slot. A stage's rule is one word (`StageRuleWord`).
/// Re-entrancy. Every function that changes a case is `nonReentrant` (a transient-storage guard, about 200
/// gas): a deposit calls the token, and a token with transfer hooks must not be able to end the case (cancel,
/// expire, complete) in the middle of the deposit that the function is still accounting for.
/// Size. Registering templates and most of amendments run in `MortgageEscrowModule`, deployed by the
/// constructor and called by DELEGATECALL on this contract's storage (`MortgageEscrowStorage`), so that the
/// code stays within EIP-170's 24,576 bytes; the direct consent, which moves a deadline, stays here for its gas.
contract MortgageEscrow is
    MortgageEscrowStorage,
    IMortgageEscrow,
    AccessControl,
    EIP712,
    ReentrancyGuardTransient,
    SignatureVerifier
{
    using SafeERC20 for IERC20;

    /// @notice The most stages a template may have: one per bit of a 16-bit stage mask.
    uint256 public constant MAX_STAGES = 16;
    /// @notice The most times a template may need kept per case: the completion time of each deadline anchor and
    /// the unlock time of each stage that waits after prerequisites (4 kept in the case's own slots,
    /// 8 more in a slot of their own that the first of them pays for).
    uint256 public constant MAX_CLOCKS = 12;

    bytes32 private constant SIGN_OFF_TYPEHASH =
        keccak256("SignOff(uint256 caseId,uint8 stage,uint8 role,uint8 epoch,bytes32 evidence)");
    bytes32 private constant REVOKE_TYPEHASH =
        keccak256("RevokeSignOff(uint256 caseId,uint8 stage,uint8 role,uint8 epoch)");
    /// @dev `_consentRefusal`'s answer when nothing stands in the way of a consent.
    uint256 private constant NO_REFUSAL = type(uint256).max;

    /// @dev Where the rarer functions run, on this contract's storage (see {MortgageEscrowModule}).
    address private immutable _module;

    constructor(address admin) EIP712("MortgageEscrow", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _module = address(new MortgageEscrowModule());
    }

    /// @dev Only the module's way back in: it completes stages with this contract's completion code.
    fallback() external {
        if (msg.sender != address(this) || msg.sig != COMPLETE_SELECTOR) revert();
        (uint256 caseId, uint256 candidates) = abi.decode(msg.data[4:], (uint256, uint256));
        Case storage c = _cases[caseId];
        _completeReadyStages(caseId, c, c.state, candidates);
    }

    /// @dev Runs the call as it came (selector and arguments) in the module, and returns or reverts as it did.
    function _delegateToModule() private {
        address module = _module;
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, 0, calldatasize())
            let ok := delegatecall(gas(), module, ptr, calldatasize(), 0, 0)
            returndatacopy(ptr, 0, returndatasize())
            if iszero(ok) {
                revert(ptr, returndatasize())
            }
            return(ptr, returndatasize())
        }
    }

    // ------------------------------------------------------------ templates

    /// @inheritdoc IMortgageEscrow
    function registerTemplate(
        bytes32,
        StageRule[] calldata,
        AmendmentRules calldata
    ) external onlyRole(DEFAULT_ADMIN_ROLE) returns (bytes32) {
        _delegateToModule();
    }

    // ---------------------------------------------------------------- cases

    /// @inheritdoc IMortgageEscrow
    function openCase(CaseTerms calldata termsData) external returns (uint256 caseId) {
        if (_paused) revert MortgageEscrowPaused();
        CaseTerms memory terms = termsData; // decoded and validated once, not at every use
        if (msg.sender != terms.bank && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert MortgageEscrowUnauthorizedOpener(msg.sender);
        }
        Template memory t = _templates[terms.templateId];
        if (t.stageCount == 0) revert MortgageEscrowUnknownTemplate(terms.templateId);
        if (terms.bank == address(0)) revert MortgageEscrowZeroParty(Role.Bank);
        if (terms.lawyer == address(0)) revert MortgageEscrowZeroParty(Role.Lawyer);
        if (terms.buyer == address(0)) revert MortgageEscrowZeroParty(Role.Buyer);
        if (terms.seller == address(0)) revert MortgageEscrowZeroParty(Role.Seller);
        if (uint256(terms.price) > uint256(terms.deposit) + terms.loan) {
            revert MortgageEscrowPriceExceedsShares(terms.price, terms.deposit, terms.loan);
        }

        uint256 now_ = _now();
        if (now_ > MAX_TIME) revert MortgageEscrowTimeOverflow(now_, MAX_TIME);

        caseId = ++_caseCount;
        Case storage c = _cases[caseId];
        c.state = CaseStateLib.create(
            t.requiredRoles,
            t.index,
            now_,
            t.stageCount,
            terms.deposit == 0 && terms.loan == 0,
            terms.asset != address(0)
        );
        c.bank = terms.bank;
        c.loan = terms.loan;
        c.lawyer = terms.lawyer;
        c.buyer = terms.buyer;
        c.deposit = terms.deposit;
        c.seller = terms.seller;
        c.price = terms.price;
        if (terms.asset != address(0)) _assets[caseId] = terms.asset;
        emit CaseOpened(caseId, terms);
    }

    // ------------------------------------------------------------ sign-offs

    /// @inheritdoc IMortgageEscrow
    function signOff(uint256 caseId, uint8 stage, Role role, bytes32 evidence) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        _requireParty(caseId, c, role, msg.sender);
        uint256 bit = _requiredRoleBit(caseId, state, stage, role);
        if (state.signedOffRoles() & bit != 0) revert MortgageEscrowAlreadySignedOff(caseId, stage, role);
        _recordSignOff(caseId, c, state, stage, role, bit, evidence);
    }

    /// @inheritdoc IMortgageEscrow
    function signOffWithSignatures(SignedSignOff[] calldata items) external nonReentrant {
        for (uint256 i; i < items.length; ++i) {
            SignedSignOff calldata item = items[i];
            (uint256 caseId, uint8 stage, Role role, uint8 epoch) = (item.caseId, item.stage, item.role, item.epoch);
            Case storage c = _cases[caseId];
            CaseState state = c.state;
            // A batch races other relayers and the parties themselves: what changed meanwhile is skipped.
            // A bad item (a wallet that refuses, a role the stage does not need) is skipped, never fatal, so
            // that no one item can hold back the honest ones relayed with it.
            SkipReason reason;
            // The bit as `_requiredRoleBit` computes it, without its revert (written out: a shared helper is
            // not inlined, and costs every direct sign-off gas).
            uint256 bit = stage < MAX_STAGES ? 1 << (uint256(stage) * ROLE_COUNT + uint8(role)) : 0;
            if (state.status() != CaseStatus.Open) reason = SkipReason.CaseNotOpen;
            else if (state.requiredRoles() & bit == 0) reason = SkipReason.RoleNotRequired;
            else if (state.signedOffRoles() & bit != 0) reason = SkipReason.AlreadySignedOff;
            // Until the case's first revocation every epoch is 0, so the counters need no reading.
            else if (epoch != (state.everRevoked() ? _epochOf(caseId, stage, role) : 0)) reason = SkipReason.StaleEpoch;
            else {
                bytes32 evidence = item.evidence;
                bytes32 digest = _signOffDigest(caseId, stage, role, epoch, evidence);
                if (_isValidSignature(_partyOf(c, role), digest, item.signature)) {
                    _recordSignOff(caseId, c, state, stage, role, bit, evidence);
                    continue;
                }
                reason = SkipReason.InvalidSignature;
            }
            emit SignOffSkipped(caseId, stage, role, i, reason);
        }
    }

    /// @inheritdoc IMortgageEscrow
    function revokeSignOff(uint256 caseId, uint8 stage, Role role) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        _requireParty(caseId, c, role, msg.sender);
        _revoke(caseId, c, state, stage, role);
    }

    /// @inheritdoc IMortgageEscrow
    function revokeSignOffWithSignature(
        uint256 caseId,
        uint8 stage,
        Role role,
        uint8 epoch,
        bytes calldata signature
    ) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        uint8 current = _epochOf(caseId, stage, role);
        if (epoch != current) revert MortgageEscrowWrongEpoch(caseId, stage, role, epoch, current);
        if (!_isValidSignature(_partyOf(c, role), _revocationDigest(caseId, stage, role, epoch), signature)) {
            revert MortgageEscrowInvalidSignature(0, caseId, stage, role);
        }
        _revoke(caseId, c, state, stage, role);
    }

    function _recordSignOff(
        uint256 caseId,
        Case storage c,
        CaseState state,
        uint8 stage,
        Role role,
        uint256 bit,
        bytes32 evidence
    ) private {
        // A completed stage has every required role signed, so the callers' already-signed check covers it.
        state = state.withSignedOffRoles(state.signedOffRoles() | bit);
        c.state = state;
        emit SignedOff(caseId, stage, role, evidence);
        // Only the last missing sign-off can complete the stage; until then nothing else needs reading.
        if (state.isFullySigned(stage)) _completeReadyStages(caseId, c, state, 1 << stage);
    }

    function _revoke(uint256 caseId, Case storage c, CaseState state, uint8 stage, Role role) private {
        uint256 bit = _requiredRoleBit(caseId, state, stage, role);
        if (state.isCompleted(stage)) revert MortgageEscrowStageAlreadyCompleted(caseId, stage);
        if (state.signedOffRoles() & bit == 0) revert MortgageEscrowNotSignedOff(caseId, stage, role);
        c.state = state.withSignedOffRoles(state.signedOffRoles() & ~bit).withEverRevoked();
        uint8 epoch = _bumpEpoch(caseId, stage, role);
        emit SignOffRevoked(caseId, stage, role, epoch);
    }

    function _signOffDigest(
        uint256 caseId,
        uint8 stage,
        Role role,
        uint8 epoch,
        bytes32 evidence
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SIGN_OFF_TYPEHASH, caseId, stage, role, epoch, evidence)));
    }

    function _revocationDigest(uint256 caseId, uint8 stage, Role role, uint8 epoch) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REVOKE_TYPEHASH, caseId, stage, role, epoch)));
    }

    // ------------------------------------------------------------ completion

    /// @inheritdoc IMortgageEscrow
    function advance(uint256 caseId) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        uint256 everyCandidate = state.fullySignedStages() & ~state.completedStages();
        if (_completeReadyStages(caseId, c, state, everyCandidate) == 0) revert MortgageEscrowNothingToAdvance(caseId);
    }

    /// @dev Completes, of `candidates` (fully signed, not completed), every stage whose other criteria hold now,
    /// and the cascade: when a stage completes, its dependents join the candidates. Prerequisites always come
    /// earlier in the list, so one pass in stage order reaches every dependent after the stage it waits for.
    /// The callers choose what their transaction can have made ready: a sign-off, its own stage; the deposit
    /// that funds the escrow, the funding stages; `advance`, every stage (time makes any of them ready).
    /// One more criterion can turn true for an earlier stage: its deadline, which stops blocking once the
    /// escrow is released; so a pass that releases is followed by one over every candidate.
    function _completeReadyStages(
        uint256 caseId,
        Case storage c,
        CaseState state,
        uint256 candidates
    ) private returns (uint256 completedNow) {
        bool wasReleased = state.released();
        (state, completedNow) = _completionPass(caseId, c, state, candidates);
        if (!wasReleased && state.released()) {
            uint256 more;
            (state, more) = _completionPass(caseId, c, state, state.fullySignedStages() & ~state.completedStages());
            completedNow += more;
        }
        if (completedNow != 0 && state.completedStages() == (1 << state.stageCount()) - 1) {
            c.state = state.withStatus(CaseStatus.Completed);
            emit CaseCompleted(caseId);
        }
    }

    function _completionPass(
        uint256 caseId,
        Case storage c,
        CaseState state,
        uint256 candidates
    ) private returns (CaseState, uint256 completedNow) {
        uint256 completed = state.completedStages();
        uint256 fullySigned = state.fullySignedStages();
        uint256 now_ = _now();
        for (uint256 s; candidates >> s != 0; ++s) {
            if (candidates & (1 << s) == 0) continue;
            StageRuleWord rule = _rules[state.templateIndex()][s];
            if (rule.prerequisites() & completed != rule.prerequisites()) continue;
            if (rule.action() != Action.None && !state.funded()) continue;
            if (rule.waitSeconds() != 0 && now_ < _unlockedAt(caseId, c, state, rule) + rule.waitSeconds()) continue;
            if (!state.released() && _isPastDeadline(caseId, c, state, rule, now_)) continue;

            completed |= 1 << s;
            candidates |= rule.dependents() & fullySigned & ~completed;
            state = state.withCompletedStages(completed);
            if (rule.clock() != 0) state = _setClock(caseId, c, state, rule.clock(), now_);
            if (rule.waitingDependents() != 0) state = _unlockWaitingDependents(caseId, c, state, rule, completed, now_);
            if (rule.action() == Action.Release) state = state.withReleased();
            // A vote cast while the buyer's deposit was refundable must not count toward a cancellation that
            // now pays it to the seller.
            bool clearVotes = rule.binding() && state.cancelVotes() != 0;
            if (clearVotes) state = state.withCancelVotes(0);
            c.state = state;
            emit StageCompleted(caseId, uint8(s));
            if (clearVotes) emit CancellationVotesCleared(caseId, uint8(s));
            ++completedNow;
            if (rule.action() == Action.Release) _release(caseId, c);
        }
        return (state, completedNow);
    }

    // ---------------------------------------------------------------- money

    /// @inheritdoc IMortgageEscrow
    function deposit(uint256 caseId, Role payer, uint256 amount) external payable nonReentrant {
        if (_paused) revert MortgageEscrowPaused();
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        if (payer != Role.Bank && payer != Role.Buyer) revert MortgageEscrowNotAPayer(payer);
        _requireParty(caseId, c, payer, msg.sender);
        if (state.released()) revert MortgageEscrowAlreadyReleased(caseId);
        if (amount == 0 || msg.value != (state.tokenAsset() ? 0 : amount)) {
            revert MortgageEscrowInvalidDeposit(amount, msg.value);
        }

        uint256 received = amount;
        if (state.tokenAsset()) {
            // Measured by balance so that a token taking a fee on transfer credits only what arrived.
            IERC20 token = IERC20(_assets[caseId]);
            uint256 before = token.balanceOf(address(this));
            token.safeTransferFrom(msg.sender, address(this), amount);
            received = token.balanceOf(address(this)) - before;
        }

        Funding memory f = _funding[caseId];
        uint256 paid = (payer == Role.Bank ? f.paidByBank : f.paidByBuyer) + received;
        if (paid > type(uint128).max) revert MortgageEscrowAmountTooLarge(paid, type(uint128).max);
        if (payer == Role.Bank) f.paidByBank = uint128(paid);
        else f.paidByBuyer = uint128(paid);
        _funding[caseId] = f;
        emit Deposited(caseId, payer, msg.sender, received);

        if (!state.funded() && f.paidByBank >= c.loan && f.paidByBuyer >= c.deposit) {
            state = state.withFunded();
            c.state = state;
            emit EscrowFunded(caseId);
            uint256 fundingStages = _templates[_templateIds[state.templateIndex()]].fundingStages;
            _completeReadyStages(caseId, c, state, state.fullySignedStages() & ~state.completedStages() & fundingStages);
        }
    }

    /// @dev Credits the seller the price, the buyer the rest of the two shares (deposit + loan - price), and
    /// each payer whatever it paid beyond its share. Funded means both shares are in, so nothing underflows.
    function _release(uint256 caseId, Case storage c) private {
        // The releasing stage's StageCompleted and these Credited events are the record of the release.
        uint256 price = c.price;
        if (price != 0) _credit(caseId, c.seller, price);
        Funding memory f = _funding[caseId];
        uint256 loan = c.loan;
        uint256 toBank = f.paidByBank - loan;
        uint256 toBuyer = f.paidByBuyer + loan - price;
        if (toBank != 0) _credit(caseId, c.bank, toBank);
        if (toBuyer != 0) _credit(caseId, c.buyer, toBuyer);
    }

    /// @inheritdoc IMortgageEscrow
    function expire(uint256 caseId) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        uint256 now_ = _now();
        // Overdue stages exist only after the release; before it the word that keeps them is not read.
        CaseExtraState extras = state.released() ? _extras[caseId] : CaseExtraState.wrap(0);
        uint256 done = state.completedStages() | extras.overdueStages();
        uint256 newlyOverdue;
        for (uint256 s; s < state.stageCount(); ++s) {
            if (done & (1 << s) != 0) continue;
            if (!_isPastDeadline(caseId, c, state, _rules[state.templateIndex()][s], now_)) continue;
            if (!state.released()) {
                _endWithRefunds(caseId, c, state, CaseStatus.Expired);
                emit CaseExpired(caseId, uint8(s));
                return;
            }
            newlyOverdue |= 1 << s;
        }
        if (newlyOverdue == 0) revert MortgageEscrowNothingToExpire(caseId);
        _extras[caseId] = extras.withOverdueStages(extras.overdueStages() | newlyOverdue);
        for (uint256 s; newlyOverdue >> s != 0; ++s) {
            if (newlyOverdue & (1 << s) != 0) emit StageOverdue(caseId, uint8(s));
        }
    }

    /// @inheritdoc IMortgageEscrow
    function cancel(uint256 caseId) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        if (state.released()) revert MortgageEscrowAlreadyReleased(caseId);
        uint256 before = state.cancelVotes();
        uint256 votes = before;
        for (uint256 r; r < ROLE_COUNT; ++r) {
            if (votes & (1 << r) == 0 && _partyOf(c, Role(r)) == msg.sender) votes |= 1 << r;
        }
        if (votes == before) {
            if (!_isParty(c, msg.sender)) revert MortgageEscrowNotAParty(caseId, msg.sender);
            revert MortgageEscrowAlreadyVoted(caseId, msg.sender);
        }
        state = state.withCancelVotes(votes);
        c.state = state;
        for (uint256 r; r < ROLE_COUNT; ++r) {
            if ((votes & ~before) & (1 << r) != 0) emit CancellationVoted(caseId, Role(r));
        }
        if (votes == ALL_ROLES) {
            _endWithRefunds(caseId, c, state, CaseStatus.Cancelled);
            emit CaseCancelled(caseId);
        }
    }

    /// @inheritdoc IMortgageEscrow
    function withdrawCancelVote(uint256 caseId) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        uint256 before = state.cancelVotes();
        uint256 votes = before;
        for (uint256 r; r < ROLE_COUNT; ++r) {
            if (votes & (1 << r) != 0 && _partyOf(c, Role(r)) == msg.sender) votes &= ~(1 << r);
        }
        if (votes == before) {
            if (!_isParty(c, msg.sender)) revert MortgageEscrowNotAParty(caseId, msg.sender);
            revert MortgageEscrowNotVoted(caseId, msg.sender);
        }
        c.state = state.withCancelVotes(votes);
        for (uint256 r; r < ROLE_COUNT; ++r) {
            if ((before & ~votes) & (1 << r) != 0) emit CancellationVoteWithdrawn(caseId, Role(r));
        }
    }

    /// @dev Ends a case before its release: each payer's deposit back to it, except that once a binding stage
    /// has completed the buyer's deposit (up to its share) goes to the seller.
    function _endWithRefunds(uint256 caseId, Case storage c, CaseState state, CaseStatus status) private {
        c.state = state.withStatus(status);
        Funding memory f = _funding[caseId];
        uint256 toSeller;
        Template memory t = _templates[_templateIds[state.templateIndex()]];
        if (t.bindingStages & state.completedStages() != 0) {
            uint256 share = c.deposit;
            toSeller = f.paidByBuyer < share ? f.paidByBuyer : share;
        }
        if (f.paidByBank != 0) _credit(caseId, c.bank, f.paidByBank);
        if (toSeller != 0) _credit(caseId, c.seller, toSeller);
        if (f.paidByBuyer != toSeller) _credit(caseId, c.buyer, f.paidByBuyer - toSeller);
    }

    /// @inheritdoc IMortgageEscrow
    function withdraw(uint256 caseId) external nonReentrant {
        _payOut(caseId, msg.sender, msg.sender);
    }

    /// @inheritdoc IMortgageEscrow
    function withdrawTo(uint256 caseId, address to) external nonReentrant {
        if (to == address(0)) revert MortgageEscrowZeroRecipient();
        // ETH sent to the escrow, or tokens to their own contract, would be credited to no one.
        if (to == address(this) || to == _assets[caseId]) revert MortgageEscrowInvalidRecipient(caseId, to);
        _payOut(caseId, msg.sender, to);
    }

    /// @inheritdoc IMortgageEscrow
    function withdrawFor(uint256 caseId, address payee) external nonReentrant {
        _payOut(caseId, payee, payee);
    }

    function _payOut(uint256 caseId, address payee, address to) private {
        uint256 amount = _credits[caseId][payee];
        if (amount == 0) revert MortgageEscrowNothingToWithdraw(caseId, payee);
        // Effects before the interaction: a re-entering payee finds its credit already zero.
        _credits[caseId][payee] = 0;
        emit Withdrawn(caseId, payee, to, amount);
        if (_cases[caseId].state.tokenAsset()) IERC20(_assets[caseId]).safeTransfer(to, amount);
        else Address.sendValue(payable(to), amount);
    }

    function _credit(uint256 caseId, address payee, uint256 amount) private {
        _credits[caseId][payee] += amount;
        emit Credited(caseId, payee, amount);
    }

    // ------------------------------------------------------------ amendments

    /// @inheritdoc IMortgageEscrow
    function proposeAmendment(uint256, Role, AmendmentProposal calldata) external returns (uint32) {
        _delegateToModule();
    }

    /// @inheritdoc IMortgageEscrow
    function consentToAmendmentsWithSignatures(SignedConsent[] calldata) external {
        _delegateToModule();
    }

    /// @inheritdoc IMortgageEscrow
    function withdrawAmendmentConsent(uint256, uint32, Role) external {
        _delegateToModule();
    }

    /// @inheritdoc IMortgageEscrow
    function consentToAmendment(uint256 caseId, uint32 amendment, Role role) external nonReentrant {
        Case storage c = _cases[caseId];
        CaseState state = _requireOpen(caseId, c);
        _requireParty(caseId, c, role, msg.sender);
        AmendmentRecord storage r = _amendments[caseId][amendment];
        AmendmentWord a = r.word;
        uint256 refusal = _consentRefusal(state, a, role);
        if (refusal != NO_REFUSAL) revert MortgageEscrowConsentRefused(caseId, amendment, role, ConsentSkipReason(refusal));
        _recordConsent(caseId, c, state, r, amendment, a, role);
    }

    /// @dev Why a consent of `role` cannot count now, as a `ConsentSkipReason`; `NO_REFUSAL` if it can. The
    /// case is open (the caller checked); the module's copy, for relayed consents, checks that too.
    function _consentRefusal(CaseState state, AmendmentWord a, Role role) private view returns (uint256) {
        if (!a.proposed()) return uint256(ConsentSkipReason.UnknownAmendment);
        if (a.applied()) return uint256(ConsentSkipReason.AlreadyApplied);
        if (a.version() != state.termsVersion()) return uint256(ConsentSkipReason.Superseded);
        if (_now() > a.expiresAt()) return uint256(ConsentSkipReason.Expired);
        if (a.kind() == AmendmentKind.Terms && state.released()) return uint256(ConsentSkipReason.AlreadyReleased);
        uint256 bit = 1 << uint8(role);
        if (a.required() & bit == 0) return uint256(ConsentSkipReason.RoleNotRequired);
        if (a.consents() & bit != 0) return uint256(ConsentSkipReason.AlreadyConsented);
        return NO_REFUSAL;
    }

    function _recordConsent(
        uint256 caseId,
        Case storage c,
        CaseState state,
        AmendmentRecord storage r,
        uint32 amendment,
        AmendmentWord a,
        Role role
    ) private {
        uint256 consents = a.consents() | (1 << uint8(role));
        a = a.withConsents(consents);
        emit AmendmentConsented(caseId, amendment, role);
        if (consents != a.required()) {
            r.word = a;
            return;
        }
        if (a.kind() != AmendmentKind.Deadline) {
            // A change of terms or of a party: rarer, and applied by the module.
            r.word = a;
            bytes memory data = abi.encodeCall(MortgageEscrowModule.applyAmendment, (caseId, amendment));
            address module = _module;
            assembly ("memory-safe") {
                if iszero(delegatecall(gas(), module, add(data, 0x20), mload(data), 0, 0)) {
                    returndatacopy(0, 0, returndatasize())
                    revert(0, returndatasize())
                }
            }
            return;
        }
        _applyDeadline(caseId, c, state, r, amendment, a.withApplied());
    }

    /// @dev Applies a fully consented deadline move (`a`, already marked applied): raises the terms version,
    /// which supersedes every other proposal, and moves the deadline. (The module applies the other kinds.)
    function _applyDeadline(
        uint256 caseId,
        Case storage c,
        CaseState state,
        AmendmentRecord storage r,
        uint32 amendment,
        AmendmentWord a
    ) private {
        r.word = a;
        uint256 version = state.termsVersion() + 1;
        state = state.withTermsVersion(version);
        emit AmendmentApplied(caseId, amendment, uint16(version), r.replacedTermsHash);
        _extras[caseId] = _extras[caseId].withLastApplied(amendment).withMovedDeadline(a.deadlineSlot(), a.deadline());
        c.state = state;
        // Only the moved deadline changed: its stage is the one that may now be able to complete.
        uint8 stage = a.stage();
        if (!state.isCompleted(stage) && state.isFullySigned(stage)) _completeReadyStages(caseId, c, state, 1 << stage);
    }

    function _consentDigest(
        uint256 caseId,
        uint32 amendment,
        AmendmentKind kind,
        uint256 version,
        Role role,
        uint256 epoch
    ) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(CONSENT_TYPEHASH, caseId, amendment, kind, version, role, epoch)));
    }

    // ---------------------------------------------------------------- pause

    /// @inheritdoc IMortgageEscrow
    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setPaused(true);
    }

    /// @inheritdoc IMortgageEscrow
    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setPaused(false);
    }

    function _setPaused(bool value) private {
        if (_paused == value) revert MortgageEscrowPauseUnchanged(value);
        _paused = value;
        emit PauseChanged(msg.sender, value);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMortgageEscrow
    function paused() external view returns (bool) {
        return _paused;
    }

    /// @inheritdoc IMortgageEscrow
    function caseCount() external view returns (uint256) {
        return _caseCount;
    }

    /// @inheritdoc IMortgageEscrow
    function isTemplateRegistered(bytes32 templateId) external view returns (bool) {
        return _templates[templateId].stageCount != 0;
    }

    /// @inheritdoc IMortgageEscrow
    function templateStages(bytes32 templateId) external view returns (StageRule[] memory stages) {
        Template memory t = _templates[templateId];
        if (t.stageCount == 0) revert MortgageEscrowUnknownTemplate(templateId);
        stages = new StageRule[](t.stageCount);
        for (uint256 i; i < t.stageCount; ++i) stages[i] = _rules[t.index][i].toStageRule();
    }

    /// @inheritdoc IMortgageEscrow
    function caseOf(uint256 caseId) external view returns (CaseView memory v) {
        Case storage c = _cases[caseId];
        CaseState state = _requireExists(caseId, c);
        Funding memory f = _funding[caseId];
        v.templateId = _templateIds[state.templateIndex()];
        v.status = state.status();
        v.released = state.released();
        v.funded = state.funded();
        v.stageCount = uint8(state.stageCount());
        v.completedStages = uint16(state.completedStages());
        CaseExtraState extras = _extras[caseId];
        v.overdueStages = uint16(extras.overdueStages());
        v.termsVersion = uint16(state.termsVersion());
        v.amendmentCount = uint16(extras.amendmentCount());
        v.cancelVotes = uint8(state.cancelVotes());
        v.requiredRoles = uint64(state.requiredRoles());
        v.signedOffRoles = uint64(state.signedOffRoles());
        v.openedAt = uint32(state.openedAt());
        v.parties = [c.bank, c.lawyer, c.buyer, c.seller];
        v.asset = _assets[caseId];
        v.price = c.price;
        v.deposit = c.deposit;
        v.loan = c.loan;
        v.paidByBank = f.paidByBank;
        v.paidByBuyer = f.paidByBuyer;
    }

    /// @inheritdoc IMortgageEscrow
    function stageOf(uint256 caseId, uint8 stage) external view returns (StageView memory v) {
        Case storage c = _cases[caseId];
        CaseState state = _requireExists(caseId, c);
        if (stage >= state.stageCount()) revert MortgageEscrowUnknownStage(caseId, stage);
        StageRuleWord rule = _rules[state.templateIndex()][stage];
        uint256 completed = state.completedStages();
        v.requiredRoles = rule.roles();
        v.signedOffRoles = uint8((state.signedOffRoles() >> (uint256(stage) * ROLE_COUNT)) & ALL_ROLES);
        bool prerequisitesDone = rule.prerequisites() & completed == rule.prerequisites();
        if (prerequisitesDone && rule.waitSeconds() != 0) {
            v.availableAt = _viewTime(_unlockedAt(caseId, c, state, rule) + rule.waitSeconds());
        }
        (bool hasDeadline, uint256 deadline) = _deadlineOf(caseId, c, state, rule);
        if (hasDeadline) v.deadline = _viewTime(deadline);
        if (rule.clock() != 0) v.completedAt = uint32(_clock(caseId, c, state, rule.clock()));

        uint256 now_ = _now();
        if (state.isCompleted(stage)) v.status = StageStatus.Completed;
        else if (state.status() == CaseStatus.Cancelled) v.status = StageStatus.Cancelled;
        else if (state.status() == CaseStatus.Expired) v.status = StageStatus.Expired;
        // Past its deadline and not completed: before the release `expire` will end the case; after it, the
        // stage is late but still completes when signed.
        else if (hasDeadline && now_ > deadline) v.status = StageStatus.Overdue;
        else if (!prerequisitesDone) v.status = StageStatus.Locked;
        else if (v.signedOffRoles != v.requiredRoles) v.status = StageStatus.Open;
        else if (rule.waitSeconds() != 0 && now_ < v.availableAt) v.status = StageStatus.WaitingForTime;
        else if (rule.action() != Action.None && !state.funded()) v.status = StageStatus.WaitingForFunds;
        // Every criterion holds but no transaction has completed it yet: `advance` is due.
        else v.status = StageStatus.WaitingForTime;
    }

    /// @inheritdoc IMortgageEscrow
    function creditOf(uint256 caseId, address payee) external view returns (uint256) {
        return _credits[caseId][payee];
    }

    /// @inheritdoc IMortgageEscrow
    function signOffEpoch(uint256 caseId, uint8 stage, Role role) external view returns (uint8) {
        return _epochOf(caseId, stage, role);
    }

    /// @inheritdoc IMortgageEscrow
    function signOffDigest(
        uint256 caseId,
        uint8 stage,
        Role role,
        uint8 epoch,
        bytes32 evidence
    ) external view returns (bytes32) {
        return _signOffDigest(caseId, stage, role, epoch, evidence);
    }

    /// @inheritdoc IMortgageEscrow
    function revocationDigest(uint256 caseId, uint8 stage, Role role, uint8 epoch) external view returns (bytes32) {
        return _revocationDigest(caseId, stage, role, epoch);
    }

    /// @inheritdoc IMortgageEscrow
    function templateAmendmentRules(bytes32 templateId) external view returns (AmendmentRules memory) {
        Template memory t = _templates[templateId];
        if (t.stageCount == 0) revert MortgageEscrowUnknownTemplate(templateId);
        return AmendmentRules(t.deadlineConsent, t.termsConsent, t.partyConsent, t.reopenedByTerms);
    }

    /// @inheritdoc IMortgageEscrow
    function amendmentOf(uint256 caseId, uint32 amendment) external view returns (AmendmentView memory v) {
        _requireExists(caseId, _cases[caseId]);
        AmendmentRecord storage r = _amendments[caseId][amendment];
        AmendmentWord a = r.word;
        if (!a.proposed()) revert MortgageEscrowUnknownAmendment(caseId, amendment);
        v.proposal = a.toProposal(r.shares);
        v.version = uint16(a.version());
        v.required = uint8(a.required());
        v.consents = uint8(a.consents());
        v.epochs = uint16(a.epochOf(0) | (a.epochOf(1) << 4) | (a.epochOf(2) << 8) | (a.epochOf(3) << 12));
        v.applied = a.applied();
        v.replacedTermsHash = r.replacedTermsHash;
    }

    /// @inheritdoc IMortgageEscrow
    function consentDigest(
        uint256 caseId,
        uint32 amendment,
        AmendmentKind kind,
        uint16 version,
        Role role,
        uint8 epoch
    ) external view returns (bytes32) {
        return _consentDigest(caseId, amendment, kind, version, role, epoch);
    }

    // -------------------------------------------------------------- helpers

    /// @dev The contract's clock; a test harness may override it.
    function _now() internal view virtual returns (uint256) {
        return block.timestamp;
    }

    /// @dev A time for a view's 32-bit field: one past early 2106 reads as the largest, never wrapped.
    function _viewTime(uint256 time) private pure returns (uint32) {
        return uint32(time > MAX_TIME ? MAX_TIME : time);
    }

    function _requireExists(uint256 caseId, Case storage c) private view returns (CaseState state) {
        state = c.state;
        if (state.status() == CaseStatus.None) revert MortgageEscrowUnknownCase(caseId);
    }

    /// @dev The one status guard: the case must exist and be open.
    function _requireOpen(uint256 caseId, Case storage c) private view returns (CaseState state) {
        state = _requireExists(caseId, c);
        CaseStatus status = state.status();
        if (status != CaseStatus.Open) {
            revert MortgageEscrowUnexpectedCaseStatus(caseId, status, 1 << uint8(CaseStatus.Open));
        }
    }

    function _isParty(Case storage c, address account) private view returns (bool) {
        return c.bank == account || c.lawyer == account || c.buyer == account || c.seller == account;
    }

    /// @dev The bit of (stage, role) in the 4-bits-per-stage masks; reverts unless the stage requires the role.
    /// A stage beyond 15 maps past the 64-bit mask, where no role is ever required.
    function _requiredRoleBit(uint256 caseId, CaseState state, uint8 stage, Role role) private pure returns (uint256 bit) {
        bit = stage < MAX_STAGES ? 1 << (uint256(stage) * ROLE_COUNT + uint8(role)) : 0;
        if (state.requiredRoles() & bit == 0) revert MortgageEscrowRoleNotRequired(caseId, stage, role);
    }

    /// @dev When the last prerequisite completed (the opening, if there are none): the start of the waiting time.
    /// Only read once every prerequisite has completed.
    function _unlockedAt(uint256 caseId, Case storage c, CaseState state, StageRuleWord rule) private view returns (uint256) {
        if (rule.prerequisites() == 0) return state.openedAt();
        return _clock(caseId, c, state, rule.unlockClock());
    }

    /// @dev Records the unlock time of each waiting dependent whose last prerequisite just completed.
    function _unlockWaitingDependents(
        uint256 caseId,
        Case storage c,
        CaseState state,
        StageRuleWord rule,
        uint256 completed,
        uint256 now_
    ) private returns (CaseState) {
        uint256 waiting = rule.waitingDependents();
        for (uint256 d; waiting >> d != 0; ++d) {
            if (waiting & (1 << d) == 0) continue;
            StageRuleWord dependent = _rules[state.templateIndex()][d];
            if (dependent.prerequisites() & completed != dependent.prerequisites()) continue;
            state = _setClock(caseId, c, state, dependent.unlockClock(), now_);
        }
        return state;
    }

    /// @dev A stage's effective deadline: the earliest of those running, its long-stop (from the opening) and
    /// its anchored deadline once the anchor (the opening, or an earlier stage completing) has happened.
    /// Both are read from the rule word the caller already holds.
    function _deadlineOf(
        uint256 caseId,
        Case storage c,
        CaseState state,
        StageRuleWord rule
    ) private view returns (bool hasDeadline, uint256 deadline) {
        // Until an amendment applies no deadline has moved, and the word of moved deadlines is not read.
        CaseExtraState extras = state.termsVersion() != 0 ? _extras[caseId] : CaseExtraState.wrap(0);
        if (rule.longStopSeconds() != 0) (hasDeadline, deadline) = _longStopOf(state, rule, extras);
        if (rule.deadlineSeconds() == 0) return (hasDeadline, deadline);
        (bool running, uint256 own) = _ownDeadlineOf(caseId, c, state, rule, extras);
        if (running && (!hasDeadline || own < deadline)) (hasDeadline, deadline) = (true, own);
    }

    function _isPastDeadline(
        uint256 caseId,
        Case storage c,
        CaseState state,
        StageRuleWord rule,
        uint256 now_
    ) private view returns (bool) {
        (bool hasDeadline, uint256 deadline) = _deadlineOf(caseId, c, state, rule);
        return hasDeadline && now_ > deadline;
    }

    function _clock(uint256 caseId, Case storage c, CaseState state, uint256 clock) internal view override returns (uint256) {
        if (clock == 1) return state.clock1();
        if (clock == 2) return c.clock2;
        if (clock == 3) return c.clock3;
        if (clock == 4) return c.clock4;
        return uint32(_extraClocks[caseId] >> ((clock - CLOCKS_IN_CASE - 1) * 32));
    }

    /// @dev Records a clock; clock 1 lives in `state`, which the caller writes back.
    function _setClock(
        uint256 caseId,
        Case storage c,
        CaseState state,
        uint256 clock,
        uint256 time
    ) private returns (CaseState) {
        if (time > MAX_TIME) revert MortgageEscrowTimeOverflow(time, MAX_TIME);
        if (clock == 1) return state.withClock1(time);
        if (clock == 2) c.clock2 = uint32(time);
        else if (clock == 3) c.clock3 = uint32(time);
        else if (clock == 4) c.clock4 = uint32(time);
        else {
            // Assigned, not or-ed in: a stage re-opened by a terms amendment completes, and sets it, again.
            uint256 shift = (clock - CLOCKS_IN_CASE - 1) * 32;
            _extraClocks[caseId] = (_extraClocks[caseId] & ~(uint256(MAX_TIME) << shift)) | (time << shift);
        }
        return state;
    }

    function _epochOf(uint256 caseId, uint8 stage, Role role) private view returns (uint8) {
        return uint8(_epochs[caseId][stage / 8] >> _epochShift(stage, role));
    }

    function _bumpEpoch(uint256 caseId, uint8 stage, Role role) private returns (uint8 epoch) {
        epoch = _epochOf(caseId, stage, role);
        if (epoch == type(uint8).max) revert MortgageEscrowTooManyRevocations(caseId, stage, role);
        ++epoch;
        uint256 shift = _epochShift(stage, role);
        uint256 word = _epochs[caseId][stage / 8];
        _epochs[caseId][stage / 8] = (word & ~(uint256(0xFF) << shift)) | (uint256(epoch) << shift);
    }

    function _epochShift(uint8 stage, Role role) private pure returns (uint256) {
        return ((uint256(stage) % 8) * ROLE_COUNT + uint8(role)) * 8;
    }
}
