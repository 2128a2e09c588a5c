// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title IMortgageEscrow
/// @notice One registry of mortgage cases. Each case follows a registered workflow template: a list of stages
/// that named parties sign off. A stage completes in the same transaction as its last criterion; when the
/// releasing stage completes, the escrowed funds are credited to the seller (pull payments).
/// @dev Nothing personal goes on chain: parties are addresses, documents are 32-byte evidence hashes.
interface IMortgageEscrow {
    // ------------------------------------------------------------------ types

    /// @notice The four parties of a case. Each is one bit in a role mask: `1 << uint8(role)`.
    /// Bank: the lender. Lawyer: conveyancer, title or settlement agent. Buyer: the borrower.
    /// Seller: the seller, or in a remortgage the lender being paid off.
    enum Role {
        Bank,
        Lawyer,
        Buyer,
        Seller
    }

    /// @notice What completing a stage does besides recording it.
    /// None: nothing. RequireFunding: the stage also waits for the escrow to be funded.
    /// Release: as RequireFunding, and completing it credits the seller the price (one per template).
    enum Action {
        None,
        RequireFunding,
        Release
    }

    /// @notice A case's lifecycle. Open until every stage completes, a deadline expires it, or the parties cancel.
    enum CaseStatus {
        None,
        Open,
        Completed,
        Expired,
        Cancelled
    }

    /// @notice A stage's status, one function of the chain's state (see `stageOf`).
    /// Locked: a prerequisite is not complete (sign-offs are already accepted).
    /// Open: awaiting sign-offs. WaitingForTime: signed, the waiting time has not passed (or `advance` is due).
    /// WaitingForFunds: signed, the escrow is not yet funded. Completed. Overdue: its (effective) deadline passed
    /// and it has not completed (before the release, `expire` will end the case; after it, the stage is late but
    /// can still complete).
    /// Expired / Cancelled: the case ended before this stage completed.
    enum StageStatus {
        Locked,
        Open,
        WaitingForTime,
        WaitingForFunds,
        Completed,
        Overdue,
        Expired,
        Cancelled
    }

    /// @notice Why a relayed sign-off in a batch was skipped rather than applied.
    /// AlreadySignedOff: the same sign-off is already recorded (for example relayed by someone else first).
    /// StaleEpoch: the signer revoked since signing, so this signature is void. CaseNotOpen: the case ended
    /// (or does not exist). InvalidSignature: the signature is not the party's: an ECDSA signature of someone
    /// else, or a contract wallet that refused it, reverted, ran out of its gas stipend or answered anything but
    /// the ERC-1271 magic value (or the party has no code and the ECDSA check failed).
    /// RoleNotRequired: the stage does not require this role (or the template has no such stage).
    enum SkipReason {
        AlreadySignedOff,
        StaleEpoch,
        CaseNotOpen,
        InvalidSignature,
        RoleNotRequired
    }

    /// @notice One stage of a workflow template as registered.
    /// @param roles Mask of the roles that must sign off (`1 << Role`); zero for a stage that time alone completes.
    /// @param prerequisites Mask of earlier stages (`1 << index`) that must complete first.
    /// @param waitSeconds Minimum seconds between the last prerequisite completing and this stage completing.
    /// @param deadlineSeconds Seconds after the anchor by which the stage must complete; zero for none.
    /// @param deadlineAnchor 0: the deadline counts from the case opening; k + 1: from stage k completing.
    /// @param action None, RequireFunding or Release.
    /// @param binding Once this stage completes, a cancelled or expired case pays the buyer's deposit to the seller,
    /// and every cancel vote cast before it is cleared (`CancellationVotesCleared`).
    /// @param longStopSeconds A second deadline: seconds after the case's opening by which the stage must
    /// complete; zero for none. The stage's effective deadline is the earliest of its running deadlines. The
    /// releasing stage must have a deadline counted from the opening (this, or `deadlineSeconds` with anchor 0),
    /// so that every case can end by time alone (`MortgageEscrowNoLongStop`).
    struct StageRule {
        uint8 roles;
        uint16 prerequisites;
        uint32 waitSeconds;
        uint32 deadlineSeconds;
        uint8 deadlineAnchor;
        Action action;
        bool binding;
        uint32 longStopSeconds;
    }

