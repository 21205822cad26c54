"""Which channels hear about a campaign, and whose names a card calls out.

A ``ChatBinding`` matches on platform (``*`` = all), category and shop (``*`` = any); its
``roles`` are the responsible roles whose members the notice and reminder cards mention.
"""

from __future__ import annotations

from sqlmodel import Session, select

from bot.core import outbox
from bot.core.users import members_with_role
from storage.models import Campaign, ChatBinding, ChatMessage, Task, User


def categories(campaign: Campaign) -> set[str]:
    req = campaign.requirements or {}
    found = req.get("categories") or []
    return {str(c) for c in (found if isinstance(found, list) else [found])}


def shops(campaign: Campaign) -> set[str]:
    req = campaign.requirements or {}
    found = req.get("shops") or req.get("shop") or []
    return {str(s) for s in (found if isinstance(found, list) else [found])}


def matches(binding: ChatBinding, campaign: Campaign) -> bool:
    cat_ok = binding.category in ("*", "") or binding.category in categories(campaign)
    shop_ok = binding.shop in ("*", "") or binding.shop in shops(campaign)
    return cat_ok and shop_ok


def bindings(session: Session, campaign: Campaign, team_id: int | None,
             purpose: str = "notices",
             cache: dict | None = None) -> list[ChatBinding]:
    key = (campaign.platform, team_id, purpose)
    if cache is not None and key in cache:
        rows = cache[key]
    else:
        rows = outbox.bindings_for(session, campaign.platform, purpose, team_id)
        if cache is not None:
            cache[key] = rows
    return [b for b in rows if matches(b, campaign)]


def targets(session: Session, task: Task, campaign: Campaign,
            purpose: str = "notices") -> list[tuple[str, str]]:
    """Channels for a task: matching bindings plus wherever its card already is."""
    found = {(b.chat, b.channel_id) for b in bindings(session, campaign, task.team_id, purpose)}
    if purpose == "notices":
        for msg in session.exec(select(ChatMessage).where(ChatMessage.card_key == f"task:{task.id}")):
            found.add((msg.chat, msg.channel_id))
    return sorted(found)


def responsible(session: Session, campaign: Campaign, team_id: int | None) -> list[User]:
    """Members of the responsible roles named by the matching bindings."""
    roles: list[str] = []
    for binding in bindings(session, campaign, team_id):
        roles += [r for r in (binding.roles or []) if r not in roles]
    people: dict[int, User] = {}
    for role in roles:
        for user in members_with_role(session, role, team_id):
            people.setdefault(user.id or 0, user)
    return sorted(people.values(), key=lambda u: u.id or 0)


def managers(session: Session, people: list[User], team_id: int | None) -> list[User]:
    """Whom to escalate to: the people's own managers, else the team's managers."""
    ids = {p.manager_id for p in people if p.manager_id}
    found = [u for u in (session.get(User, i) for i in ids) if u is not None and u.active]
    return found or members_with_role(session, "manager", team_id)


def task_binding_filter(session: Session, task: Task, binding: ChatBinding) -> bool:
    """Hook for ``outbox.enqueue_task_card``: a category/shop binding only hears its own."""
    if binding.category in ("*", "") and binding.shop in ("*", ""):
        return True
    campaign = session.get(Campaign, task.campaign_id)
    return campaign is None or matches(binding, campaign)


if task_binding_filter not in outbox.binding_filters:
    outbox.binding_filters.append(task_binding_filter)
