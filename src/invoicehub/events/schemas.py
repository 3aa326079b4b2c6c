from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from invoicehub.kit.schemas import ResponseModel


class EventOut(ResponseModel):
    id: str = Field(description="Event id.", examples=["evt_5f0c2b9e1d7a4c3b8e6f9a01"])
    object: Literal["event"] = "event"
    type: str = Field(description="What happened.", examples=["invoice.paid"])
    object_type: str = Field(description="The kind of object it happened to.", examples=["invoice"])
    object_id: str = Field(
        description="The id of that object.", examples=["inv_5f0c2b9e1d7a4c3b8e6f9a01"]
    )
    data: dict[str, Any] = Field(
        description="data.object is the object as it was right after the change."
    )
    created_at: dt.datetime


class EventList(ResponseModel):
    object: Literal["list"] = "list"
    data: list[EventOut]
    has_more: bool
    next_cursor: str | None = Field(
        description="Pass as starting_after (newest-first paging) or after (catch-up) to continue."
    )