    /// @notice The terms of a new case. Amounts are integers in the asset's smallest unit.
    /// @param templateId A registered template.
    /// @param bank The lender; also a payer (its share is `loan`).
    /// @param lawyer The conveyancer or settlement agent.
    /// @param buyer The borrower; also a payer (its share is `deposit`).
    /// @param seller The payee of `price` at release.
    /// @param asset The ERC-20 token held in escrow, or the zero address for ETH.
    /// @param price What the seller is paid; at most `deposit + loan`.
    /// @param deposit The buyer's share. @param loan The bank's share.
    struct CaseTerms {
        bytes32 templateId;
        address bank;
        address lawyer;
        address buyer;
        address seller;
        address asset;
        uint96 price;
        uint96 deposit;
        uint96 loan;
    }

    /// @notice A sign-off signed off chain (EIP-712) for anyone to relay.
    /// @param epoch The signer's revocation count for this (case, stage, role) when it signed: a revocation
    /// raises it and so voids every earlier signature. @param evidence Hash of the document and a secret salt.
    struct SignedSignOff {
        uint256 caseId;
        uint8 stage;
        Role role;
        uint8 epoch;
        bytes32 evidence;
        bytes signature;
    }

    /// @notice Everything about a case that the engine and the API read. `price`, `deposit`, `loan` and the
    /// parties are the current terms (version `termsVersion`); `amendmentCount` amendments have been proposed.
    struct CaseView {
        bytes32 templateId;
        CaseStatus status;
        bool released;
        bool funded;
        uint8 stageCount;
        uint16 completedStages;
        uint16 overdueStages;
        uint8 cancelVotes;
        uint64 requiredRoles;
        uint64 signedOffRoles;
        uint32 openedAt;
        address[4] parties;
        address asset;
        uint96 price;
        uint96 deposit;
        uint96 loan;
        uint128 paidByBank;
        uint128 paidByBuyer;
        uint16 termsVersion;
        uint16 amendmentCount;
    }

    /// @notice One stage of a case as the engine and the API read it.
    /// @param availableAt The earliest time the stage can complete by time (zero while a prerequisite is open).
    /// @param deadline When the stage's effective deadline passes: the earliest of its running deadlines (its
    /// long-stop, counted from the opening, and its anchored deadline once the anchor has completed); zero while
    /// none runs.
    /// @param completedAt When it completed, for stages whose completion time the template records; else zero.
    /// Times that would not fit 32 bits (past early 2106) read as `type(uint32).max`, never wrapped.
    struct StageView {
        StageStatus status;
        uint8 requiredRoles;
        uint8 signedOffRoles;
        uint32 availableAt;
        uint32 deadline;
        uint32 completedAt;
    }

    /// @notice What an amendment changes. Deadline: one stage's own deadline, or its long-stop, moves to a new
    /// time (later or earlier). Terms: price, deposit and loan change (only before the release). Party: a role's
    /// address changes (key rotation, a new firm).
    enum AmendmentKind {
        Deadline,
        Terms,
        Party
    }

    /// @notice Why a consent was not recorded: in a batch a skip (`AmendmentConsentSkipped`), sent directly a
    /// revert (`MortgageEscrowConsentRefused`). CaseNotOpen: the case ended (or does not exist).
    /// UnknownAmendment: no such proposal. AlreadyApplied. Superseded: another amendment applied since, so the
    /// terms it amends are no longer the case's. Expired: past its `expiresAt`. AlreadyReleased: a terms change
    /// after the release. RoleNotRequired: the role's consent is not needed. AlreadyConsented. StaleEpoch: the
    /// signer withdrew a consent to it since signing. InvalidSignature: as for sign-offs.
    enum ConsentSkipReason {
        CaseNotOpen,
        UnknownAmendment,
        AlreadyApplied,
        Superseded,
        Expired,
        AlreadyReleased,
        RoleNotRequired,
        AlreadyConsented,
        StaleEpoch,
        InvalidSignature
    }

    /// @notice A template's rules for amendments, from the workflow definition: the roles (a mask, never empty)
    /// whose consent each kind needs, and the stages a terms amendment re-opens (new sign-offs, and the waiting
    /// times counted from them start again) if they have completed and no stage after them has.
    /// Whatever these say, an amendment also needs the consent of each party it moves money away from or
    /// replaces (see `proposeAmendment`).
    struct AmendmentRules {
        uint8 deadlineConsent;
        uint8 termsConsent;
        uint8 partyConsent;
        uint16 reopenedByTerms;
    }

