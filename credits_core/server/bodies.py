"""Request bodies of API v1 as pydantic models: unknown fields are refused, amounts
must be JSON integers (not floats, strings or booleans), ids strings.

The shapes are checked here; the ledger then checks the values (a positive amount, a
sane TTL, ...) with its own typed errors, so each rule is written once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

MAX_BATCH = 1_000
Seconds = StrictInt | StrictFloat
Options = dict[StrictStr, StrictStr | StrictInt | StrictFloat | StrictBool]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuoteBody(Body):
    model: StrictStr
    provider: StrictStr | None = None
    plan: StrictStr | None = None
    options: Options = Field(default_factory=dict)


class AccountBody(Body):
    user_id: StrictStr
    email: StrictStr | None = None
    plan: StrictStr | None = None


class GrantBody(Body):
    credits: StrictInt
    kind: StrictStr
    expires_at: datetime | None = None
    priority: StrictInt | None = None
    reason: StrictStr | None = None


class ValidateBody(Body):
    credits: StrictInt | None = None
    model: StrictStr | None = None
    provider: StrictStr | None = None
    options: Options = Field(default_factory=dict)


class ReserveBody(Body):
    user_id: StrictStr
    credits: StrictInt | None = None
    model: StrictStr | None = None
    provider: StrictStr | None = None
    options: Options = Field(default_factory=dict)
    reason: StrictStr = "generation"
    metadata: dict[StrictStr, Any] | None = None
    ttl_seconds: Seconds | None = None


class ConfirmBody(Body):
    success: StrictBool
    credits: StrictInt | None = None


class ExtendBody(Body):
    ttl_seconds: Seconds


class AdjustBody(Body):
    credits: StrictInt
    reason: StrictStr


class RefundBody(Body):
    transaction_id: StrictStr
    reason: StrictStr


class ReserveOperation(ReserveBody):
    op: Literal["reserve"]
    idempotency_key: StrictStr | None = None


class ConfirmOperation(ConfirmBody):
    op: Literal["confirm"]
    transaction_id: StrictStr
    idempotency_key: StrictStr | None = None


Operation = Annotated[ReserveOperation | ConfirmOperation, Field(discriminator="op")]


class BatchBody(Body):
    operations: list[dict[str, Any]] = Field(max_length=MAX_BATCH)


class ExpireBody(Body):
    holds: StrictBool = True
    grants: StrictBool = True


class EvaluateBody(Body):
    users: list[StrictStr] | None = None


class DeliverBody(Body):
    to: StrictStr
    limit: StrictInt = 1_000
    max_attempts: StrictInt = 8


class ExportBody(Body):
    since: datetime | None = None
    until: datetime | None = None
    users: StrictStr = ""
    models: StrictStr = ""
    providers: StrictStr = ""
    plans: StrictStr = ""
    kinds: StrictStr = ""
    group_by: StrictStr = ""
    format: StrictStr = "csv"
    out: StrictStr
    partition_by_month: StrictBool = False
    overwrite: StrictBool = False
