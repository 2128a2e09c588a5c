// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMortgageEscrow} from "../IMortgageEscrow.sol";

/// @dev One proposed amendment, packed into one word so that a consent reads and writes one slot: who must
/// consent and who has, the terms version it amends, its expiry, the consent epochs, and the content of a
/// deadline move or a party replacement (a terms change keeps its price here and its two shares in a second
/// slot). Written when proposed, so that each consent is a write to a slot that is already set.
///
/// bits        field
/// [0, 2)      kind              IMortgageEscrow.AmendmentKind
/// [2, 6)      required          role mask: whose consent it needs
/// [6, 10)     consents          role mask: who has consented
/// [10, 26)    version           the case's terms version it amends
/// [26, 58)    expiresAt         no consent counts after this time
/// [58, 74)    epochs            4 bits per role: raised by each withdrawal, voiding earlier signatures
/// 74          applied
/// 75          proposed          the record exists (a Deadline amendment has kind 0)
/// Deadline:   [80, 84) stage, 84 longStop, [85, 117) deadline, [117, 120) deadline slot (see StageRuleWord)
/// Party:      [80, 82) party, [96, 256) account
/// Terms:      [80, 176) price
type AmendmentWord is uint256;

using AmendmentWordLib for AmendmentWord global;

library AmendmentWordLib {
    uint256 private constant MASK_4 = 0xF;
    uint256 private constant MASK_16 = 0xFFFF;
    uint256 private constant MASK_32 = 0xFFFFFFFF;

    uint256 private constant KIND = 0;
    uint256 private constant REQUIRED = 2;
    uint256 private constant CONSENTS = 6;
    uint256 private constant VERSION = 10;
    uint256 private constant EXPIRES_AT = 26;
    uint256 private constant EPOCHS = 58;
    uint256 private constant APPLIED = 74;
    uint256 private constant PROPOSED = 75;
    uint256 private constant CONTENT = 80;
    uint256 private constant LONG_STOP = 84;
    uint256 private constant DEADLINE = 85;
    uint256 private constant DEADLINE_SLOT = 117;
    uint256 private constant ACCOUNT = 96;

    function create(
        IMortgageEscrow.AmendmentKind kind_,
        uint256 version_,
        uint256 expiresAt_
    ) internal pure returns (AmendmentWord) {
        return AmendmentWord.wrap(
            uint256(kind_) | (version_ << VERSION) | (expiresAt_ << EXPIRES_AT) | (1 << PROPOSED)
        );
    }

    function withDeadline(
        AmendmentWord a,
        uint256 stage_,
        bool longStop_,
        uint256 deadline_,
        uint256 slot_
    ) internal pure returns (AmendmentWord) {
        return AmendmentWord.wrap(
            AmendmentWord.unwrap(a) |
                (stage_ << CONTENT) |
                (uint256(longStop_ ? 1 : 0) << LONG_STOP) |
                (deadline_ << DEADLINE) |
                (slot_ << DEADLINE_SLOT)
        );
    }

    function withParty(AmendmentWord a, IMortgageEscrow.Role party_, address account_) internal pure returns (AmendmentWord) {
        return AmendmentWord.wrap(
            AmendmentWord.unwrap(a) | (uint256(party_) << CONTENT) | (uint256(uint160(account_)) << ACCOUNT)
        );
    }

    function withPrice(AmendmentWord a, uint256 price_) internal pure returns (AmendmentWord) {
        return AmendmentWord.wrap(AmendmentWord.unwrap(a) | (price_ << CONTENT));
    }

    function kind(AmendmentWord a) internal pure returns (IMortgageEscrow.AmendmentKind) {
        return IMortgageEscrow.AmendmentKind(AmendmentWord.unwrap(a) & 0x3);
    }

    function required(AmendmentWord a) internal pure returns (uint256) {
        return (AmendmentWord.unwrap(a) >> REQUIRED) & MASK_4;
    }

    function consents(AmendmentWord a) internal pure returns (uint256) {
        return (AmendmentWord.unwrap(a) >> CONSENTS) & MASK_4;
    }

    function version(AmendmentWord a) internal pure returns (uint256) {
        return (AmendmentWord.unwrap(a) >> VERSION) & MASK_16;
    }

    function expiresAt(AmendmentWord a) internal pure returns (uint256) {
        return (AmendmentWord.unwrap(a) >> EXPIRES_AT) & MASK_32;
    }

    function epochOf(AmendmentWord a, uint256 role) internal pure returns (uint256) {
        return (AmendmentWord.unwrap(a) >> (EPOCHS + role * 4)) & MASK_4;
    }

    function applied(AmendmentWord a) internal pure returns (bool) {
        return (AmendmentWord.unwrap(a) >> APPLIED) & 1 != 0;
    }

    function proposed(AmendmentWord a) internal pure returns (bool) {
        return (AmendmentWord.unwrap(a) >> PROPOSED) & 1 != 0;
    }

    function stage(AmendmentWord a) internal pure returns (uint8) {
        return uint8((AmendmentWord.unwrap(a) >> CONTENT) & MASK_4);
    }

    function longStop(AmendmentWord a) internal pure returns (bool) {
        return (AmendmentWord.unwrap(a) >> LONG_STOP) & 1 != 0;
    }

    function deadline(AmendmentWord a) internal pure returns (uint32) {
        return uint32(AmendmentWord.unwrap(a) >> DEADLINE);
    }

    function deadlineSlot(AmendmentWord a) internal pure returns (uint256) {
        return (AmendmentWord.unwrap(a) >> DEADLINE_SLOT) & 0x7;
    }

    function party(AmendmentWord a) internal pure returns (IMortgageEscrow.Role) {
        return IMortgageEscrow.Role((AmendmentWord.unwrap(a) >> CONTENT) & 0x3);
    }

    function account(AmendmentWord a) internal pure returns (address) {
        return address(uint160(AmendmentWord.unwrap(a) >> ACCOUNT));
    }

    function price(AmendmentWord a) internal pure returns (uint96) {
        return uint96(AmendmentWord.unwrap(a) >> CONTENT);
    }

    /// @dev The proposal as `AmendmentProposed` emitted it; `shares` is the record's second slot (a terms change's
    /// deposit and loan).
    function toProposal(AmendmentWord a, uint256 shares) internal pure returns (IMortgageEscrow.AmendmentProposal memory p) {
        p.kind = a.kind();
        p.expiresAt = uint32(a.expiresAt());
        if (p.kind == IMortgageEscrow.AmendmentKind.Deadline) {
            (p.stage, p.longStop, p.deadline) = (a.stage(), a.longStop(), a.deadline());
        } else if (p.kind == IMortgageEscrow.AmendmentKind.Terms) {
            (p.price, p.deposit, p.loan) = (a.price(), uint96(shares), uint96(shares >> 96));
        } else {
            (p.party, p.account) = (a.party(), a.account());
        }
    }

    function withRequired(AmendmentWord a, uint256 value) internal pure returns (AmendmentWord) {
        return _set(a, REQUIRED, MASK_4, value);
    }

    function withConsents(AmendmentWord a, uint256 value) internal pure returns (AmendmentWord) {
        return _set(a, CONSENTS, MASK_4, value);
    }

    function withEpoch(AmendmentWord a, uint256 role, uint256 value) internal pure returns (AmendmentWord) {
        return _set(a, EPOCHS + role * 4, MASK_4, value);
    }

    function withApplied(AmendmentWord a) internal pure returns (AmendmentWord) {
        return AmendmentWord.wrap(AmendmentWord.unwrap(a) | (1 << APPLIED));
    }

    function _set(AmendmentWord a, uint256 offset, uint256 mask, uint256 value) private pure returns (AmendmentWord) {
        return AmendmentWord.wrap((AmendmentWord.unwrap(a) & ~(mask << offset)) | ((value & mask) << offset));
    }
}
