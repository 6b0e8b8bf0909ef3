"""Typical problems: top intents and escalation reasons, rising-problem alerts, clusters of what the bot did not
understand and making one an intent (supervisors and admins read; admins make intents)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import ValidationError

from api.deps import Admin, DbSession, State, Supervisor
from api.openapi import CONFLICT
from core.db.base import MAX_ID
from core.errors import ValidationFailedError
from core.i18n import normalise
from core.problems import service as problems
from core.problems.schemas import (
    AlertPage,
    AlertRead,
    ClusterReport,
    MadeIntent,
    MakeIntent,
    PeriodQuery,
    TopDimension,
    TopQuery,
    TopReport,
)

router = APIRouter(prefix="/reports/problems", tags=["reports"])

From = Annotated[date, Query(alias="from", description="First day (YYYY-MM-DD), included.")]
To = Annotated[date, Query(alias="to", description="Last day (YYYY-MM-DD), included.")]


def period(model: type[Any], **values: Any) -> Any:
    """A query model from the parameters; its errors are a 422 with the reason."""
    try:
        return model(**values)
    except ValidationError as exc:
        raise ValidationFailedError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
                                    ) from None


def time_zone(state: State) -> str:
    """The KPI reports' time zone: which day a ticket counts to."""
    return state.settings.core.kpi_time_zone


@router.get("/top", response_model=TopReport)
async def top(session: DbSession, state: State, user: Supervisor, date_from: From, date_to: To,
              dimension: Annotated[TopDimension, Query(description="intent or escalation_reason")
                                   ] = TopDimension.intent,
              limit: Annotated[int, Query(ge=1, le=100)] = 10) -> TopReport:
    """The top intents (tickets created) or escalation reasons (escalations decided) of the period, each with its
    count, share of the period's total and change against the previous period of the same length (absolute and
    %). Read from the KPI engine's maintained counts. A bad date, from after to or more than 366 days: 422."""
    query = period(TopQuery, date_from=date_from, date_to=date_to, dimension=dimension, limit=limit)
    return await problems.top(session, query, time_zone=time_zone(state), language=normalise(user.language))


@router.get("/alerts", response_model=AlertPage)
async def alerts(session: DbSession, _user: Supervisor,
                 active: Annotated[bool, Query(description="Only the active alerts")] = False,
                 before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="next_before of the previous page")
                                   ] = None,
                 limit: Annotated[int, Query(ge=1, le=200)] = 50) -> AlertPage:
    """Rising-problem alerts, newest first: an intent or a channel whose volume in the recent window is at least
    `rising_ratio` times its usual volume for those hours (the median of the same hours over the previous days)
    with at least `rising_min_count` tickets. One alert per episode; `resolved_at` is set when it is back to
    normal."""
    if active:
        items: list[AlertRead] = await problems.active_alerts(session)
        return AlertPage(items=items, next_before=None)
    return await problems.alert_history(session, before=before, limit=limit)


@router.get("/clusters", response_model=ClusterReport)
async def clusters(session: DbSession, state: State, _user: Supervisor, date_from: From, date_to: To
                   ) -> ClusterReport:
    """Clusters of the customer messages the bot escalated without understanding them (low confidence, NLU
    unavailable) in the period: similar texts grouped (RU and EN), biggest first, each with its size, top terms and
    sample texts. At most `clusters_max_messages` of the most recent messages are analysed (`capped`)."""
    query = period(PeriodQuery, date_from=date_from, date_to=date_to)
    return await problems.clusters(session, query, state.settings.problems, time_zone=time_zone(state))


@router.post("/clusters/intent", response_model=MadeIntent, status_code=201, responses={**CONFLICT})
async def make_intent(body: MakeIntent, session: DbSession, actor: Admin) -> MadeIntent:
    """Make a cluster an intent: the chosen messages' texts become training examples of the intent (created when
    new) through the intents admin, audited; every message given is marked handled. A bad name, an empty choice or
    a message that is not a not-understood one: 422 with the reason. Train the model afterwards to use them."""
    return await problems.make_intent(session, body, actor)
