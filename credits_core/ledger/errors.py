"""Errors of the reservation ledger: one class per rule, each message says what to do.

Every class derives from `LedgerError(CreditsError)`. Bad input derives from
`ValueError` (or `TypeError` for a value of the wrong type) as well, so callers can
catch it the Python way; it is always raised before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from credits_core.errors import CreditsError


class LedgerError(CreditsError):
    """Root of every ledger error."""


# --------------------------------------------------------------------------- balances


class InsufficientCredits(LedgerError):
    """The request does not fit the credits the user can spend now."""

    def __init__(self, required: int, available: int) -> None:
        self.required = required
        self.available = available
        self.shortfall = required - available
        super().__init__(
            f"Insufficient credits. You need {required} credits but only have {available}. "
            f"You're {self.shortfall} credits short."
        )


# --------------------------------------------------------------------------- lookups


class UnknownAccount(LedgerError, LookupError):
    """No account has this user id."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(
            f"No account for user {user_id!r}. Check the id, or create the account first "
            "(Ledger.create_account / `credits account`)."
        )


class AccountExists(LedgerError):
    """create_account was asked for a user id that already has different details."""

    def __init__(self, user_id: str, email: str | None, plan: str | None) -> None:
        self.user_id = user_id
        super().__init__(
            f"User {user_id!r} already has an account (email {email!r}, plan {plan!r}). "
            "Use another user id; accounts are never overwritten."
        )


class UnknownTransaction(LedgerError, LookupError):
    """No hold or booked usage has this transaction id."""

    def __init__(self, transaction_id: str) -> None:
        self.transaction_id = transaction_id
        super().__init__(
            f"No transaction {transaction_id!r} in the ledger. Use the transaction_id that "
            "reserve() returned (or see `credits history USER`)."
        )


class TransactionClosed(LedgerError):
    """The hold is no longer pending and cannot take this request."""

    def __init__(self, transaction_id: str, status: str, message: str) -> None:
        self.transaction_id = transaction_id
        self.status = status
        super().__init__(message)


class HoldExpired(TransactionClosed):
    """The hold reached its expiry: it can no longer be captured, released or extended."""

    def __init__(self, transaction_id: str, expires_at: datetime) -> None:
        self.expires_at = expires_at
        super().__init__(
            transaction_id,
            "expired",
            f"Hold {transaction_id} expired at {expires_at.isoformat()}: it can no longer be "
            "captured, released or extended, and its credits return to the user (booked by "
            "expire_holds). Reserve again, and extend() holds of long jobs before they expire.",
        )


class NotRefundable(TransactionClosed):
    """A refund was asked for a hold that is not captured, or was refunded already."""


# --------------------------------------------------------------------------- idempotency


class IdempotencyConflict(LedgerError):
    """The idempotency key was first used for a different request."""

    def __init__(self, key: str, operation: str, first_operation: str) -> None:
        self.key = key
        what = (
            f"a different {operation} request"
            if operation == first_operation
            else f"a {first_operation} request, not {operation}"
        )
        super().__init__(
            f"Idempotency key {key!r} was already used for {what}. Send exactly the same "
            "request to get its first result again, or use a new key for a new request."
        )


# --------------------------------------------------------------------------- the file


class LedgerBusy(LedgerError):
    """Another process holds the database file."""

    def __init__(self, path: str, holder: str, pid: int | None, waited: float) -> None:
        self.path = path
        self.holder = holder
        self.pid = pid
        after = f" after waiting {waited:g} s" if waited else ""
        super().__init__(
            f"The ledger {path} is in use by {holder}{after}. Stop that process (the "
            "dashboard or another `credits` command) or try again with a wait "
            "(Ledger.open(path, wait=SECONDS) / --wait SECONDS)."
        )


class WriterBusy(LedgerBusy):
    """The writer's queue stayed full for the whole wait: the ledger is overloaded."""

    def __init__(self, path: str, queued: int, waited_s: float) -> None:
        self.path = path
        self.holder = "this process's writer"
        self.pid = None
        LedgerError.__init__(
            self,
            f"The ledger {path} is overloaded: its write queue held {queued} commands for "
            f"{waited_s:g} s, so this write was not queued and nothing was written. Try again "
            "shortly (with the same idempotency key), or send fewer writes at once.",
        )


class LedgerBehind(LedgerBusy):
    """A read waited the whole time allowed for the database file to hold the writes
    already acknowledged (they are safe in the redo log)."""

    def __init__(self, path: str, batches: int, waited_s: float, failure: str | None) -> None:
        self.path = path
        self.holder = "this process's applier"
        self.pid = None
        why = f" (the last attempt failed: {failure})" if failure else ""
        LedgerError.__init__(
            self,
            f"The ledger {path} has {batches} acknowledged batch(es) of writes still to put "
            f"in its database file after {waited_s:g} s{why}; they are safe in its redo log. "
            "This read was not answered, so that it never misses them: try again shortly.",
        )


