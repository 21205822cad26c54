"""Helpers for the declarations tests (#9): products, campaigns, tasks and declarations
made directly in the database, and real image / spreadsheet files made on disk."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from PIL import Image
from sqlmodel import select

from bot.core.actions import ActionRequest, perform
from bot.core.actors import Actor
from storage.db import Database
from storage.models import (
    Campaign,
    Declaration,
    DeclarationLine,
    Product,
    QualificationDocument,
    Task,
    Team,
    User,
)
from storage.types import utcnow


def actor(db: Database, name: str) -> Actor:
    with db.session() as s:
        return Actor.of(s.exec(select(User).where(User.name == name)).one())


def act(db: Database, task_id: int, action: str, who: str, **kw):
    return perform(db, ActionRequest(task_id=task_id, action=action, actor=actor(db, who), **kw))


def product(db: Database, sku: str, title: str = "测试商品 标准装", *, brand: str = "",
            category: str = "美妆个护", list_price: str = "100.00", stock: int = 500,
            safety: int = 0, image: tuple[int, int, str] | None = (800, 800, "JPEG")) -> None:
    with db.session() as s:
        w, h, fmt = image or (None, None, None)
        s.add(Product(sku=sku, title=title, brand=brand, category=category,
                      list_price=Decimal(list_price), cost=Decimal("10"), stock=stock,
                      safety_stock=safety, image_width=w, image_height=h, image_format=fmt))


def document(db: Database, kind: str, title: str, days: int, brand: str = "") -> int:
    with db.session() as s:
        doc = QualificationDocument(kind=kind, title=title, issuer="测试", brand=brand,
                                    valid_until=utcnow() + timedelta(days=days))
        s.add(doc)
        s.flush()
        return doc.id or 0


def task(db: Database, platform: str, requirements: dict | None = None, *, claimant: str = "li.na",
         state: str = "drafting", event_days: int = 10, external_id: str | None = None) -> int:
    """A campaign and its task, claimed and in ``state``."""
    now = utcnow()
    with db.session() as s:
        team = s.exec(select(Team)).first()
        user = s.exec(select(User).where(User.name == claimant)).one()
        campaign = Campaign(platform=platform, external_id=external_id or f"T-{now.timestamp()}",
                            title=f"{platform} 测试活动", requirements=requirements or {},
                            content_hash="x", registration_end=now + timedelta(days=3),
                            event_start=now + timedelta(days=event_days - 2),
                            event_end=now + timedelta(days=event_days))
        s.add(campaign)
        s.flush()
        row = Task(campaign_id=campaign.id or 0, team_id=team.id if team else 1, state=state,
                   claimed_by=user.id, deadline=now + timedelta(days=3))
        s.add(row)
        s.flush()
        return row.id or 0


def declare(db: Database, task_id: int, lines: list[tuple[str, str | None, int]], *,
            documents: list[int] | None = None, note: str = "") -> int:
    """A declaration version with lines ``(sku, promo_price, promo_stock)``."""
    with db.session() as s:
        previous = s.exec(select(Declaration).where(Declaration.task_id == task_id)
                          .order_by(Declaration.version.desc())).first()
        declaration = Declaration(task_id=task_id, version=(previous.version + 1) if previous else 1,
                                  documents=documents or [], note=note)
        s.add(declaration)
        s.flush()
        for sku, price, stock in lines:
            prod = s.exec(select(Product).where(Product.sku == sku)).first()
            s.add(DeclarationLine(declaration_id=declaration.id or 0, sku=sku,
                                  list_price=prod.list_price if prod else Decimal("100"),
                                  promo_price=Decimal(price) if price is not None else None,
                                  promo_stock=stock))
        return declaration.version


def image_file(path: Path, size: tuple[int, int], fmt: str = "JPEG") -> Path:
    """A real image whose pixel size and format are only knowable by reading it."""
    Image.new("RGB", size, (250, 250, 250)).save(path, format=fmt)
    return path