    /// @notice A proposed amendment; the fields its kind does not use must be zero.
    /// @param expiresAt The last time at which a consent counts.
    /// @param stage @param longStop @param deadline Deadline: the stage, which of its deadlines (its own, or
    /// its long-stop), and the new time. A moved deadline is that time, running from then on even before its
    /// anchor completes.
    /// @param price @param deposit @param loan Terms: the new amounts (price at most deposit + loan).
    /// @param party @param account Party: the role, and its new address.
    struct AmendmentProposal {
        AmendmentKind kind;
        uint32 expiresAt;
        uint8 stage;
        bool longStop;
        uint32 deadline;
        uint96 price;
        uint96 deposit;
        uint96 loan;
        Role party;
        address account;
    }

    /// @notice A consent signed off chain (EIP-712) for anyone to relay. The message also names the
    /// amendment's kind and the terms version it amends, read from the proposal.
    /// @param epoch The signer's withdrawal count for this (amendment, role) when it signed.
    struct SignedConsent {
        uint256 caseId;
        uint32 amendment;
        Role role;
        uint8 epoch;
        bytes signature;
    }

    /// @notice One amendment of a case. @param version The terms version it amends.
    /// @param required @param consents Role masks. @param epochs Each role's withdrawal count, 4 bits per role.
    /// @param replacedTermsHash The hash of the terms version it amends (see `AmendmentApplied`).
    struct AmendmentView {
        AmendmentProposal proposal;
        uint16 version;
        uint8 required;
        uint8 consents;
        uint16 epochs;
        bool applied;
        bytes32 replacedTermsHash;
    }

    // ----------------------------------------------------------------- errors