class WriteFailed(LedgerError):
    """The batch holding this write could not be committed; nothing of it was written."""

    def __init__(self, commands: int, cause: str) -> None:
        self.commands = commands
        super().__init__(
            f"The ledger could not commit the batch of {commands} write(s) that held this one "
            f"({cause}); nothing of it was written. Try again (with the same idempotency key)."
        )


class LedgerContention(LedgerError):
    """A write kept conflicting with concurrent writes on the same accounts."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(
            f"The write conflicted with concurrent writes {attempts} times in a row and was "
            "rolled back; nothing was written. Try again."
        )


class NotALedger(LedgerError):
    """The file exists but is not a credits ledger."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a credits ledger: {why}. Pass the path of a ledger, or a new "
            "file name to create one."
        )


class LedgerDamaged(LedgerError):
    """The file is a DuckDB database that cannot be read: truncated or corrupted."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(
            f"The ledger {path} is damaged and cannot be read ({why}). Nothing was written "
            "to it. Restore it from a backup (or the copy it was taken from)."
        )


class LedgerFileUnavailable(LedgerError, OSError):
    """The operating system refuses the ledger's file or folder (permissions, a path
    that does not exist or cannot be created, a read-only file system)."""

    def __init__(self, path: str, why: str) -> None:
        self.path = path
        super().__init__(
            f"The ledger file {path} cannot be opened: {why}. Check the path (--db / "
            "CREDITS_DB) and that this user may read and write the file and its folder."
        )


class LedgerNotFound(LedgerError):
    """A read-only open was asked for a file that does not exist."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"No ledger at {path}. Check --db / CREDITS_DB, or create one (a write such as "
            "`credits account` creates the file)."
        )


class SchemaTooNew(LedgerError):
    """The file was written by a newer version of credits_core."""

    def __init__(self, path: str, version: int, latest: int) -> None:
        super().__init__(
            f"{path} has ledger schema version {version}, newer than this credits_core "
            f"understands ({latest}). Upgrade credits_core before opening it."
        )


class SchemaOutdated(LedgerError):
    """A read-only open found a ledger that still needs migrations."""

    def __init__(self, path: str, version: int, latest: int) -> None:
        super().__init__(
            f"{path} has ledger schema version {version} and needs upgrading to {latest}, "
            "which a read-only open cannot do. Open it once read-write (any write command)."
        )


class ReadOnlyLedger(LedgerError):
    """A write was attempted on a ledger opened read-only."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"This ledger was opened read-only, so {operation} cannot write. Open it with "
            "read_only=False."
        )


class LedgerClosed(LedgerError):
    """The Ledger was closed."""

    def __init__(self) -> None:
        super().__init__("This Ledger is closed. Open it again with Ledger.open(path).")


# --------------------------------------------------------------------------- bad input


class InvalidAmount(LedgerError, ValueError):
    """A credit amount is zero, negative where that is not allowed, or absurdly large."""


class AmountNotInteger(InvalidAmount, TypeError):
    """A credit amount is not an integer (a float, bool, str, ...)."""


class InvalidArgument(LedgerError, ValueError):
    """An argument other than an amount has a value the ledger does not accept."""


class InvalidUserId(InvalidArgument):
    """A user id is empty, too long or not a string."""


class InvalidMetadata(InvalidArgument, TypeError):
    """Metadata is not a JSON-serialisable dict with string keys."""


class InvalidTimestamp(InvalidArgument):
    """A time is naive, of the wrong type, or outside what the rule allows."""


class InvalidTTL(InvalidArgument):
    """A hold lifetime is not a positive timedelta within the limit."""


class InvalidKind(InvalidArgument):
    """A grant kind or journal entry kind is not one of the known kinds."""


class QuoteMismatch(InvalidArgument):
    """reserve() got both credits and a quote, and they disagree."""


class InvalidBatch(InvalidArgument):
    """A bulk frame has missing columns or rows that cannot be booked."""

    def __init__(self, what: str, problems: Sequence[tuple[object, str]] = ()) -> None:
        self.problems = tuple(problems)
        shown = "; ".join(f"{_where(row)}: {problem}" for row, problem in self.problems[:10])
        more = f" (and {len(self.problems) - 10} more)" if len(self.problems) > 10 else ""
        detail = f" {shown}{more}." if shown else ""
        super().__init__(f"{what}{detail} Nothing was written; fix these rows and retry.")


def _where(row: object) -> str:
    """'row 3', or 'column credits' for a problem with a whole column."""
    return row if isinstance(row, str) and row.startswith("column ") else f"row {row}"
