"""Who is acting: a person with roles, or the system (watchers, submitters, sweeps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from storage.models import User

ROLES = ("market", "ops", "design", "finance", "legal", "manager", "admin")


@dataclass(frozen=True)
class Actor:
    name: str
    display_name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None
    lang: str = "zh-CN"

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(
            name=user.name,
            display_name=user.display_name,
            roles=frozenset(user.roles or ()),
            user_id=user.id,
            lang=user.lang,
        )

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        return cls(name=what, display_name="PromoPilot", roles=frozenset({"system"}))

    @property
    def is_system(self) -> bool:
        return "system" in self.roles

    def has_any(self, roles: frozenset[str] | set[str]) -> bool:
        return bool(self.roles & roles)