    /// @notice The template has too few or too many stages. @param count The stages given. @param max The limit.
    error MortgageEscrowInvalidStageCount(uint256 count, uint256 max);
    /// @notice A stage rule is malformed. @param stage Its index. @param reason What is wrong, as a short tag.
    error MortgageEscrowInvalidStageRule(uint256 stage, bytes32 reason);
    /// @notice The template does not have exactly one releasing stage. @param count How many it has.
    error MortgageEscrowInvalidReleaseStageCount(uint256 count);
    /// @notice More stages' completion times are needed (as deadline anchors or waiting starts) than a case holds.
    error MortgageEscrowTooManyClockStages(uint256 count, uint256 max);
    /// @notice The releasing stage has no deadline counted from the case's opening (neither `longStopSeconds` nor
    /// `deadlineSeconds` with anchor 0), so a case could wait for its release forever. @param stage Its index.
    error MortgageEscrowNoLongStop(uint256 stage);
    /// @notice No template with this id is registered.
    error MortgageEscrowUnknownTemplate(bytes32 templateId);
    /// @notice A party of a case is the zero address. @param role The role it was given for.
    error MortgageEscrowZeroParty(Role role);
    /// @notice The price exceeds what the two shares bring in.
    error MortgageEscrowPriceExceedsShares(uint256 price, uint256 deposit, uint256 loan);
    /// @notice The caller may not open this case: only its own bank or the operator may.
    error MortgageEscrowUnauthorizedOpener(address account);
    /// @notice No case has this id.
    error MortgageEscrowUnknownCase(uint256 caseId);
    /// @notice The case is not in a status that allows this. @param expected Mask of allowed `1 << CaseStatus`.
    error MortgageEscrowUnexpectedCaseStatus(uint256 caseId, CaseStatus current, uint256 expected);
    /// @notice The escrow has already been released, so this is no longer possible.
    error MortgageEscrowAlreadyReleased(uint256 caseId);
    /// @notice `account` is not the case's party for `role`.
    error MortgageEscrowUnauthorizedParty(uint256 caseId, address account, Role role);
    /// @notice The stage does not require a sign-off from `role` (or the template has no such stage).
    /// In a batch this is not an error but a skip (`SkipReason.RoleNotRequired`).
    error MortgageEscrowRoleNotRequired(uint256 caseId, uint256 stage, Role role);
    /// @notice The case's template has no stage `stage`.
    error MortgageEscrowUnknownStage(uint256 caseId, uint256 stage);
    /// @notice `role` has already signed off this stage.
    error MortgageEscrowAlreadySignedOff(uint256 caseId, uint256 stage, Role role);
    /// @notice `role` has not signed off this stage, so there is nothing to revoke.
    error MortgageEscrowNotSignedOff(uint256 caseId, uint256 stage, Role role);
    /// @notice The stage has completed: sign-offs can no longer change.
    error MortgageEscrowStageAlreadyCompleted(uint256 caseId, uint256 stage);
    /// @notice The signature is not `role`'s party's for this revocation. @param index Always 0 (one signature;
    /// in a batch of sign-offs an invalid signature is a skip, `SkipReason.InvalidSignature`).
    error MortgageEscrowInvalidSignature(uint256 index, uint256 caseId, uint256 stage, Role role);
    /// @notice A revocation signature names an epoch that is not the current one.
    error MortgageEscrowWrongEpoch(uint256 caseId, uint256 stage, Role role, uint256 given, uint256 current);
    /// @notice A (case, stage, role) has been revoked as many times as its counter holds.
    error MortgageEscrowTooManyRevocations(uint256 caseId, uint256 stage, Role role);
    /// @notice No stage of the case can complete now.
    error MortgageEscrowNothingToAdvance(uint256 caseId);
    /// @notice No stage of the case has missed a deadline that is not already acted on.
    error MortgageEscrowNothingToExpire(uint256 caseId);
    /// @notice Only the bank and the buyer pay into the escrow.
    error MortgageEscrowNotAPayer(Role role);
    /// @notice The amount is zero, or the ETH sent does not match it. @param value The ETH sent.
    error MortgageEscrowInvalidDeposit(uint256 amount, uint256 value);
    /// @notice An amount is wider than the field that holds it. @param max The largest it may be.
    error MortgageEscrowAmountTooLarge(uint256 amount, uint256 max);
    /// @notice A payout cannot go to the zero address.
    error MortgageEscrowZeroRecipient();
    /// @notice A payout cannot go to the escrow itself or to the case's token contract: the money would be lost.
    error MortgageEscrowInvalidRecipient(uint256 caseId, address to);
    /// @notice Nothing is credited to `payee` in this case.
    error MortgageEscrowNothingToWithdraw(uint256 caseId, address payee);
    /// @notice `account` is not a party of the case.
    error MortgageEscrowNotAParty(uint256 caseId, address account);
    /// @notice Every role that `account` holds in the case has already voted to cancel.
    error MortgageEscrowAlreadyVoted(uint256 caseId, address account);
    /// @notice None of the roles that `account` holds in the case has a cancel vote standing.
    error MortgageEscrowNotVoted(uint256 caseId, address account);
    /// @notice A time no longer fits the 32-bit field that holds it (after 2106). @param max The largest it may be.
    error MortgageEscrowTimeOverflow(uint256 time, uint256 max);
    /// @notice Opening cases and deposits are paused by the operator.
    error MortgageEscrowPaused();
    /// @notice The operation needs the escrow to be paused (or unpaused) and it is not.
    error MortgageEscrowPauseUnchanged(bool paused);

    /// @notice A template's amendment rules are malformed. @param reason What is wrong, as a short tag.
    error MortgageEscrowInvalidAmendmentRules(bytes32 reason);
    /// @notice A proposal is malformed or not possible in the case as it stands. @param reason A short tag.
    error MortgageEscrowInvalidAmendment(uint256 caseId, bytes32 reason);
    /// @notice A consent was not recorded, for `reason`.
    error MortgageEscrowConsentRefused(uint256 caseId, uint256 amendment, Role role, ConsentSkipReason reason);
    /// @notice The case has no amendment with this id.
    error MortgageEscrowUnknownAmendment(uint256 caseId, uint256 amendment);
    /// @notice `role` has no consent standing to withdraw.
    error MortgageEscrowNotConsented(uint256 caseId, uint256 amendment, Role role);
    /// @notice A role has withdrawn its consent to one amendment as many times as its counter holds (15).
    error MortgageEscrowTooManyWithdrawals(uint256 caseId, uint256 amendment, Role role);
    /// @notice A case has had as many amendments proposed as its counter holds (65,535).
    error MortgageEscrowTooManyAmendments(uint256 caseId);

    // ----------------------------------------------------------------- events

