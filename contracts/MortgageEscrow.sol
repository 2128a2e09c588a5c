// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IMortgageEscrow} from "./IMortgageEscrow.sol";

/// @title MortgageEscrow
/// @notice See {IMortgageEscrow}. One registry for every case.
/// @dev Gas layout. A case's hot state (which roles each stage needs, who signed, what completed, its status) is
/// one packed slot, so a sign-off that completes nothing costs two cold reads (that slot and the signer's party
/// slot), one write and one log. Each party slot packs the party's address with the amount it stands for; the
/// lawyer's slot holds the first completion times that the template needs, so recording them writes no new slot.
contract MortgageEscrow is IMortgageEscrow, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice The most stages a template may have: one per bit of a 16-bit stage mask.
    uint256 public constant MAX_STAGES = 16;
    /// @notice The most stages whose completion time a template may need (3 in the lawyer's slot, 8 more apart).
    uint256 public constant MAX_CLOCKS = 11;

    bytes32 private constant SIGN_OFF_TYPEHASH =
        keccak256("SignOff(uint256 caseId,uint8 stage,uint8 role,uint8 epoch,bytes32 evidence)");
    bytes32 private constant REVOKE_TYPEHASH =
        keccak256("RevokeSignOff(uint256 caseId,uint8 stage,uint8 role,uint8 epoch)");

    uint256 private constant ROLE_COUNT = 4;
    uint256 private constant ALL_ROLES = 0xF;
    uint256 private constant LAWYER_CLOCKS = 3;

    /// @dev A stage rule as stored: the registered rule plus the clock (1-based; 0 = none) that records its
    /// completion time, because a later stage's deadline or waiting time counts from it.
    struct Rule {
        uint8 roles;
        uint16 prerequisites;
        uint32 waitSeconds;
        uint32 deadlineSeconds;
        uint8 deadlineAnchor;
        Action action;
        bool binding;
        uint8 clock;
    }

    /// @dev One slot: looked up by id when a case opens.
    struct Template {
        uint16 index;
        uint8 stageCount;
        uint16 bindingStages;
        uint64 requiredRoles;
    }

    /// @dev One slot, read by every sign-off. `requiredRoles` and `signedOffRoles` hold 4 bits per stage.
    struct CaseCore {
        uint64 requiredRoles;
        uint64 signedOffRoles;
        uint16 completedStages;
        uint16 overdueStages;
        uint16 templateIndex;
        uint32 openedAt;
        uint8 stageCount;
        CaseStatus status;
        bool released;
        bool funded;
        uint8 cancelVotes;
    }

    /// @dev Five slots, all written when the case opens.
    struct Case {
        CaseCore core;
        address bank;
        uint96 loan;
        address lawyer;
        uint32 clock1;
        uint32 clock2;
        uint32 clock3;
        address buyer;
        uint96 deposit;
        address seller;
        uint96 price;
    }

    struct Funding {
        uint128 paidByBank;
        uint128 paidByBuyer;
    }

    bool private _paused;
    uint64 private _caseCount;
    uint16 private _templateCount;

    mapping(bytes32 templateId => Template) private _templates;
    mapping(uint256 templateIndex => bytes32) private _templateIds;
    mapping(uint256 templateIndex => mapping(uint256 stage => Rule)) private _rules;

    mapping(uint256 caseId => Case) private _cases;
    mapping(uint256 caseId => address) private _assets;
    mapping(uint256 caseId => Funding) private _funding;
    /// @dev Completion times of clocks 4..11, eight 32-bit times to a slot.
    mapping(uint256 caseId => uint256) private _extraClocks;
    /// @dev 8-bit revocation counters, one per (stage, role); stages 0-7 in word 0, 8-15 in word 1.
    mapping(uint256 caseId => mapping(uint256 word => uint256)) private _epochs;
    mapping(uint256 caseId => mapping(address payee => uint256)) private _credits;

    constructor(address admin) EIP712("MortgageEscrow", "1") {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------ templates

    /// @inheritdoc IMortgageEscrow
    function registerTemplate(
        bytes32 definitionHash,
        StageRule[] calldata stages
    ) external onlyRole(DEFAULT_ADMIN_ROLE) returns (bytes32 templateId) {
        templateId = keccak256(abi.encode(definitionHash, stages));
        if (_templates[templateId].stageCount != 0) return templateId;

        uint256 count = stages.length;
        if (count == 0 || count > MAX_STAGES) revert MortgageEscrowInvalidStageCount(count, MAX_STAGES);
        uint16 clockStages = _validateStages(stages);

        uint16 index = ++_templateCount;
        uint64 requiredRoles;
        uint16 bindingStages;
        uint8 clocks;
        for (uint256 i; i < count; ++i) {
            StageRule calldata s = stages[i];
            uint8 clock;
            if (clockStages & (1 << i) != 0) clock = ++clocks;
            _rules[index][i] = Rule(
                s.roles,
                s.prerequisites,
                s.waitSeconds,
                s.deadlineSeconds,
                s.deadlineAnchor,
                s.action,
                s.binding,
                clock
            );
            requiredRoles |= uint64(uint256(s.roles) << (i * ROLE_COUNT));
            if (s.binding) bindingStages |= uint16(1 << i);
        }
        _templates[templateId] = Template(index, uint8(count), bindingStages, requiredRoles);
        _templateIds[index] = templateId;
        emit TemplateRegistered(templateId, definitionHash, index, uint8(count));
    }

    /// @dev Checks every rule and returns the mask of stages whose completion time a later rule needs.
    function _validateStages(StageRule[] calldata stages) private pure returns (uint16 clockStages) {
        uint256 count = stages.length;
        uint256 releases;
        for (uint256 i; i < count; ++i) {
            StageRule calldata s = stages[i];
            if (s.roles > ALL_ROLES) revert MortgageEscrowInvalidStageRule(i, "unknown role");
            // Prerequisites come earlier in the list: no cycles, and one forward pass completes a cascade.
            if (uint256(s.prerequisites) >> i != 0) revert MortgageEscrowInvalidStageRule(i, "prerequisite not earlier");
            if (s.roles == 0 && s.prerequisites == 0) revert MortgageEscrowInvalidStageRule(i, "nothing to wait for");
            if (s.deadlineAnchor > i) revert MortgageEscrowInvalidStageRule(i, "anchor not earlier");
            if (s.deadlineAnchor != 0 && s.deadlineSeconds == 0) revert MortgageEscrowInvalidStageRule(i, "anchor without deadline");
            if (s.action == Action.Release) ++releases;
            if (s.deadlineAnchor != 0) clockStages |= uint16(1 << (s.deadlineAnchor - 1));
            if (s.waitSeconds != 0) clockStages |= s.prerequisites;
        }
        if (releases != 1) revert MortgageEscrowInvalidReleaseStageCount(releases);
        uint256 clocks = _popCount(clockStages);
        if (clocks > MAX_CLOCKS) revert MortgageEscrowTooManyClockStages(clocks, MAX_CLOCKS);
    }

    // ---------------------------------------------------------------- cases

    /// @inheritdoc IMortgageEscrow
    function openCase(CaseTerms calldata terms) external returns (uint256 caseId) {
        if (_paused) revert MortgageEscrowPaused();
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

        caseId = ++_caseCount;
        Case storage c = _cases[caseId];
        c.core = CaseCore({
            requiredRoles: t.requiredRoles,
            signedOffRoles: 0,
            completedStages: 0,
            overdueStages: 0,
            templateIndex: t.index,
            openedAt: uint32(_now()),
            stageCount: t.stageCount,
            status: CaseStatus.Open,
            released: false,
            funded: terms.deposit == 0 && terms.loan == 0,
            cancelVotes: 0
        });
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
    function signOff(uint256 caseId, uint8 stage, Role role, bytes32 evidence) external {
        Case storage c = _openCase(caseId);
        _requireParty(caseId, c, role, msg.sender);
        uint256 bit = _roleBit(caseId, c, stage, role);
        if (c.core.signedOffRoles & bit != 0) revert MortgageEscrowAlreadySignedOff(caseId, stage, role);
        _recordSignOff(caseId, c, stage, role, bit, evidence);
    }

    /// @inheritdoc IMortgageEscrow
    function signOffWithSignatures(SignedSignOff[] calldata items) external {
        for (uint256 i; i < items.length; ++i) {
            SignedSignOff calldata item = items[i];
            Case storage c = _cases[item.caseId];
            // A batch may race other relayers and the parties themselves: what changed meanwhile is skipped.
            SkipReason reason;
            bool skip = true;
            uint256 bit = _roleBitUnchecked(item.stage, item.role);
            if (c.core.status != CaseStatus.Open) reason = SkipReason.CaseNotOpen;
            else if (c.core.requiredRoles & bit == 0) revert MortgageEscrowRoleNotRequired(item.caseId, item.stage, item.role);
            else if (c.core.signedOffRoles & bit != 0) reason = SkipReason.AlreadySignedOff;
            else if (item.epoch != _epochOf(item.caseId, item.stage, item.role)) reason = SkipReason.StaleEpoch;
            else skip = false;
            if (skip) {
                emit SignOffSkipped(item.caseId, item.stage, item.role, i, reason);
                continue;
            }
            bytes32 digest = _hashTypedDataV4(
                keccak256(abi.encode(SIGN_OFF_TYPEHASH, item.caseId, item.stage, item.role, item.epoch, item.evidence))
            );
            if (!SignatureChecker.isValidSignatureNow(_partyOf(c, item.role), digest, item.signature)) {
                revert MortgageEscrowInvalidSignature(i, item.caseId, item.stage, item.role);
            }
            _recordSignOff(item.caseId, c, item.stage, item.role, bit, item.evidence);
        }
    }

    /// @inheritdoc IMortgageEscrow
    function revokeSignOff(uint256 caseId, uint8 stage, Role role) external {
        Case storage c = _openCase(caseId);
        _requireParty(caseId, c, role, msg.sender);
        _revoke(caseId, c, stage, role);
    }

    /// @inheritdoc IMortgageEscrow
    function revokeSignOffWithSignature(
        uint256 caseId,
        uint8 stage,
        Role role,
        uint8 epoch,
        bytes calldata signature
    ) external {
        Case storage c = _openCase(caseId);
        uint8 current = _epochOf(caseId, stage, role);
        if (epoch != current) revert MortgageEscrowWrongEpoch(caseId, stage, role, epoch, current);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(REVOKE_TYPEHASH, caseId, stage, role, epoch)));
        if (!SignatureChecker.isValidSignatureNow(_partyOf(c, role), digest, signature)) {
            revert MortgageEscrowInvalidSignature(0, caseId, stage, role);
        }
        _revoke(caseId, c, stage, role);
    }

    function _recordSignOff(
        uint256 caseId,
        Case storage c,
        uint8 stage,
        Role role,
        uint256 bit,
        bytes32 evidence
    ) private {
        // A completed stage has every required role signed, so the callers' already-signed check covers it.
        uint64 signedOff = c.core.signedOffRoles | uint64(bit);
        c.core.signedOffRoles = signedOff;
        emit SignedOff(caseId, stage, role, evidence);
        // Only the last missing sign-off can complete the stage; until then nothing else needs reading.
        if (_isFullySigned(c.core.requiredRoles, signedOff, stage)) _completeReadyStages(caseId, c, stage);
    }

    function _revoke(uint256 caseId, Case storage c, uint8 stage, Role role) private {
        uint256 bit = _roleBit(caseId, c, stage, role);
        if (_isCompleted(c, stage)) revert MortgageEscrowStageAlreadyCompleted(caseId, stage);
        if (c.core.signedOffRoles & bit == 0) revert MortgageEscrowNotSignedOff(caseId, stage, role);
        c.core.signedOffRoles &= ~uint64(bit);
        uint8 epoch = _bumpEpoch(caseId, stage, role);
        emit SignOffRevoked(caseId, stage, role, epoch);
    }

    // ------------------------------------------------------------ completion

    /// @inheritdoc IMortgageEscrow
    function advance(uint256 caseId) external {
        Case storage c = _openCase(caseId);
        if (_completeReadyStages(caseId, c, 0) == 0) revert MortgageEscrowNothingToAdvance(caseId);
    }

    /// @dev Completes, in one forward pass from `from`, every fully signed stage whose other criteria hold now.
    /// Prerequisites always come earlier in the list, so a stage that this pass completes can unlock only later
    /// ones, which the same pass reaches: that is the cascade.
    function _completeReadyStages(uint256 caseId, Case storage c, uint256 from) private returns (uint256 completedNow) {
        CaseCore memory core = c.core;
        uint256 count = core.stageCount;
        uint16 completed = core.completedStages;
        uint256 now_ = _now();
        for (uint256 s = from; s < count; ++s) {
            if (completed & (1 << s) != 0 || !_isFullySigned(core.requiredRoles, core.signedOffRoles, s)) continue;
            Rule memory rule = _rules[core.templateIndex][s];
            if (rule.prerequisites & completed != rule.prerequisites) continue;
            if (rule.action != Action.None && !c.core.funded) continue;
            if (rule.waitSeconds != 0 && now_ < _unlockedAt(caseId, c, rule.prerequisites) + rule.waitSeconds) continue;
            if (!c.core.released && _isPastDeadline(caseId, c, rule, completed, now_)) continue;

            completed |= uint16(1 << s);
            c.core.completedStages = completed;
            if (rule.clock != 0) _setClock(caseId, c, rule.clock, uint32(now_));
            emit StageCompleted(caseId, uint8(s));
            ++completedNow;
            if (rule.action == Action.Release) _release(caseId, c);
        }
        if (completedNow != 0 && completed == (1 << count) - 1) {
            c.core.status = CaseStatus.Completed;
            emit CaseCompleted(caseId);
        }
    }

    // ---------------------------------------------------------------- money

    /// @inheritdoc IMortgageEscrow
    function deposit(uint256 caseId, Role payer, uint256 amount) external payable nonReentrant {
        if (_paused) revert MortgageEscrowPaused();
        Case storage c = _openCase(caseId);
        if (payer != Role.Bank && payer != Role.Buyer) revert MortgageEscrowNotAPayer(payer);
        _requireParty(caseId, c, payer, msg.sender);
        if (c.core.released) revert MortgageEscrowAlreadyReleased(caseId);

        address asset = _assets[caseId];
        uint256 received;
        if (asset == address(0)) {
            if (amount == 0 || msg.value != amount) revert MortgageEscrowInvalidDeposit(amount, msg.value);
            received = amount;
        } else {
            if (amount == 0 || msg.value != 0) revert MortgageEscrowInvalidDeposit(amount, msg.value);
            // Measured by balance so that a token taking a fee on transfer credits only what arrived.
            uint256 before = IERC20(asset).balanceOf(address(this));
            IERC20(asset).safeTransferFrom(msg.sender, address(this), amount);
            received = IERC20(asset).balanceOf(address(this)) - before;
        }

        Funding storage f = _funding[caseId];
        uint256 paid = (payer == Role.Bank ? f.paidByBank : f.paidByBuyer) + received;
        if (paid > type(uint128).max) revert MortgageEscrowAmountTooLarge(paid, type(uint128).max);
        if (payer == Role.Bank) f.paidByBank = uint128(paid);
        else f.paidByBuyer = uint128(paid);
        emit Deposited(caseId, payer, msg.sender, received);

        if (!c.core.funded && f.paidByBank >= c.loan && f.paidByBuyer >= c.deposit) {
            c.core.funded = true;
            emit EscrowFunded(caseId);
            _completeReadyStages(caseId, c, 0);
        }
    }

    /// @dev Credits the seller the price, the buyer the rest of the two shares (deposit + loan - price), and
    /// each payer whatever it paid beyond its share. Funded means both shares are in, so nothing underflows.
    function _release(uint256 caseId, Case storage c) private {
        c.core.released = true;
        uint256 price = c.price;
        emit FundsReleased(caseId, price);
        _credit(caseId, c.seller, price);
        Funding memory f = _funding[caseId];
        uint256 loan = c.loan;
        _credit(caseId, c.bank, f.paidByBank - loan);
        _credit(caseId, c.buyer, f.paidByBuyer + loan - price);
    }

    /// @inheritdoc IMortgageEscrow
    function expire(uint256 caseId) external {
        Case storage c = _openCase(caseId);
        CaseCore memory core = c.core;
        uint256 now_ = _now();
        uint16 newlyOverdue;
        for (uint256 s; s < core.stageCount; ++s) {
            if ((core.completedStages | core.overdueStages) & (1 << s) != 0) continue;
            Rule memory rule = _rules[core.templateIndex][s];
            if (!_isPastDeadline(caseId, c, rule, core.completedStages, now_)) continue;
            if (!core.released) {
                _endWithRefunds(caseId, c, CaseStatus.Expired);
                emit CaseExpired(caseId, uint8(s));
                return;
            }
            newlyOverdue |= uint16(1 << s);
        }
        if (newlyOverdue == 0) revert MortgageEscrowNothingToExpire(caseId);
        c.core.overdueStages = core.overdueStages | newlyOverdue;
        for (uint256 s; newlyOverdue >> s != 0; ++s) {
            if (newlyOverdue & (1 << s) != 0) emit StageOverdue(caseId, uint8(s));
        }
    }

    /// @inheritdoc IMortgageEscrow
    function cancel(uint256 caseId) external {
        Case storage c = _openCase(caseId);
        if (c.core.released) revert MortgageEscrowAlreadyReleased(caseId);
        uint8 votes = c.core.cancelVotes;
        uint8 before = votes;
        for (uint256 r; r < ROLE_COUNT; ++r) {
            if (_partyOf(c, Role(r)) == msg.sender && votes & (1 << r) == 0) {
                votes |= uint8(1 << r);
                emit CancellationVoted(caseId, Role(r));
            }
        }
        if (votes == before) {
            if (!_isParty(c, msg.sender)) revert MortgageEscrowNotAParty(caseId, msg.sender);
            revert MortgageEscrowAlreadyVoted(caseId, msg.sender);
        }
        c.core.cancelVotes = votes;
        if (votes == ALL_ROLES) {
            _endWithRefunds(caseId, c, CaseStatus.Cancelled);
            emit CaseCancelled(caseId);
        }
    }

    /// @dev Ends a case before its release: each payer's deposit back to it, except that once a binding stage
    /// has completed the buyer's deposit (up to its share) goes to the seller.
    function _endWithRefunds(uint256 caseId, Case storage c, CaseStatus status) private {
        c.core.status = status;
        Funding memory f = _funding[caseId];
        _credit(caseId, c.bank, f.paidByBank);
        uint256 toSeller;
        if (_templates[_templateIds[c.core.templateIndex]].bindingStages & c.core.completedStages != 0) {
            uint256 share = c.deposit;
            toSeller = f.paidByBuyer < share ? f.paidByBuyer : share;
        }
        _credit(caseId, c.seller, toSeller);
        _credit(caseId, c.buyer, f.paidByBuyer - toSeller);
    }

    /// @inheritdoc IMortgageEscrow
    function withdraw(uint256 caseId) external nonReentrant {
        _payOut(caseId, msg.sender);
    }

    /// @inheritdoc IMortgageEscrow
    function withdrawFor(uint256 caseId, address payee) external nonReentrant {
        _payOut(caseId, payee);
    }

    function _payOut(uint256 caseId, address payee) private {
        uint256 amount = _credits[caseId][payee];
        if (amount == 0) revert MortgageEscrowNothingToWithdraw(caseId, payee);
        // Effects before the interaction: a re-entering payee finds its credit already zero.
        _credits[caseId][payee] = 0;
        emit Withdrawn(caseId, payee, amount);
        address asset = _assets[caseId];
        if (asset == address(0)) Address.sendValue(payable(payee), amount);
        else IERC20(asset).safeTransfer(payee, amount);
    }

    function _credit(uint256 caseId, address payee, uint256 amount) private {
        if (amount == 0) return;
        _credits[caseId][payee] += amount;
        emit Credited(caseId, payee, amount);
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
        for (uint256 i; i < t.stageCount; ++i) {
            Rule memory r = _rules[t.index][i];
            stages[i] = StageRule(r.roles, r.prerequisites, r.waitSeconds, r.deadlineSeconds, r.deadlineAnchor, r.action, r.binding);
        }
    }

    /// @inheritdoc IMortgageEscrow
    function caseOf(uint256 caseId) external view returns (CaseView memory v) {
        Case storage c = _existingCase(caseId);
        CaseCore memory core = c.core;
        Funding memory f = _funding[caseId];
        v.templateId = _templateIds[core.templateIndex];
        v.status = core.status;
        v.released = core.released;
        v.funded = core.funded;
        v.stageCount = core.stageCount;
        v.completedStages = core.completedStages;
        v.overdueStages = core.overdueStages;
        v.cancelVotes = core.cancelVotes;
        v.requiredRoles = core.requiredRoles;
        v.signedOffRoles = core.signedOffRoles;
        v.openedAt = core.openedAt;
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
        Case storage c = _existingCase(caseId);
        CaseCore memory core = c.core;
        if (stage >= core.stageCount) revert MortgageEscrowUnknownStage(caseId, stage);
        Rule memory rule = _rules[core.templateIndex][stage];
        v.requiredRoles = rule.roles;
        v.signedOffRoles = uint8((core.signedOffRoles >> (uint256(stage) * ROLE_COUNT)) & ALL_ROLES);
        bool prerequisitesDone = rule.prerequisites & core.completedStages == rule.prerequisites;
        if (prerequisitesDone && rule.waitSeconds != 0) {
            v.availableAt = uint32(_unlockedAt(caseId, c, rule.prerequisites) + rule.waitSeconds);
        }
        (bool hasDeadline, uint256 deadline) = _deadlineOf(caseId, c, rule, core.completedStages);
        if (hasDeadline) v.deadline = uint32(deadline);
        if (rule.clock != 0) v.completedAt = _clock(caseId, c, rule.clock);

        uint256 now_ = _now();
        if (core.completedStages & (1 << stage) != 0) v.status = StageStatus.Completed;
        else if (core.status == CaseStatus.Cancelled) v.status = StageStatus.Cancelled;
        else if (core.status == CaseStatus.Expired) v.status = StageStatus.Expired;
        else if (core.released && hasDeadline && now_ > deadline) v.status = StageStatus.Overdue;
        else if (!prerequisitesDone) v.status = StageStatus.Locked;
        else if (v.signedOffRoles != v.requiredRoles) v.status = StageStatus.Open;
        else if (rule.waitSeconds != 0 && now_ < v.availableAt) v.status = StageStatus.WaitingForTime;
        else if (rule.action != Action.None && !core.funded) v.status = StageStatus.WaitingForFunds;
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
        return _hashTypedDataV4(keccak256(abi.encode(SIGN_OFF_TYPEHASH, caseId, stage, role, epoch, evidence)));
    }

    /// @inheritdoc IMortgageEscrow
    function revocationDigest(uint256 caseId, uint8 stage, Role role, uint8 epoch) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(REVOKE_TYPEHASH, caseId, stage, role, epoch)));
    }

    // -------------------------------------------------------------- helpers

    /// @dev The contract's clock; a test harness may override it.
    function _now() internal view virtual returns (uint256) {
        return block.timestamp;
    }

    function _existingCase(uint256 caseId) private view returns (Case storage c) {
        c = _cases[caseId];
        if (c.core.status == CaseStatus.None) revert MortgageEscrowUnknownCase(caseId);
    }

    /// @dev The one status guard: the case must exist and be open.
    function _openCase(uint256 caseId) private view returns (Case storage c) {
        c = _cases[caseId];
        CaseStatus status = c.core.status;
        if (status != CaseStatus.Open) {
            if (status == CaseStatus.None) revert MortgageEscrowUnknownCase(caseId);
            revert MortgageEscrowUnexpectedCaseStatus(caseId, status, 1 << uint8(CaseStatus.Open));
        }
    }

    function _partyOf(Case storage c, Role role) private view returns (address) {
        if (role == Role.Bank) return c.bank;
        if (role == Role.Lawyer) return c.lawyer;
        if (role == Role.Buyer) return c.buyer;
        return c.seller;
    }

    function _isParty(Case storage c, address account) private view returns (bool) {
        return c.bank == account || c.lawyer == account || c.buyer == account || c.seller == account;
    }

    function _requireParty(uint256 caseId, Case storage c, Role role, address account) private view {
        if (_partyOf(c, role) != account) revert MortgageEscrowUnauthorizedParty(caseId, account, role);
    }

    /// @dev The bit of (stage, role) in the 4-bits-per-stage masks; reverts unless the stage requires the role.
    function _roleBit(uint256 caseId, Case storage c, uint8 stage, Role role) private view returns (uint256 bit) {
        bit = _roleBitUnchecked(stage, role);
        if (c.core.requiredRoles & bit == 0) revert MortgageEscrowRoleNotRequired(caseId, stage, role);
    }

    function _roleBitUnchecked(uint8 stage, Role role) private pure returns (uint256) {
        // Stages beyond 15 map past the 64-bit mask, where no role is ever required.
        return stage < MAX_STAGES ? 1 << (uint256(stage) * ROLE_COUNT + uint8(role)) : 0;
    }

    function _isCompleted(Case storage c, uint256 stage) private view returns (bool) {
        return c.core.completedStages & (1 << stage) != 0;
    }

    function _isFullySigned(uint64 required, uint64 signedOff, uint256 stage) private pure returns (bool) {
        uint256 shift = stage * ROLE_COUNT;
        return (required >> shift) & ~(signedOff >> shift) & ALL_ROLES == 0;
    }

    /// @dev When the last of `prerequisites` completed (the opening, if there are none). Every prerequisite of
    /// a stage with a waiting time has a clock, so its completion time is stored.
    function _unlockedAt(uint256 caseId, Case storage c, uint16 prerequisites) private view returns (uint256 at) {
        at = c.core.openedAt;
        uint256 index = c.core.templateIndex;
        for (uint256 p; prerequisites >> p != 0; ++p) {
            if (prerequisites & (1 << p) == 0) continue;
            uint256 t = _clock(caseId, c, _rules[index][p].clock);
            if (t > at) at = t;
        }
    }

    /// @dev A stage's deadline, once its anchor (the opening, or an earlier stage) has happened.
    function _deadlineOf(
        uint256 caseId,
        Case storage c,
        Rule memory rule,
        uint16 completed
    ) private view returns (bool hasDeadline, uint256 deadline) {
        if (rule.deadlineSeconds == 0) return (false, 0);
        if (rule.deadlineAnchor == 0) return (true, uint256(c.core.openedAt) + rule.deadlineSeconds);
        uint256 anchor = rule.deadlineAnchor - 1;
        if (completed & (1 << anchor) == 0) return (false, 0);
        uint8 clock = _rules[c.core.templateIndex][anchor].clock;
        return (true, uint256(_clock(caseId, c, clock)) + rule.deadlineSeconds);
    }

    function _isPastDeadline(
        uint256 caseId,
        Case storage c,
        Rule memory rule,
        uint16 completed,
        uint256 now_
    ) private view returns (bool) {
        (bool hasDeadline, uint256 deadline) = _deadlineOf(caseId, c, rule, completed);
        return hasDeadline && now_ > deadline;
    }

    function _clock(uint256 caseId, Case storage c, uint8 clock) private view returns (uint32) {
        if (clock == 1) return c.clock1;
        if (clock == 2) return c.clock2;
        if (clock == 3) return c.clock3;
        return uint32(_extraClocks[caseId] >> ((clock - LAWYER_CLOCKS - 1) * 32));
    }

    function _setClock(uint256 caseId, Case storage c, uint8 clock, uint32 time) private {
        if (clock == 1) c.clock1 = time;
        else if (clock == 2) c.clock2 = time;
        else if (clock == 3) c.clock3 = time;
        else _extraClocks[caseId] |= uint256(time) << ((clock - LAWYER_CLOCKS - 1) * 32);
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

    function _popCount(uint256 x) private pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) ++n;
    }
}
