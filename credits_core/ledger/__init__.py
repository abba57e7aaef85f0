"""The reservation ledger: every user's credits, in one DuckDB file.

Design overview
===============

Tables (schema.py, numbered migrations recorded in ``schema_migrations``; no foreign
keys, so that DuckDB can still alter them)

- ``accounts``: one row per user (and its ``account_no``) with the *materialised*
  balance: ``total``, ``held`` and ``entries`` (the number of journal entries).
  ``available = total - held``.
- ``grants``: credits given to a user (kind plan, topup, promo or adjustment), with
  ``credits``, ``remaining``, ``priority`` and an optional ``expires_at``.
- ``holds``: reservations, with their credits, status (pending, captured, released,
  expired), expiry, reason, metadata, model, options, price book version, and
  ``drawn``: the grants the hold took its credits from.
- ``journal``: append-only. Every change of a balance is one entry with its kind, the
  change of the total (``credits``) and of the held credits (``held``), the balance
  after it, the transaction it belongs to, the actor and the reason. Entries are
  numbered 1..n per account (``seq``) and indexed by ``account_no``. Nothing in it is
  ever updated or deleted; corrections are new entries.
- ``idempotency_keys``: the first result of every keyed write.

Invariants (checked by SQL in invariants.py; ``Ledger.check_invariants()``)

- an account's total, held and entry count equal the sums over its journal entries,
  and every entry's balance_after / held_after follow from the entries before it;
- available credits (total - held) equal the credits left in the user's grants, and
  0 <= remaining <= credits for every grant;
- held credits equal the credits of pending holds; a hold's drawn credits sum to its
  credits; a hold is reserved once and resolved at most once, as its entries say.

Spending (holds.py, grants.py)

A hold is placed only if it fits the credits available *now*; it then draws them
from the grants in burn order (priority, soonest expiry, oldest, grant number), so
capture or release can never break the balance. A capture spends the first drawn
credits and returns the rest; a release or an expiry returns them all. Credits
returned to a grant that has expired in the meantime expire at once, with a
``grant_expired`` entry saying so. Refunds and positive adjustments are new
adjustment grants; negative adjustments draw like a capture.

Expiry at the instant
---------------------

Deadlines are exclusive: a hold is live while ``now < expires_at`` and a grant is
spendable while ``now < expires_at``. At ``now == expires_at`` the hold is expired:
a capture (or release, or extend) arriving at that very instant is refused with
``HoldExpired`` and writes nothing, whether or not ``expire_holds`` has run. The
sweeps ``expire_holds`` / ``expire_grants`` book what lapsed (entries dated when they
run); until then a lapsed hold's credits stay held, and a lapsed grant's credits are
already left out of ``balance()`` and of what can be spent.

Writes: one writer per file (writer.py, inbox.py, context.py, state.py, batch.py,
changes.py, redo.py, applier.py, listeners.py)

DuckDB gives snapshot isolation and takes one process per file, and its cost is per
statement and per commit, not per row. So in a process every write of a ledger file is a
command on one bounded queue (the inbox: the calls of one request go in together, with
one wake-up), served by one writer thread: it takes what is queued, decides each command
in order against the accounts it keeps in memory (the balance row, the grants that can
still matter, the pending holds; loaded on first touch, kept in a bounded LRU,
authoritative because nothing else writes the file), appends what the batch decided to
the redo log as one record, syncs it, and only then answers every caller: an
acknowledged write is a durable one. The applier thread puts the logged batches into the
DuckDB file behind the writer, many batches per DuckDB transaction, recording in it the
last batch it holds; on opening, the batches after that one are applied again, and a
clean close leaves no log. It applies when a read needs the file, when 20,000 rows wait
or when the oldest batch has waited 50 ms (each DuckDB statement gives up and retakes
the interpreter lock). Every read first waits until the file holds every batch logged
before it (a few ms under load), so a caller always reads its own writes. A command that
breaks a rule fails alone; a batch that cannot be decided or logged fails each of its
callers with `WriteFailed`, logs nothing, and the writer reloads its state once the file
has caught up. A failed apply is retried (the batches stay in the log). Sweeps and bulk
grants run alone, in their own DuckDB transaction, once the file holds every logged
batch. Bulk usage runs alone too, but is only decided on the file: what it booked (Arrow
tables) is logged as one record and answered, and the applier appends it behind the
answer, as it does a batch, deriving each row's balance from the account's row
(unchanged since the decision: the rows' entry numbers follow the account's, and every
change of a balance is an entry). Other modules' side writes (`Ledger.side_write()`:
alerts), which never write the ledger's tables, run beside the writer on a cursor of its
own, one at a time: an alert evaluation inside the writer cut 32 threads' pairs/s 4.5x.
Several `Ledger` objects of one file in one process share its store and its writer.
Another process opening the file gets ``LedgerBusy`` naming the holder (or waits,
bounded, if asked); transactions are all-or-nothing, so nothing is ever half-written.
Balance listeners hear each logged batch on a thread of their own.

History (reads.py, marks.py, directory.py)

One user's entries lie scattered over the whole journal. Its history is read through
the journal's index on the account, or, for a long history, from the account's history
marks: every 20th entry of an account records a journal row from which it and every
later entry lie, the account's row keeps the newest six (read with the account, one
slot each, taken in turn), and DuckDB skips the row groups before the chosen one. A
`Ledger` keeps the accounts it has read with their entries and marks (a stale copy only
makes a read scan more), and reads every long history's marks at its first history
read: a heavy user's history is then one statement.
An account-ordered copy of the journal, which keeps each account's entries together,
reads the newest hundred no faster (bench_ledger.py prints both, beside history()).
The back office's other reads are plain SQL in reports.py, offered as `Ledger` methods
by ledger_reports.py.

Ids are made from the account and the entry number (``hold-7-42``, ``grant-7-1``,
``adj-``, ``refund-``, ``use-``), so the same calls build the same ledger.

Bulk (bulk/: frames checked, usage booked, grants and accounts written)

``apply_usage`` and ``grant_many`` are set-based over Arrow/pandas frames, each written
in one transaction (a batch is booked whole or not at all): running balances by cumulative
sums, greedy rejection of the events that do not fit in rounds, consumption spread
over grants in burn order by cumulative sums. A finished generation booked in bulk is
one entry (``capture``, or ``release`` if it failed): its reserve and its resolution
happen at the same instant, so no pending hold is written for it.
"""

