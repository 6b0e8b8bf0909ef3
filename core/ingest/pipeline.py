"""The message pipeline: one batch of inbound messages becomes ticket state and queued answers in one transaction.

idempotency -> identity -> thread -> persist -> decision (the NLU parse is done before) -> outbox, for the whole
batch: each lookup is one query for the batch (known messages, identities, customer locks, thread tickets, last
bot answers, orders) and the rows go in a table at a time, so the per-message cost is a few rows instead of a
dozen round trips. The result for each message is the one it would get if the messages were ingested one by one
in arrival order: the batch keeps what it looked up current as it applies its messages in order.

The pipeline never opens or commits a transaction: the caller (core/ingest/service.py, through the group-commit
batcher) does, and publishes the events the pipeline emitted once it has committed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession

from core import settings_cache
from core.config import CoreSettings
from core.contracts.models import Contract, ContractStatus
from core.csat import repository as csat_repo
from core.csat import service as csat
from core.csat.models import CsatSurvey
from core.csat.schemas import MAX_COMMENT
from core.customers import repository as customer_repo
from core.customers import service as customer_service
from core.customers.models import ChannelIdentity, Customer
from core.db.base import utcnow
from core.decision import texts
from core.decision.policy import (
    CONTRACT_INTENT,
    HANDOFF_INTENT,
    ORDER_INTENT,
    TERMINATE_INTENT,
    WITH_HUMANS,
    Action,
    ContractInfo,
    Decision,
    DecisionContext,
    OrderInfo,
    Request,
    decide,
)
from core.errors import ConflictError, ValidationFailedError
from core.events import MessageAdded, TicketChanged, Topic, emit
from core.handover import service as handover
from core.i18n import translator
from core.incidents import service as incidents
from core.ingest import repository
from core.ingest.schemas import InboundMessage, IngestResult
from core.nlu_admin.actions import ActionTable, action_table
from core.orders.models import Order
from core.routing import service as routing
from core.settings_cache import CachedSetting
from core.sla import service as sla
from core.tickets import repository as ticket_repo
from core.tickets import service as ticket_service
from core.tickets.models import AuthorKind, Direction, Priority, Ticket, TicketStatus, parse_ticket_number
from core.tickets.repository import OPEN_STATUSES
from core.users.models import Team
from nlu.protocol import Entity, Parse

ResponseLookup = Callable[[str, str], str | None]


PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?::[A-Za-z0-9_]+)?)\}")


def _filled(answer: str | None, parse: Parse | None) -> str | None:
    """An FAQ answer with its Rasa-style `{entity}` placeholders (`{tariff}`, `{city:destination}`) filled from the
    entities read in the message, rule-based or learned; None when one is not there (the answer would not make
    sense: the message goes to a person like one without an answer)."""
    if answer is None or "{" not in answer:
        return answer
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        entity = parse.entity(match.group(1)) if parse is not None else None
        if entity is None:
            missing = True
            return match.group(0)
        return entity.value

    text = PLACEHOLDER.sub(value, answer)
    return None if missing else text


def _number(entity: Entity | None) -> str | None:
    """An order or contract number as the records hold it. The rule-based extractors give it normalised; one the
    CRF learned from the data's annotations (an operator's own format the rules do not know) is the customer's
    text, so it is put the same way: no surrounding spaces or punctuation, upper case."""
    if entity is None:
        return None
    value = entity.value.strip().strip(".,;:!?()[]\"'«»").upper()
    return value or None
"""(intent, language) -> the FAQ answer for that intent in that language, if there is one."""

HANDOFF_PAYLOAD = "/human_handoff"
# The threading of a survey answer (a score button, or the comment that follows a score): stored on the customer's
# latest ticket of the thread, which stays as it is; never decided (a "5" is no question for the NLU or the queue).
CSAT_ANSWER = "csat"


@dataclass(frozen=True, slots=True)
class Parsed:
    """An inbound message with the NLU's reading of it (None: the engine failed, or nothing to read)."""

    inbound: InboundMessage
    parse: Parse | None

    @property
    def key(self) -> tuple[str, str]:
        return self.inbound.channel, self.inbound.external_message_id


@dataclass(eq=False)
class _Reply:
    """The bot's answer to send; its text is written once the ticket has its number."""

    decision: Decision
    ctx: DecisionContext
    language: str
    intent: str | None
    quick_replies: list[dict[str, str]]