    /// @notice A workflow template was registered. Its id is
    /// `keccak256(abi.encode(definitionHash, stages, amendmentRules))`.
    event TemplateRegistered(bytes32 indexed templateId, bytes32 indexed definitionHash, uint32 index, uint8 stageCount);
    /// @notice A case was opened with these terms (its template is `terms.templateId`).
    event CaseOpened(uint256 indexed caseId, CaseTerms terms);
    /// @notice `role` signed off `stage`. @param evidence Hash of the document and a secret salt.
    event SignedOff(uint256 indexed caseId, uint8 indexed stage, Role indexed role, bytes32 evidence);
    /// @notice `role` revoked its sign-off of `stage`; its earlier signatures for it are void.
    event SignOffRevoked(uint256 indexed caseId, uint8 indexed stage, Role indexed role, uint8 newEpoch);
    /// @notice A relayed sign-off was skipped, not applied. @param index Its place in the batch.
    event SignOffSkipped(uint256 indexed caseId, uint8 indexed stage, Role indexed role, uint256 index, SkipReason reason);
    /// @notice `stage` completed: its last criterion became true in this transaction.
    event StageCompleted(uint256 indexed caseId, uint8 indexed stage);
    /// @notice `stage` missed its deadline after the release; no money moves.
    event StageOverdue(uint256 indexed caseId, uint8 indexed stage);
    /// @notice Every stage of the case completed.
    event CaseCompleted(uint256 indexed caseId);
    /// @notice `stage` missed its deadline before the release; every deposit was credited back (see `Credited`).
    event CaseExpired(uint256 indexed caseId, uint8 indexed stage);
    /// @notice `role` voted to cancel the case.
    event CancellationVoted(uint256 indexed caseId, Role indexed role);
    /// @notice `role` withdrew its vote to cancel the case.
    event CancellationVoteWithdrawn(uint256 indexed caseId, Role indexed role);
    /// @notice The binding `stage` completed, which cleared every cancel vote cast before it: a vote cast while
    /// the buyer's deposit was refundable does not count toward a cancellation that pays it to the seller.
    event CancellationVotesCleared(uint256 indexed caseId, uint8 indexed stage);
    /// @notice Every party voted to cancel; every deposit was credited back (see `Credited`).
    event CaseCancelled(uint256 indexed caseId);
    /// @notice `payer` paid `amount` into the escrow (for a token, the amount the escrow actually received).
    event Deposited(uint256 indexed caseId, Role indexed payer, address indexed from, uint256 amount);
    /// @notice Both shares are in the escrow in full.
    event EscrowFunded(uint256 indexed caseId);
    /// @notice `payee` may withdraw `amount` more from the case.
    event Credited(uint256 indexed caseId, address indexed payee, uint256 amount);
    /// @notice `payee`'s whole credit was paid out, to `to` (the payee itself unless it chose another address).
    event Withdrawn(uint256 indexed caseId, address indexed payee, address to, uint256 amount);
    /// @notice The operator paused or unpaused opening cases and deposits.
    event PauseChanged(address indexed account, bool paused);

    /// @notice `proposer` proposed an amendment to terms version `version`; it needs the consent of `required`.
    /// The proposer's own consent is counted at once where it is required.
    event AmendmentProposed(
        uint256 indexed caseId,
        uint32 indexed amendment,
        Role indexed proposer,
        uint16 version,
        uint8 required,
        AmendmentProposal proposal
    );
    /// @notice `role` consented to the amendment.
    event AmendmentConsented(uint256 indexed caseId, uint32 indexed amendment, Role indexed role);
    /// @notice `role` withdrew its consent; its earlier signatures for this amendment are void.
    event AmendmentConsentWithdrawn(uint256 indexed caseId, uint32 indexed amendment, Role indexed role, uint8 newEpoch);
    /// @notice A relayed consent was skipped, not applied. @param index Its place in the batch.
    event AmendmentConsentSkipped(
        uint256 indexed caseId,
        uint32 indexed amendment,
        Role indexed role,
        uint256 index,
        ConsentSkipReason reason
    );
    /// @notice The amendment's last required consent came: it applied, and the case's terms are now `version`.
    /// @param replacedTermsHash The hash of the terms it replaced. Version 0's is
    /// `keccak256(abi.encode(caseId, terms))` with the `CaseTerms` of `CaseOpened`; version v + 1's is
    /// `keccak256(abi.encode(hash of version v, caseId, amendment, proposal))` with the `AmendmentProposal` of
    /// `AmendmentProposed`: a chain anyone can follow from the events.
    event AmendmentApplied(uint256 indexed caseId, uint32 indexed amendment, uint16 version, bytes32 replacedTermsHash);
    /// @notice A terms amendment re-opened `stage`: its sign-offs are cleared (and their signatures void).
    event StageReopened(uint256 indexed caseId, uint8 indexed stage);
    /// @notice `role`'s address changed from `previous` to `account`; credits stay with the address they were made to.
    event PartyReplaced(uint256 indexed caseId, Role indexed role, address previous, address account);
    /// @notice A terms amendment grew a share beyond what its payer has paid: the escrow waits for the difference.
    event EscrowNoLongerFunded(uint256 indexed caseId);