from credits_core.ledger.errors import (
    AccountExists,
    AmountNotInteger,
    HoldExpired,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    InvalidArgument,
    InvalidBatch,
    InvalidKind,
    InvalidMetadata,
    InvalidTimestamp,
    InvalidTTL,
    InvalidUserId,
    LedgerBehind,
    LedgerBusy,
    LedgerClosed,
    LedgerContention,
    LedgerDamaged,
    LedgerError,
    LedgerFileUnavailable,
    LedgerNotFound,
    NotALedger,
    NotRefundable,
    QuoteMismatch,
    ReadOnlyLedger,
    SchemaOutdated,
    SchemaTooNew,
    TransactionClosed,
    UnknownAccount,
    UnknownTransaction,
    WriteFailed,
    WriterBusy,
)
from credits_core.ledger.ledger import DEFAULT_TTL, Ledger
from credits_core.ledger.values import (
    DEFAULT_PRIORITY,
    ENTRY_KINDS,
    GRANT_KINDS,
    Account,
    Balance,
    Entry,
    Grant,
    Reservation,
    Sweep,
)

__all__ = [
    "DEFAULT_PRIORITY",
    "DEFAULT_TTL",
    "ENTRY_KINDS",
    "GRANT_KINDS",
    "Account",
    "AccountExists",
    "AmountNotInteger",
    "Balance",
    "Entry",
    "Grant",
    "HoldExpired",
    "IdempotencyConflict",
    "InsufficientCredits",
    "InvalidAmount",
    "InvalidArgument",
    "InvalidBatch",
    "InvalidKind",
    "InvalidMetadata",
    "InvalidTTL",
    "InvalidTimestamp",
    "InvalidUserId",
    "Ledger",
    "LedgerBehind",
    "LedgerBusy",
    "LedgerClosed",
    "LedgerContention",
    "LedgerDamaged",
    "LedgerError",
    "LedgerFileUnavailable",
    "LedgerNotFound",
    "NotALedger",
    "NotRefundable",
    "QuoteMismatch",
    "ReadOnlyLedger",
    "Reservation",
    "SchemaOutdated",
    "SchemaTooNew",
    "Sweep",
    "TransactionClosed",
    "UnknownAccount",
    "UnknownTransaction",
    "WriteFailed",
    "WriterBusy",
]
