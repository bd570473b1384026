"""The JSON API of the coordinator's report, and its CSV export.

The figures and their scope are :func:`console.reports.report`'s: admins and coordinators
get everything; an agent gets a report over their own and their teams' conversations, with
colleagues folded into "others". Both need the ``reports`` scope (403 without it, 401
unsigned). Dates are ISO (``2026-12-01``), days in ``tz`` (Asia/Tehran by default),
inclusive at both ends; a range that ends before it starts, longer than a year, or in an
unknown time zone is a 400; a malformed date a 422.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from config.settings import Settings
from console.api.schemas import clean_text, errors
from console.dates import DEFAULT_TZ
from console.deps import AppSettings, Principal, get_db, require_scope
from console.queue_types import Targets
from console.reports import MAX_DAYS, Report, report, report_csv
from kartabl.errors import InputError

router = APIRouter(prefix="/api/v1", tags=["reports"])

Reader = Annotated[Principal, Depends(require_scope("reports"))]
Db = Annotated[Session, Depends(get_db)]
# Days far from now are typos, and the day after 9999-12-31 does not exist.
_EARLIEST, _LATEST = date(1900, 1, 1), date(2999, 12, 31)


def _sane(day: date) -> date:
    if not _EARLIEST <= day <= _LATEST:
        raise ValueError(f"must be between {_EARLIEST} and {_LATEST}")
    return day


Day = Annotated[date, AfterValidator(_sane)]
Start = Annotated[Day, Query(description="The first day (ISO), inclusive.")]
End = Annotated[Day, Query(description=f"The last day (ISO), inclusive; at most {MAX_DAYS} "
                                       "days after start.")]
Tz = Annotated[str, Query(max_length=64, description="The IANA time zone days are counted in."),
               AfterValidator(clean_text)]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class VolumeRowOut(_Out):
    key: str = Field(description='A channel; a team or person id; "none" (no team), '
                                 '"unassigned", or "others" (an agent\'s colleagues).')
    label: str
    count: int


class DurationOut(_Out):
    count: int = Field(description="Conversations with this duration (answered, resolved).")
    median_minutes: float | None
    p90_minutes: float | None


class ReportOut(_Out):
    start: date
    end: date
    tz: str
    generated_at: datetime
    scope: Literal["all", "own"] = Field(description='"own": an agent\'s conversations and '
                                                     "their teams'.")
    opened: int = Field(description="Conversations opened in the range.")
    by_channel: list[VolumeRowOut]
    by_team: list[VolumeRowOut]
    by_person: list[VolumeRowOut]
    first_response: DurationOut
    resolution: DurationOut
    backlog: int = Field(description="Open now (not limited to the range).")
    overdue_first_response: int
    overdue_resolution: int
    overdue: int = Field(description="Open now and past either target (counted once).")
    first_response_target_minutes: float
    resolution_target_hours: float


def _report(db: Session, p: Principal, start: date, end: date, tz: str,
            settings: Settings) -> Report:
    if end < start:  # the service says so too; here before any query
        raise InputError(f"the range ends ({end}) before it starts ({start})")
    return report(db, p.person, start, end, tz, targets=Targets.from_settings(settings))


@router.get("/reports", summary="Volumes, response and resolution times, backlog",
            responses=errors(400, 401, 403))
def report_json(p: Reader, db: Db, settings: AppSettings, start: Start, end: End,
                tz: Tz = DEFAULT_TZ) -> ReportOut:
    """Volume by channel, team and person of the conversations opened in the range; their
    first-response and resolution times (median and 90th percentile, in minutes); the
    backlog and overdue counts now."""
    return ReportOut.model_validate(_report(db, p, start, end, tz, settings),
                                   from_attributes=True)


@router.get(
    "/reports.csv", summary="The report as a CSV download", response_class=Response,
    responses={200: {"content": {"text/csv": {}},
                     "description": "section,key,label,value,jalali rows (UTF-8 with a BOM)."},
               **errors(400, 401, 403)},
)
def report_download(
    p: Reader, db: Db, settings: AppSettings, start: Start, end: End, tz: Tz = DEFAULT_TZ,
    locale: Annotated[Literal["en", "fa"], Query(
        description="Accepted for compatibility; the file is the same in every language: "
                    "ISO dates and ASCII digits, the Jalali date in the 'jalali' column.")] = "en",
) -> Response:
    """Always a download. Cells that a spreadsheet would run as a formula are quoted; the
    BOM lets spreadsheet programs read Persian names as UTF-8."""
    rep = _report(db, p, start, end, tz, settings)
    name = f"kartabl-report-{rep.start.isoformat()}-{rep.end.isoformat()}.csv"
    del locale  # the same file whatever the language (see its description)
    return Response("\ufeff" + report_csv(rep), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