@dataclass(eq=False)
class _Work:
    """One message's state between the phases of its batch."""

    inbound: InboundMessage
    parse: Parse | None
    identity: ChannelIdentity
    customer: Customer
    ticket: Ticket
    threading: str
    language: str | None
    message_id: int | None = None
    action: Action | None = None
    reason: str = ""
    reply: _Reply | None = None
    replies: list[int] = field(default_factory=list)
    queue: handover.QueueState | None = None  # the queue as the hand-over notice quotes it
    survey: CsatSurvey | None = None  # a survey answer's survey row (locked), read once when threading it
    contract: str | None = None  # the contract a termination request is about: kept with the message
    incident: incidents.OpenIncident | None = None  # an open outage this appeal is about (core/incidents)


@dataclass(eq=False)
class _Lookups:
    """What a batch looked up (one query per kind), kept current as its messages are applied in order."""

    identities: dict[tuple[str, str], ChannelIdentity] = field(default_factory=dict)
    locked: set[int] = field(default_factory=set)
    # (customer id, or the new Customer itself before it has one; channel; thread key) -> latest ticket or None
    threads: dict[tuple[object, str, str], Ticket | None] = field(default_factory=dict)
    # (channel, external message id) of this batch's messages -> their ticket, for references inside the batch
    placed: dict[tuple[str, str], Ticket] = field(default_factory=dict)
    last_bot_intent: dict[int, str | None] = field(default_factory=dict)  # id(ticket) -> intent
    orders: dict[str, Order] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)  # by number
    contracts_of: dict[int, list[Contract]] = field(default_factory=dict)  # customer id -> theirs (looked up)
    routing: routing.RoutingTable | None = None
    actions: ActionTable | None = None  # the declared intent actions, read once for the batch
    queues: dict[int, handover.QueueState] = field(default_factory=dict)  # team id -> for the hand-over notice


def _customer_key(customer: Customer) -> object:
    return customer.id if customer.id is not None else customer


async def existing(session: AsyncSession, channel: str, external_message_id: str) -> IngestResult | None:
    """The result of a message stored already (created=False), or None."""
    message = await ticket_repo.get_message_by_external_id(session, channel, external_message_id)
    if message is None:
        return None
    ticket = await ticket_service.get(session, message.ticket_id)
    return IngestResult(
        ticket_id=ticket.id, ticket_number=ticket.number, message_id=message.id,
        customer_id=ticket.customer_id, created=False, action=str(message.extra.get("action", "")),
        reply_message_ids=await repository.reply_ids(session, message.id),
    )


