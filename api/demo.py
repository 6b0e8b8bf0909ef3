"""A small demo data set: accounts, customers on several channels, tickets, orders."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.settings import Settings
from core.events import EventBus
from core.ingest.schemas import InboundMessage, SenderInfo
from core.ingest.service import IngestService
from core.orders import service as orders
from core.tickets import repository as ticket_repo
from core.users import service as users
from core.users.models import Role
from nlu.protocol import IntentEngine


@dataclass(frozen=True)
class DemoAccount:
    email: str
    password: str
    name: str
    role: Role
    queue: str | None
    language: str


DEMO_ACCOUNTS = (
    DemoAccount("admin@example.com", "admin-password", "Anna Admin", Role.admin, None, "en"),
    DemoAccount("supervisor@example.com", "supervisor-password", "Сергей Супервайзер", Role.supervisor,
                "technical", "ru"),
    DemoAccount("agent@example.com", "agent-password", "Ольга Оператор", Role.agent, "technical", "ru"),
    DemoAccount("billing@example.com", "agent-password", "Bob Billing", Role.agent, "billing", "en"),
)

# The order the demo data holds; the web-chat demo page (channels/webchat/static/demo.html) suggests asking about it.
DEMO_ORDER = "ORD-100200"

DEMO_MESSAGES = (
    ("demo-1", "ivan@example.ru", "Иван Петров", "ivan@example.ru", "Здравствуйте! У меня не работает интернет с утра"),
    ("demo-2", "maria@example.ru", "Мария Смирнова", "maria@example.ru", "Где мой заказ ORD-100200?"),
    ("demo-3", "john@example.com", "John Smith", "john@example.com", "I was charged twice this month, please help"),
    ("demo-4", "olga@example.ru", "Ольга Иванова", None, "Хочу расторгнуть договор"),
    ("demo-5", "peter@example.com", "Peter Jones", "peter@example.com", "What are your office hours?"),
)


async def load_demo(sessionmaker: async_sessionmaker[AsyncSession], engine: IntentEngine, settings: Settings,
                    *, if_empty: bool = False) -> list[DemoAccount]:
    """Load the demo data; with `if_empty`, only into a database without users."""
    async with sessionmaker() as session:
        count = await users.count_users(session)
    if if_empty and count:
        return []
    async with sessionmaker() as session, session.begin():
        for acc in DEMO_ACCOUNTS:
            if await users.get_by_email(session, acc.email) is None:
                team = await ticket_repo.get_team_by_slug(session, acc.queue) if acc.queue else None
                await users.create(session, email=acc.email, name=acc.name, password=acc.password, role=acc.role,
                                   language=acc.language, team=team)
        await orders.upsert(session, number=DEMO_ORDER, status="shipped",
                            description="Router Keenetic Giga, courier delivery", customer_id=None)
    ingest = IngestService(sessionmaker, lambda: engine, EventBus(), settings.core)
    for ext_id, sender, name, email, text in DEMO_MESSAGES:
        await ingest.ingest(InboundMessage(
            channel="rest", external_message_id=ext_id,
            sender=SenderInfo(external_id=sender, name=name, email=email), text=text, thread_key=sender,
        ))
    return list(DEMO_ACCOUNTS)