    // -------------------------------------------------------------- functions

    /// @notice Registers a workflow template (operator only). Registering the same one again is a no-op.
    /// @param definitionHash The canonical hash of the off-chain definition.
    /// @param stages The stages, in an order where every prerequisite comes before the stage that needs it.
    /// Their deadlines (own, then long-stop, in stage order) are numbered 1 to 6 for amendments: a seventh and
    /// later ones cannot be moved.
    /// @param amendments Who must consent to each kind of amendment, and what a terms amendment re-opens.
    /// @return templateId `keccak256(abi.encode(definitionHash, stages, amendments))`.
    function registerTemplate(
        bytes32 definitionHash,
        StageRule[] calldata stages,
        AmendmentRules calldata amendments
    ) external returns (bytes32 templateId);

    /// @notice Opens a case. Only `terms.bank` or the operator may; not while paused; not once the block time no
    /// longer fits 32 bits (`MortgageEscrowTimeOverflow`).
    /// @return caseId Sequential from 1.
    function openCase(CaseTerms calldata terms) external returns (uint256 caseId);

    /// @notice Signs off `stage` as `role`; the caller must be the case's party for `role`.
    /// Accepted while the stage is still locked. Completes the stage, and later ones waiting on it, if this
    /// was the last criterion.
    function signOff(uint256 caseId, uint8 stage, Role role, bytes32 evidence) external;

    /// @notice Applies sign-offs signed off chain (EOA or ERC-1271). No item reverts the batch: an item for a case
    /// that is not open (finished, or unknown), for a role the stage does not require, already applied, stale, or
    /// whose signature does not verify is skipped with `SignOffSkipped` (its index and `SkipReason`), and the
    /// others are applied in the same transaction. A 65-byte signature is first checked as the party's ECDSA
    /// signature; otherwise a party with code is asked by ERC-1271 `isValidSignature`, with a bounded gas
    /// stipend and at most 32 bytes of its answer copied, so no wallet can spend the batch's gas or memory.
    function signOffWithSignatures(SignedSignOff[] calldata items) external;

    /// @notice Revokes the caller's sign-off of `stage` as `role`, until the stage completes.
    function revokeSignOff(uint256 caseId, uint8 stage, Role role) external;

    /// @notice Relays a revocation signed off chain by `role`'s party for the current `epoch`.
    function revokeSignOffWithSignature(
        uint256 caseId,
        uint8 stage,
        Role role,
        uint8 epoch,
        bytes calldata signature
    ) external;

    /// @notice Completes every stage whose criteria hold now (for waiting times that have passed). Anyone may call.
    function advance(uint256 caseId) external;

    /// @notice Pays `amount` into the escrow as `payer` (Bank or Buyer); the caller must be that party.
    /// For ETH send exactly `amount`; for a token approve it first. Not while paused.
    function deposit(uint256 caseId, Role payer, uint256 amount) external payable;

    /// @notice Acts on missed (effective) deadlines. Before the release: expires the case and credits every
    /// deposit back (after a binding stage, the buyer's deposit to the seller). After it: marks the stages overdue.
    /// The releasing stage's long-stop makes this reachable for every case that is not released.
    function expire(uint256 caseId) external;

    /// @notice Records the caller's vote to cancel, for every role it holds; the last vote cancels the case and
    /// credits the deposits back as `expire` does. Only before the release. A vote stands until withdrawn
    /// (`withdrawCancelVote`) or until a binding stage completes, which clears every vote cast before it.
    function cancel(uint256 caseId) external;

    /// @notice Withdraws the caller's cancel vote, for every role it holds that voted, while the case is open.
    function withdrawCancelVote(uint256 caseId) external;

    /// @notice Pays the caller's whole credit in the case out to the caller.
    function withdraw(uint256 caseId) external;

