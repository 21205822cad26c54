"""A platform-neutral card: what a message shows, never how. Renderers make it Slack, Feishu,
DingTalk or HTML. Every string here is plain, untrusted text; renderers escape it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Color = Literal["blue", "green", "orange", "red", "grey", "purple"]
Style = Literal["primary", "danger", "default"]


class CardField(BaseModel):
    label: str
    value: str
    short: bool = True


class Button(BaseModel):
    label: str
    action: str
    value: str = ""  # encoded callback data (cards.callback); empty for link buttons
    style: Style = "default"
    url: str | None = None  # a link button opens this instead of calling back
    needs_input: bool = False  # ask for a reason/comment (modal, form) before sending


class Line(BaseModel):
    """One row of a small table (declaration lines, per-SKU results)."""

    cells: list[str]


class Card(BaseModel):
    kind: str  # notice, task, approval, reminder, digest, result, error, report
    title: str
    color: Color = "blue"
    subtitle: str = ""
    fields: list[CardField] = Field(default_factory=list)
    text: str = ""
    table_header: list[str] = Field(default_factory=list)
    table: list[Line] = Field(default_factory=list)
    buttons: list[Button] = Field(default_factory=list)
    footer: str = ""
    link: str | None = None  # "open in console/dashboard" (used when content is truncated)
    mentions: list[str] = Field(default_factory=list)  # user names to notify (never @all)
    task_id: int | None = None
    version: int | None = None
    locked: bool = False
