from core.db.base import Base, utcnow
from core.db.session import create_engine, create_sessionmaker

__all__ = ["Base", "create_engine", "create_sessionmaker", "utcnow"]