    /// @notice Pays the caller's whole credit in the case to `to`: for a payee that cannot receive ETH itself.
    /// `to` may not be zero, the escrow itself or the case's token contract.
    function withdrawTo(uint256 caseId, address to) external;

    /// @notice Pays `payee`'s whole credit in the case out to `payee`. Anyone may call: the money can only go
    /// to its owner, so the engine pushes the seller's credit right after the release.
    function withdrawFor(uint256 caseId, address payee) external;

    /// @notice Proposes an amendment as `role` (the caller must be its party) to the case's current terms
    /// version; the proposer's consent counts at once if required. It needs the consent of the roles the
    /// template names for its kind, and in any case: a Party amendment, the replaced party's; a Terms
    /// amendment, the bank's if the loan grows, the seller's if the price falls, and the buyer's if the deposit
    /// grows or price minus loan (what the buyer pays in the end) grows; a Deadline moved earlier before the
    /// release (or from a deadline not yet running), the buyer's, since an expiry after a binding stage pays its
    /// deposit to the seller. It applies in the transaction of its last required consent, unless it expired
    /// or another applied first (which supersedes it).
    /// @return amendment Its id in the case, from 1.
    function proposeAmendment(
        uint256 caseId,
        Role role,
        AmendmentProposal calldata proposal
    ) external returns (uint32 amendment);

    /// @notice Consents to an amendment as `role` (the caller must be its party); applies it if this was the
    /// last consent it needed.
    function consentToAmendment(uint256 caseId, uint32 amendment, Role role) external;

    /// @notice Applies consents signed off chain (EOA or ERC-1271, verified as sign-offs are). No item reverts
    /// the batch: one that cannot count is skipped with `AmendmentConsentSkipped` and its reason.
    function consentToAmendmentsWithSignatures(SignedConsent[] calldata items) external;

    /// @notice Withdraws `role`'s consent (the caller must be its party) until the amendment applies.
    function withdrawAmendmentConsent(uint256 caseId, uint32 amendment, Role role) external;

    /// @notice Stops opening cases and deposits (operator only). Nothing else stops: no money is held by a pause.
    function pause() external;

    /// @notice Lets opening cases and deposits resume (operator only).
    function unpause() external;

    // ------------------------------------------------------------------ views

    /// @notice Whether opening cases and deposits are paused.
    function paused() external view returns (bool);

    /// @notice How many cases have been opened; case ids run from 1 to this.
    function caseCount() external view returns (uint256);

    /// @notice A registered template's stages (reverts for an unknown id).
    function templateStages(bytes32 templateId) external view returns (StageRule[] memory);

    /// @notice Whether `templateId` is registered.
    function isTemplateRegistered(bytes32 templateId) external view returns (bool);

    /// @notice A case's whole state.
    function caseOf(uint256 caseId) external view returns (CaseView memory);

    /// @notice One stage of a case, with its status as one function of the chain's state.
    function stageOf(uint256 caseId, uint8 stage) external view returns (StageView memory);

    /// @notice What `payee` may withdraw from the case.
    function creditOf(uint256 caseId, address payee) external view returns (uint256);

    /// @notice The revocation count that a new signature for (case, stage, role) must carry.
    function signOffEpoch(uint256 caseId, uint8 stage, Role role) external view returns (uint8);

    /// @notice The EIP-712 digest that `role`'s party signs to sign off `stage`.
    function signOffDigest(
        uint256 caseId,
        uint8 stage,
        Role role,
        uint8 epoch,
        bytes32 evidence
    ) external view returns (bytes32);

    /// @notice The EIP-712 digest that `role`'s party signs to revoke its sign-off of `stage`.
    function revocationDigest(uint256 caseId, uint8 stage, Role role, uint8 epoch) external view returns (bytes32);

    /// @notice A registered template's amendment rules (reverts for an unknown id).
    function templateAmendmentRules(bytes32 templateId) external view returns (AmendmentRules memory);

    /// @notice One amendment of a case (reverts for an unknown one).
    function amendmentOf(uint256 caseId, uint32 amendment) external view returns (AmendmentView memory);

    /// @notice The EIP-712 digest that `role`'s party signs to consent to an amendment.
    function consentDigest(
        uint256 caseId,
        uint32 amendment,
        AmendmentKind kind,
        uint16 version,
        Role role,
        uint8 epoch
    ) external view returns (bytes32);
}
