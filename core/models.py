"""Imports every model so that Base.metadata knows all tables (Alembic, tests)."""

from core.apikeys.models import ApiKey
from core.attachments.models import AttachmentChunk, AttachmentObject
from core.audit.models import AuditEntry
from core.auth.models import LoginThrottle
from core.calendars.models import Calendar, CalendarException
from core.canned.models import CannedResponse
from core.channel_configs.models import ChannelConfig
from core.consent.models import ConsentChange, ConsentKind, OrderNoticeTemplate
from core.contracts.models import Contract, ContractStatus
from core.csat.models import CsatSurvey
from core.cursors.models import ChannelCursor
from core.customers.models import ChannelIdentity, Customer, CustomerMerge, DuplicateDismissal
from core.db.base import Base
from core.incidents.models import Incident, IncidentCustomer, IncidentTicket
from core.jobs.models import ScheduledTask, TaskState
from core.kpis.models import KpiHourly, KpiRollup, KpiState, KpiTicketFacts
from core.nlu_admin.models import (
    NluActiveModel,
    NluExample,
    NluInstance,
    NluIntent,
    NluModelVersion,
    NluResponse,
    NluSuggestion,
    NluTrainingJob,
)
from core.orders.models import Order, OrderStatusChange
from core.outbox.models import OutboxMessage, OutboxPart, OutboxStatus
from core.problems.models import HandledMessage, ProblemAlert
from core.provider_templates.models import ProviderTemplate
from core.quarantine.models import QuarantinedPayload
from core.routing.models import IntentRoute
from core.sla.models import SlaPolicy, TicketSla
from core.summaries.models import SummaryMail, SummarySettingsRow
from core.tags.models import Tag, TicketTag
from core.tickets.models import AuthorKind, Direction, Message, Note, Priority, Ticket, TicketStatus
from core.unread.models import TicketSeen
from core.users.models import ApiToken, Role, Team, User

__all__ = [
    "ApiKey",
    "ApiToken",
    "AttachmentChunk",
    "AttachmentObject",
    "AuditEntry",
    "AuthorKind",
    "Base",
    "Calendar",
    "CalendarException",
    "CannedResponse",
    "ChannelConfig",
    "ChannelCursor",
    "ChannelIdentity",
    "ConsentChange",
    "ConsentKind",
    "Contract",
    "ContractStatus",
    "CsatSurvey",
    "Customer",
    "CustomerMerge",
    "Direction",
    "DuplicateDismissal",
    "HandledMessage",
    "Incident",
    "IncidentCustomer",
    "IncidentTicket",
    "IntentRoute",
    "KpiHourly",
    "KpiRollup",
    "KpiState",
    "KpiTicketFacts",
    "LoginThrottle",
    "Message",
    "NluActiveModel",
    "NluExample",
    "NluInstance",
    "NluIntent",
    "NluModelVersion",
    "NluResponse",
    "NluSuggestion",
    "NluTrainingJob",
    "Note",
    "Order",
    "OrderNoticeTemplate",
    "OrderStatusChange",
    "OutboxMessage",
    "OutboxPart",
    "OutboxStatus",
    "Priority",
    "ProblemAlert",
    "ProviderTemplate",
    "QuarantinedPayload",
    "Role",
    "ScheduledTask",
    "SlaPolicy",
    "SummaryMail",
    "SummarySettingsRow",
    "Tag",
    "TaskState",
    "Team",
    "Ticket",
    "TicketSeen",
    "TicketSla",
    "TicketStatus",
    "TicketTag",
    "User",
]