class IngestPipeline:
    """The rules of ingest for a batch of parsed messages, inside the caller's transaction."""

    def __init__(self, settings: CoreSettings, responses: ResponseLookup | None = None) -> None:
        self.settings = settings
        self.responses = responses or (lambda _intent, _lang: None)
        # Small tables read for (nearly) every batch and rarely changed: kept in memory (core/settings_cache).
        self.actions = CachedSetting(settings_cache.INTENT_ACTIONS, action_table, settings.settings_cache_seconds)
        self.policies = CachedSetting(settings_cache.SLA_POLICIES, sla.detached_policies,
                                      settings.settings_cache_seconds)
        # The open incidents: a handful of rows, matched against every confidently read appeal.
        self.incidents = CachedSetting(settings_cache.OPEN_INCIDENTS, incidents.open_snapshot,
                                       settings.settings_cache_seconds)

    async def write(self, session: AsyncSession, items: Sequence[Parsed]) -> list[IngestResult]:
        """Phases: look up -> place each message (identity, thread) and decide it -> flush (new customers,
        identities and tickets with their final state, changes to known ones) -> insert the inbound rows ->
        write the answers (they quote the new tickets' numbers) and their outbox rows.

        A failure drops the in-memory settings, so the retry of these messages reads them fresh (a clock must not
        be started under an SLA policy that another instance deleted a moment ago, again and again)."""
        try:
            return await self._write(session, items)
        except BaseException:
            self.actions.drop()
            self.policies.drop()
            self.incidents.drop()
            raise

    async def _write(self, session: AsyncSession, items: Sequence[Parsed]) -> list[IngestResult]:
        known = await repository.known_messages(session, [i.key for i in items])
        results: list[IngestResult | None] = [None] * len(items)
        for index, item in enumerate(items):
            if item.key in known:
                results[index] = await existing(session, *item.key)
        fresh = [(index, item) for index, item in enumerate(items) if results[index] is None]
        if fresh:
            look = _Lookups()
            await self._prefetch_identities(session, look, [item.inbound for _, item in fresh])
            await self._lock_customers(session, look, [i.customer_id for i in look.identities.values()])
            await self._prefetch_threads(session, look, [item.inbound for _, item in fresh])
            # Autoflush stays on while placing: a lookup there (a verified contact, references) must see the
            # batch's earlier new rows. The usual message makes no lookup, so nothing is flushed half-decided.
            works = [await self._place(session, look, item.inbound, item.parse) for _, item in fresh]
            with session.no_autoflush:
                await self._prefetch_context(session, look, works)
                for work in works:
                    if work.threading == CSAT_ANSWER:  # a survey button: no decision, no reopening
                        work.action, work.reason = Action.ignore, "csat"
                        continue
                    await self._decide(session, look, work)
            # The known tickets' changes as one executemany per set of changed columns; then new customers,
            # identities and tickets go in with their final state, and what else changed is updated.
            await ticket_repo.write_changes(session, [work.ticket for work in works])
            await session.flush()
            await incidents.link(session, [(w.incident.id, w.ticket.id) for w in works if w.incident is not None],
                                 utcnow())
            rows = [self._inbound_row(work) for work in works]
            # The rows themselves go in without a unit-of-work object each: one INSERT per table for the batch.
            ids = await ticket_repo.insert_messages(session, rows)
            for work, message_id in zip(works, ids, strict=True):
                work.message_id = message_id
                emit(session, Topic.MESSAGES, MessageAdded.of(work.ticket, message_id, AuthorKind.customer.value))
            for work in works:
                if work.threading == CSAT_ANSWER:
                    await self._answer_survey(session, work)
            await sla.after_ingest(session, [work.ticket for work in works if work.threading != CSAT_ANSWER],
                                   created={work.ticket.id for work in works if work.threading == "created"},
                                   policies=self.policies)
            answered = [w for w in works if w.reply is not None]
            await self._prefetch_queues(session, look, answered)
            reply_ids = await ticket_service.add_bot_replies(session, [self._bot_reply(look, w) for w in answered])
            for work, reply_id in zip(answered, reply_ids, strict=True):
                work.replies.append(reply_id)
            for (index, _), work in zip(fresh, works, strict=True):
                results[index] = self._finish(session, work)
        return [r for r in results if r is not None]

    async def _prefetch_identities(self, session: AsyncSession, look: _Lookups,
                                   inbounds: Sequence[InboundMessage]) -> None:
        keys = {(i.channel, i.sender.external_id) for i in inbounds}
        rows = await customer_repo.identities_by_keys(session, keys)
        look.identities.update({(r.channel, r.external_id): r for r in rows})

    async def _lock_customers(self, session: AsyncSession, look: _Lookups, ids: Iterable[int]) -> None:
        """Serialise concurrent work on the same customers (row locks on PostgreSQL, taken in id order so two
        batches never wait on each other in a circle; SQLite has a single writer anyway)."""
        wanted = sorted(set(ids) - look.locked)
        if wanted:
            await customer_repo.lock_customers(session, wanted)
            look.locked.update(wanted)

    async def _prefetch_threads(self, session: AsyncSession, look: _Lookups,
                                inbounds: Sequence[InboundMessage]) -> None:
        keys: set[tuple[int, str, str]] = set()
        for inbound in inbounds:
            identity = look.identities.get((inbound.channel, inbound.sender.external_id))
            if identity is not None and inbound.thread_key:
                keys.add((identity.customer_id, inbound.channel, inbound.thread_key))
        if not keys:
            return
        tickets = await ticket_repo.latest_by_threads(session, keys)
        found = {(t.customer_id, t.channel, t.thread_key): t for t in tickets}
        for key in keys:
            look.threads[key] = found.get(key)

    async def _place(self, session: AsyncSession, look: _Lookups, inbound: InboundMessage,
                     parse: Parse | None) -> _Work:
        """Identity and thread of one message, and the ticket's bookkeeping for a customer message."""
        key = (inbound.channel, inbound.sender.external_id)
        identity = await customer_service.resolve_identity(session, inbound.channel, inbound.sender,
                                                           prefetched=look.identities.get(key))
        look.identities[key] = identity
        customer = identity.customer
        if customer.id is not None:
            await self._lock_customers(session, look, [customer.id])
        ticket, threading, survey = await self._thread(session, look, customer, identity, inbound)
        look.placed[(inbound.channel, inbound.external_message_id)] = ticket

        # A text that does not tell its language ("ok", "?", "wifi", half and half) is answered in the language
        # the customer used before (this ticket, then their profile), not in the engine's default guess.
        said = parse.language if parse and parse.text.strip() else None
        if said is not None and parse is not None and parse.language_certain:
            language: str | None = said
        else:
            language = ticket.language or customer.language or inbound.language_hint or said
        # Set only what changes: an attribute set, even to its value, is one more for the unit of work to weigh.
        now = utcnow()
        if inspect(ticket).dict.get("identity") is not identity:  # read without a load (lazy="raise")
            ticket.identity = identity
        if ticket.last_customer_message_at is None:
            ticket.last_customer_message_at = now
        ticket.updated_at = now
        if threading != CSAT_ANSWER:  # a star or a digit says nothing of the customer's language nor status
            if language and language != ticket.language:
                ticket.language = language
            if ticket.status == TicketStatus.pending:
                ticket_service.transition(ticket, TicketStatus.open)
        if customer.language is None and language is not None:
            customer.language = language
        return _Work(inbound=inbound, parse=parse, identity=identity, customer=customer, ticket=ticket,
                     threading=threading, language=language, survey=survey)

    async def _comment_survey(self, session: AsyncSession, ticket: Ticket,
                              inbound: InboundMessage) -> CsatSurvey | None:
        """The (locked) survey a chat text comments: one answered on this channel soon before
        (CoreSettings.csat_comment_minutes), without a comment yet, on a resolved ticket; else None."""
        if (ticket.id is None or ticket.status not in (TicketStatus.resolved, TicketStatus.closed)
                or inbound.channel == "email" or not inbound.text.strip() or self.settings.csat_comment_minutes <= 0):
            return None
        survey = await csat_repo.survey_of(session, ticket.id, lock=True)
        window = timedelta(minutes=self.settings.csat_comment_minutes)
        if (survey is not None and survey.answered_at is not None and survey.comment is None
                and survey.answer_channel == inbound.channel and survey.answered_at >= utcnow() - window):
            return survey
        return None

    async def _answer_survey(self, session: AsyncSession, work: _Work) -> None:
        """Record a survey button's score (once) and thank the customer, or tell them it was rated already or that
        there is no survey to rate; or record the comment that follows a score."""
        survey, ticket = work.survey, work.ticket
        language = (survey.language if survey else None) or ticket.language or work.language
        score = csat.pressed_score(work.inbound.extra)
        try:
            if score is not None:
                await csat.record_score(session, ticket, survey, score, None, work.inbound.channel,
                                        low_score=self.settings.csat_low_score)
                key = "csat.thanks"
            else:
                await csat.record_comment(session, ticket.id, ticket, survey, work.inbound.text[:MAX_COMMENT],
                                          work.inbound.channel)
                key = "csat.comment_thanks"
        except ConflictError as exc:
            key = "csat.no_survey" if exc.details.get("reason") == "no_survey" else "csat.already_rated"
        except ValidationFailedError:
            key = "csat.no_survey"  # a score outside 1-5: no survey asks for it
        await ticket_service.add_outbound(session, ticket, text=translator(language)(key),
                                          author_kind=AuthorKind.bot, language=language)

    async def _thread(
        self, session: AsyncSession, look: _Lookups, customer: Customer, identity: ChannelIdentity,
        inbound: InboundMessage,
    ) -> tuple[Ticket, str, CsatSurvey | None]:
        """Continue an open ticket, reopen a recently resolved one, or start a new one; a survey answer goes to
        the latest ticket of the thread (with its survey row, if it has one) and changes nothing about it."""
        candidate = await self._find_thread(session, look, customer, inbound)
        if csat.pressed_score(inbound.extra) is not None:
            if candidate is None:  # a button of a chat without tickets: a closed ticket keeps it and the answer
                candidate = self._new_ticket(session, look, customer, identity, inbound)
                ticket_service.transition(candidate, TicketStatus.closed)
                return candidate, CSAT_ANSWER, None
            survey = await csat_repo.survey_of(session, candidate.id, lock=True) if candidate.id is not None else None
            return candidate, CSAT_ANSWER, survey
        if candidate is not None:
            survey = await self._comment_survey(session, candidate, inbound)
            if survey is not None:
                return candidate, CSAT_ANSWER, survey
            if candidate.status in OPEN_STATUSES:
                return candidate, "continued", None
            window = timedelta(hours=self.settings.reopen_window_hours)
            if (candidate.status == TicketStatus.resolved and candidate.resolved_at is not None
                    and candidate.resolved_at >= utcnow() - window):
                # A ticket the bot resolved goes back to the bot (the decision may still send it to the queue).
                if candidate.resolved_by_bot:
                    ticket_service.reopen_to_bot(candidate)
                else:
                    ticket_service.transition(candidate, TicketStatus.open)
                return candidate, "reopened", None
        return self._new_ticket(session, look, customer, identity, inbound), "created", None

    @staticmethod
    def _new_ticket(session: AsyncSession, look: _Lookups, customer: Customer, identity: ChannelIdentity,
                    inbound: InboundMessage) -> Ticket:
        subject = (inbound.subject or inbound.text.strip().split("\n", 1)[0])[:120] or "(no subject)"
        ticket = Ticket(
            subject=subject, channel=inbound.channel, thread_key=inbound.thread_key, status=TicketStatus.new,
            priority=Priority.normal, failed_bot_answers=0, created_at=utcnow(), updated_at=utcnow(),
            # Stated, not left unset: the SLA hook then finds None already there for a ticket without a running
            # clock, and the new row is not updated again in the same transaction (an UPDATE per escalation).
            sla_due_at=None,
        )
        ticket.customer = customer
        ticket.identity = identity
        ticket.team = None
        ticket.assignee = None
        session.add(ticket)
        if inbound.thread_key:
            look.threads[(_customer_key(customer), inbound.channel, inbound.thread_key)] = ticket
        look.last_bot_intent[id(ticket)] = None
        return ticket

    async def _find_thread(self, session: AsyncSession, look: _Lookups, customer: Customer,
                           inbound: InboundMessage) -> Ticket | None:
        """By references (this batch's messages first), then a quoted ticket number of the same customer,
        then the latest ticket of the thread key."""
        candidate: Ticket | None = None
        for ref in reversed(inbound.references):
            placed = look.placed.get((inbound.channel, ref))
            if placed is not None and placed.customer is customer:
                candidate = placed
                break
        if candidate is None and customer.id is not None:
            candidate = await ticket_repo.find_by_references(session, customer.id, inbound.channel,
                                                             inbound.references)
            if candidate is None and inbound.ticket_number_hint:
                number = parse_ticket_number(inbound.ticket_number_hint)
                if number is not None:
                    found = await ticket_repo.get(session, number)
                    # Scoped to the sender: quoting someone else's ticket number never joins their thread.
                    if found is not None and found.customer_id == customer.id:
                        candidate = found
        if candidate is None and inbound.thread_key:
            key = (_customer_key(customer), inbound.channel, inbound.thread_key)
            if key in look.threads:
                candidate = look.threads[key]
            elif customer.id is not None:
                candidate = await ticket_repo.find_latest_by_thread(session, customer.id, inbound.channel,
                                                                    inbound.thread_key)
        for _ in range(5):
            if candidate is None or candidate.merged_into_id is None:
                break
            candidate = await ticket_repo.get(session, candidate.merged_into_id)
        return candidate

    async def _prefetch_context(self, session: AsyncSession, look: _Lookups, works: Sequence[_Work]) -> None:
        """The last bot answer of every continued ticket and every order asked about, one query each."""
        tickets = {w.ticket.id: w.ticket for w in works if id(w.ticket) not in look.last_bot_intent}
        if tickets:
            intents = await ticket_repo.last_bot_intents(session, list(tickets))
            for ticket_id, ticket in tickets.items():
                look.last_bot_intent[id(ticket)] = intents.get(ticket_id)
        numbers = {n for w in works if (n := self._order_number(w.parse))}
        if numbers:
            look.orders.update({o.number: o for o in await repository.orders_by_number(session, numbers)})
        asking = [w for w in works if w.parse is not None and w.parse.confident
                  and w.parse.intent in (CONTRACT_INTENT, TERMINATE_INTENT)]
        contract_numbers = {n for w in asking if (n := self._contract_number(w.parse))} - set(look.contracts)
        # The customer, not the ticket's column: a new ticket has no customer id before its flush.
        owners = {w.customer.id for w in asking if w.customer.id is not None} - set(look.contracts_of)
        if contract_numbers or owners:
            for owner in owners:
                look.contracts_of[owner] = []
            for c in await repository.contracts_for(session, contract_numbers, owners):
                look.contracts[c.number] = c
                if c.customer_id in owners:
                    look.contracts_of[c.customer_id].append(c)
        if look.actions is None and any(w.parse is not None and (w.parse.confident or len(w.parse.requests) > 1)
                                        for w in works):
            look.actions = await self.actions.get(session)
        if look.routing is None and any(w.ticket.status in WITH_HUMANS and w.ticket.team_id is not None
                                        and w.parse is not None and w.parse.confident
                                        and w.parse.intent in (HANDOFF_INTENT, ORDER_INTENT) for w in works):
            look.routing = await routing.routing_table(session)  # the waiting tickets' queues and their settings
        await self._match_incidents(session, works)

    async def _match_incidents(self, session: AsyncSession, works: Sequence[_Work]) -> None:
        """The open incident each appeal is about, if any: nothing is read unless an incident is open and an appeal
        has one of its intents (the list of open incidents is a cached copy)."""
        appeals = [incidents.Appeal(index, w.customer.id, intent) for index, w in enumerate(works)
                   if w.customer.id is not None and w.parse is not None and w.parse.confident
                   and (intent := w.parse.intent) and w.threading != CSAT_ANSWER]
        if not appeals:
            return
        snapshot = await self.incidents.get(session)
        if snapshot:
            for index, incident in (await incidents.match(session, snapshot, appeals)).items():
                works[index].incident = incident

    async def _prefetch_queues(self, session: AsyncSession, look: _Lookups, answered: Sequence[_Work]) -> None:
        """The load, history and hours of every queue this batch hands a customer over to or tells about."""
        teams: dict[int, Team] = {}
        for work in answered:
            reply = work.reply
            team = self._team_of(look, work.ticket)
            if reply is not None and team is not None and team.id not in look.queues and (
                    reply.decision.action == Action.escalate or reply.decision.reply_key == "still_waiting"):
                teams[team.id] = team
        if teams:
            look.queues.update(await handover.queue_states(session, list(teams.values())))
        # The counts include the whole batch; a message is told the load as one-by-one ingest would have seen it.
        escalated = [w for w in answered if w.reply is not None and w.reply.decision.action == Action.escalate]
        still_to_come: dict[int, int] = {}
        for work in escalated:
            if work.ticket.team_id is not None:
                still_to_come[work.ticket.team_id] = still_to_come.get(work.ticket.team_id, 0) + 1
        for work in answered:
            team_id = work.ticket.team_id
            state = look.queues.get(team_id) if team_id is not None else None
            if state is None or team_id is None:
                continue
            if work in escalated:
                still_to_come[team_id] -= 1
            work.queue = replace(state, open_unassigned=state.open_unassigned - still_to_come.get(team_id, 0))

    @staticmethod
    def _team_of(look: _Lookups, ticket: Ticket) -> Team | None:
        if ticket.team_id is None or look.routing is None:
            return None
        return look.routing.teams_by_id.get(ticket.team_id)

    @staticmethod
    def _order_number(parse: Parse | None) -> str | None:
        # The order asked about: the message's one confident intent, or one of several requests read in it.
        if parse is None or not ((parse.confident and parse.intent == ORDER_INTENT)
                                 or any(r.name == ORDER_INTENT for r in parse.requests)):
            return None
        return _number(parse.entity("order_number"))

    @staticmethod
    def _contract_number(parse: Parse | None) -> str | None:
        return _number(parse.entity("contract_number") if parse is not None else None)

    @staticmethod
    def _contract(look: _Lookups, customer_id: int | None, number: str | None) -> tuple[Contract | None, int]:
        """The contract a customer asks about - the one named (theirs only), else their only current one - and
        how many they have."""
        mine = look.contracts_of.get(customer_id, []) if customer_id is not None else []
        if number is not None:
            row = look.contracts.get(number)
            return (row if row is not None and row.customer_id == customer_id else None), len(mine)
        current = [c for c in mine if c.status in (ContractStatus.active, ContractStatus.terminating)]
        if len(current) == 1:
            return current[0], len(mine)
        return (mine[0] if len(mine) == 1 else None), len(mine)

    async def _decide(self, session: AsyncSession, look: _Lookups, work: _Work) -> None:
        """The policy's decision for one message, applied to its ticket."""
        ctx = self._context(look, work)
        decision = decide(ctx)
        if ctx.contract is not None and ctx.parse is not None and ctx.parse.intent == TERMINATE_INTENT:
            work.contract = ctx.contract.number  # the retention queue sees which contract (message extra)
        work.action, work.reason = decision.action, decision.reason
        work.reply = await self._apply(session, look, work.ticket, decision, ctx, work.language)
        if work.reply is not None:
            look.last_bot_intent[id(work.ticket)] = work.reply.intent

    @staticmethod
    def _inbound_row(work: _Work) -> dict[str, Any]:
        """The customer message's row (its ticket has an id by now)."""
        ticket, inbound, parse = work.ticket, work.inbound, work.parse
        if work.action is None:
            raise RuntimeError("a message was stored before it was decided")
        return {
            "ticket_id": ticket.id, "direction": Direction.inbound, "author_kind": AuthorKind.customer,
            "author_user_id": None, "channel": inbound.channel, "external_message_id": inbound.external_message_id,
            "text": inbound.text, "html": inbound.html,
            "attachments": [a.model_dump(exclude_none=True) for a in inbound.attachments],
            "intent": parse.intent if parse else None, "confidence": parse.confidence if parse else None,
            "language": work.language,
            "entities": [{"type": e.type, "value": e.value, "start": e.start, "end": e.end}
                         for e in (parse.entities if parse else ())],
            "extra": {**inbound.extra, "action": work.action.value, "reason": work.reason,
                      **({"contract": work.contract} if work.contract else {}),
                      **({"incident": work.incident.id} if work.incident is not None else {}),
                      **({"requests": [{"intent": r.name, "confidence": r.confidence} for r in parse.requests]}
                         if parse is not None and len(parse.requests) > 1 else {})},
            "in_reply_to_id": None, "created_at": inbound.received_at,
        }

    def _context(self, look: _Lookups, work: _Work) -> DecisionContext:
        parse, ticket = work.parse, work.ticket
        intent = parse.intent if parse and parse.confident else None
        order_number = self._order_number(parse)
        order: OrderInfo | None = None
        row = look.orders.get(order_number) if order_number else None
        # Only the order's own customer (or an order not linked to anyone) gets its status. The customer, not the
        # ticket's column: a new ticket has no customer id before its flush.
        if row is not None and row.customer_id in (None, work.customer.id):
            order = OrderInfo(row.number, row.status, row.description)
        contract_number = self._contract_number(parse) if intent in (CONTRACT_INTENT, TERMINATE_INTENT) else None
        contract_row, contract_count = (self._contract(look, work.customer.id, contract_number)
                                        if intent in (CONTRACT_INTENT, TERMINATE_INTENT) else (None, 0))
        contract = (ContractInfo(contract_row.number, contract_row.tariff, contract_row.end_date,
                                 contract_row.status.value, contract_row.auto_renewal)
                    if contract_row is not None else None)
        faq = _filled(self.responses(intent, work.language or "en"), parse) if intent else None
        declared = look.actions.action_for(intent, faq is not None) if intent and look.actions else None
        team = self._team_of(look, ticket)
        notice_gap = timedelta(minutes=self.settings.waiting_notice_minutes)
        requests: tuple[Request, ...] = ()
        if parse is not None and len(parse.requests) > 1:
            answers = {r.name: _filled(self.responses(r.name, work.language or "en"), parse) for r in parse.requests}
            requests = tuple(Request(r.name, answers[r.name], look.actions.action_for(r.name, answers[r.name]
                                                                                      is not None)
                                     if look.actions else None) for r in parse.requests)
        return DecisionContext(
            parse=parse, ticket_status=ticket.status, assigned=ticket.assignee_id is not None,
            failed_bot_answers=ticket.failed_bot_answers, last_bot_intent=look.last_bot_intent.get(id(ticket)),
            auto_reply=work.inbound.auto_reply, faq_answer=faq, order_number=order_number, order=order,
            contract_number=contract_number, contract=contract, contract_count=contract_count,
            intent_action=declared, agent_answered=ticket.first_response_at is not None,
            self_service_while_waiting=team is not None and team.bot_answers_while_waiting,
            waiting_notice_allowed=ticket.waiting_notice_at is None
            or ticket.waiting_notice_at <= utcnow() - notice_gap,
            requests=requests,
            incident_text=work.incident.message(work.language) if work.incident is not None else None,
        )

    async def _apply(self, session: AsyncSession, look: _Lookups, ticket: Ticket, decision: Decision,
                     ctx: DecisionContext, language: str | None) -> _Reply | None:
        """Apply the decision to the ticket; the bot's answer to send, if any."""
        parse = ctx.parse
        if decision.intents and parse is not None:
            # Several requests: the ticket carries the one its queue works on; the message row lists them all.
            ticket.intent = decision.route_intent
            ticket.intent_confidence = next((r.confidence for r in parse.requests
                                             if r.name == decision.route_intent), parse.confidence)
        elif parse is not None and parse.confident and decision.action in (Action.answer, Action.escalate):
            ticket.intent = parse.intent
            ticket.intent_confidence = parse.confidence
        if decision.priority is not None and decision.priority.rank > ticket.priority.rank:
            ticket.priority = decision.priority
        if decision.action in (Action.agent, Action.ignore):
            return None

        lang = language or "en"
        if decision.action == Action.notify:  # the ticket stays with its queue; the bot answers the waiting customer
            if decision.reply_key == "still_waiting":
                ticket.waiting_notice_at = utcnow()
            return _Reply(decision=decision, ctx=ctx, language=lang, intent=None, quick_replies=[])
        if decision.action == Action.answer:
            ticket_service.transition(ticket, TicketStatus.bot)
            ticket.failed_bot_answers = ticket.failed_bot_answers + 1 if decision.failed_answer else 0
            return _Reply(decision=decision, ctx=ctx, language=lang, intent=decision.route_intent,
                          quick_replies=[{"title": texts.text("talk_to_operator", lang), "payload": HANDOFF_PAYLOAD}])

        if look.routing is None:  # read once per batch, when its first message goes to humans
            look.routing = await routing.routing_table(session)
        team = look.routing.team_for(decision.route_intent)
        if team is not None:
            ticket.team_id = team.id
            ticket.team = team
        ticket.failed_bot_answers = 0
        ticket.waiting_notice_at = utcnow()  # the hand-over notice is the first one a waiting customer gets
        ticket_service.transition(ticket, TicketStatus.open)
        return _Reply(decision=decision, ctx=ctx, language=lang, intent=None, quick_replies=[])

    def _bot_reply(self, look: _Lookups, work: _Work) -> ticket_service.BotReply:
        reply = work.reply
        if reply is None or work.message_id is None:
            raise RuntimeError("only a decided, inserted message with an answer gets a bot reply")
        decision, ticket = reply.decision, work.ticket
        team = self._team_of(look, ticket)
        wait = handover.wait_sentence(work.queue, utcnow(), reply.language)
        # Several requests: an order status the bot looked up follows the FAQ answers.
        looked_up = (self._phrase(decision, team, reply.ctx, reply.language, key=decision.lookup_key)
                     if decision.lookup_key else None)
        if decision.action == Action.escalate:
            # The intent's own text first (answer_and_escalate), then: with the team, its number, the wait.
            notice = " ".join(p for p in (self._phrase(decision, team, reply.ctx, reply.language,
                                                       ticket=ticket.number), wait) if p)
            text = "\n\n".join(p for p in (decision.reply_text, looked_up, notice) if p)
        elif looked_up:
            text = "\n\n".join(p for p in (decision.reply_text, looked_up) if p)
        elif decision.reply_key == "still_waiting":
            text = self._phrase(decision, team, reply.ctx, reply.language, ticket=ticket.number, wait=wait)
        else:
            text = decision.reply_text or self._phrase(decision, team, reply.ctx, reply.language,
                                                       ticket=ticket.number)
        return ticket_service.BotReply(
            ticket=work.ticket, text=text, language=reply.language, intent=reply.intent,
            quick_replies=reply.quick_replies, in_reply_to_id=work.message_id,
            reply_refs=[work.inbound.external_message_id],
        )

    def _finish(self, session: AsyncSession, work: _Work) -> IngestResult:
        ticket, message_id = work.ticket, work.message_id
        if message_id is None or work.action is None:
            raise RuntimeError("a message was finished before it was decided")
        emit(session, Topic.TICKETS, TicketChanged.of(ticket, work.threading))
        return IngestResult(ticket_id=ticket.id, ticket_number=ticket.number, message_id=message_id,
                            customer_id=ticket.customer_id, created=True, action=work.action.value,
                            reply_message_ids=work.replies)

    @staticmethod
    def _phrase(decision: Decision, team: Team | None, ctx: DecisionContext, lang: str, key: str | None = None,
                **extra: Any) -> str:
        values: dict[str, Any] = {**extra, "team": texts.team_name(team.slug if team else None, lang),
                                  "order": ctx.order_number or ""}
        if ctx.order is not None:
            values.update(order=ctx.order.number, status=texts.order_status(ctx.order.status, lang),
                          description=f" {ctx.order.description}" if ctx.order.description else "")
        values["contract"] = ctx.contract_number or ""
        if ctx.contract is not None:
            values.update(contract=ctx.contract.number, tariff=ctx.contract.tariff or "-",
                          end=ctx.contract.end_date.strftime("%d.%m.%Y"),
                          status=texts.contract_status(ctx.contract.status, lang),
                          renewal=texts.text("contract_renews", lang) if ctx.contract.auto_renewal else "")
        return texts.text(key or decision.reply_key or "escalated", lang, **values)
